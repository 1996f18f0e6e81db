"""The exact reduced network model: batched power flows in numpy (architecture.md §8).

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

* every load and generator is ``Model=1`` (constant PQ inside its ``(Vminpu, Vmaxpu]`` band).
  Outside its band OpenDSS changes its model (:mod:`powertrip_env.grid.loadmodel`), and so
  does this one: the band switch is a per-connection function of the node voltage inside the
  fixed point, so a load leaving its band is solved exactly, never refused
  (:attr:`ReducedSolution.out_of_band` only reports it). Batches are first iterated with
  every device at constant PQ (the fast path); only rows that leave a band or do not
  converge that way are iterated again with the full model;
* no regulator, capacitor or switch control acts, and the topology is fixed (the feeder may
  hold only lines, transformers, fixed capacitors and reactors, Vsources, loads, meters and
  PowerTrip's own CPs and PV systems; anything else is refused when the model is built);
* loads are wye-connected to ground (single-phase ``bus.k`` or multi-phase with grounded
  neutral); snapshot solves with ``LoadMult = GenMult = 1``.

Sign convention of the inputs: the engine's (kW, kvar, positive = consumption for loads and
CPs, positive = generation for PV systems; CPs and PV systems at unity power factor).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from powertrip_env.errors import FeederError, UnknownBusError
from powertrip_env.grid.engine import CP_PREFIX, PV_PREFIX, OpenDSSEngine
from powertrip_env.grid.loadmodel import (
    SUPPORTED_CLASSES,
    Connections,
    device_connections,
    unmodelled_elements,
)

#: A band at least this wide (pu of each device's base; constant PQ's 0.5-1.5 is) makes
#: leaving it rare, so a batch is first iterated at constant PQ, the cheaper fixed point.
WIDE_BAND_PU = (0.6, 1.4)


@dataclass(frozen=True)
class ReducedSolution:
    """A batch of B power flows solved by :meth:`ReducedNetwork.solve`.

    Attributes:
        volts: (B, n_obs) complex node-to-ground phasors at :attr:`ReducedNetwork.obs_nodes`,
            volts; NaN in rows that did not converge.
        converged: (B,) True where the iteration converged within ``tol``.
        out_of_band: (B,) True where the solution converged with some device outside its
            ``(Vminpu, Vmaxpu]`` band, i.e. no longer drawing its setpoint (solved exactly
            as OpenDSS does; reported, not an error).
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


def _check_supported(engine: OpenDSSEngine) -> None:
    dss = engine.dss
    unsupported = unmodelled_elements(dss)
    if unsupported:
        raise FeederError(
            f"feeder {engine.feeder.name!r}: element {unsupported[0]!r} is not supported by the "
            f"reduced network model, which represents only {sorted(SUPPORTED_CLASSES)} "
            f"(generators only as PowerTrip PV systems); use OpenDSSEngine for this feeder"
        )
    for what, value in (("LoadMult", dss.Solution.LoadMult()), ("GenMult", dss.Solution.GenMult())):
        if value != 1.0:
            raise FeederError(
                f"feeder {engine.feeder.name!r}: Solution.{what}={value}; the reduced network "
                "model needs 1.0"
            )


def _connections(engine: OpenDSSEngine) -> Connections:
    """Every load, CP and PV connection of the engine's feeder (devices in that order)."""
    cps = [f"{CP_PREFIX}{k}" for k in range(engine.devices.n_cp)]
    pvs = [f"{PV_PREFIX}{k}" for k in range(engine.devices.n_pv)]
    try:
        return device_connections(engine.dss, engine.feeder.name, [*engine.load_names, *cps], pvs)
    except FeederError as exc:
        raise FeederError(f"{exc} (needed by the reduced network model)") from exc


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


