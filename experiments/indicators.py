"""Quality indicators of controllers against NSGA-II's Pareto fronts (architecture.md §6, §7).

Every indicator works on **normalised costs**: each step's objective vector ``(f1, f2)``
divided by the day's references ``(F1_ref, F2_ref)`` with :func:`powertrip_env.metrics.normalise`
(rewards come back to costs through :func:`powertrip_env.metrics.reward_to_objectives`: the one
sign convention; costs are minimised). A step whose power flow failed costs
``FAILURE_COST`` (10) in each objective, as in the env. The indicators themselves are pymoo's
(which call moocore), never written here:

* hypervolume, :class:`pymoo.indicators.hv.HV`, with the fixed reference point (1.1, 1.1):
  the area dominated by a set of points inside ``[0, 1.1]^2`` (larger is better; a point at
  or beyond 1.1 in an objective adds nothing);
* IGD+, :class:`pymoo.indicators.igd_plus.IGDPlus`, of a point set A against the front R:
  the mean over R's points of the distance by which A falls short of them, counting only
  the objectives where A is worse (0 when A weakly dominates all of R; smaller is better);
* additive epsilon, :class:`pymoo.indicators.epsilon.Epsilon` (moocore's
  ``epsilon_additive``): the smallest ``eps`` such that every point of R is weakly dominated
  by some point of A shifted by ``-eps`` (<= 0 when A weakly dominates R; smaller is better).

For a single controller point A = {a}, both IGD+ and epsilon measure how far the point is
from covering the *whole* front, not only its nearest part; :func:`dominated_by` says whether
the front beats the point outright.

**Comparable steps.** NSGA-II's front at step t is the front of the state NSGA-II's own day
reached. In the seed formulation (no EV energy guarantee) the bounds of a step do not depend
on the past, so every controller faces that same problem and the comparison is exact. With
the guarantee, a controller that delivered a different amount of EV energy before t faces
other CP bounds; :func:`comparable_steps` marks the steps where its EV energy so far equals
NSGA-II's (then its bounds are the same). :func:`day_indicators` averages over the comparable
steps whose front has more than one point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from pymoo.indicators.epsilon import Epsilon
from pymoo.indicators.hv import HV
from pymoo.indicators.igd_plus import IGDPlus

from powertrip_env import metrics
from powertrip_env.episode import FAILURE_COST

if TYPE_CHECKING:  # figures import matplotlib, which unit workers do not need
    from experiments.figures import DayResultLike

#: Hypervolume reference point in normalised objective space (architecture.md §6).
REFERENCE_POINT = np.array([1.1, 1.1])
#: Keys of one scenario-day of the benchmark.
DAY_KEYS = ["day", "seed"]
#: Cumulative CP power (kW x steps) within which two controllers' EV states count as equal.
ENERGY_TOL = 1e-6

FloatArray = npt.NDArray[np.float64]


# --- Points -----------------------------------------------------------------------------------


def normalised_costs(f: npt.ArrayLike, refs: Sequence[float]) -> FloatArray:
    """(..., 2) costs ``[f1 / F1_ref, f2 / F2_ref]``; non-finite values become FAILURE_COST."""
    out = metrics.normalise(np.asarray(f, dtype=float), np.asarray(refs, dtype=float))
    return np.where(np.isfinite(out), out, FAILURE_COST)


def costs_from_rewards(r: npt.ArrayLike) -> FloatArray:
    """Costs from env rewards (the vector reward is the negated normalised cost)."""
    return metrics.reward_to_objectives(r)


def step_costs(steps: pd.DataFrame, refs: Sequence[float]) -> FloatArray:
    """(n_steps, 2) normalised costs of a day's steps; failed power flows cost FAILURE_COST."""
    f = normalised_costs(steps[["f1", "f2"]].to_numpy(dtype=float), refs)
    f[~steps["converged"].to_numpy(dtype=bool)] = FAILURE_COST
    return f


def with_normalised_fronts(fronts: pd.DataFrame, refs: Sequence[float]) -> pd.DataFrame:
    """NSGA-II fronts (:func:`experiments.optimize.fronts_frame`) plus ``f1_norm``, ``f2_norm``.

    The normalised costs are those of the OpenDSS re-check (what a controller's day records).
    """
    f = normalised_costs(fronts[["f1_opendss", "f2_opendss"]].to_numpy(dtype=float), refs)
    return fronts.assign(f1_norm=f[:, 0], f2_norm=f[:, 1])


