"""Smart control with pymoo's NSGA-II: one Pareto front per timestep (DESIGN.md §6, §8).

At every step the decision vector ``x = [P_CP_1..n_cp, P_PV_1..n_pv]`` (kW) is optimised
within the step's bounds for two costs, both minimised:

* f1 = sum over CP buses of the unbalance index squared (PUI by default), %^2;
* f2 = sum over PV systems of (available - used)^2, kW^2.

A whole population is evaluated at once through the exact reduced network model
(:class:`~powertrip_env.grid.reduced.ReducedNetwork`, about 10 us a candidate) or, on request,
one OpenDSS solve per candidate. The final front is always re-evaluated with OpenDSS and both
values are kept. A compromise is chosen on the front normalised by the day's references
(F1_ref, F2_ref) with pymoo's multi-criteria decision making: pseudo-weights (default, equal
weights), the knee (high trade-off point) or the weighted sum.

Defaults: population 100, 100 generations, seed 0; the step ``t`` runs with seed
``seed + t``, so one seed gives one day of fronts.
"""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.optimize import minimize

from powertrip_env import metrics
from powertrip_env.errors import ConfigError
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.scenario import Scenario
from powertrip_env.simulator import FeederSimulator, SimState

EVALUATORS = ("reduced", "opendss")
SELECTIONS = ("pseudo_weights", "knee", "weighted_sum")
#: Cost given to a candidate whose power flow fails or leaves the constant-PQ band.
INFEASIBLE_F1 = 1e6
#: A variable whose range is narrower than this (kW) is fixed at its lower bound.
FIXED_TOL_KW = 1e-9


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
    """

    pop_size: int = 100
    n_gen: int = 100
    seed: int = 0
    evaluator: str = "reduced"
    selection: str = "pseudo_weights"
    weights: tuple[float, float] = field(default=(0.5, 0.5))

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
        w = tuple(float(v) for v in self.weights)
        if len(w) != 2 or min(w) < 0 or abs(sum(w) - 1.0) > 1e-9:
            raise ConfigError(
                f"nsga2.weights={self.weights!r} must be two non-negative numbers summing to 1"
            )
        object.__setattr__(self, "weights", w)


class _StepObjectives:
    """Batched f1, f2 of candidate decision vectors at one step."""

    def __init__(self, sim: FeederSimulator, evaluator: str) -> None:
        self.sim = sim
        self.evaluator = evaluator
        self.index = sim.unbalance_index
        self._reduced: ReducedNetwork | None = None
        if evaluator == "reduced":
            if self.index == "power":
                raise ConfigError(
                    "the reduced model gives bus voltages, not line powers: "
                    "objective.unbalance_index=power needs nsga2.evaluator=opendss"
                )
            self._reduced = ReducedNetwork(sim.engine)

    def __call__(self, state: SimState, x: np.ndarray, reduced: bool = True) -> np.ndarray:
        """(B, 2) objectives of the (B, n) decision vectors ``x`` at ``state``'s step."""
        n_cp = self.sim.n_cp
        f2 = metrics.f_curtailment(state.pv_available_kw, x[:, n_cp:])
        if reduced and self._reduced is not None:
            f1 = self._f1_reduced(state, x)
        else:
            f1 = np.array([self._f1_opendss(state, row) for row in x])
        return np.column_stack([f1, f2])

    def _f1_reduced(self, state: SimState, x: np.ndarray) -> np.ndarray:
        assert self._reduced is not None
        n_cp = self.sim.n_cp
        solution = self._reduced.solve(state.load_p_kw, state.load_q_kvar, x[:, :n_cp], x[:, n_cp:])
        phasors = self._reduced.cp_bus_phasors(solution)
        index = metrics.pui(np.abs(phasors)) if self.index == "pui" else metrics.vuf(phasors)
        f1 = metrics.f_unbalance(index)
        bad = ~solution.converged | solution.out_of_band
        return np.where(bad, INFEASIBLE_F1, f1)

    def _f1_opendss(self, state: SimState, x: np.ndarray) -> float:
        engine, n_cp = self.sim.engine, self.sim.n_cp
        engine.reset_solution()
        engine.set_powers(state.load_p_kw, state.load_q_kvar, x[:n_cp], x[n_cp:])
        converged, _ = engine.run_pf()
        if not converged:
            return INFEASIBLE_F1
        if self.index == "power":
            index = metrics.power_unbalance(engine.cp_bus_phase_powers())
        else:
            phasors = engine.cp_bus_phasors()
            index = metrics.pui(np.abs(phasors)) if self.index == "pui" else metrics.vuf(phasors)
        return float(metrics.f_unbalance(index))