def _node_bands(conn: Connections, slot: np.ndarray, n_inj: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_inj,) squared lowest and highest voltage at each injection node, volts^2, inside
    which every device there draws its setpoint (the tightest of their bands)."""
    low = np.maximum(conn.v_low, conn.v_min) * conn.v_base
    high = conn.v_max * conn.v_base
    v_min, v_max = np.zeros(n_inj), np.full(n_inj, np.inf)
    np.maximum.at(v_min, slot, low)
    np.minimum.at(v_max, slot, high)
    return v_min**2, v_max**2


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
        conn = _connections(engine)
        names, y, v0 = _network_without_devices(engine)
        index = {n: k for k, n in enumerate(names)}
        feeder = engine.feeder.name

        self.n_loads = engine.n_loads
        self.n_cp = engine.devices.n_cp
        self.n_pv = engine.devices.n_pv
        inj = sorted(_positions(set(conn.nodes), index, feeder))
        self.inj_nodes: tuple[str, ...] = tuple(names[k] for k in inj)
        cp_nodes = [f"{d.bus.lower()}.{p}" for d in engine.devices.cps for p in (1, 2, 3)]
        self.obs_nodes: tuple[str, ...] = (*cp_nodes, *(n.lower() for n in observed_nodes))
        self.node_names: tuple[str, ...] = engine.node_names
        self.base_v: np.ndarray = engine.base_v.copy()
        obs = _positions(self.obs_nodes, index, feeder)
        lv = _positions(self.node_names, index, feeder)

        # kW -> VA injected per connection (generation positive), summed per injection node
        # for the fast path; each node's band, inside which every device there is constant PQ.
        slot_of = {names[k]: j for j, k in enumerate(inj)}
        slot = np.array([slot_of[n] for n in conn.nodes], dtype=np.intp)
        self._conn = conn
        self._conn_slot = slot
        self._incidence = np.zeros((len(conn), len(inj)))  # (n_conn, n_inj) 0/1
        self._incidence[np.arange(len(conn)), slot] = 1.0
        va = conn.device_map(self.n_loads + self.n_cp + self.n_pv)
        va[: self.n_loads + self.n_cp] *= -1000.0
        va[self.n_loads + self.n_cp :] *= 1000.0
        n_lc = self.n_loads + self.n_cp
        self._load_vac, self._cp_vac, self._pv_vac = (
            va[: self.n_loads],
            va[self.n_loads : n_lc],
            va[n_lc:],
        )
        self._load_va = self._load_vac @ self._incidence  # (n_loads, n_inj)
        self._cp_va = self._cp_vac @ self._incidence  # (n_cp, n_inj)
        self._pv_va = self._pv_vac @ self._incidence  # (n_pv, n_inj)
        self._v_min2, self._v_max2 = _node_bands(conn, slot, len(inj))
        # Complex, so that the hot loop's product needs no conversion.
        self._incidence_c = self._incidence.astype(np.complex128)
        # Loads that keep OpenDSS's own (narrow) band leave it in most solves: then the
        # constant-PQ pass is wasted work and every row takes the full model at once.
        self._constant_pq_first = bool(
            np.all(np.maximum(conn.v_low, conn.v_min) <= WIDE_BAND_PU[0])
            and np.all(conn.v_max >= WIDE_BAND_PU[1])
        )

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
            if self._constant_pq_first:
                v, converged, iterations = self._fixed_point(s_conj, tol, max_iter)
                current = np.divide(s_conj, np.conjugate(v))
                in_band = self._in_band(v)
            else:
                current = np.full_like(s_conj, np.nan)
                converged, in_band, iterations = np.zeros(b, bool), np.zeros(b, bool), 0
            # Rows that left a band (or did not converge at constant PQ) again, with every
            # device's OpenDSS model: the constant-PQ solution is not theirs.
            redo = np.flatnonzero(~(converged & in_band))
            if redo.size:
                s_conn = np.empty((redo.size, len(self._conn)), dtype=np.complex128)
                s_conn.real = (
                    p[redo % p.shape[0]] @ self._load_vac
                    + cp[redo % cp.shape[0]] @ self._cp_vac
                    + pv[redo % pv.shape[0]] @ self._pv_vac
                )
                s_conn.imag = -(q[redo % q.shape[0]] @ self._load_vac)
                v_r, converged_r, iterations_r = self._fixed_point_banded(s_conn, tol, max_iter)
                current[redo] = self._banded_currents(s_conn, v_r)
                converged[redo] = converged_r
                in_band[redo] = self._in_band(v_r)
                iterations = max(iterations, iterations_r)
            volts = current @ self._zt_obs
            volts += self._v0_obs
        out_of_band = converged & ~in_band
        volts[~converged] = np.nan
        current[~converged] = np.nan
        return ReducedSolution(volts, converged, out_of_band, current, iterations)

    def _in_band(self, v: np.ndarray) -> np.ndarray:
        """(B,) whether every injection node of each row is inside its constant-PQ band."""
        v_abs2 = v.real**2 + v.imag**2
        return np.all((v_abs2 >= self._v_min2) & (v_abs2 <= self._v_max2), axis=1)

    def _banded_currents(self, s_conn: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(B, n_inj) currents injected at node voltages ``v`` with every device's model.

        A device injecting ``S`` at its setpoint injects ``conj(S) * k / |V|^2 * V``, with
        ``k`` OpenDSS's power scale at ``|V|`` (1 inside its band: then this is conj(S / V)).
        """
        v_conn = v[:, self._conn_slot]
        v_abs2 = v_conn.real**2 + v_conn.imag**2
        scale = self._conn.power_scale(np.sqrt(v_abs2))
        return (s_conn * (scale / v_abs2) * v_conn) @ self._incidence_c

    def _fixed_point_banded(
        self, s_conn: np.ndarray, tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """As :meth:`_fixed_point`, with each connection's voltage-dependent power."""
        v = np.empty((s_conn.shape[0], self.n_inj), dtype=np.complex128)
        v[:] = self._v0_inj
        limit = tol * self._min_abs_v0_inj
        converged = np.zeros(v.shape[0], dtype=bool)
        iterations = 0
        for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is returned
            v_next = self._banded_currents(s_conn, v) @ self._zt_inj
            v_next += self._v0_inj
            step = np.abs((v_next - v).view(np.float64))
            v = v_next
            converged = step.max(axis=1) <= limit
            if converged.all():
                break
        return v, converged, iterations

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
        # max over a float view is cheaper than complex magnitudes (architecture.md §8 hot loop).
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
