"""Receding-horizon (look-ahead) control: plan the next hours, apply the first step.

At every step the controller plans the next ``horizon_h`` hours with the oracle's machinery
(:class:`~baselines.oracle.PlanProblem`, :func:`~baselines.oracle.solve_plan`): the same
weighted normalised cost, the plugged-in EVs' energy as budgets (all of it when the EV leaves
inside the horizon; otherwise at least what the charger could no longer deliver after the
horizon), and applies the plan's first step. The next step plans again from the previous
plan, shifted by one step.

What it knows about the horizon (``forecast``):

* ``perfect``: the day's actual loads and PV, and the EVs that will arrive inside the
  horizon with their departure and energy (what the oracle knows, over a shorter window);
* ``persistence``: what a controller could have: the current step's loads and PV held over
  the horizon, and only the EVs plugged in now (their departure and energy, as a driver
  states them at plug-in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from baselines.oracle import (
    EnergyBudget,
    OracleConfig,
    PlanProblem,
    reduced_network,
    solve_plan,
)
from powertrip_env.errors import ConfigError
from powertrip_env.simulator import FeederSimulator, SimState

Forecast = Literal["persistence", "perfect"]
FORECASTS: tuple[Forecast, ...] = get_args(Forecast)


@dataclass(frozen=True)
class LookAheadConfig:
    """Settings of the receding-horizon controller.

    Attributes:
        horizon_h: hours planned ahead at every step (> 0).
        forecast: ``perfect`` or ``persistence`` (see the module docstring).
        weights: (w_unbalance, w_curtailment), summing to 1.
        max_iter: projected-gradient iterations per plan at most.
        stall_iter: a plan stops when its cost stalls over this many iterations.
    """

    horizon_h: float = 4.0
    forecast: Forecast = "persistence"
    weights: tuple[float, float] = field(default=(0.5, 0.5))
    max_iter: int = 60
    stall_iter: int = 5

    def __post_init__(self) -> None:
        if not self.horizon_h > 0.0:
            raise ConfigError(f"lookahead.horizon_h={self.horizon_h!r} must be > 0 hours")
        if self.forecast not in FORECASTS:
            raise ConfigError(f"lookahead.forecast={self.forecast!r} is not one of {FORECASTS}")
        # The plan's own settings validate the rest (naming oracle.<field>).
        self.plan_config()

    def plan_config(self) -> OracleConfig:
        return OracleConfig(
            weights=self.weights, max_iter=self.max_iter, stall_iter=self.stall_iter
        )


class LookAheadController:
    """Plans the next ``horizon_h`` hours at every step and applies the first (a Controller).

    Args:
        sim: the simulator the day runs in.
        config: horizon, forecast and weights.
        refs: the day's (F1_ref, F2_ref); computed when omitted.
    """

    name = "lookahead"

    def __init__(
        self,
        sim: FeederSimulator,
        config: LookAheadConfig | None = None,
        refs: tuple[float, float] | None = None,
    ) -> None:
        self.config = config or LookAheadConfig()
        if not sim.ev.energy_guarantee:
            raise ConfigError(
                "look-ahead control plans the EVs' energy: it needs ev.energy_guarantee: true"
            )
        self.sim = sim
        self.refs = refs if refs is not None else sim.objective_refs()
        self.network = reduced_network(sim)
        self.horizon = max(1, math.ceil(self.config.horizon_h / sim.dt_h - 1e-9))
        self._plan_config = self.config.plan_config()
        self._previous: tuple[int, np.ndarray] | None = None
        #: Projected-gradient iterations of each step's plan (0: nothing to decide).
        self.iterations: list[int] = []

    def _budgets(self, state: SimState, end: int) -> tuple[np.ndarray, tuple[EnergyBudget, ...]]:
        """(H, n_cp) CP maxima over the horizon and the EVs' energy budgets."""
        sim, t, dt = self.sim, state.t, self.sim.dt_h
        cp_upper = np.zeros((end - t, sim.n_cp))
        budgets = []
        stops = sim.ev.stop_at  # (n_cp, T) first step after the plugged-in EV leaves

        def add(cp: int, start: int, stop: int, energy_kwh: float) -> None:
            last = min(stop, end)
            cp_upper[start - t : last - t, cp] = sim.cp_p_max_kw[cp]
            after_kwh = sim.cp_p_max_kw[cp] * (stop - last) * dt
            budgets.append(
                EnergyBudget(cp, start - t, last - t, max(0.0, energy_kwh - after_kwh), energy_kwh)
            )

        for cp in np.flatnonzero(state.plugged):
            if state.remaining_kwh[cp] > 0.0:
                add(int(cp), t, int(stops[cp, t]), float(state.remaining_kwh[cp]))
        if self.config.forecast == "perfect":
            for s in sim.ev.sessions:
                if t < s.start < end:
                    add(s.cp, s.start, s.stop, s.energy_kwh)
        return cp_upper, tuple(budgets)

    def _forecast(self, state: SimState, end: int) -> tuple[np.ndarray, ...]:
        """(H, ...) loads P, Q and PV availability over the horizon."""
        t = state.t
        if self.config.forecast == "perfect":
            p = self.sim.profiles
            return p.load_p_kw[t:end], p.load_q_kvar[t:end], p.pv_available_kw[t:end]
        h = end - t
        return (
            np.repeat(state.load_p_kw[None], h, axis=0),
            np.repeat(state.load_q_kvar[None], h, axis=0),
            np.repeat(state.pv_available_kw[None], h, axis=0),
        )

    def act(self, state: SimState) -> np.ndarray:
        """The first step of the plan over the next ``horizon_h`` hours, kW."""
        if not np.any(state.upper_kw - state.lower_kw > 1e-9):
            self.iterations.append(0)
            self._previous = None
            return state.upper_kw.copy()
        end = min(state.t + self.horizon, self.sim.n_steps)
        load_p, load_q, available = self._forecast(state, end)
        cp_upper, budgets = self._budgets(state, end)
        problem = PlanProblem(
            self.network,
            self.sim.unbalance_index,
            load_p,
            load_q,
            available,
            cp_upper,
            budgets,
            self.sim.dt_h,
            self.config.weights,
            self.refs,
            self._plan_config.fd_kw,
        )
        start = None
        if self._previous is not None and self._previous[0] == state.t - 1:
            shifted = problem.start()  # the new last step from the flat-rate start
            previous = self._previous[1][1:]
            shifted[: len(previous)] = previous[: len(shifted)]
            start = shifted
        plan = solve_plan(problem, self._plan_config, start)
        self.iterations.append(plan.iterations)
        self._previous = (state.t, plan.x_kw)
        return plan.x_kw[0].copy()