class _StepProblem(Problem):
    """pymoo problem over the free variables of one step (fixed ones held at their bound)."""

    def __init__(self, objectives: _StepObjectives, state: SimState, free: np.ndarray) -> None:
        self.objectives = objectives
        self.state = state
        self.free = free
        self.template = state.lower_kw.copy()
        super().__init__(
            n_var=int(free.size),
            n_obj=2,
            xl=state.lower_kw[free],
            xu=state.upper_kw[free],
            vtype=float,
        )

    def full(self, x_free: np.ndarray) -> np.ndarray:
        x = np.tile(self.template, (len(x_free), 1))
        x[:, self.free] = x_free
        return x

    def _evaluate(self, x: np.ndarray, out: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        out["F"] = self.objectives(self.state, self.full(x))


def select_compromise(f_norm: np.ndarray, selection: str, weights: tuple[float, float]) -> int:
    """Index of the chosen point of a normalised front (rows: points; columns: f1, f2)."""
    if len(f_norm) == 1:
        return 0
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
    """

    t: int
    x_kw: np.ndarray
    f_reduced: np.ndarray
    f_opendss: np.ndarray
    chosen: int
    f_no_control: np.ndarray


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
        #: Fronts computed elsewhere (a process pool, see :class:`FrontPool`), by step.
        self.precomputed: dict[int, StepFront] = {}

    def front(self, state: SimState) -> StepFront:
        """Run NSGA-II at ``state``'s step and re-evaluate its front with OpenDSS."""
        cfg = self.config
        free = np.flatnonzero(state.upper_kw - state.lower_kw > FIXED_TOL_KW)
        no_control = state.upper_kw[None, :]
        f_nc = self.objectives(state, no_control, reduced=False)[0]
        if free.size == 0:
            x = state.lower_kw[None, :]
            f = self.objectives(state, x, reduced=False)
            return StepFront(state.t, x, f, f, 0, f_nc)
        problem = _StepProblem(self.objectives, state, free)
        rng = np.random.default_rng(cfg.seed + state.t)
        start = rng.uniform(problem.xl, problem.xu, size=(cfg.pop_size, free.size))
        # Seed the search with both ends: no control (zero curtailment) and all at minimum.
        start[0], start[1] = problem.xu, problem.xl
        result = minimize(
            problem,
            NSGA2(pop_size=cfg.pop_size, sampling=start, eliminate_duplicates=True),
            ("n_gen", cfg.n_gen),
            seed=cfg.seed + state.t,
            verbose=False,
        )
        x = problem.full(np.atleast_2d(result.X))
        f_search = np.atleast_2d(result.F)
        f_check = self.objectives(state, x, reduced=False)
        chosen = select_compromise(f_check / self.refs, cfg.selection, cfg.weights)
        return StepFront(state.t, x, f_search, f_check, chosen, f_nc)

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


def _init_worker(scenario: Scenario, config: NSGA2Config, refs: tuple[float, float]) -> None:
    # Each worker process owns one engine (DESIGN.md §10: never threads sharing one).
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
            initializer=functools.partial(_init_worker, scenario, config, (refs[0], refs[1])),
        )
        self.workers = workers

    def fronts(self, steps: Sequence[int]) -> dict[int, StepFront]:
        """Fronts of ``steps``, keyed by step."""
        steps = list(steps)
        chunk = max(1, len(steps) // (4 * self.workers))
        return dict(zip(steps, self._pool.map(_front_at, steps, chunksize=chunk), strict=True))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> FrontPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
