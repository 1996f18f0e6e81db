"""Day-level evaluation of controllers on chosen days, in the normalised objective space.

The **normalised weighted day cost** of a controller on a day is the mean over the day's
steps of ``w . [f1(t) / F1_ref, f2(t) / F2_ref]`` (architecture.md §6 references of that day; a
step whose power flow failed counts ``FAILURE_COST`` in each objective, as in the env). It is
0 for a perfect day and about ``w . [mean f1 / max f1, ...]`` for no control; lower is better.
It equals minus the mean scalarised reward an agent collects over the day, and it is the
number on which agents, NSGA-II and no control are compared.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from agents.config import check_weights
from powertrip_env.env import PowerTripEnv
from powertrip_env.episode import FAILURE_COST
from powertrip_env.simulator import Controller, SimState


def normalised_objectives(steps: pd.DataFrame, refs: tuple[float, float]) -> np.ndarray:
    """(n_steps, 2) ``[f1 / F1_ref, f2 / F2_ref]`` per step; failed steps cost ``FAILURE_COST``."""
    f = steps[["f1", "f2"]].to_numpy(dtype=float) / np.asarray(refs, dtype=float)
    failed = ~steps["converged"].to_numpy(dtype=bool) | ~np.isfinite(f).all(axis=1)
    f[failed] = FAILURE_COST
    return f


def weighted_day_cost(
    steps: pd.DataFrame, refs: tuple[float, float], weights: Sequence[float]
) -> float:
    """Mean over the day's steps of ``w . f_norm(t)`` (minimised; see the module docstring)."""
    w = np.asarray(check_weights(weights), dtype=float)
    return float((normalised_objectives(steps, refs) @ w).mean())


class TimedController:
    """A controller proxy that adds up the wall time spent in ``act`` (decision time)."""

    def __init__(self, inner: Controller) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def act(self, state: SimState) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.inner.act(state)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out


@dataclass
class Evaluation:
    """Controllers on days.

    Attributes:
        days: one row per controller x day: ``controller``, ``day_seed``, every
            ``DayResult.summary()`` metric (architecture.md §7), ``f1_norm_mean``, ``f2_norm_mean``,
            ``weighted_cost`` and ``decision_s_per_step`` (wall time in ``act``).
        steps: one row per controller x day x timestep with every per-step metric.
    """

    days: pd.DataFrame
    steps: pd.DataFrame

    def mean_by_controller(self) -> pd.DataFrame:
        """Mean of every numeric column over the days, one row per controller (input order)."""
        numeric = self.days.drop(columns=["day_seed"]).groupby("controller", sort=False)
        return numeric.mean(numeric_only=True)


def evaluate_days(
    controllers: Mapping[str, Controller],
    env: PowerTripEnv,
    days: Sequence[int],
    weights: Sequence[float],
    steps: int | None = None,
) -> Evaluation:
    """Run every controller over every day on ``env``'s simulator and score it.

    Args:
        controllers: label -> controller (``act(SimState) -> kW setpoints``).
        env: supplies the day (``reset(options={"day_seed": d})``), its simulator and its
            normalisation references; day profiles stay cached in the env (8 days at most).
        days: day seeds.
        weights: (w1, w2) of the weighted day cost.
        steps: only the first ``steps`` of each day (quick checks; None: the whole day).
    """
    w = check_weights(weights)
    day_rows, step_frames = [], []
    for day in days:
        env.reset(options={"day_seed": int(day)})
        sim, refs = env.sim, env.refs
        assert sim is not None  # set by reset
        for label, controller in controllers.items():
            timed = TimedController(controller)
            result = sim.run(timed, steps=steps)
            f_norm = normalised_objectives(result.steps, refs)
            day_rows.append(
                {
                    "controller": label,
                    "day_seed": int(day),
                    **result.summary(),
                    "f1_norm_mean": float(f_norm[:, 0].mean()),
                    "f2_norm_mean": float(f_norm[:, 1].mean()),
                    "weighted_cost": float((f_norm @ np.asarray(w)).mean()),
                    "decision_s_per_step": timed.seconds / max(timed.calls, 1),
                }
            )
            step_frames.append(result.steps.assign(controller=label, day_seed=int(day)))
    return Evaluation(days=pd.DataFrame(day_rows), steps=pd.concat(step_frames, ignore_index=True))
