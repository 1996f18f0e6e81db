"""The exact reduced network model: batched power flows in numpy (DESIGN.md §8).

Within one timestep only the controllable injections (CPs and PV systems) change, so the
feeder reduces exactly to the nodes that carry an injection. With ``Y`` the network admittance
matrix *without* any load or generator (the Vsource's Norton equivalent, lines, transformers
and fixed shunts are in it) and ``V0 = Y^-1 I_source`` the no-load voltages, every power flow
solution satisfies

    V = V0 + Z[:, inj] · I_inj(V),    I_inj = conj(S_inj / V_inj),    Z = Y^-1,

where ``S_inj`` is the complex power injected into each injection node (positive =
generation into the node, negative = consumption) and ``V_inj`` its node-to-ground voltage.
:class:`ReducedNetwork` takes ``V0`` and the needed columns of ``Z`` from an
:class:`~powertrip_env.grid.engine.OpenDSSEngine` once, then solves the fixed point on the
injection nodes (Z-bus Gauss iteration) for a whole batch of candidates at once, and reads
the voltages of the observed nodes (the three phases of every CP bus) from the converged
injection currents. Voltages at every LV node are available on demand; they cost
``n_nodes x n_inj`` per candidate, so they are never computed unless asked for.

When the model holds (the engine stays the reference; ``tests/test_reduced.py`` holds the two
against each other to 1e-6 pu; at the default ``tol`` they agree to about 1e-12 pu):

* every load and generator is constant-PQ (OpenDSS ``Model=1``) and stays inside its
  ``[Vminpu, Vmaxpu]`` band (outside it OpenDSS turns it into a constant impedance; candidates
  that leave a band are flagged, see :attr:`ReducedSolution.out_of_band`);
* no regulator, capacitor or switch control acts, and the topology is fixed (the feeder may
  hold only lines, transformers, fixed capacitors and reactors, Vsources, loads, meters and
  PowerTrip's own CPs and PV systems; anything else is refused when the model is built);
* loads are wye-connected to ground (single-phase ``bus.k`` or multi-phase with grounded
  neutral); snapshot solves with ``LoadMult = GenMult = 1``.

Sign convention of the inputs: the engine's (kW, kvar, positive = consumption for loads and
CPs, positive = generation for PV systems; CPs and PV systems at unity power factor).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from powertrip_env.errors import FeederError, UnknownBusError
from powertrip_env.grid.engine import CP_PREFIX, PV_PREFIX, OpenDSSEngine

#: OpenDSS classes whose elements the model represents exactly (PD elements sit in ``Y``;
#: meters do not act on the solution). An enabled element of any other class is refused.
SUPPORTED_CLASSES = frozenset(
    {"vsource", "line", "transformer", "capacitor", "reactor", "load", "generator", "energymeter"}
    | {"monitor"}
)


@dataclass(frozen=True)
class ReducedSolution:
    """A batch of B power flows solved by :meth:`ReducedNetwork.solve`.

    Attributes:
        volts: (B, n_obs) complex node-to-ground phasors at :attr:`ReducedNetwork.obs_nodes`,
            volts; NaN in rows that did not converge.
        converged: (B,) True where the iteration converged within ``tol`` and no injection
            node left its devices' constant-PQ band (only then does OpenDSS agree).
        out_of_band: (B,) True where the iteration converged but an injection node left its
            devices' ``[Vminpu, Vmaxpu]`` band (OpenDSS would model them as impedances).
        currents: (B, n_inj) complex currents injected into
            :attr:`ReducedNetwork.inj_nodes`, amperes; NaN in rows that did not converge.
        iterations: fixed-point iterations run for the batch.
    """

    volts: np.ndarray
    converged: np.ndarray
    out_of_band: np.ndarray
    currents: np.ndarray
    iterations: int

    @property
    def batch_size(self) -> int:
        return int(self.converged.shape[0])


@dataclass(frozen=True)
class _Device:
    """Where one enabled load, CP or PV system connects, and its constant-PQ band."""

    nodes: tuple[str, ...]  # phase nodes, lower-case "bus.k"; power splits evenly over them
    v_min: float  # constant-PQ band, volts node-to-ground
    v_max: float


def _check_supported(engine: OpenDSSEngine) -> None:
    dss = engine.dss
    for full_name in dss.Circuit.AllElementNames():
        cls, _, name = full_name.partition(".")
        cls = cls.lower()
        own_pv = cls == "generator" and name.lower().startswith(PV_PREFIX)
        if cls in SUPPORTED_CLASSES and (cls != "generator" or own_pv):
            continue
        dss.Circuit.SetActiveElement(full_name)
        if dss.CktElement.Enabled():
            raise FeederError(
                f"feeder {engine.feeder.name!r}: element {full_name!r} is not supported by the "
                f"reduced network model, which represents only {sorted(SUPPORTED_CLASSES)} "
                f"(generators only as PowerTrip PV systems); use OpenDSSEngine for this feeder"
            )
    for what, value in (("LoadMult", dss.Solution.LoadMult()), ("GenMult", dss.Solution.GenMult())):
        if value != 1.0:
            raise FeederError(
                f"feeder {engine.feeder.name!r}: Solution.{what}={value}; the reduced network "
                "model needs 1.0"
            )


def _wye_device(
    engine: OpenDSSEngine,
    full_name: str,
    kv: float,
    vmin_pu: float,
    vmax_pu: float,
    is_delta: bool,
    model: int,
) -> _Device:
    dss = engine.dss
    where = f"feeder {engine.feeder.name!r}: {full_name}"
    if model != 1:
        raise FeederError(f"{where} has Model={model}; the reduced network model needs Model=1")
    phases = dss.CktElement.NumPhases()
    order = list(dss.CktElement.NodeOrder())
    grounded = len(order) == phases or order[phases] == 0
    if is_delta or not grounded or 0 in order[:phases]:
        raise FeederError(
            f"{where} is connected {order} (delta={is_delta}); the reduced network model needs "
            "wye devices with a grounded neutral, e.g. Bus1=<bus>.1"
        )
    bus = dss.CktElement.BusNames()[0].split(".")[0].lower()
    v_base = kv * 1000.0 if phases == 1 else kv * 1000.0 / math.sqrt(3.0)
    return _Device(tuple(f"{bus}.{k}" for k in order[:phases]), vmin_pu * v_base, vmax_pu * v_base)


def _load_device(engine: OpenDSSEngine, name: str) -> _Device | None:
    dss = engine.dss
    dss.Circuit.SetActiveElement(f"Load.{name}")
    if not dss.CktElement.Enabled():
        return None
    dss.Loads.Name(name)
    return _wye_device(
        engine,
        f"Load.{name}",
        dss.Loads.kV(),
        dss.Loads.Vminpu(),
        dss.Loads.Vmaxpu(),
        bool(dss.Loads.IsDelta()),
        int(dss.Loads.Model()),
    )


def _generator_device(engine: OpenDSSEngine, name: str) -> _Device:
    dss = engine.dss
    dss.Circuit.SetActiveElement(f"Generator.{name}")
    dss.Generators.Name(name)
    return _wye_device(
        engine,
        f"Generator.{name}",
        dss.Generators.kV(),
        dss.Generators.Vminpu(),
        dss.Generators.Vmaxpu(),
        bool(dss.Generators.IsDelta()),
        int(dss.Generators.Model()),
    )


def _network_without_devices(engine: OpenDSSEngine) -> tuple[list[str], sp.csc_matrix, np.ndarray]:
    """Node names (Y order), ``Y`` without loads and generators, and the no-load voltages.

    Every enabled load and generator is disabled for one no-load solve, then enabled again
    and the engine re-solved at its current setpoints, so the engine carries on as before.
    """
    dss = engine.dss
    disabled = []
    for cls in ("Load", "Generator"):
        dss.Circuit.SetActiveClass(cls)
        for name in dss.ActiveClass.AllNames():
            dss.Circuit.SetActiveElement(f"{cls}.{name}")
            if dss.CktElement.Enabled():
                dss.CktElement.Enabled(False)
                disabled.append(f"{cls}.{name}")
    try:
        dss.Solution.Solve()
        if not dss.Solution.Converged():
            raise FeederError(f"feeder {engine.feeder.name!r} does not solve without its loads")
        names = [n.lower() for n in dss.Circuit.YNodeOrder()]
        data, indices, indptr = dss.YMatrix.getYsparse()
        y = sp.csc_matrix((data, indices, indptr), shape=(len(names), len(names)))
        position = {n: k for k, n in enumerate(n.lower() for n in dss.Circuit.AllNodeNames())}
        v0 = engine.all_voltages()[[position[n] for n in names]]
    finally:
        for full_name in disabled:
            dss.Circuit.SetActiveElement(full_name)
            dss.CktElement.Enabled(True)
        engine.run_pf()  # rebuild Y with the devices now rather than in the next timed solve
    return names, y, v0


def _positions(nodes: Iterable[str], index: dict[str, int], feeder: str) -> list[int]:
    """Y positions of ``nodes`` (lower-case ``bus.phase``)."""
    missing = sorted(set(nodes) - set(index))
    if missing:
        raise UnknownBusError(
            f"node(s) {missing[:5]} are not in the network of feeder {feeder!r} without its "
            "loads; observed nodes are 'bus.phase', e.g. one of ReducedNetwork.node_names"
        )
    return [index[n] for n in nodes]


def _injection_map(
    devices: Sequence[_Device | None], slot: dict[str, int], va_per_kw: float
) -> np.ndarray:
    """(n_devices, n_inj) map from device kW to VA per injection node.

    A multi-phase device spreads its power evenly over its phases; a disabled one maps to 0.
    """
    out = np.zeros((len(devices), len(slot)))
    for row, device in enumerate(devices):
        if device is not None:
            for node in device.nodes:
                out[row, slot[node]] += va_per_kw / len(device.nodes)
    return out


def _bands(
    devices: Sequence[_Device | None], slot: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(n_inj,) lowest and highest constant-PQ voltage at each injection node, volts.

    The tightest band of the devices at the node: outside it one of them turns impedance.
    """
    v_min, v_max = np.zeros(len(slot)), np.full(len(slot), np.inf)
    for device in devices:
        if device is not None:
            for node in device.nodes:
                j = slot[node]
                v_min[j] = max(v_min[j], device.v_min)
                v_max[j] = min(v_max[j], device.v_max)
    return v_min, v_max


