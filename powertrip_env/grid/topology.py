"""Is every bus and device of a compiled circuit energised from the source?

OpenDSS solves a circuit with an islanded section without complaint: the cut-off buses sit at
0 V and the loads on them draw nothing, so a day on a broken feeder would look like a quiet
one. :func:`check_energised` refuses such a circuit when the engine is built. It walks the
circuit's graph (buses joined by the enabled conductors of every power-delivery element:
lines, transformers, reactors, ...) from the buses of its voltage sources with
``scipy.sparse.csgraph``, and names what the source does not reach, with the disabled or
opened elements that would reconnect it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from opendssdirect.OpenDSSDirect import OpenDSSDirect
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order

from powertrip_env.errors import FeederError

#: How many names a message lists before it says "and N more".
SHOWN = 8


@dataclass(frozen=True)
class Topology:
    """What the source reaches in a compiled circuit.

    Attributes:
        isolated_buses: buses no enabled element connects to a source (lower case).
        isolated_elements: enabled elements (``Class.name``) with a terminal on such a bus.
        reconnecting: disabled or opened elements that join an isolated bus to an energised
            one: enabling or closing them would energise it.
    """

    isolated_buses: tuple[str, ...]
    isolated_elements: tuple[str, ...]
    reconnecting: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.isolated_buses


def _bus(name: str) -> str:
    return name.split(".")[0].lower()


def _terminal_closed(dss: OpenDSSDirect, terminal: int) -> bool:
    """Whether any conductor of the active element's ``terminal`` (1-based) is closed."""
    if not dss.CktElement.IsOpen(terminal, 0):  # no conductor of it is open
        return True
    return not all(
        dss.CktElement.IsOpen(terminal, c) for c in range(1, dss.CktElement.NumConductors() + 1)
    )


def circuit_topology(dss: OpenDSSDirect) -> Topology:
    """The buses and elements of ``dss``'s circuit that no voltage source reaches."""
    # Elements defined since the last solve may name buses the circuit's list lacks yet.
    buses = [b.lower() for b in dss.Circuit.AllBusNames()]
    index = {b: k for k, b in enumerate(buses)}

    def bus_of(name: str) -> str:
        bus = _bus(name)
        if bus not in index:
            index[bus] = len(buses)
            buses.append(bus)
        return bus

    rows: list[int] = []
    cols: list[int] = []
    # Elements that would join buses were they enabled and closed: (name, buses).
    idle: list[tuple[str, list[str]]] = []
    elements: list[tuple[str, list[str]]] = []
    sources: list[int] = []
    pd_elements = {n.lower() for n in dss.PDElements.AllNames()}
    for name in dss.Circuit.AllElementNames():
        dss.Circuit.SetActiveElement(name)
        ends = [bus_of(b) for b in dss.CktElement.BusNames()]
        if name.lower().startswith("vsource."):
            if dss.CktElement.Enabled():
                sources.append(index[ends[0]])
            continue
        if not dss.CktElement.Enabled():
            if len(set(ends)) > 1:
                idle.append((name, ends))
            continue
        elements.append((name, ends))
        if len(set(ends)) < 2 or name.lower() not in pd_elements:
            continue  # a shunt element or a device: it joins no buses
        closed = [e for t, e in enumerate(ends, start=1) if _terminal_closed(dss, t)]
        if len(set(closed)) < len(set(ends)):
            idle.append((name, ends))
        for other in closed[1:]:
            rows.append(index[closed[0]])
            cols.append(index[other])
    n = len(buses)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    energised = np.zeros(n, dtype=bool)
    for source in sources:
        if not energised[source]:
            energised[breadth_first_order(graph, source, directed=False)[0]] = True
    isolated = {b for b, on in zip(buses, energised, strict=True) if not on}
    on = {b for b, e in zip(buses, energised, strict=True) if e}
    return Topology(
        isolated_buses=tuple(b for b in buses if b in isolated),
        # Devices (loads, generators) first: they are what a cut-off costs.
        isolated_elements=tuple(
            sorted(
                (n for n, ends in elements if isolated.intersection(ends)),
                key=lambda n: n.lower() in pd_elements,
            )
        ),
        reconnecting=tuple(n for n, ends in idle if isolated & set(ends) and on & set(ends)),
    )


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def check_energised(
    dss: OpenDSSDirect, feeder_name: str, devices: Sequence[tuple[str, str]] = ()
) -> None:
    """Raise :class:`FeederError` unless the source reaches every bus and element.

    Args:
        dss: an engine context holding the compiled circuit.
        feeder_name: the feeder, for the message.
        devices: (label, bus) of devices about to be placed (e.g. ``("CP 'cp1'", "900")``):
            one on a cut-off bus is named too.
    """
    topology = circuit_topology(dss)
    isolated = set(topology.isolated_buses)
    cut_devices = [label for label, bus in devices if bus.lower() in isolated]
    if topology.ok:
        return
    message = (
        f"feeder {feeder_name!r}: {len(topology.isolated_buses)} bus(es) are not connected to "
        f"the source: {_listed(topology.isolated_buses)}"
    )
    if topology.isolated_elements:
        message += f"; cut-off elements: {_listed(topology.isolated_elements)}"
    if cut_devices:
        message += f"; cut-off devices: {_listed(cut_devices)}"
    if topology.reconnecting:
        message += f". Enabling or closing {_listed(topology.reconnecting)} would reconnect them"
    else:
        message += (
            ". No line or transformer of the feeder reaches them from the source: is a line "
            "missing from its files?"
        )
    raise FeederError(message)
