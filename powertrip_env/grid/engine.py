"""One OpenDSS engine per simulator: compile a feeder, dispatch powers, solve, read voltages.

This module and its siblings in ``powertrip_env.grid`` are the only code that imports
``opendssdirect`` (architecture.md §2). Each :class:`OpenDSSEngine` owns a context of its own
(``NewContext()``), so two engines in one process never share a circuit.

The hot path (:meth:`OpenDSSEngine.set_powers`, :meth:`OpenDSSEngine.run_pf`,
:meth:`OpenDSSEngine.node_voltages`) avoids the traps measured in architecture.md §8: powers are
written with DSS C-API batch setters flagged ``AvoidFullRecalc`` over precomputed object
pointers (no Text commands, no name look-ups, no admittance-matrix rebuild), and all node
voltages come back in one call as a numpy array that precomputed indices slice.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from opendssdirect import dss as _default_dss
from opendssdirect.OpenDSSDirect import OpenDSSDirect

from powertrip_env.errors import ConfigError, FeederError, PowerFlowError, UnknownBusError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.loadmodel import (
    PV_PREFIX,
    Connections,
    device_connections,
    unmodelled_elements,
)
from powertrip_env.grid.state import CPBusReading, GridState
from powertrip_env.grid.topology import check_energised

#: CPs, PV systems and (with ``load_model: constant_pq``) the residential loads are declared
#: constant-PQ over this band, so that OpenDSS does not switch them to an impedance at any
#: voltage met in practice (the trap of loads at kV=0.23 with OpenDSS's default 1.05).
VMIN_PU = 0.5
VMAX_PU = 1.5

#: A device node below this fraction of its base voltage after a solve is dead (cut off from
#: the source), and the solve does not count as converged.
DEAD_PU = 0.05

CP_PREFIX = "pt_cp_"


class _Batch:
    """Pointers to a run of OpenDSS objects of one class, for batch property setters."""

    def __init__(self, engine: OpenDSSDirect, class_name: str, start: int, count: int) -> None:
        self._ffi = engine.dss_ffi
        self._lib = engine.dss_lib
        self._class = class_name
        ptrs = self._ffi.new("void***")
        counts = self._ffi.new("int32_t[4]")
        self._lib.Batch_CreateByClassS(ptrs, counts, class_name.encode())
        if counts[0] < start + count:
            raise FeederError(
                f"OpenDSS holds {counts[0]} {class_name} objects, expected at least {start + count}"
            )
        self._owner = ptrs[0]
        self._ptrs = ptrs[0] + start
        self.count = count
        self._props = self._property_indices(engine, class_name)
        self._flags = self._lib.SetterFlags_AvoidFullRecalc

    @staticmethod
    def _property_indices(engine: OpenDSSDirect, class_name: str) -> dict[str, int]:
        engine.Circuit.SetActiveClass(class_name)
        engine.ActiveClass.First()
        names = engine.CktElement.AllPropertyNames()
        return {name.lower(): k + 1 for k, name in enumerate(names)}

    def set(self, prop: str, values: np.ndarray) -> None:
        """Set property ``prop`` of every object of the batch to ``values`` (float64, C order)."""
        if self.count == 0:
            return
        if self._owner is None:  # writing through freed pointers would crash the interpreter
            raise PowerFlowError(f"this batch of OpenDSS {self._class} objects is disposed")
        self._lib.Batch_SetFloat64Array(
            self._ptrs,
            self.count,
            self._props[prop],
            self._ffi.cast("double*", values.ctypes.data),
            self._flags,
        )

    def dispose(self) -> None:
        if self._owner is not None:
            self._lib.Batch_Dispose(self._owner)
            self._owner = None


class OpenDSSEngine:
    """A feeder compiled in its own OpenDSS context, with CPs and PV systems placed on it.

    Sign convention: every power is in kW/kvar, positive = consumption for loads and CPs,
    positive = generation for PV systems.

    Args:
        feeder: the feeder to compile.
        devices: the CPs (added as single-phase ``Load`` model 1) and PV systems (added as
            single-phase ``Generator`` model 1, unity power factor) to place on it.
        max_iterations: OpenDSS's iteration limit per solve (its default is 15).
        tolerance: OpenDSS's convergence tolerance per solve, pu (``Solution.Tolerance``).
            ``None`` keeps OpenDSS's default of 1e-4, which is accurate to about 3e-5 pu
            (architecture.md §8); reference solves (e.g. checking the reduced network model) use
            about 1e-10 with more iterations.

    Raises:
        FeederError: the feeder does not compile, or a device sits on an unknown bus or phase.
    """

    def __init__(
        self,
        feeder: Feeder,
        devices: DevicePlacement | None = None,
        max_iterations: int = 15,
        tolerance: float | None = None,
    ) -> None:
        if max_iterations < 1:
            raise ConfigError(f"max_iterations={max_iterations} must be at least 1")
        if tolerance is not None and not 0.0 < tolerance < 1.0:
            raise ConfigError(f"tolerance={tolerance!r} must be a number of pu in (0, 1)")
        self.feeder = feeder
        self.devices = devices if devices is not None else DevicePlacement()
        cwd = os.getcwd()
        self._dss: OpenDSSDirect | None = _default_dss.NewContext()
        # NewContext moves the process to OpenDSS's data path (the working folder when
        # opendssdirect was imported): a user's relative paths would silently move with it.
        os.chdir(cwd)
        self._dss.Basic.AllowChangeDir(False)
        self._compile()
        device_buses = [(f"CP {d.name!r}", d.bus) for d in self.devices.cps]
        device_buses += [(f"PV {d.name!r}", d.bus) for d in self.devices.pvs]
        check_energised(self.dss, self.feeder.name, device_buses)
        self._apply_load_model()
        self._check_devices()
        self._add_devices()
        self._index_circuit()
        if tolerance is not None:
            self.dss.Solution.Convergence(tolerance)
        self._v_start = self._no_load_start()
        self.dss.Solution.MaxIterations(max_iterations)
        self._connections, self._connection_nodes = self._device_connections()
        self._v_order = self._node_v_order()
        self._v_pointer = self.dss.dss_ffi.new("double**")
        self._v_data: Any = None  # the engine's node-voltage vector _v_view looks at
        self._v_view = np.zeros(0, dtype=np.complex128)
        self._bands = self._device_bands()

    # ----------------------------------------------------------------------------- set up
    @property
    def dss(self) -> OpenDSSDirect:
        """The engine's OpenDSS context (raises if the engine is closed)."""
        if self._dss is None:
            raise PowerFlowError("this OpenDSSEngine is closed; create a new one")
        return self._dss

    def _command(self, command: str) -> None:
        try:
            self.dss.Text.Command(command)
        except self.dss.DSSException as exc:
            raise FeederError(
                f"feeder {self.feeder.name!r}: OpenDSS rejected {command!r}: {exc}"
            ) from exc

    def _compile(self) -> None:
        for command in self.feeder.commands:
            self._command(command)
        if self.dss.Circuit.NumBuses() == 0:
            raise FeederError(
                f"feeder {self.feeder.name!r} built no circuit; its commands must create one "
                "with 'New Circuit'"
            )

    def _apply_load_model(self) -> None:
        """Make every residential load constant PQ, unless the feeder keeps its own model."""
        if self.feeder.load_model != "constant_pq":
            return
        band = f"Model=1 Vminpu={VMIN_PU} Vmaxpu={VMAX_PU} Vlowpu={VMIN_PU}"
        for name in self.dss.Loads.AllNames():
            if name.lower() != "none":  # OpenDSS names the empty collection "NONE"
                self._command(f"Edit Load.{name} {band}")

    def _device_connections(self) -> tuple[Connections | None, np.ndarray]:
        """Phase connections of every load, CP and PV system, and their all-node indices.

        ``(None, [])`` when the feeder holds something the power balance of :meth:`state`
        cannot account for (then the losses come from OpenDSS's ``Circuit.Losses``).
        """
        dss = self.dss
        if unmodelled_elements(dss):
            return None, np.zeros(0, dtype=np.intp)
        cps = [f"{CP_PREFIX}{k}" for k in range(self.devices.n_cp)]
        pvs = [f"{PV_PREFIX}{k}" for k in range(self.devices.n_pv)]
        try:
            connections = device_connections(dss, self.feeder.name, [*self.load_names, *cps], pvs)
        except FeederError:
            return None, np.zeros(0, dtype=np.intp)
        position = {n.lower(): k for k, n in enumerate(dss.Circuit.AllNodeNames())}
        # Squared voltages (V^2) inside which each connection draws its setpoint.
        conn = connections
        self._band_low2 = (np.maximum(conn.v_low, conn.v_min) * conn.v_base) ** 2
        self._band_high2 = (conn.v_max * conn.v_base) ** 2
        return connections, np.array([position[n] for n in connections.nodes], dtype=np.intp)

    def _check_devices(self) -> None:
        buses = {b.lower() for b in self.dss.Circuit.AllBusNames()}
        nodes = {n.lower() for n in self.dss.Circuit.AllNodeNames()}
        for kind, specs in (("CP", self.devices.cps), ("PV", self.devices.pvs)):
            for spec in specs:
                if spec.bus.lower() not in buses:
                    raise UnknownBusError(
                        f"{kind} {spec.name!r}: bus {spec.bus!r} is not in feeder "
                        f"{self.feeder.name!r} ({len(buses)} buses); list the valid buses with "
                        f"`powertrip buses` or OpenDSSEngine(feeder).bus_names"
                    )
                if spec.node.lower() not in nodes:
                    raise UnknownBusError(
                        f"{kind} {spec.name!r}: bus {spec.bus!r} has no phase {spec.phase} in "
                        f"feeder {self.feeder.name!r}"
                    )
        for spec in self.devices.cps:
            missing = [p for p in (1, 2, 3) if f"{spec.bus}.{p}".lower() not in nodes]
            if missing:
                raise UnknownBusError(
                    f"CP {spec.name!r}: bus {spec.bus!r} lacks phases {missing}; phase "
                    "unbalance needs a three-phase bus"
                )

    def _add_devices(self) -> None:
        n_load_before = self.dss.Loads.Count()
        n_gen_before = self.dss.Generators.Count()
        band = f"Vminpu={VMIN_PU} Vmaxpu={VMAX_PU}"
        for k, spec in enumerate(self.devices.cps):
            kv = self._phase_kv(spec)
            self._command(
                f"New Load.{CP_PREFIX}{k} Phases=1 Bus1={spec.node} kV={kv:.6g} kW=0 kvar=0 "
                f"Model=1 {band}"
            )
        for k, spec in enumerate(self.devices.pvs):
            kv = self._phase_kv(spec)
            self._command(
                f"New Generator.{PV_PREFIX}{k} Phases=1 Bus1={spec.node} kV={kv:.6g} kW=0 "
                f"kvar=0 Model=1 {band}"
            )
        self._command("CalcVoltageBases")
        self._n_load = n_load_before
        self._load_batch = _Batch(self.dss, "Load", 0, n_load_before + self.devices.n_cp)
        self._pv_batch = _Batch(self.dss, "Generator", n_gen_before, self.devices.n_pv)
        # Scratch buffers reused every step: batch setters read straight from their memory.
        self._load_p = np.zeros(n_load_before + self.devices.n_cp)
        self._load_q = np.zeros(n_load_before + self.devices.n_cp)
        self._pv_p = np.zeros(self.devices.n_pv)
        self._pv_q = np.zeros(self.devices.n_pv)

    def _phase_kv(self, spec: DeviceSpec) -> float:
        self.dss.Circuit.SetActiveBus(spec.bus)
        kv_base = self.dss.Bus.kVBase()
        if kv_base >= 1.0:
            raise UnknownBusError(
                f"device {spec.name!r}: bus {spec.bus!r} of feeder {self.feeder.name!r} is at "
                f"{kv_base * 3**0.5:.4g} kV; CPs and PV systems sit on LV buses (below 1 kV), "
                "listed by `powertrip buses`"
            )
        if not kv_base > 0.0:
            raise FeederError(
                f"bus {spec.bus!r} of feeder {self.feeder.name!r} has no voltage base; the "
                "feeder must set VoltageBases and run CalcVoltageBases"
            )
        return float(kv_base)

    def _index_circuit(self) -> None:
        dss = self.dss
        all_nodes = [n.lower() for n in dss.Circuit.AllNodeNames()]
        position = {n: k for k, n in enumerate(all_nodes)}
        load_names = dss.Loads.AllNames()[: self._n_load]
        self.load_names: tuple[str, ...] = tuple(load_names)
        load_nodes, load_phases = [], []
        for name in load_names:
            dss.Circuit.SetActiveElement(f"Load.{name}")
            load_nodes.append(dss.CktElement.BusNames()[0].lower())
            load_phases.append(_phases(load_nodes[-1], dss.CktElement.NumPhases()))
        self.load_nodes: tuple[str, ...] = tuple(load_nodes)
        #: The phases (1, 2, 3) each load connects to, e.g. ``(2,)`` or ``(1, 2, 3)``.
        self.load_phases: tuple[tuple[int, ...], ...] = tuple(load_phases)

        # LV nodes: every node whose base is below 1 kV (the source side is excluded).
        base_v = np.empty(len(all_nodes))
        for bus in dss.Circuit.AllBusNames():
            dss.Circuit.SetActiveBus(bus)
            kv = dss.Bus.kVBase()
            for node in dss.Bus.Nodes():
                base_v[position[f"{bus.lower()}.{node}"]] = kv * 1000.0
        lv = np.flatnonzero(base_v < 1000.0)
        # A slice (a view, no gather) when the LV nodes are one run, as they usually are.
        contiguous = lv.size > 0 and lv[-1] - lv[0] + 1 == lv.size
        self._lv_index: np.ndarray | slice = slice(lv[0], lv[-1] + 1) if contiguous else lv
        self.node_names: tuple[str, ...] = tuple(all_nodes[k] for k in lv)
        self.base_v: np.ndarray = base_v[lv]
        self._inv_base_v = 1.0 / self.base_v
        lv_buses = {n.rsplit(".", 1)[0] for n in self.node_names}
        self.bus_names: tuple[str, ...] = tuple(
            b for b in dss.Circuit.AllBusNames() if b.lower() in lv_buses
        )
        self._cp_bus_index = np.array(
            [[position[f"{d.bus.lower()}.{p}"] for p in (1, 2, 3)] for d in self.devices.cps],
            dtype=np.intp,
        ).reshape(-1, 3)
        self._cp_upstream = [self._upstream_line(d.bus) for d in self.devices.cps]
        self._cp_line_yprim, self._cp_line_nodes, self._cp_line_rows = self._upstream_models(
            position
        )
        n_cp = self.devices.n_cp
        # Rows of each line's Yprim at its CP-bus terminal, laid block-diagonally and scaled
        # by kW per VA, signed so that the result is the power entering the CP bus (the
        # scale is real, so it passes through the conjugate).
        self._cp_line_map = np.zeros((3 * n_cp, 6 * n_cp), dtype=complex)
        for k, (_, terminal) in enumerate(self._cp_upstream):
            rows = self._cp_line_yprim[k][self._cp_line_rows[k]]
            scale = -1e-3 if terminal == 2 else 1e-3
            self._cp_line_map[3 * k : 3 * k + 3, 6 * k : 6 * k + 6] = scale * rows
        self._cp_line_nodes_flat = self._cp_line_nodes.ravel()
        self._cp_bus_nodes_flat = np.take_along_axis(
            self._cp_line_nodes, self._cp_line_rows, axis=1
        ).ravel()
        self._device_nodes, self._dead_v = self._device_node_index(position, base_v)
        self._transformer_kva = self._first_transformer_kva()
        self._transformer_at_source = self._only_transformer_at_source()
        self.secondary_index = self._secondary_nodes(position)

    def _device_node_index(
        self, position: dict[str, int], base_v: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """All-node indices of every load, CP and PV node, and the voltage below which each
        is dead (:data:`DEAD_PU` of its base), volts."""
        index: list[int] = []
        devices = [*self.load_nodes, *(d.node.lower() for d in self.devices.cps)]
        for spec in (*devices, *(d.node.lower() for d in self.devices.pvs)):
            bus, *nodes = spec.split(".")
            index += [position[f"{bus}.{n}"] for n in nodes or "123" if f"{bus}.{n}" in position]
        nodes_at = np.array(sorted(set(index)), dtype=np.intp)
        return nodes_at, DEAD_PU * base_v[nodes_at]

    def _dead_device_nodes(self, volts: np.ndarray) -> str | None:
        """Why the solution in ``volts`` is not one (device nodes at ~0 V), or None."""
        dead = np.abs(volts[self._device_nodes]) < self._dead_v
        if not dead.any():
            return None
        names = self.dss.Circuit.AllNodeNames()
        where = [names[k] for k in self._device_nodes[dead][:5]]
        return (
            f"{int(dead.sum())} device node(s) at ~0 V ({', '.join(where)}...): the solution "
            "leaves them without supply"
        )

    def _device_bands(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Where every device node's voltage needs neither :meth:`_dead_device_nodes` nor the
        load-model balance of :meth:`_demand_kw`.

        Returns ``(index, low, high)``: indices into :attr:`node_names` of every load, CP and
        PV node, and per node the open band ``(low, high]`` in pu of the node's base inside
        which no device there is dead (:data:`DEAD_PU`) and every device connected there draws
        its setpoint. ``None`` when a device sits on a node outside the LV nodes (then
        :meth:`state` runs both checks on every solve).
        """
        lv = np.full(self.dss.Circuit.NumNodes(), -1, dtype=np.intp)
        lv[self._lv_index] = np.arange(len(self.node_names))
        nodes = np.union1d(self._device_nodes, self._connection_nodes)
        if (lv[nodes] < 0).any():
            return None
        base_v = self.base_v[lv[nodes]]
        low = np.where(np.isin(nodes, self._device_nodes), DEAD_PU, 0.0)
        high = np.full(nodes.size, np.inf)
        if self._connections is not None:
            at = np.searchsorted(nodes, self._connection_nodes)
            # Each connection's band, from volts to pu of its node's base.
            np.maximum.at(low, at, np.sqrt(self._band_low2) / base_v[at])
            np.minimum.at(high, at, np.sqrt(self._band_high2) / base_v[at])
        return lv[nodes], low, high

    def _inside_bands(self, v_pu: np.ndarray) -> bool:
        """Whether every device node of the LV voltages ``v_pu`` (pu) is inside its band of
        :meth:`_device_bands` (no device dead, every device at its setpoint)."""
        if self._bands is None:
            return False
        index, low, high = self._bands
        u = v_pu[index]
        return np.count_nonzero((u > low) & (u <= high)) == index.size  # = .all(), cheaper

    def _upstream_line(self, bus: str) -> tuple[str, int]:
        """The element feeding ``bus`` and its terminal at the bus (1-based)."""
        dss = self.dss
        for name in dss.Lines.AllNames():
            dss.Lines.Name(name)
            for terminal, end in ((2, dss.Lines.Bus2()), (1, dss.Lines.Bus1())):
                if end.split(".")[0].lower() == bus.lower():
                    return f"Line.{name}", terminal
        raise FeederError(f"bus {bus!r} of feeder {self.feeder.name!r} has no line reaching it")

    def _secondary_nodes(self, position: dict[str, int]) -> np.ndarray:
        """Indices into :attr:`node_names` of the first transformer's LV terminal phases."""
        dss = self.dss
        if dss.Transformers.Count() == 0:
            return np.zeros(0, dtype=np.intp)
        dss.Transformers.First()
        dss.Circuit.SetActiveElement(f"Transformer.{dss.Transformers.Name()}")
        bus = dss.CktElement.BusNames()[-1].split(".")[0].lower()
        lv = {n: k for k, n in enumerate(self.node_names)}
        return np.array([lv[f"{bus}.{p}"] for p in (1, 2, 3) if f"{bus}.{p}" in lv], dtype=np.intp)

    def _upstream_models(
        self, position: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Primitive admittance of each CP's feeding line and where its terminals sit.

        Returns (yprim (n_cp, 2m, 2m) complex siemens, node indices (n_cp, 2m) into the
        all-node voltage array, rows (n_cp, 3) of the conductors at the CP bus). With them
        the power entering a CP bus per phase is ``V * conj(Yprim @ V)`` of those rows,
        computed from voltages already read: no per-element engine call in the hot path.
        """
        dss = self.dss
        yprims, nodes, rows = [], [], []
        for element, terminal in self._cp_upstream:
            dss.Circuit.SetActiveElement(element)
            n_cond = dss.CktElement.NumConductors()
            n_term = dss.CktElement.NumTerminals()
            y = np.asarray(dss.CktElement.YPrim()).view(np.complex128)
            yprims.append(y.reshape(n_cond * n_term, n_cond * n_term))
            buses = [b.split(".")[0].lower() for b in dss.CktElement.BusNames()]
            order = dss.CktElement.NodeOrder()
            idx = [position[f"{buses[k // n_cond]}.{order[k]}"] for k in range(len(order))]
            if n_cond != 3 or len(idx) != 2 * n_cond:
                raise FeederError(
                    f"{element} feeding a CP bus has {n_cond} conductors; a three-phase "
                    "line without neutral is needed for the per-phase power at the CP bus"
                )
            nodes.append(idx)
            rows.append([(terminal - 1) * n_cond + c for c in range(n_cond)])
        n = len(yprims)
        return (
            np.array(yprims).reshape(n, 6, 6),
            np.array(nodes, dtype=np.intp).reshape(n, 6),
            np.array(rows, dtype=np.intp).reshape(n, 3),
        )

    def _only_transformer_at_source(self) -> bool:
        """Whether the first transformer is the one element connected to the source bus."""
        dss = self.dss
        if dss.Transformers.Count() == 0 or dss.Vsources.Count() != 1:
            return False
        dss.Vsources.First()
        dss.Circuit.SetActiveElement(f"Vsource.{dss.Vsources.Name()}")
        source_bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
        dss.Transformers.First()
        transformer = f"transformer.{dss.Transformers.Name()}".lower()
        connected = []
        for name in dss.Circuit.AllElementNames():
            dss.Circuit.SetActiveElement(name)
            buses = [b.split(".")[0].lower() for b in dss.CktElement.BusNames()]
            if source_bus in buses and not name.lower().startswith("vsource."):
                connected.append(name.lower())
        return connected == [transformer]

    def _first_transformer_kva(self) -> float:
        dss = self.dss
        if dss.Transformers.Count() == 0:
            return math.nan
        dss.Transformers.First()
        return float(dss.Transformers.kVA())

    def _node_v_buffer(self) -> np.ndarray:
        """The engine's own node-voltage vector (complex, node 0 = ground), as a numpy view."""
        ffi, lib = self.dss.dss_ffi, self.dss.dss_lib
        pointer = ffi.new("double**")
        lib.YMatrix_getVpointer(pointer)
        n = self.dss.Circuit.NumNodes() + 1
        return np.frombuffer(ffi.buffer(pointer[0], 16 * n), dtype=np.complex128)

    def _node_v_order(self) -> np.ndarray | None:
        """Where each node of ``AllNodeNames`` sits in the engine's node-voltage vector (less
        its ground slot), or ``None`` when the two orders are the same (the usual case)."""
        y_order = [n.lower() for n in self.dss.Circuit.YNodeOrder()]
        all_nodes = [n.lower() for n in self.dss.Circuit.AllNodeNames()]
        if y_order == all_nodes:
            return None
        position = {n: k for k, n in enumerate(y_order)}
        return np.array([position[n] for n in all_nodes], dtype=np.intp)

    def _volts(self) -> np.ndarray:
        """(n_all_nodes,) complex phasors of every node after the last solve, volts.

        What :meth:`all_voltages` returns, but read in place from the engine's own vector
        (``Circuit.AllBusVolts`` gathers a copy of it): a view the next solve overwrites,
        for reading within one call.
        """
        if self._dss is None:  # the view would read a freed circuit
            raise PowerFlowError("this OpenDSSEngine is closed; create a new one")
        # The vector moves only when OpenDSS rebuilds its system, so the view is remade only
        # when the pointer OpenDSS reports has changed.
        self._dss.dss_lib.YMatrix_getVpointer(self._v_pointer)
        if self._v_pointer[0] != self._v_data:
            self._v_data = self._v_pointer[0]
            self._v_view = self._node_v_buffer()[1:]
            self._v_view.flags.writeable = False  # callers read it; only solves write it
        return self._v_view if self._v_order is None else self._v_view[self._v_order]

    def _no_load_start(self) -> np.ndarray:
        zeros = np.zeros
        self.set_powers(
            zeros(self._n_load),
            zeros(self._n_load),
            zeros(self.devices.n_cp),
            zeros(self.devices.n_pv),
        )
        converged, error = self.run_pf()
        if not converged:
            raise FeederError(f"feeder {self.feeder.name!r} does not solve at no load: {error}")
        return self._node_v_buffer().copy()

    def reset_solution(self) -> None:
        """Restart the solver from the no-load voltages, forgetting every earlier solve.

        OpenDSS starts each solve from the previous solution, so with its 1e-4 tolerance the
        same inputs give results that differ in the last digits depending on history. After
        this call the next solves depend only on their inputs: two engines (or one engine
        reset twice) stepped through the same inputs give bit-identical voltages.
        """
        self._node_v_buffer()[:] = self._v_start

    # ------------------------------------------------------------------------- hot path
    @property
    def n_loads(self) -> int:
        """Number of residential (uncontrolled) loads."""
        return self._n_load

    def set_powers(
        self,
        load_p_kw: np.ndarray,
        load_q_kvar: np.ndarray,
        cp_p_kw: np.ndarray,
        pv_p_kw: np.ndarray,
    ) -> None:
        """Dispatch every load, CP and PV system for the next solve (no matrix rebuild).

        Args:
            load_p_kw: (n_loads,) residential active power, kW, positive = consumption.
            load_q_kvar: (n_loads,) residential reactive power, kvar.
            cp_p_kw: (n_cp,) charging power of each CP, kW (unity power factor).
            pv_p_kw: (n_pv,) AC output of each PV system, kW (unity power factor).
        """
        if self._dss is None:  # the batch pointers below died with the context
            raise PowerFlowError("this OpenDSSEngine is closed; create a new one")
        n = self._n_load
        self._load_p[:n] = load_p_kw
        self._load_q[:n] = load_q_kvar
        self._load_p[n:] = cp_p_kw
        self._load_batch.set("kw", self._load_p)
        self._load_batch.set("kvar", self._load_q)
        self._pv_p[:] = pv_p_kw
        self._pv_batch.set("kw", self._pv_p)
        self._pv_batch.set("kvar", self._pv_q)

    def run_pf(self) -> tuple[bool, str | None]:
        """Solve a snapshot power flow; report ``(converged, error)`` instead of raising."""
        dss = self.dss
        try:
            dss.Solution.Solve()
        except dss.DSSException as exc:
            return False, f"OpenDSS error while solving: {exc}"
        if not dss.Solution.Converged():
            return False, (
                f"power flow did not converge in {dss.Solution.Iterations()} iterations "
                f"(max {dss.Solution.MaxIterations()})"
            )
        return True, None

    def all_voltages(self) -> np.ndarray:
        """(n_all_nodes,) complex phasors of every node in volts, one engine call."""
        return self._volts().copy()

    def node_voltages(self) -> np.ndarray:
        """(n_nodes,) phase-to-neutral magnitudes of the LV nodes, pu of :attr:`base_v`."""
        return self._lv_pu(self._volts())

    def _lv_pu(self, volts: np.ndarray) -> np.ndarray:
        """LV node magnitudes in pu of their bases from all node phasors ``volts``."""
        v_pu = np.abs(volts[self._lv_index])
        v_pu *= self._inv_base_v
        return v_pu

    # -------------------------------------------------------------------- full readings
    def cp_bus_phasors(self, volts: np.ndarray | None = None) -> np.ndarray:
        """(n_cp, 3) complex phase voltages at the CP buses, volts."""
        v = self.all_voltages() if volts is None else volts
        return v[self._cp_bus_index]

    def device_powers(self) -> tuple[np.ndarray, np.ndarray]:
        """Actual (cp_kw, pv_kw) after the last solve, read back from the engine."""
        dss = self.dss
        cp = np.empty(self.devices.n_cp)
        for k in range(self.devices.n_cp):
            dss.Circuit.SetActiveElement(f"Load.{CP_PREFIX}{k}")
            cp[k] = dss.CktElement.Powers()[0]
        pv = np.empty(self.devices.n_pv)
        for k in range(self.devices.n_pv):
            dss.Circuit.SetActiveElement(f"Generator.{PV_PREFIX}{k}")
            pv[k] = -dss.CktElement.Powers()[0]
        return cp, pv

    def cp_bus_phase_powers(self, volts: np.ndarray | None = None) -> np.ndarray:
        """(n_cp, 3) active power per phase entering each CP bus through its feeding line, kW.

        Computed as OpenDSS computes element powers, ``V * conj(Yprim @ V)``, from the node
        voltages (``volts``, read from the engine when omitted).
        """
        v = self.all_voltages() if volts is None else volts
        # One block-diagonal matrix-vector product gives the currents of every CP line's
        # conductors at its CP-bus terminal.
        current = self._cp_line_map @ v[self._cp_line_nodes_flat]
        # Power flowing into the line at the CP-bus terminal is power leaving the bus (the
        # map's sign); kW (the map's scale).
        return (v[self._cp_bus_nodes_flat] * current.conj()).real.reshape(-1, 3)

    def transformer_loading_pct(self) -> float:
        """Apparent power through the first transformer over its kVA rating, percent.

        When the transformer is the only element at the source bus (every ENWL feeder and the
        embedded one), that power is the source's, which OpenDSS keeps without a per-element
        call; otherwise the transformer's terminal powers are read.
        """
        if math.isnan(self._transformer_kva):
            return math.nan
        dss = self.dss
        if self._transformer_at_source:
            p_kw, q_kvar = dss.Circuit.TotalPower()[:2]
            return self._loading_from_source(p_kw, q_kvar)
        dss.Transformers.First()
        dss.Circuit.SetActiveElement(f"Transformer.{dss.Transformers.Name()}")
        powers = np.asarray(dss.CktElement.Powers())
        n_cond = dss.CktElement.NumConductors()
        pq = powers.reshape(-1, 2)[:n_cond]
        s_kva = abs(complex(pq[:, 0].sum(), pq[:, 1].sum()))
        return 100.0 * s_kva / self._transformer_kva

    def _loading_from_source(self, p_kw: float, q_kvar: float) -> float:
        return 100.0 * math.hypot(p_kw, q_kvar) / self._transformer_kva

    def losses_kw(self) -> float:
        """Total active losses of the circuit, kW."""
        return float(self.dss.Circuit.Losses()[0]) / 1000.0

    @property
    def load_phase_shares(self) -> np.ndarray:
        """(n_loads, 3) share of each residential load's power on phases a, b, c."""
        out = np.zeros((self._n_load, 3))
        for row, phases in enumerate(self.load_phases):
            if phases:
                out[row, [p - 1 for p in phases]] = 1.0 / len(phases)
        return out

    def _demand_kw(self, volts: np.ndarray, inside_bands: bool = False) -> float:
        """Active power drawn by every load and CP less the PV output after the last solve, kW.

        Each device draws its setpoint scaled by OpenDSS's model at its node voltage
        (:func:`~powertrip_env.grid.loadmodel.power_scale`, exactly 1 inside its band), so the
        balance source - demand is OpenDSS's ``Circuit.Losses`` without its cost. A feeder the
        balance cannot account for reads ``Circuit.Losses`` instead. ``inside_bands``: the
        caller has found every device inside its band (:meth:`_inside_bands`).
        """
        conn = self._connections
        if conn is None:
            return float(-self.dss.Circuit.TotalPower()[0]) - self.losses_kw()
        if not inside_bands:
            v = volts[self._connection_nodes]
            v_abs2 = v.real**2 + v.imag**2
            inside_bands = bool(np.all((v_abs2 > self._band_low2) & (v_abs2 <= self._band_high2)))
        if inside_bands:
            # Every device inside its band draws its setpoint (the usual case, kept cheap).
            return float(np.add.reduce(self._load_p) - np.add.reduce(self._pv_p))
        setpoints = np.concatenate([self._load_p, -self._pv_p])
        scale = conn.power_scale(np.sqrt(v_abs2))
        return float(np.dot(setpoints[conn.device] * conn.share, scale))

    def state(self, converged: bool = True, error: str | None = None) -> GridState:
        """Everything a controller or a metric needs from the last solve.

        CP and PV powers are the dispatched setpoints: the devices are constant-PQ inside
        [VMIN_PU, VMAX_PU], so they draw exactly that (:meth:`device_powers` reads them back;
        a test holds the two together). Losses follow from the power balance with every
        load's voltage-dependent power (:meth:`_demand_kw`), which costs next to nothing, where
        OpenDSS's ``Circuit.Losses`` costs as much as a solve.
        """
        n_cp, n_pv = self.devices.n_cp, self.devices.n_pv
        if not converged:
            nan = np.full
            return GridState(
                converged=False,
                error=error,
                v_pu=nan(len(self.node_names), np.nan),
                v_cp_bus=nan((n_cp, 3), np.nan, dtype=complex),
                cp_kw=nan(n_cp, np.nan),
                pv_kw=nan(n_pv, np.nan),
                p_phase_cp_bus_kw=nan((n_cp, 3), np.nan),
                transformer_loading_pct=math.nan,
                losses_kw=math.nan,
                source_kw=math.nan,
            )
        volts = self._volts()
        v_pu = self._lv_pu(volts)
        # One look at the device nodes' voltages (already in v_pu) usually settles both the
        # dead-device check and the load-model balance; otherwise each runs on its own.
        inside = self._inside_bands(v_pu)
        if not inside:
            dead = self._dead_device_nodes(volts)
            if dead is not None:
                return self.state(False, dead)
        cp_kw = self._load_p[self._n_load :].copy()
        pv_kw = self._pv_p.copy()
        p_total, q_total = self.dss.Circuit.TotalPower()[:2]
        source_kw = -float(p_total)
        loading = (
            self._loading_from_source(p_total, q_total)
            if self._transformer_at_source
            else self.transformer_loading_pct()
        )
        return GridState(
            converged=True,
            error=None,
            v_pu=v_pu,
            v_cp_bus=self.cp_bus_phasors(volts),
            cp_kw=cp_kw,
            pv_kw=pv_kw,
            p_phase_cp_bus_kw=self.cp_bus_phase_powers(volts),
            transformer_loading_pct=loading,
            losses_kw=source_kw - self._demand_kw(volts, inside),
            source_kw=source_kw,
        )

    def solve(
        self,
        load_p_kw: np.ndarray,
        load_q_kvar: np.ndarray,
        cp_p_kw: np.ndarray,
        pv_p_kw: np.ndarray,
    ) -> GridState:
        """Dispatch, solve and read the full state in one call (see :meth:`set_powers`)."""
        self.set_powers(load_p_kw, load_q_kvar, cp_p_kw, pv_p_kw)
        converged, error = self.run_pf()
        return self.state(converged, error)

    def read_cp_buses(
        self, converged: bool = True, error: str | None = None, phase_powers: bool = False
    ) -> CPBusReading:
        """The CP-bus phasors (and, if asked, phase powers) of the last solve, nothing else."""
        n_cp = self.devices.n_cp
        if not converged:
            nan = np.full((n_cp, 3), np.nan)
            return CPBusReading(False, error, nan.astype(complex), nan if phase_powers else None)
        volts = self._volts()
        dead = self._dead_device_nodes(volts)
        if dead is not None:
            return self.read_cp_buses(False, dead, phase_powers)
        p_phase = self.cp_bus_phase_powers(volts) if phase_powers else None
        return CPBusReading(True, None, volts[self._cp_bus_index], p_phase)

    # ------------------------------------------------------------------------- tear down
    def close(self) -> None:
        """Free the engine's circuit; the engine cannot be used afterwards."""
        dss = getattr(self, "_dss", None)
        if dss is None:  # closed, or __init__ failed before the context
            return
        for batch in (getattr(self, "_load_batch", None), getattr(self, "_pv_batch", None)):
            if batch is not None:  # absent when __init__ failed before placing the devices
                batch.dispose()
        try:
            dss.Text.Command("Clear")
        finally:
            self._dss = None

    def __enter__(self) -> OpenDSSEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        # Never raise from a finaliser; only builtins here, since at interpreter exit module
        # globals (contextlib, numpy) may already be gone.
        try:  # noqa: SIM105 - contextlib.suppress may be gone at interpreter exit
            self.close()
        except Exception:
            pass


def _phases(bus_spec: str, n_phases: int) -> tuple[int, ...]:
    """Phases (1-3) a device on ``bus_spec`` (``"b"``, ``"b.2"``, ``"b.1.2.3.0"``) connects to."""
    _, *nodes = bus_spec.split(".")
    given = [int(n) for n in nodes if n.isdigit()][:n_phases]
    phases = given if given else list(range(1, n_phases + 1))
    return tuple(p for p in phases if p in (1, 2, 3))