def _z_columns(y: sp.csc_matrix, columns: list[int], feeder: str) -> np.ndarray:
    """(n, len(columns)) the given columns of ``Z = Y^-1``: one sparse LU, one solve each."""
    try:
        lu = splu(y.tocsc())
    except RuntimeError as exc:
        raise FeederError(
            f"feeder {feeder!r}: the network admittance matrix without loads is singular "
            f"({exc}); every node must connect to the source"
        ) from exc
    unit = np.zeros((y.shape[0], len(columns)), dtype=np.complex128)
    unit[columns, np.arange(len(columns))] = 1.0
    return np.asarray(lu.solve(unit))


class ReducedNetwork:
    """The feeder of an engine reduced exactly to its injection and observed nodes.

    Built once per feeder and device placement; afterwards it holds only numpy arrays (it
    pickles, and it never touches OpenDSS again). See the module docstring for when the model
    holds.

    Args:
        engine: the engine whose feeder and devices to reduce. It is solved once without its
            loads and generators and then restored (re-solved at its current setpoints).
        observed_nodes: extra nodes (``"bus.phase"``) whose voltages every solve returns,
            after the CP-bus nodes.

    Attributes:
        n_loads, n_cp, n_pv: sizes of the inputs of :meth:`solve`.
        inj_nodes: (n_inj,) nodes carrying at least one load, CP or PV system.
        obs_nodes: (n_obs,) nodes of :attr:`ReducedSolution.volts`: ``bus.1, bus.2, bus.3``
            for every CP bus in CP order, then ``observed_nodes``.
        node_names: (n_nodes,) the engine's LV nodes (same order as
            :meth:`OpenDSSEngine.node_voltages`), for :meth:`node_phasors`.
        base_v: (n_nodes,) their base phase-to-neutral voltages, volts.

    Raises:
        FeederError: the feeder holds an element the model cannot represent exactly.
        UnknownBusError: an observed node is not in the feeder.
    """

    def __init__(self, engine: OpenDSSEngine, observed_nodes: Sequence[str] = ()) -> None:
        _check_supported(engine)
        loads = [_load_device(engine, name) for name in engine.load_names]
        cps = [_load_device(engine, f"{CP_PREFIX}{k}") for k in range(engine.devices.n_cp)]
        pvs = [_generator_device(engine, f"{PV_PREFIX}{k}") for k in range(engine.devices.n_pv)]
        names, y, v0 = _network_without_devices(engine)
        index = {n: k for k, n in enumerate(names)}
        feeder = engine.feeder.name

        self.n_loads = engine.n_loads
        self.n_cp = engine.devices.n_cp
        self.n_pv = engine.devices.n_pv
        device_nodes = {n for d in (*loads, *cps, *pvs) if d is not None for n in d.nodes}
        inj = sorted(_positions(device_nodes, index, feeder))
        self.inj_nodes: tuple[str, ...] = tuple(names[k] for k in inj)
        cp_nodes = [f"{d.bus.lower()}.{p}" for d in engine.devices.cps for p in (1, 2, 3)]
        self.obs_nodes: tuple[str, ...] = (*cp_nodes, *(n.lower() for n in observed_nodes))
        self.node_names: tuple[str, ...] = engine.node_names
        self.base_v: np.ndarray = engine.base_v.copy()
        obs = _positions(self.obs_nodes, index, feeder)
        lv = _positions(self.node_names, index, feeder)

        # kW -> VA injected per injection node (generation positive), and the band of each.
        slot = {names[k]: j for j, k in enumerate(inj)}
        self._load_va = _injection_map(loads, slot, -1000.0)  # (n_loads, n_inj)
        self._cp_va = _injection_map(cps, slot, -1000.0)  # (n_cp, n_inj)
        self._pv_va = _injection_map(pvs, slot, 1000.0)  # (n_pv, n_inj)
        v_min, v_max = _bands([*loads, *cps, *pvs], slot)
        self._v_min2, self._v_max2 = v_min**2, v_max**2

        z = _z_columns(y, inj, feeder)  # (n_all, n_inj)
        # Stored transposed and contiguous: the hot loop computes I (B, n_inj) @ Z^T.
        self._zt_inj = np.ascontiguousarray(z[inj].T)
        self._zt_obs = np.ascontiguousarray(z[obs].T)
        self._zt_lv = np.ascontiguousarray(z[lv].T)
        self._v0_inj, self._v0_obs, self._v0_lv = v0[inj], v0[obs], v0[lv]
        self._min_abs_v0_inj = float(np.abs(self._v0_inj).min(initial=np.inf))

    @property
    def n_inj(self) -> int:
        return len(self.inj_nodes)

    # ------------------------------------------------------------------------------ solve
    def solve(
        self,
        load_p_kw: np.ndarray,
        load_q_kvar: np.ndarray,
        cp_p_kw: np.ndarray,
        pv_p_kw: np.ndarray,
        *,
        tol: float = 1e-10,
        max_iter: int = 50,
    ) -> ReducedSolution:
        """Solve B power flows at once.

        Every argument is (n,) -- the same for every candidate -- or (B, n), one row per
        candidate; typically the residential loads are (n_loads,) (fixed within a timestep)
        and the decision variables (B, n_cp) and (B, n_pv).

        Args:
            load_p_kw: (n_loads,) or (B, n_loads) residential active power, kW,
                positive = consumption.
            load_q_kvar: (n_loads,) or (B, n_loads) residential reactive power, kvar.
            cp_p_kw: (n_cp,) or (B, n_cp) charging power, kW, positive = consumption.
            pv_p_kw: (n_pv,) or (B, n_pv) PV output, kW, positive = generation.
            tol: convergence tolerance, about pu: the largest change of the real or
                imaginary part of any injection-node voltage in the last iteration, relative
                to the lowest no-load voltage. The error left is smaller still: each
                iteration cuts it about tenfold on the IEEE feeder.
            max_iter: iteration limit.

        Returns:
            The batch's solution; rows with non-finite inputs do not converge.

        Raises:
            ValueError: an argument has the wrong shape, or the batch sizes disagree.
        """
        if not tol > 0.0 or max_iter < 1:
            raise ValueError(f"tol={tol!r} must be > 0 and max_iter={max_iter!r} at least 1")
        b, (p, q, cp, pv) = _batch_args(
            (
                ("load_p_kw", load_p_kw, self.n_loads),
                ("load_q_kvar", load_q_kvar, self.n_loads),
                ("cp_p_kw", cp_p_kw, self.n_cp),
                ("pv_p_kw", pv_p_kw, self.n_pv),
            )
        )
        s_conj = np.empty((b, self.n_inj), dtype=np.complex128)  # conj(S_inj), VA
        s_conj.real = p @ self._load_va + cp @ self._cp_va + pv @ self._pv_va
        s_conj.imag = -(q @ self._load_va)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v, converged, iterations = self._fixed_point(s_conj, tol, max_iter)
            current = np.divide(s_conj, np.conjugate(v))
            v_abs2 = v.real**2 + v.imag**2
            in_band = np.all((v_abs2 >= self._v_min2) & (v_abs2 <= self._v_max2), axis=1)
            volts = current @ self._zt_obs
            volts += self._v0_obs
        out_of_band = converged & ~in_band
        converged = converged & in_band
        volts[~converged] = np.nan
        current[~converged] = np.nan
        return ReducedSolution(volts, converged, out_of_band, current, iterations)

    def _fixed_point(
        self, s_conj: np.ndarray, tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Iterate V <- V0 + conj(S / V) @ Z^T on the injection nodes from the no-load state."""
        v = np.empty_like(s_conj)
        v[:] = self._v0_inj
        v_next = np.empty_like(v)
        current = np.empty_like(v)
        step = np.empty((v.shape[0], 2 * v.shape[1]))
        # Checked on the real and imaginary parts of the update against one scalar limit: a
        # max over a float view is cheaper than complex magnitudes (DESIGN.md §8 hot loop).
        limit = tol * self._min_abs_v0_inj
        converged = np.zeros(v.shape[0], dtype=bool)
        iterations = 0
        for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
            np.conjugate(v, out=current)
            np.divide(s_conj, current, out=current)  # I = conj(S) / conj(V)
            np.matmul(current, self._zt_inj, out=v_next)
            v_next += self._v0_inj
            np.subtract(v_next, v, out=v)  # v now holds the update
            np.abs(v.view(np.float64), out=step)
            v, v_next = v_next, v
            converged = step.max(axis=1) <= limit
            if converged.all():
                break
        return v, converged, iterations

    # --------------------------------------------------------------------------- readings
    def cp_bus_phasors(self, solution: ReducedSolution) -> np.ndarray:
        """(B, n_cp, 3) complex phase voltages at the CP buses, volts.

        Same layout as :meth:`OpenDSSEngine.cp_bus_phasors`, with a leading batch axis.
        """
        return solution.volts[:, : 3 * self.n_cp].reshape(solution.batch_size, self.n_cp, 3)

    def node_phasors(self, solution: ReducedSolution) -> np.ndarray:
        """(B, n_nodes) complex voltages at every LV node (:attr:`node_names`), volts.

        Costs ``n_nodes x n_inj`` complex multiply-adds per candidate; NaN rows where the
        solve did not converge.
        """
        volts = solution.currents @ self._zt_lv
        volts += self._v0_lv
        return volts

    def node_voltages_pu(self, solution: ReducedSolution) -> np.ndarray:
        """(B, n_nodes) phase-to-neutral magnitudes at every LV node, pu of :attr:`base_v`."""
        return np.abs(self.node_phasors(solution)) / self.base_v

    def voltage_range_pu(self, solution: ReducedSolution) -> tuple[np.ndarray, np.ndarray]:
        """(B,) lowest and (B,) highest LV node voltage of each candidate, pu (NaN if failed)."""
        v_pu = self.node_voltages_pu(solution)
        return v_pu.min(axis=1), v_pu.max(axis=1)


def _batch_args(args: Sequence[tuple[str, np.ndarray, int]]) -> tuple[int, list[np.ndarray]]:
    """The batch size B, and each argument as a 2-D float array of 1 or B rows."""
    out = []
    for name, value, n in args:
        a = np.asarray(value, dtype=np.float64)
        if a.ndim == 1:
            a = a[np.newaxis]
        if a.ndim != 2 or a.shape[1] != n:
            raise ValueError(
                f"{name} has shape {np.shape(value)}; expected ({n},) for every candidate or "
                f"(B, {n}) with one row per candidate"
            )
        out.append(a)
    sizes = {a.shape[0] for a in out} - {1}
    if len(sizes) > 1:
        rows = ", ".join(f"{name}: {a.shape[0]}" for (name, _, _), a in zip(args, out, strict=True))
        raise ValueError(f"batch sizes disagree ({rows}); every (B, n) argument needs the same B")
    return (sizes.pop() if sizes else 1), out
