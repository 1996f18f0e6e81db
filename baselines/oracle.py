"""The day's optimum with perfect foresight: the yardstick of every controller.

For a weight ``w`` the oracle finds the setpoints of every step of the day that minimise the
day's weighted normalised cost

    J(x) = sum_t w1 f1_t(x_t) / F1_ref + w2 f2_t(x_t) / F2_ref

subject to every EV receiving its energy by departure (with the EV energy guarantee: each
session's CP power sums to its energy over its plug-in window), CP power in [0, p_max] while
plugged in (0 otherwise) and PV in [0, available]. In the seed formulation (no guarantee)
the CP range is [0, the step's request] and the steps are independent.

Steps couple only through the EVs' energy, so the whole day is one batch: every step is a
row of the exact reduced network model (:class:`~powertrip_env.grid.reduced.ReducedNetwork`).
The method is projected gradient descent on all steps at once:

* gradient: f2's exactly; f1's by forward differences, one batched reduced solve per
  decision variable for all steps together;
* projection: PV clipped into [0, available]; each session's CP powers projected onto
  {0 <= p <= p_max, sum p dt = E} (a shift found by bisection, one per session, which is
  the session's energy price);
* step length: Armijo backtracking on J, growing again after each accepted step.

How close to optimal: the Frank-Wolfe gap ``g = max_y grad J(x) . (x - y)`` over the
feasible set (a linear programme solved exactly: cheapest steps first within each session).
Where J is convex ``J(x) - g`` bounds the optimum from below. f2 is convex; f1 is a sum of
squared PUIs, each the max of convex functions of the CP-bus voltages, and those voltages
are affine in the setpoints up to the power flow's curvature (about 1e-4 pu over the range,
docs/architecture.md §8), so the gap is a bound up to that curvature. The plan is replayed
in OpenDSS by :class:`OracleController` (the day's reported costs are OpenDSS's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from baselines.nsga2 import check_weights, reduced_f1
from powertrip_env import metrics
from powertrip_env.errors import ConfigError
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.simulator import FeederSimulator, SimState


@dataclass(frozen=True)
class OracleConfig:
    """Settings of the day's optimiser.

    Attributes:
        weights: (w_unbalance, w_curtailment), summing to 1.
        max_iter: projected-gradient iterations at most.
        gap_tol: stop when the Frank-Wolfe gap is below this share of the day's cost.
        stall_tol: ... or when the cost fell by less than this share of itself over the
            last ``stall_iter`` iterations (at the kinks of PUI's max the gap stays open).
        stall_iter: iterations of the stall test.
        fd_kw: forward-difference step of f1's gradient, kW.
    """

    weights: tuple[float, float] = field(default=(0.5, 0.5))
    max_iter: int = 500
    gap_tol: float = 1e-3
    stall_tol: float = 1e-5
    stall_iter: int = 20
    fd_kw: float = 1e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", check_weights(self.weights, "oracle.weights"))
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ConfigError(f"oracle.max_iter={self.max_iter!r} must be an integer >= 1")
        if not self.gap_tol > 0.0:
            raise ConfigError(f"oracle.gap_tol={self.gap_tol!r} must be > 0")
        if not self.stall_tol > 0.0 or not isinstance(self.stall_iter, int) or self.stall_iter < 1:
            raise ConfigError(
                f"oracle.stall_tol={self.stall_tol!r} must be > 0 and "
                f"oracle.stall_iter={self.stall_iter!r} an integer >= 1"
            )
        if not self.fd_kw > 0.0:
            raise ConfigError(f"oracle.fd_kw={self.fd_kw!r} must be > 0 kW")


@dataclass(frozen=True)
class OraclePlan:
    """The day's optimum as planned on the reduced model.

    Attributes:
        x_kw: (n_steps, n_cp + n_pv) setpoints of every step, kW.
        cost: the plan's day cost J (reduced model), dimensionless.
        gap: Frank-Wolfe gap at the plan: J - gap bounds the optimum from below where J is
            convex (see the module docstring).
        prices: (n_sessions,) each session's energy price at the plan: the day cost one more
            kWh would add, per kWh (negative where charging lowers the cost).
        iterations: projected-gradient iterations run.
        seconds: wall time of the optimisation.
    """

    x_kw: np.ndarray
    cost: float
    gap: float
    prices: np.ndarray
    iterations: int
    seconds: float

    @property
    def lower_bound(self) -> float:
        return self.cost - self.gap


@dataclass(frozen=True)
class EnergyBudget:
    """What one EV session must receive over a run of steps of a plan.

    Attributes:
        cp: the session's charging point.
        start: first step of the plan it is plugged in (inclusive).
        stop: first step after it leaves or the plan ends (exclusive).
        min_kwh: energy it must receive over those steps at least.
        max_kwh: and at most (equal to ``min_kwh`` when it leaves inside the plan).
    """

    cp: int
    start: int
    stop: int
    min_kwh: float
    max_kwh: float


def reduced_network(sim: FeederSimulator) -> ReducedNetwork:
    """The reduced model a plan is evaluated on.

    Raises:
        ConfigError: the unbalance index is ``power`` (the model has no line powers).
    """
    if sim.unbalance_index not in metrics.VOLTAGE_INDICES:
        raise ConfigError(
            "plans are made on the reduced model, which gives bus voltages, not line "
            "powers: objective.unbalance_index=power is not supported"
        )
    return ReducedNetwork(sim.engine)


class PlanProblem:
    """Steps of a plan as one batch: bounds, energy budgets, cost and gradient at once.

    Args:
        network: the reduced model; ``index``: ``pui`` or ``vuf``.
        load_p_kw, load_q_kvar: (T, n_loads) the steps' residential loads (forecasts).
        available_kw: (T, n_pv) PV availability; ``cp_upper_kw``: (T, n_cp) CP maximum.
        budgets: the EV sessions' energy over the plan; ``dt_h``: step length.
        weights, refs: the cost's weights and the day's (F1_ref, F2_ref).
        fd_kw: forward-difference step of f1's gradient, kW.
    """

    def __init__(
        self,
        network: ReducedNetwork,
        index: metrics.UnbalanceIndex,
        load_p_kw: np.ndarray,
        load_q_kvar: np.ndarray,
        available_kw: np.ndarray,
        cp_upper_kw: np.ndarray,
        budgets: tuple[EnergyBudget, ...],
        dt_h: float,
        weights: tuple[float, float],
        refs: tuple[float, float],
        fd_kw: float,
    ) -> None:
        self.network, self.index = network, index
        self.load_p, self.load_q = load_p_kw, load_q_kvar
        self.available = available_kw
        self.n_cp, self.dt_h = cp_upper_kw.shape[1], dt_h
        self.upper = np.concatenate([cp_upper_kw, available_kw], axis=1)
        self.sessions = budgets
        self.c1, self.c2 = weights[0] / refs[0], weights[1] / refs[1]
        self.fd_kw = fd_kw
        self.free = self.upper > 1e-9  # (T, n) variables that can move
        self._free_rows, self._free_cols = np.nonzero(self.free)

    @classmethod
    def whole_day(
        cls, sim: FeederSimulator, refs: tuple[float, float], config: OracleConfig
    ) -> PlanProblem:
        """The day of ``sim`` with perfect foresight (see the module docstring)."""
        p, ev = sim.profiles, sim.ev
        if ev.energy_guarantee:
            plugged = (ev.session_at >= 0).T  # (T, n_cp)
            cp_upper = np.where(plugged, sim.cp_p_max_kw, 0.0)
            budgets = tuple(
                EnergyBudget(s.cp, s.start, s.stop, s.energy_kwh, s.energy_kwh) for s in ev.sessions
            )
        else:  # the seed formulation: each step's request bounds the CP, nothing is owed
            cp_upper, budgets = ev.request_profile_kw.T.copy(), ()
        return cls(
            reduced_network(sim),
            sim.unbalance_index,
            p.load_p_kw,
            p.load_q_kvar,
            p.pv_available_kw,
            cp_upper,
            budgets,
            sim.dt_h,
            config.weights,
            refs,
            config.fd_kw,
        )

    def step_costs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T,) each step's weighted normalised cost (inf where the power flow fails), (T,) f1."""
        f1 = reduced_f1(self.network, self.index, self.load_p, self.load_q, x)
        f2 = ((self.available - x[:, self.n_cp :]) ** 2).sum(axis=1)
        return np.where(np.isnan(f1), np.inf, self.c1 * f1 + self.c2 * f2), f1

    def gradient(self, x: np.ndarray, base_f1: np.ndarray) -> np.ndarray:
        """(T, n) gradient of J: f1's part by forward differences, batched over all steps."""
        rows, cols = self._free_rows, self._free_cols
        h = self.fd_kw
        probes = x[rows]  # one probe per free (step, variable): only those move
        probes[np.arange(len(rows)), cols] += h
        f1 = reduced_f1(self.network, self.index, self.load_p[rows], self.load_q[rows], probes)
        grad = np.zeros_like(x)
        grad[rows, cols] = self.c1 * np.nan_to_num((f1 - base_f1[rows]) / h)
        grad[:, self.n_cp :] += -2.0 * self.c2 * (self.available - x[:, self.n_cp :])
        return np.where(self.free, grad, 0.0)

    # ------------------------------------------------------------------- feasibility
    def project(self, y: np.ndarray) -> np.ndarray:
        """The feasible point nearest ``y``."""
        x = np.clip(y, 0.0, self.upper)
        for s in self.sessions:
            window = y[s.start : s.stop, s.cp]
            cap = self.upper[s.start : s.stop, s.cp]
            total = x[s.start : s.stop, s.cp].sum()
            if s.min_kwh / self.dt_h <= total <= s.max_kwh / self.dt_h:
                continue  # inside its budget: clipping is the projection
            target = (s.min_kwh if total < s.min_kwh / self.dt_h else s.max_kwh) / self.dt_h
            lo, hi = float((window - cap).min()) - 1.0, float(window.max()) + 1.0
            for _ in range(60):  # bisection on the shift: sum clip(y - mu) falls with mu
                mu = 0.5 * (lo + hi)
                if np.clip(window - mu, 0.0, cap).sum() > target:
                    lo = mu
                else:
                    hi = mu
            mu = 0.5 * (lo + hi)
            x[s.start : s.stop, s.cp] = np.clip(window - mu, 0.0, cap)
        return x

    def linear_minimiser(self, grad: np.ndarray) -> np.ndarray:
        """The feasible point minimising ``sum grad . y`` (Frank-Wolfe's linear oracle)."""
        y = np.where(grad < 0.0, self.upper, 0.0)
        for s in self.sessions:
            g = grad[s.start : s.stop, s.cp]
            cap = self.upper[s.start : s.stop, s.cp]
            # The least it must take, on its cheapest steps; then any step that pays.
            left = s.min_kwh / self.dt_h
            extra = (s.max_kwh - s.min_kwh) / self.dt_h
            fill = np.zeros_like(g)
            for t in np.argsort(g, kind="stable"):
                fill[t] = min(cap[t], max(left, 0.0))
                left -= fill[t]
                if g[t] < 0.0 and extra > 0.0:
                    more = min(cap[t] - fill[t], extra)
                    fill[t] += more
                    extra -= more
            y[s.start : s.stop, s.cp] = fill
        return y

    def prices(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """Each session's energy price (cost per kWh) from its steps strictly inside bounds."""
        out = np.zeros(len(self.sessions))
        for k, s in enumerate(self.sessions):
            p = x[s.start : s.stop, s.cp]
            g = grad[s.start : s.stop, s.cp]
            inside = (p > 1e-6) & (p < self.upper[s.start : s.stop, s.cp] - 1e-6)
            sample = g[inside] if inside.any() else g
            out[k] = float(np.median(sample)) / self.dt_h
        return out

    def start(self) -> np.ndarray:
        """A feasible start: each session at its flat rate, PV uncurtailed."""
        x = self.upper.copy()
        for s in self.sessions:
            rate = s.max_kwh / ((s.stop - s.start) * self.dt_h)
            x[s.start : s.stop, s.cp] = np.minimum(rate, self.upper[s.start : s.stop, s.cp])
        return self.project(x)


def solve_day(
    sim: FeederSimulator, refs: tuple[float, float], config: OracleConfig | None = None
) -> OraclePlan:
    """The day's optimum of ``sim``'s scenario-day at ``config.weights`` (see the module).

    Args:
        sim: the simulator of the day (its engine is reduced once; its state is untouched).
        refs: the day's (F1_ref, F2_ref).
        config: optimiser settings.

    Raises:
        ConfigError: the unbalance index is ``power`` (the reduced model has no line powers).
    """
    config = config or OracleConfig()
    return solve_plan(PlanProblem.whole_day(sim, refs, config), config)


def solve_plan(
    problem: PlanProblem, config: OracleConfig, start: np.ndarray | None = None
) -> OraclePlan:
    """Minimise ``problem``'s cost from ``start`` (projected; flat-rate charging if None).

    Raises:
        ConfigError: the start's power flow fails.
    """
    started = time.perf_counter()
    x = problem.start() if start is None else problem.project(start)
    costs, f1 = problem.step_costs(x)
    if not np.isfinite(costs).all():
        raise ConfigError("the plan's start (flat-rate charging, no curtailment) fails")
    cost = float(costs.sum())
    history = [cost]
    grad = problem.gradient(x, f1)
    step = 1.0
    gap = np.inf
    iterations = 0
    # Spectral projected gradient (Birgin, Martinez and Raydan 2000): Barzilai-Borwein step
    # lengths with a non-monotone Armijo search over the last 10 costs.
    for iterations in range(1, config.max_iter + 1):  # noqa: B007 - reported
        gap = float((grad * (x - problem.linear_minimiser(grad))).sum())
        if gap <= config.gap_tol * max(abs(cost), 1e-12):
            break
        if len(history) > config.stall_iter and (
            history[-config.stall_iter - 1] - cost <= config.stall_tol * abs(cost)
        ):
            break
        direction = problem.project(x - step * grad) - x
        slope = float((grad * direction).sum())
        if slope >= 0.0:
            break
        reference = max(history[-10:])
        length = 1.0
        while True:
            candidate = x + length * direction
            new_costs, new_f1 = problem.step_costs(candidate)
            new_cost = float(new_costs.sum())
            if np.isfinite(new_cost) and new_cost <= reference + 1e-4 * length * slope:
                break
            length *= 0.5
            if length < 1e-10:
                break
        if length < 1e-10:
            break
        new_grad = problem.gradient(candidate, new_f1)
        s_k, y_k = (candidate - x).ravel(), (new_grad - grad).ravel()
        sy = float(s_k @ y_k)
        step = float(np.clip(s_k @ s_k / sy, 1e-6, 1e6)) if sy > 0.0 else 1e6
        x, f1, cost, grad = candidate, new_f1, new_cost, new_grad
        history.append(cost)
    return OraclePlan(
        x_kw=x,
        cost=cost,
        gap=max(gap, 0.0),
        prices=problem.prices(x, grad),
        iterations=iterations,
        seconds=time.perf_counter() - started,
    )


class OracleController:
    """Replays the day's optimum (a :class:`Controller`; it knows the whole day in advance).

    Args:
        sim: the simulator the day runs in.
        config: optimiser settings (the weight among them).
        refs: the day's (F1_ref, F2_ref); computed when omitted.
    """

    name = "oracle"

    def __init__(
        self,
        sim: FeederSimulator,
        config: OracleConfig | None = None,
        refs: tuple[float, float] | None = None,
    ) -> None:
        self.config = config or OracleConfig()
        self.refs = refs if refs is not None else sim.objective_refs()
        self.plan = solve_day(sim, self.refs, self.config)

    def act(self, state: SimState) -> np.ndarray:
        """The planned setpoints of ``state``'s step, kW."""
        return self.plan.x_kw[state.t].copy()


@dataclass(frozen=True)
class DayFrontPoint:
    """One point of the day's Pareto front: the oracle's day at one weight, replayed.

    Attributes:
        weights: (w_unbalance, w_curtailment) of the plan.
        f1_total: sum over steps of f1 / F1_ref (OpenDSS values), dimensionless.
        f2_total: sum over steps of f2 / F2_ref (OpenDSS values), dimensionless.
        gap: the plan's Frank-Wolfe gap (how far above the optimum it may be, in day cost).
    """

    weights: tuple[float, float]
    f1_total: float
    f2_total: float
    gap: float


def day_front(
    sim: FeederSimulator,
    refs: tuple[float, float],
    n_weights: int,
    config: OracleConfig | None = None,
    end_weight: float = 0.01,
) -> list[DayFrontPoint]:
    """The day's Pareto front: the oracle planned at ``n_weights`` weights w1 evenly spaced
    from ``end_weight`` to 1 - ``end_weight``, each plan replayed in OpenDSS, its day totals
    in normalised units.

    The ends stop short of (0, 1) and (1, 0): at a zero weight the other objective is left
    wherever the optimiser starts (at w = (0, 1) any charging schedule costs 0, so the
    oracle keeps its first one, and PV following, with less unbalance and no curtailment,
    would dominate that end point). A small weight picks the best of those optima instead.
    ``config`` gives the optimiser's settings (its weight is replaced by each of the front's).
    """
    if isinstance(n_weights, bool) or not isinstance(n_weights, int) or n_weights < 2:
        raise ConfigError(f"day front: n_weights={n_weights!r} must be an integer >= 2")
    if not 0.0 <= end_weight < 0.5:
        raise ConfigError(f"day front: end_weight={end_weight!r} must be in [0, 0.5)")
    base = config or OracleConfig()
    front = []
    for w1 in np.linspace(end_weight, 1.0 - end_weight, n_weights):
        weights = (float(w1), float(1.0 - w1))
        oracle = OracleController(sim, replace(base, weights=weights), refs)
        steps = sim.run(oracle).steps
        front.append(
            DayFrontPoint(
                weights=weights,
                f1_total=float((steps["f1"] / refs[0]).sum()),
                f2_total=float((steps["f2"] / refs[1]).sum()),
                gap=oracle.plan.gap,
            )
        )
    return front
