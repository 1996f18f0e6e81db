"""Smart control with pymoo's NSGA-II: one Pareto front per timestep (architecture.md §6, §8).

At every step the decision vector ``x = [P_CP_1..n_cp, P_PV_1..n_pv]`` (kW) is optimised
within the step's bounds for two costs, both minimised:

* f1 = sum over CP buses of the unbalance index squared (PUI by default), %^2;
* f2 = sum over PV systems of (available - used)^2, kW^2.

A whole population is evaluated at once through the exact reduced network model
(:class:`~powertrip_env.grid.reduced.ReducedNetwork`) or, on request, one OpenDSS solve per
candidate. The final front is always re-evaluated with OpenDSS and both
values are kept. A compromise is chosen on the front normalised by the day's references
(F1_ref, F2_ref) with pymoo's multi-criteria decision making: pseudo-weights (default, equal
weights), the knee (high trade-off point) or the weighted sum.

Three choices keep the per-step optimiser from making the day's worst step worse and make a
day affordable:

* **CP floor** (``cp_floor``): with the EV energy guarantee, each CP's search range starts at
  the flat rate (energy still owed / time left; the default) rather than at the guarantee's
  latest-possible floor (``latest``, the original formulation). A per-step optimiser defers
  whatever the step at hand allows; with the latest-possible floor it defers EV energy until
  the guarantee forces it in at full power, so the day's worst step gets worse than no
  control. With the flat-rate floor, deferred energy is spread over the rest of the window.
* **Unbalance cap** (``cap_f1``): each candidate's f1 is constrained (pymoo ``out["G"]``) to
  at most the day's F1_ref, the worst no-control step, so the compromise never trades a step
  past the worst no-control step for less curtailment. Candidates whose power flow fails are
  infeasible through ``out["G"]`` too (a load leaving its voltage band is no failure: both
  evaluators model it as OpenDSS does); where no candidate satisfies a constraint, pymoo
  returns the least violating one.
* **Warm start and convergence** (``warm_start``, ``termination``): consecutive steps have
  nearly the same front, so each step's population starts from the previous step's Pareto
  set (moved into the new bounds), and the search stops when the front stalls
  (its hypervolume, normalised by the day's references, grows by less than ``hv_tol`` of
  itself over ``period`` generations) or at ``n_gen``. A warm-started step whose problem did
  not change, and whose last ``period`` steps did not either, uses ``warm_pop_size`` (else
  ``pop_size``), of which ``warm_random_share`` is drawn at random (the
  front only has to follow a small move, but a share of fresh points keeps the population
  from collapsing onto the old front where the unbalance cap binds). A step
  whose problem changed runs cold, all ``n_gen`` generations with ``pop_size``, as a step
  without a warm start does: the problem changed when an EV arrived or left since the
  previous step (a CP's range jumps), or when the previous front, evaluated at this step,
  lost more than ``change_tol`` of its hypervolume (the loads or PV moved the front). A warm
  start needs the previous step, so it applies only when the day is sequential (the EV
  energy guarantee on); in the seed formulation every step stays independent.

Two choices make the search cheap and its result independent of the evaluator:

* **Constraints as dominance** (``constraints``): pymoo's own constraint handling
  (``pymoo``: ``out["G"]``) rebuilds every candidate's violation and feasibility from its
  ``Individual`` objects at each survival and tournament, which costs more than the
  candidates' evaluation. ``dominance`` (the default) gives the same ranking without it: an
  infeasible candidate's objectives are replaced by (B1 + v, B2 + v), with v its violation
  and B1, B2 above any feasible f1 (the cap, or any converged f1) and f2 (full curtailment),
  so every feasible candidate dominates every infeasible one and infeasible ones are ranked
  by their violation, as pymoo ranks them; where none is feasible the least violating one is
  returned.
* **Stated precision** (``f_precision``): the objectives are rounded to ``f_precision`` of
  the day's references before pymoo ranks them. The reduced model and OpenDSS solved tightly
  agree to about 1e-11 relative; without rounding a near-tie between two candidates breaks
  one way in one evaluator and the other way in the other and the two days part. Rounded
  well above that agreement (1e-9 by default, far below any difference that matters to a
  user), near-ties are exact ties in both and break the same way (by pymoo's seeded order).
  For the same reason the OpenDSS evaluator solves its candidates in an engine of its own at
  tolerance ``1e-10`` (OpenDSS's default of 1e-4 is accurate to about 3e-5 pu only), leaving
  the simulator's engine and its tolerance alone.

Defaults: population 100, at most 100 generations, seed 0; the step ``t`` runs with seed
``seed + t``, so one seed gives one day of fronts.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.core.termination import TerminateIfAny, Termination
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize
from pymoo.termination.delta import DeltaToleranceTermination
from pymoo.termination.max_gen import MaximumGenerationTermination
from pymoo.termination.robust import RobustTermination
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from powertrip_env import metrics
from powertrip_env.errors import ConfigError
from powertrip_env.ev import CP_FLOORS, CPFloor, cp_floor_kw
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.parallel import terminate_pool, watch_parent
from powertrip_env.scenario import Scenario
from powertrip_env.simulator import FeederSimulator, SimState

#: Where candidates are evaluated: the exact reduced model (batched) or OpenDSS (one solve each).
Evaluator = Literal["reduced", "opendss"]
EVALUATORS: tuple[Evaluator, ...] = get_args(Evaluator)
#: How the applied point is chosen on a step's front.
Selection = Literal["pseudo_weights", "knee", "weighted_sum"]
SELECTIONS: tuple[Selection, ...] = get_args(Selection)
#: When a step's search stops: at a stalled front (at most ``n_gen``) or always at ``n_gen``.
StopRule = Literal["converged", "n_gen"]
STOP_RULES: tuple[StopRule, ...] = get_args(StopRule)
#: How infeasible candidates enter pymoo's ranking: folded into dominance, or pymoo's ``G``.
ConstraintHandling = Literal["dominance", "pymoo"]
CONSTRAINT_HANDLINGS: tuple[ConstraintHandling, ...] = get_args(ConstraintHandling)
#: Tolerance (pu) of the OpenDSS evaluator's candidate solves, and their iteration limit.
CANDIDATE_TOLERANCE = 1e-10
CANDIDATE_MAX_ITERATIONS = 100
#: A variable whose range is narrower than this (kW) is fixed at its lower bound.
FIXED_TOL_KW = 1e-9


def check_weights(weights: object, where: str) -> tuple[float, float]:
    """``weights`` as (w_unbalance, w_curtailment): two finite non-negative numbers summing
    to 1.

    Raises:
        ConfigError: naming ``where`` and the value, when they are not.
    """
    try:
        w = tuple(float(v) for v in weights)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        w = ()
    if len(w) != 2 or not np.isfinite(w).all() or min(w) < 0 or abs(sum(w) - 1.0) > 1e-9:
        raise ConfigError(f"{where}={weights!r} must be two non-negative numbers summing to 1")
    return w[0], w[1]


@dataclass(frozen=True)
class NSGA2Config:
    """Settings of the per-timestep optimiser.

    Attributes:
        pop_size: NSGA-II population, at least 4.
        n_gen: generations per timestep, at least 1.
        seed: seed of the day; step ``t`` uses ``seed + t``.
        evaluator: ``reduced`` (exact reduced model, batched) or ``opendss``.
        selection: ``pseudo_weights``, ``knee`` or ``weighted_sum``.
        weights: (w_unbalance, w_curtailment) for pseudo-weights and weighted sum; sum to 1.
        cp_floor: ``flat_rate`` (default) or ``latest``: the lowest CP power searched, with
            the EV energy guarantee (see the module docstring).
        cap_f1: constrain each step's f1 to at most the day's F1_ref (the worst no-control
            step).
        warm_start: start each step from the previous step's Pareto set (sequential days).
        termination: ``converged`` (a warm-started step stops when its front stalls, at
            most ``n_gen`` generations) or ``n_gen`` (always ``n_gen``).
        hv_tol: the ``converged`` rule's tolerance: the largest relative growth of the
            front's normalised hypervolume that counts as stalled.
        period: generations the front must stay stalled.
        warm_pop_size: population of a warm-started step whose problem did not change
            (at least 4; ``pop_size`` where that is smaller).
        warm_random_share: the share of a warm-started population drawn at random
            (the rest is the previous front and the two ends of the ranges).
        change_tol: the largest relative loss of hypervolume of the previous front,
            evaluated at the new step, that still counts as the same problem.
        constraints: ``dominance`` (default) or ``pymoo``: how infeasible candidates are
            ranked (see the module docstring; both rank them alike).
        f_precision: objectives are rounded to this fraction of the day's references
            before ranking (0: not rounded).
        eliminate_duplicates: pymoo's removal of offspring equal to a population member.
    """

    pop_size: int = 100
    n_gen: int = 100
    seed: int = 0
    evaluator: Evaluator = "reduced"
    selection: Selection = "pseudo_weights"
    weights: tuple[float, float] = field(default=(0.5, 0.5))
    cp_floor: CPFloor = "flat_rate"
    cap_f1: bool = True
    warm_start: bool = True
    termination: StopRule = "converged"
    hv_tol: float = 5e-4
    period: int = 5
    warm_pop_size: int = 50
    warm_random_share: float = 0.5
    change_tol: float = 0.01
    constraints: ConstraintHandling = "dominance"
    f_precision: float = 1e-9
    eliminate_duplicates: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.pop_size, int) or self.pop_size < 4:
            raise ConfigError(f"nsga2.pop_size={self.pop_size!r} must be an integer >= 4")
        if not isinstance(self.n_gen, int) or self.n_gen < 1:
            raise ConfigError(f"nsga2.n_gen={self.n_gen!r} must be an integer >= 1")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"nsga2.seed={self.seed!r} must be a non-negative integer")
        if self.evaluator not in EVALUATORS:
            raise ConfigError(f"nsga2.evaluator={self.evaluator!r} is not one of {EVALUATORS}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"nsga2.selection={self.selection!r} is not one of {SELECTIONS}")
        object.__setattr__(self, "weights", check_weights(self.weights, "nsga2.weights"))
        if self.cp_floor not in CP_FLOORS:
            raise ConfigError(f"nsga2.cp_floor={self.cp_floor!r} is not one of {CP_FLOORS}")
        for name in ("cap_f1", "warm_start", "eliminate_duplicates"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"nsga2.{name}={getattr(self, name)!r} must be true or false")
        if self.termination not in STOP_RULES:
            raise ConfigError(f"nsga2.termination={self.termination!r} is not one of {STOP_RULES}")
        hv_tol = self.hv_tol
        if isinstance(hv_tol, bool) or not isinstance(hv_tol, (int, float)) or hv_tol <= 0:
            raise ConfigError(f"nsga2.hv_tol={hv_tol!r} must be a number > 0")
        if not isinstance(self.period, int) or self.period < 1:
            raise ConfigError(f"nsga2.period={self.period!r} must be an integer >= 1")
        warm = self.warm_pop_size
        if not isinstance(warm, int) or warm < 4:
            raise ConfigError(f"nsga2.warm_pop_size={warm!r} must be an integer >= 4")
        for name, low_open in (
            ("change_tol", True),
            ("f_precision", False),
            ("warm_random_share", False),
        ):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, (int, float))
            if bad or not (0 < value < 1 if low_open else 0 <= value < 1):
                allowed = "in (0, 1)" if low_open else "in [0, 1)"
                raise ConfigError(f"nsga2.{name}={value!r} must be a number {allowed}")
        if self.constraints not in CONSTRAINT_HANDLINGS:
            raise ConfigError(
                f"nsga2.constraints={self.constraints!r} is not one of {CONSTRAINT_HANDLINGS}"
            )

    def stop_rule(self, refs: np.ndarray) -> Termination:
        """The pymoo termination of one step's search (``refs``: the day's references)."""
        at_most = MaximumGenerationTermination(self.n_gen)
        if self.termination == "n_gen":
            return at_most
        stall = RobustTermination(_HypervolumeStall(refs, self.hv_tol), period=self.period)
        return TerminateIfAny(stall, at_most)

    def stop_rule_cold(self) -> Termination:
        """The termination of a step without a warm start: always ``n_gen`` generations (a
        random population's front stalls long before it reaches the Pareto front)."""
        return MaximumGenerationTermination(self.n_gen)


class _HypervolumeStall(DeltaToleranceTermination):
    """Done when the feasible front's normalised hypervolume stops growing.

    pymoo keeps comparing against the generation where growth first fell within ``tol``, so
    a slow creep over the robust period still counts as growth.
    """

    def __init__(self, refs: np.ndarray, tol: float) -> None:
        super().__init__(tol)
        self._refs = np.asarray(refs, dtype=float)
        self._hv = HV(ref_point=np.array([1.1, 1.1]))

    def _data(self, algorithm: Any) -> float:
        f = algorithm.problem.feasible_f(algorithm.opt)
        return float(self._hv(f / self._refs)) if len(f) else 0.0

    def _delta(self, prev: float, current: float) -> float:
        return max(0.0, current - prev) / max(current, 1e-12)


def reduced_f1(
    network: ReducedNetwork,
    index: metrics.UnbalanceIndex,
    load_p_kw: np.ndarray,
    load_q_kvar: np.ndarray,
    x: np.ndarray,
) -> np.ndarray:
    """(B,) f1 of the (B, n_cp + n_pv) decision vectors ``x`` on the reduced model.

    ``index`` is ``pui`` or ``vuf``; the loads are (n_loads,) or (B, n_loads). NaN where the
    power flow fails.
    """
    n_cp = network.n_cp
    solution = network.solve(load_p_kw, load_q_kvar, x[:, :n_cp], x[:, n_cp:])
    phasors = network.cp_bus_phasors(solution)
    unbalance = metrics.unbalance(index, phasors)
    # Rows that failed are NaN already (the solution's voltages are).
    return np.where(solution.converged, metrics.f_unbalance(unbalance), np.nan)


class _StepObjectives:
    """Batched f1, f2 of candidate decision vectors at one step.

    With the OpenDSS evaluator the search's candidates are solved in an engine of the
    evaluator's own at :data:`CANDIDATE_TOLERANCE` (module docstring: stated precision); the
    re-check of a front (``reduced=False``) uses the simulator's engine as configured.
    """

    def __init__(self, sim: FeederSimulator, evaluator: Evaluator) -> None:
        self.sim = sim
        self.evaluator = evaluator
        self.index = sim.unbalance_index
        self._reduced: ReducedNetwork | None = None
        self._candidates: OpenDSSEngine | None = None
        if evaluator == "reduced":
            if self.index not in metrics.VOLTAGE_INDICES:
                raise ConfigError(
                    "the reduced model gives bus voltages, not line powers: "
                    "objective.unbalance_index=power needs nsga2.evaluator=opendss"
                )
            self._reduced = ReducedNetwork(sim.engine)

    def __call__(self, state: SimState, x: np.ndarray, reduced: bool = True) -> np.ndarray:
        """(B, 2) objectives of the (B, n) decision vectors ``x`` at ``state``'s step.

        f1 is NaN where the power flow fails.
        """
        n_cp = self.sim.n_cp
        f2 = metrics.f_curtailment(state.pv_available_kw, x[:, n_cp:])
        if reduced and self._reduced is not None:
            f1 = self._f1_reduced(state, x)
        else:
            engine = self.sim.engine
            if reduced:  # the OpenDSS evaluator's search: its own, tightly solved engine
                if self._candidates is None:
                    self._candidates = OpenDSSEngine(
                        engine.feeder,
                        engine.devices,
                        CANDIDATE_MAX_ITERATIONS,
                        CANDIDATE_TOLERANCE,
                    )
                engine = self._candidates
            f1 = np.array([self._f1_opendss(engine, state, row) for row in x])
        return np.column_stack([f1, f2])

    def close(self) -> None:
        """Close the OpenDSS evaluator's own engine, if it has one."""
        if self._candidates is not None:
            self._candidates.close()
            self._candidates = None

    def _f1_reduced(self, state: SimState, x: np.ndarray) -> np.ndarray:
        assert self._reduced is not None
        return reduced_f1(self._reduced, self.index, state.load_p_kw, state.load_q_kvar, x)

    def _f1_opendss(self, engine: OpenDSSEngine, state: SimState, x: np.ndarray) -> float:
        n_cp = self.sim.n_cp
        engine.reset_solution()
        engine.set_powers(state.load_p_kw, state.load_q_kvar, x[:n_cp], x[n_cp:])
        converged, _ = engine.run_pf()
        if not converged:
            return float("nan")
        p_phase = None if self.index in metrics.VOLTAGE_INDICES else engine.cp_bus_phase_powers()
        index = metrics.unbalance(self.index, engine.cp_bus_phasors(), p_phase)
        return float(metrics.f_unbalance(index))


class _StepProblem(Problem):
    """pymoo problem over the free variables of one step (fixed ones held at their bound).

    Constraints: the power flow converges, and, with ``f1_cap``, f1 <= f1_cap. With
    ``constraints="pymoo"`` they are pymoo's ``G <= 0`` (``G[:, 0]``: 1 where the power flow
    fails; ``G[:, 1]``: f1 / f1_cap - 1); with ``dominance`` an infeasible candidate's
    objectives are (B1 + v, B2 + v), v its violation (module docstring). The objectives are
    rounded to ``quantum`` (per objective; 0: not rounded) first.
    """

    def __init__(
        self,
        objectives: _StepObjectives,
        state: SimState,
        lower: np.ndarray,
        free: np.ndarray,
        f1_cap: float | None,
        constraints: ConstraintHandling = "dominance",
        quantum: np.ndarray | None = None,
    ) -> None:
        self.objectives = objectives
        self.state = state
        self.free = free
        self.template = lower.copy()
        self.f1_cap = f1_cap
        self.constraints = constraints
        self.quantum = quantum
        # Above any feasible f1 (at most the cap; without one, any converged f1) and any f2
        # (at most full curtailment).
        full_curtailment = float(metrics.f_curtailment(state.pv_available_kw, 0.0))
        self.bound = np.array(
            [1e12 if f1_cap is None else 2.0 * f1_cap + 1.0, 2.0 * full_curtailment + 1.0]
        )
        n_constr = 0 if constraints == "dominance" else (1 if f1_cap is None else 2)
        super().__init__(
            n_var=int(free.size),
            n_obj=2,
            n_ieq_constr=n_constr,
            xl=lower[free],
            xu=state.upper_kw[free],
            vtype=float,
        )

    def full(self, x_free: np.ndarray) -> np.ndarray:
        x = np.tile(self.template, (len(x_free), 1))
        x[:, self.free] = x_free
        return x

    def scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 2) rounded objectives of the (B, n) full decision vectors ``x`` (f1 NaN where
        the power flow fails) and their (B,) constraint violation (0: feasible)."""
        f = self.objectives(self.state, x)
        if self.quantum is not None:
            f = np.round(f / self.quantum) * self.quantum
        failed = np.isnan(f[:, 0])
        violation = failed.astype(float)
        if self.f1_cap is not None:
            over = np.maximum(f[:, 0] / self.f1_cap - 1.0, 0.0)
            violation += np.where(failed, 0.0, over)
        return f, violation

    def feasible_f(self, pop: Any) -> np.ndarray:
        """The objectives of the feasible members of ``pop`` (a pymoo population)."""
        if self.constraints == "pymoo":
            feasible, f = pop.get("feas", "F")
            return np.asarray(f)[feasible]
        f = np.asarray(pop.get("F"))
        return f[f[:, 0] < self.bound[0]]

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        f, violation = self.scores(self.full(x))
        failed = np.isnan(f[:, 0])
        if self.constraints == "dominance":
            bad = violation > 0.0
            f[bad] = self.bound + violation[bad, None]
            out["F"] = f
            return
        g = [np.where(failed, 1.0, -1.0)]
        if self.f1_cap is not None:
            g.append(np.where(failed, 0.0, f[:, 0] / self.f1_cap - 1.0))
        # pymoo ranks infeasible candidates by their violation alone; their F is never
        # compared, but must be a number.
        f[failed, 0] = np.inf
        out["F"] = f
        out["G"] = np.column_stack(g)


def select_compromise(
    f_norm: np.ndarray, selection: Selection, weights: tuple[float, float]
) -> int:
    """Index of the chosen point of a normalised front (rows: points; columns: f1, f2).

    Only non-dominated points are candidates: the front is re-evaluated in OpenDSS, where a
    point that was non-dominated in the search's values can end up dominated by a neighbour
    (and pseudo-weights would divide zero by zero at a point worst in both costs)."""
    if len(f_norm) == 1:
        return 0
    best = np.asarray(NonDominatedSorting().do(f_norm, only_non_dominated_front=True))
    if len(best) < len(f_norm):
        return int(best[select_compromise(f_norm[best], selection, weights)])
    if selection == "weighted_sum" or np.any(np.ptp(f_norm, axis=0) <= 0.0):
        # A front flat in one objective has no trade-off to weigh: the weighted sum picks
        # its best point (pseudo-weights would divide by a zero range).
        return int(np.argmin(f_norm @ np.asarray(weights)))
    if selection == "knee":
        from pymoo.mcdm.high_tradeoff import HighTradeoffPoints

        knees = HighTradeoffPoints().do(f_norm)
        if knees is not None and len(knees):
            return int(np.asarray(knees).ravel()[0])
        selection = "pseudo_weights"  # no knee on a front this small: fall back
    from pymoo.mcdm.pseudo_weights import PseudoWeights

    return int(PseudoWeights(np.asarray(weights)).do(f_norm))


@dataclass(frozen=True)
class StepFront:
    """The Pareto front found at one step and the chosen point.

    Attributes:
        t: step index.
        x_kw: (n_points, n_var) decision vectors of the front.
        f_reduced: (n_points, 2) objectives from the evaluator used during the search.
        f_opendss: (n_points, 2) objectives re-evaluated with OpenDSS.
        chosen: index of the applied point.
        f_no_control: (2,) objectives of no control at this step (OpenDSS).
        generations: offspring generations the search ran (0 when no variable was free).
        changed: the step ran cold (no warm start, or its problem changed since the
            previous step: module docstring).
    """

    t: int
    x_kw: np.ndarray
    f_reduced: np.ndarray
    f_opendss: np.ndarray
    chosen: int
    f_no_control: np.ndarray
    generations: int = 0
    changed: bool = True


class NSGA2Controller:
    """Chooses each step's setpoints from an NSGA-II Pareto front (a :class:`Controller`).

    Args:
        sim: the simulator the controller acts in (its engine evaluates candidates).
        config: optimiser settings.
        refs: the day's (F1_ref, F2_ref) for normalised selection; computed when omitted.
    """

    name = "nsga2"

    def __init__(
        self,
        sim: FeederSimulator,
        config: NSGA2Config | None = None,
        refs: tuple[float, float] | None = None,
    ) -> None:
        self.sim = sim
        self.config = config or NSGA2Config()
        self.objectives = _StepObjectives(sim, self.config.evaluator)
        self.refs = np.asarray(refs if refs is not None else sim.objective_refs(), dtype=float)
        self.fronts: list[StepFront] = []
        self._hv = HV(ref_point=np.array([1.1, 1.1]))
        #: Fronts computed elsewhere (a process pool, see :class:`FrontPool`), by step.
        self.precomputed: dict[int, StepFront] = {}

    def search_lower(self, state: SimState) -> np.ndarray:
        """(n_var,) the lowest setpoints searched at ``state``'s step: the step's bounds with
        the configured CP floor (with the EV energy guarantee), kW."""
        lower = state.lower_kw.copy()
        if self.sim.ev.energy_guarantee:
            n_cp = state.n_cp
            lower[:n_cp] = cp_floor_kw(
                self.config.cp_floor,
                state.lower_kw[:n_cp],
                state.upper_kw[:n_cp],
                state.remaining_kwh,
                state.time_to_departure_h,
            )
        return lower

    def _warm_points(self, state: SimState, lower: np.ndarray) -> tuple[np.ndarray, bool] | None:
        """The previous step's Pareto set moved into this step's bounds (full vectors), and
        whether an EV arrived or left since (the problem changed); None without a previous
        step to start from."""
        if not (self.config.warm_start and self.sim.ev.energy_guarantee and self.fronts):
            return None
        previous = self.fronts[-1]
        if previous.t != state.t - 1 or state.t == 0:
            return None
        plugged_changed = not np.array_equal(self.sim.ev.plugged(state.t - 1), state.plugged)
        return np.minimum(np.maximum(previous.x_kw, lower), state.upper_kw), plugged_changed

    def _hypervolume(self, f: np.ndarray, cap: float | None) -> float:
        """Normalised hypervolume of the feasible rows of ``f`` (the day's references)."""
        ok = np.isfinite(f).all(axis=1)
        if cap is not None:
            ok &= f[:, 0] <= cap
        return float(self._hv(f[ok] / self.refs)) if ok.any() else 0.0

    def front(self, state: SimState) -> StepFront:
        """Run NSGA-II at ``state``'s step and re-evaluate its front with OpenDSS."""
        cfg = self.config
        lower = self.search_lower(state)
        free = np.flatnonzero(state.upper_kw - lower > FIXED_TOL_KW)
        no_control = state.upper_kw[None, :]
        f_nc = self.objectives(state, no_control, reduced=False)[0]
        if free.size == 0:
            x = lower[None, :]
            f = self.objectives(state, x, reduced=False)
            return StepFront(state.t, x, f, f, 0, f_nc)
        cap = float(self.refs[0]) if cfg.cap_f1 else None
        quantum = self.refs * cfg.f_precision if cfg.f_precision > 0 else None
        problem = _StepProblem(self.objectives, state, lower, free, cap, cfg.constraints, quantum)
        warm = self._warm_points(state, lower)
        changed = warm is None or warm[1]
        f_warm = np.empty((0, 2))
        if warm is not None and not changed:
            # The loads or PV may have moved the front: the previous front, scored here,
            # must keep its hypervolume. Where it does not, seeding the search with it
            # traps the population near the old front: start cold.
            f_warm = problem.scores(warm[0])[0]
            hv_before = self._hypervolume(self.fronts[-1].f_reduced, cap)
            changed = self._hypervolume(f_warm, cap) < (1.0 - cfg.change_tol) * hv_before
        # The smaller population once the front has been steady for a period: a front that
        # just moved may move on, and fewer points would then lose part of it.
        recent = self.fronts[-cfg.period :]
        steady = not changed and not any(f.changed for f in recent)
        pop_size = min(cfg.warm_pop_size, cfg.pop_size) if steady else cfg.pop_size
        rng = np.random.default_rng(cfg.seed + state.t)
        start = rng.uniform(problem.xl, problem.xu, size=(pop_size, free.size))
        # Seed the search with both ends: no control (zero curtailment) and all at minimum.
        start[0], start[1] = problem.xu, problem.xl
        if warm is not None and not changed:
            # Keep a share of the population random, so a front that moved is still found;
            # a smaller population keeps points spread evenly along the front.
            points = warm[0]
            n = max(0, min(len(points), pop_size - 2 - int(cfg.warm_random_share * pop_size)))
            if n < len(points) and len(f_warm):
                order = np.argsort(f_warm[:, 0], kind="stable")
                points = points[order[np.round(np.linspace(0, len(points) - 1, n)).astype(int)]]
            start[2 : 2 + n] = points[:n, free]
        result = minimize(
            problem,
            NSGA2(
                pop_size=pop_size,
                sampling=start,
                eliminate_duplicates=cfg.eliminate_duplicates,
                return_least_infeasible=True,
            ),
            cfg.stop_rule_cold() if changed else cfg.stop_rule(self.refs),
            seed=cfg.seed + state.t,
            verbose=False,
        )
        x = problem.full(np.atleast_2d(result.X))
        f_search = np.atleast_2d(result.F)
        if cfg.constraints == "dominance" and np.any(f_search[:, 0] >= problem.bound[0]):
            f_search = problem.scores(x)[0]  # no feasible point: report its own objectives
        f_check = self.objectives(state, x, reduced=False)
        ok = np.flatnonzero(np.isfinite(f_check).all(axis=1))
        chosen = 0
        if ok.size:
            chosen = int(ok[select_compromise(f_check[ok] / self.refs, cfg.selection, cfg.weights)])
        # pymoo counts the initial population as generation 1 and leaves its counter one past
        # the last generation run: what remains is the number of offspring generations.
        generations = int(result.algorithm.n_gen) - 1
        return StepFront(state.t, x, f_search, f_check, chosen, f_nc, generations, changed)

    def close(self) -> None:
        """Release the OpenDSS evaluator's own engine (the simulator keeps its own)."""
        self.objectives.close()

    def act(self, state: SimState) -> np.ndarray:
        """The chosen point of this step's front, in kW."""
        front = self.precomputed.pop(state.t, None) or self.front(state)
        self.fronts.append(front)
        # The simulator's own solve then starts from the no-load voltages, so a step's result
        # depends only on its inputs (a resumed day replays to identical numbers).
        self.sim.engine.reset_solution()
        return front.x_kw[front.chosen].copy()


# ------------------------------------------------------------------------- process pool
_WORKER: dict[str, NSGA2Controller] = {}


def _init_worker(
    scenario: Scenario, config: NSGA2Config, refs: tuple[float, float], parent_pid: int
) -> None:
    watch_parent(parent_pid)  # exit if the driver dies; leave Ctrl-C to the driver
    # Each worker process owns one engine (architecture.md §10: never threads sharing one).
    _WORKER["controller"] = NSGA2Controller(FeederSimulator(scenario), config, refs)


def _front_at(t: int) -> StepFront:
    controller = _WORKER["controller"]
    return controller.front(controller.sim.state_at(t))


class FrontPool:
    """Fronts of independent timesteps (the seed formulation) computed by a process pool.

    Each worker builds its own simulator and engine from the pickled scenario; a step's
    front depends only on the step (seeded ``seed + t``, OpenDSS restarted from no load for
    each re-check), so the pool gives the same fronts as the sequential day.

    Args:
        scenario: the scenario-day; must use the seed formulation.
        config: optimiser settings.
        refs: the day's (F1_ref, F2_ref).
        workers: number of processes.
    """

    def __init__(
        self,
        scenario: Scenario,
        config: NSGA2Config,
        refs: tuple[float, float],
        workers: int,
    ) -> None:
        if scenario.config.ev.energy_guarantee:
            raise ConfigError(
                "a front pool needs independent timesteps: set ev.energy_guarantee: false "
                "(the seed formulation); with the guarantee the day is sequential"
            )
        if workers < 1:
            raise ConfigError(f"workers={workers} must be at least 1")
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=functools.partial(
                _init_worker, scenario, config, (refs[0], refs[1]), os.getpid()
            ),
        )
        self.workers = workers

    def fronts(self, steps: Sequence[int]) -> dict[int, StepFront]:
        """Fronts of ``steps``, keyed by step."""
        steps = list(steps)
        chunk = max(1, len(steps) // (4 * self.workers))
        return dict(zip(steps, self._pool.map(_front_at, steps, chunksize=chunk), strict=True))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def terminate(self) -> None:
        """Stop now (on an interrupt): cancel pending steps and terminate the workers."""
        terminate_pool(self._pool)

    def __enter__(self) -> FrontPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