def controller_points(days: Mapping[str, DayResultLike], refs: Sequence[float]) -> pd.DataFrame:
    """Each controller's point at each step of one day, in normalised costs.

    Columns ``controller``, ``step``, ``f1_norm``, ``f2_norm``.

    Args:
        days: controller label -> its simulated day (``steps`` with ``f1``, ``f2``,
            ``converged``), all on the same scenario-day.
        refs: the day's (F1_ref, F2_ref).
    """
    frames = []
    for label, day in days.items():
        f = step_costs(day.steps, refs)
        frames.append(
            pd.DataFrame(
                {
                    "controller": label,
                    "step": day.steps["step"],
                    "f1_norm": f[:, 0],
                    "f2_norm": f[:, 1],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _points(points: npt.ArrayLike) -> FloatArray:
    p = np.asarray(points, dtype=float)
    if p.ndim == 1:
        p = p[np.newaxis, :]
    if p.ndim != 2 or (p.size and p.shape[1] != 2):
        raise ValueError(f"points must have shape (n, 2) = (f1, f2) rows; got {p.shape}")
    return p


# --- Indicators -------------------------------------------------------------------------------


def hypervolume(points: npt.ArrayLike) -> float:
    """Hypervolume of normalised cost points (n, 2) against (1.1, 1.1); 0 for no points."""
    p = _points(points)
    if len(p) == 0:
        return 0.0
    return float(HV(ref_point=REFERENCE_POINT)(p))


def igd_plus(points: npt.ArrayLike, front: npt.ArrayLike) -> float:
    """IGD+ of the point set (n, 2) against the front (m, 2), both normalised costs."""
    return float(IGDPlus(_points(front))(_points(points)))


def epsilon_additive(points: npt.ArrayLike, front: npt.ArrayLike) -> float:
    """Additive epsilon of the point set (n, 2) against the front (m, 2), normalised costs."""
    return float(Epsilon(_points(front))(_points(points)))


def dominated_by(front: npt.ArrayLike, point: npt.ArrayLike) -> bool:
    """Whether some front point is no worse in both costs and better in one (Pareto)."""
    f, p = _points(front), np.asarray(point, dtype=float)
    return bool(np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)))


# --- Benchmark frames -------------------------------------------------------------------------


def cp_power_columns(results: pd.DataFrame) -> list[str]:
    """The per-CP power columns ``cp_kw_<name>`` of a results frame."""
    return [c for c in results.columns if c.startswith("cp_kw_")]


def comparable_steps(results: pd.DataFrame, energy_guarantee: bool) -> pd.Series:
    """Per results row: whether that controller's step had the same bounds as NSGA-II's.

    Always true in the seed formulation; with the EV energy guarantee, true where the
    controller's EV energy delivered before the step equals NSGA-II's at every CP (the
    bounds then coincide). False on days without an NSGA-II unit.
    """
    if not energy_guarantee:
        return pd.Series(True, index=results.index)
    cols = cp_power_columns(results)
    out = pd.Series(False, index=results.index)
    for _, day in results.groupby(DAY_KEYS, sort=False):
        reference = day[day["controller"] == "nsga2"].set_index("step")[cols]
        if reference.empty:
            continue
        before_ref = reference.sort_index().cumsum() - reference.sort_index()
        for _, rows in day.groupby("controller", sort=False):
            rows = rows.sort_values("step")
            before = rows[cols].cumsum() - rows[cols]
            ref = before_ref.reindex(rows["step"]).to_numpy()
            same = np.all(np.abs(before.to_numpy() - ref) <= ENERGY_TOL, axis=1)
            out.loc[rows.index] = same
    return out


def point_indicators(
    results: pd.DataFrame, fronts: pd.DataFrame, energy_guarantee: bool
) -> pd.DataFrame:
    """Each controller's point at each step against that step's NSGA-II front.

    Args:
        results: the benchmark's tidy results (``day``, ``seed``, ``controller``, ``step``,
            ``f1_norm``, ``f2_norm``, ``cp_kw_<cp>``, ...).
        fronts: the NSGA-II fronts (``day``, ``seed``, ``step``, ``f1_norm``, ``f2_norm``:
            the OpenDSS re-check, normalised).
        energy_guarantee: whether the days used the EV energy guarantee.

    Returns:
        One row per results row that has a front: ``day``, ``seed``, ``step``,
        ``controller``, ``f1_norm``, ``f2_norm``, ``igd_plus``, ``epsilon_additive``,
        ``front_dominates``, ``comparable`` (see the module docstring) and ``n_front`` (points
        on the step's front).
    """
    columns = [*DAY_KEYS, "step", "controller", "f1_norm", "f2_norm"]
    extra = ["igd_plus", "epsilon_additive", "front_dominates", "comparable", "n_front"]
    if results.empty or fronts.empty:
        return pd.DataFrame(columns=columns + extra)
    rows = results[columns].copy()
    rows["comparable"] = comparable_steps(results, energy_guarantee).to_numpy()
    by_step = {
        key: group[["f1_norm", "f2_norm"]].to_numpy()
        for key, group in fronts.groupby([*DAY_KEYS, "step"], sort=False)
    }
    igd, eps, dominated, n_front = [], [], [], []
    for day, seed, step, f1, f2 in rows[[*DAY_KEYS, "step", "f1_norm", "f2_norm"]].itertuples(
        index=False
    ):
        front = by_step.get((day, seed, step))
        if front is None:
            igd.append(np.nan)
            eps.append(np.nan)
            dominated.append(False)
            n_front.append(0)
            continue
        n_front.append(len(front))
        point = np.array([f1, f2])
        igd.append(igd_plus(point, front))
        eps.append(epsilon_additive(point, front))
        dominated.append(dominated_by(front, point))
    rows["igd_plus"], rows["epsilon_additive"] = igd, eps
    rows["front_dominates"] = dominated
    rows["n_front"] = n_front
    has_front = [
        key in by_step for key in zip(rows["day"], rows["seed"], rows["step"], strict=True)
    ]
    return rows[has_front].reset_index(drop=True)


def step_hypervolumes(
    fronts: pd.DataFrame, points: pd.DataFrame, agents: Sequence[str]
) -> pd.DataFrame:
    """Per step: hypervolume of NSGA-II's front and of the set of agent points.

    Args:
        fronts: the NSGA-II fronts (normalised columns ``f1_norm``, ``f2_norm``).
        points: :func:`point_indicators`' frame (the controllers' points).
        agents: the agent controllers whose points form one set per step (a weight sweep).

    Returns:
        ``day``, ``seed``, ``step``, ``n_front``, ``hv_front``, ``hv_agents`` (NaN without
        agents) and ``agents_comparable`` (every agent's step comparable with the front).
    """
    out = []
    agent_points = points[points["controller"].isin(list(agents))]
    by_step = {key: g for key, g in agent_points.groupby([*DAY_KEYS, "step"], sort=False)}
    for (day, seed, step), group in fronts.groupby([*DAY_KEYS, "step"], sort=False):
        front = group[["f1_norm", "f2_norm"]].to_numpy()
        mine = by_step.get((day, seed, step))
        hv_agents, agents_comparable = np.nan, False
        if mine is not None and len(mine) > 0:
            hv_agents = hypervolume(mine[["f1_norm", "f2_norm"]].to_numpy())
            agents_comparable = bool(mine["comparable"].all())
        out.append(
            {
                "day": day,
                "seed": seed,
                "step": step,
                "n_front": len(front),
                "hv_front": hypervolume(front),
                "hv_agents": hv_agents,
                "agents_comparable": agents_comparable,
            }
        )
    return pd.DataFrame(
        out,
        columns=[*DAY_KEYS, "step", "n_front", "hv_front", "hv_agents", "agents_comparable"],
    )


def day_indicators(points: pd.DataFrame) -> pd.DataFrame:
    """Per day, seed and controller: indicator means over the steps compared with the front.

    A step is **compared** when it is comparable (see :func:`comparable_steps`) and its front
    has more than one point: a one-point front (nothing to trade off, e.g. at night with no
    EV and no sun) is the only feasible outcome, so it would only dilute the means.

    Returns ``day``, ``seed``, ``controller``, ``igd_plus_mean``, ``epsilon_additive_mean``,
    ``front_dominates_share`` (share of compared steps where the front dominates the
    point), ``compared_steps`` and ``comparable_share`` (share of all the day's steps that
    are comparable).
    """
    rows = []
    for (day, seed, controller), group in points.groupby([*DAY_KEYS, "controller"], sort=False):
        compared = group[group["comparable"] & (group["n_front"] > 1)]
        rows.append(
            {
                "day": day,
                "seed": seed,
                "controller": controller,
                "igd_plus_mean": float(compared["igd_plus"].mean()),
                "epsilon_additive_mean": float(compared["epsilon_additive"].mean()),
                "front_dominates_share": float(compared["front_dominates"].mean()),
                "compared_steps": len(compared),
                "comparable_share": float(group["comparable"].mean()),
            }
        )
    return pd.DataFrame(rows)
