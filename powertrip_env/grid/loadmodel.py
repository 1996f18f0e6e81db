"""OpenDSS's voltage-dependent power of constant-PQ loads and generators (``Model=1``).

A ``Model=1`` load or generator draws its nominal power only inside its band
``(Vminpu, Vmaxpu]`` of its own voltage base; outside it OpenDSS changes the model (Load.pas
``DoConstantPQLoad``, Generator.pas ``DoConstantPQGen``; ``tests/test_loadmodel.py`` holds
these formulas against OpenDSS itself). With ``u = |V| / V_base`` per phase and ``S`` the
nominal power per phase, the power actually drawn is ``S * power_scale(u)``:

* above ``Vmaxpu``: constant impedance ``Yeq / Vmaxpu^2`` (``(u / Vmaxpu)^2``);
* between ``Vlowpu`` and ``Vminpu`` (loads): the current *magnitude* grows linearly from
  ``Yeq * V_low`` at ``Vlowpu`` to ``Yeq / Vminpu^2 * V_min`` at ``Vminpu``, at the power
  factor of ``S`` (not a constant impedance: OpenDSS interpolates there);
* below ``Vlowpu`` (loads): the nominal impedance ``Yeq`` (``u^2``).

Generators have no ``Vlowpu``: below ``Vminpu`` they are the impedance ``Yeq / Vminpu^2``,
which is the same formula with ``Vlowpu = 0``.

:func:`device_connections` reads every phase connection of the feeder's loads, PowerTrip's
CPs and PV systems from an engine: the engine uses them for the power balance (losses) and
:class:`~powertrip_env.grid.reduced.ReducedNetwork` for its fixed point, so both follow the
same model as OpenDSS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from powertrip_env.errors import FeederError

if TYPE_CHECKING:
    from opendssdirect.OpenDSSDirect import OpenDSSDirect


#: Lowest LV voltage (pu of the node base) at which each load model still describes houses.
#: Constant PQ holds a house at its setpoint however low the voltage, so below about 0.9 pu it
#: draws more current than real appliances would and the day's low voltages are too low (a
#: heavily one-phase feeder collapses towards 0.5 pu). OpenDSS's band turns loads into
#: impedance-like models below Vminpu, which holds down to its Vlowpu (0.5 by default).
VALID_MIN_PU: dict[str, float] = {"constant_pq": 0.9, "opendss": 0.5}


def load_model_warning(v_min_pu: np.ndarray, load_model: str) -> str | None:
    """A warning when a day's lowest voltages (one per step, pu) leave ``load_model``'s range.

    ``None`` when every step stays at or above :data:`VALID_MIN_PU` of the model.
    """
    floor = VALID_MIN_PU[load_model]
    below = np.asarray(v_min_pu, dtype=float) < floor
    if not below.any():
        return None
    advice = (
        "; choose feeder.load_model: opendss for loads that turn impedance-like at low voltage"
        if load_model == "constant_pq"
        else ""
    )
    return (
        f"{int(below.sum())} step(s) reach {float(np.nanmin(v_min_pu)):.3f} pu, below "
        f"{floor} pu where the {load_model} load model describes houses: the day's voltages, "
        f"losses and unbalance there are not trustworthy{advice}"
    )


#: OpenDSS classes whose elements the power balance and the reduced network model represent
#: exactly (PD elements are in the admittance matrix; meters do not act on the solution).
SUPPORTED_CLASSES = frozenset(
    {"vsource", "line", "transformer", "capacitor", "reactor", "load", "generator", "energymeter"}
    | {"monitor"}
)
#: Name prefix of PowerTrip's own PV generators (the only generators modelled).
PV_PREFIX = "pt_pv_"


def unmodelled_elements(dss: OpenDSSDirect) -> list[str]:
    """Enabled elements outside :data:`SUPPORTED_CLASSES`, by full name (generators other
    than PowerTrip's PV systems count as outside)."""
    out = []
    for full_name in dss.Circuit.AllElementNames():
        cls, _, name = full_name.partition(".")
        cls = cls.lower()
        own_pv = cls == "generator" and name.lower().startswith(PV_PREFIX)
        if cls in SUPPORTED_CLASSES and (cls != "generator" or own_pv):
            continue
        dss.Circuit.SetActiveElement(full_name)
        if dss.CktElement.Enabled():
            out.append(full_name)
    return out


def power_scale(u: ArrayLike, v_low: ArrayLike, v_min: ArrayLike, v_max: ArrayLike) -> np.ndarray:
    """Power drawn over nominal power of a ``Model=1`` device at ``u = |V| / V_base``.

    All arguments broadcast; the bands are in pu of the device's voltage base. The result is
    exactly 1.0 inside ``(max(v_low, v_min), v_max]``.
    """
    u = np.asarray(u, dtype=np.float64)
    v_low, v_min, v_max = (np.asarray(v, dtype=np.float64) for v in (v_low, v_min, v_max))
    with np.errstate(divide="ignore", invalid="ignore"):
        # Slope of the current magnitude between v_low and v_min, in Yeq * V_base per pu.
        slope = (1.0 / v_min - v_low) / (v_min - v_low)
        interpolated = u * (v_low + slope * (u - v_low))
    # The branches in OpenDSS's order: Vlowpu first, then Vminpu, then Vmaxpu.
    return np.where(
        u <= v_low,
        u * u,
        np.where(u <= v_min, interpolated, np.where(u > v_max, (u / v_max) ** 2, 1.0)),
    )


@dataclass(frozen=True)
class Connections:
    """Every phase connection of a list of wye devices, one entry per (device, phase).

    Attributes:
        device: (n_conn,) index of the device in the list it was read from.
        nodes: (n_conn,) lower-case node names ``bus.k`` the connections sit on.
        share: (n_conn,) fraction of the device's power on the connection (1 / phases).
        v_base: (n_conn,) the device's phase voltage base, volts.
        v_low, v_min, v_max: (n_conn,) the device's band, pu of ``v_base`` (``v_low`` 0 for
            generators).
    """

    device: np.ndarray
    nodes: tuple[str, ...]
    share: np.ndarray
    v_base: np.ndarray
    v_low: np.ndarray
    v_min: np.ndarray
    v_max: np.ndarray

    def __len__(self) -> int:
        return len(self.nodes)

    def power_scale(self, v_abs: np.ndarray) -> np.ndarray:
        """(..., n_conn) :func:`power_scale` of each connection at magnitudes ``v_abs``, volts."""
        return power_scale(v_abs / self.v_base, self.v_low, self.v_min, self.v_max)

    def device_map(self, n_devices: int) -> np.ndarray:
        """(n_devices, n_conn) each device's share of its power on each connection."""
        out = np.zeros((n_devices, len(self)))
        out[self.device, np.arange(len(self))] = self.share
        return out


@dataclass(frozen=True)
class _Row:
    device: int
    nodes: tuple[str, ...]
    v_base: float
    v_low: float
    v_min: float
    v_max: float


def _query(dss: OpenDSSDirect, element: str, prop: str) -> float:
    dss.Text.Command(f"? {element}.{prop}")
    return float(dss.Text.Result())


def _wye_row(
    dss: OpenDSSDirect,
    feeder: str,
    element: str,
    device: int,
    kv: float,
    is_delta: bool,
    model: int,
) -> _Row:
    """The connection of the active element ``element``, refused unless wye ``Model=1``."""
    where = f"feeder {feeder!r}: {element}"
    if model != 1:
        raise FeederError(
            f"{where} has Model={model}; only Model=1 (constant PQ inside its voltage band) is "
            "modelled; set Model=1 or choose feeder.load_model: constant_pq"
        )
    phases = dss.CktElement.NumPhases()
    order = list(dss.CktElement.NodeOrder())
    grounded = len(order) == phases or order[phases] == 0
    if is_delta or not grounded or 0 in order[:phases]:
        raise FeederError(
            f"{where} is connected {order} (delta={is_delta}); only wye devices with a grounded "
            "neutral are modelled, e.g. Bus1=<bus>.1"
        )
    bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
    v_base = kv * 1000.0 if phases == 1 else kv * 1000.0 / math.sqrt(3.0)
    return _Row(device, tuple(f"{bus}.{k}" for k in order[:phases]), v_base, 0.0, 0.0, math.inf)


def _load_row(dss: OpenDSSDirect, feeder: str, name: str, device: int) -> _Row | None:
    element = f"Load.{name}"
    dss.Circuit.SetActiveElement(element)
    if not dss.CktElement.Enabled():
        return None
    dss.Loads.Name(name)
    row = _wye_row(
        dss, feeder, element, device, dss.Loads.kV(), bool(dss.Loads.IsDelta()), dss.Loads.Model()
    )
    v_low = _query(dss, element, "vlowpu")
    v_min, v_max = dss.Loads.Vminpu(), dss.Loads.Vmaxpu()
    return _Row(device, row.nodes, row.v_base, v_low, v_min, v_max)


def _generator_row(dss: OpenDSSDirect, feeder: str, name: str, device: int) -> _Row | None:
    element = f"Generator.{name}"
    dss.Circuit.SetActiveElement(element)
    if not dss.CktElement.Enabled():
        return None
    dss.Generators.Name(name)
    row = _wye_row(
        dss,
        feeder,
        element,
        device,
        dss.Generators.kV(),
        bool(dss.Generators.IsDelta()),
        dss.Generators.Model(),
    )
    return _Row(
        device, row.nodes, row.v_base, 0.0, dss.Generators.Vminpu(), dss.Generators.Vmaxpu()
    )


def device_connections(
    dss: OpenDSSDirect, feeder: str, loads: Sequence[str], generators: Sequence[str] = ()
) -> Connections:
    """The phase connections of ``loads`` then ``generators`` (devices numbered in that order).

    Disabled devices have no connection. Needs a solved circuit (OpenDSS reports node orders
    only then).

    Raises:
        FeederError: a device is not a wye ``Model=1`` device with a grounded neutral.
    """
    rows = [_load_row(dss, feeder, name, k) for k, name in enumerate(loads)]
    rows += [_generator_row(dss, feeder, name, len(loads) + k) for k, name in enumerate(generators)]
    device, nodes, share, v_base, v_low, v_min, v_max = [], [], [], [], [], [], []
    for row in rows:
        if row is None:
            continue
        for node in row.nodes:
            device.append(row.device)
            nodes.append(node)
            share.append(1.0 / len(row.nodes))
            v_base.append(row.v_base)
            v_low.append(row.v_low)
            v_min.append(row.v_min)
            v_max.append(row.v_max)
    return Connections(
        device=np.array(device, dtype=np.intp),
        nodes=tuple(nodes),
        share=np.array(share),
        v_base=np.array(v_base),
        v_low=np.array(v_low),
        v_min=np.array(v_min),
        v_max=np.array(v_max),
    )
