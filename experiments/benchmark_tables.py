"""The benchmark's tidy tables, assembled from its finished units (architecture.md §9).

Read back from ``units/`` (so a resumed benchmark covers the units of every session), in the
plan's order (day, seed, controller, step), whatever order the units finished in:

* ``results.parquet``: one row per controller x day x seed x timestep, every metric;
* ``fronts.parquet``: NSGA-II's fronts, one row per front point;
* ``units.parquet``: one row per unit: status, error, wall time, decision time, references;
* ``indicators.parquet``: each controller's point against the step's front
  (:func:`experiments.indicators.point_indicators`);
* ``hypervolume.parquet``: per step, hypervolume of the front and of the agents' points;
* ``days.parquet``: one row per controller x day x seed: every architecture.md §7 day total
  (``DayResult.summary()``), mean normalised costs, the weighted day cost, the decision time
  per step and the day's indicator means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments import indicators, runs
from experiments.benchmark_config import BenchmarkConfig
from experiments.benchmark_units import UNITS_DIR, Unit, read_status

KEYS = ["day", "season", "day_type", "seed", "controller"]


#: How figures and the reproduction name the benchmark's controllers (agents keep theirs).
CONTROLLER_LABELS = {
    "no_control": "no control",
    "flat_rate": "flat rate",
    "pv_following": "PV following",
    "volt_watt": "volt-watt",
    "nsga2": "NSGA-II (per step)",
    "lookahead_persistence": "look-ahead, persistence",
    "lookahead_perfect": "look-ahead, perfect forecasts",
    "oracle": "oracle",
}


def controller_label(name: str) -> str:
    """A benchmark controller's display name (an agent's is its own)."""
    return CONTROLLER_LABELS.get(name, name)


def _frame(path: Path, unit: Unit) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if frame.empty:
        return frame
    frame = frame.assign(
        day=unit.day.label,
        season=unit.day.season,
        day_type=unit.day.day_type,
        seed=unit.seed,
        controller=unit.controller,
    )
    return frame[KEYS + [c for c in frame.columns if c not in KEYS]]


def collect(run_dir: Path, units: list[Unit]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(results, fronts, units table) from the unit files, in plan order."""
    units_dir = run_dir / UNITS_DIR
    steps, fronts, table = [], [], []
    for unit in units:
        record = read_status(units_dir, unit.id)
        row: dict[str, Any] = {
            "unit": unit.id,
            "day": unit.day.label,
            "seed": unit.seed,
            "controller": unit.controller,
            "status": "missing" if record is None else record["status"],
            "error": None if record is None else record["error"],
        }
        meta = {} if record is None else record["meta"]
        refs = meta.get("refs") or [np.nan, np.nan]
        row |= {
            "wall_s": meta.get("wall_s", np.nan),
            "decision_s_per_step": meta.get("decision_s_per_step", np.nan),
            "f1_ref": refs[0],
            "f2_ref": refs[1],
        }
        table.append(row)
        if row["status"] == "ok":
            steps.append(_frame(units_dir / f"{unit.id}.steps.parquet", unit))
            front = _frame(units_dir / f"{unit.id}.fronts.parquet", unit)
            if not front.empty:
                fronts.append(front.drop(columns=["controller"]))
    results = pd.concat(steps, ignore_index=True) if steps else pd.DataFrame(columns=KEYS)
    front_frame = pd.concat(fronts, ignore_index=True) if fronts else pd.DataFrame()
    return results, front_frame, pd.DataFrame(table)


def unit_summaries(run_dir: Path, units: list[Unit]) -> dict[str, dict[str, Any]]:
    """Unit id -> its ``meta`` (summary, EV energy, worst voltages, ...), finished units only."""
    out = {}
    for unit in units:
        record = read_status(run_dir / UNITS_DIR, unit.id)
        if record is not None and record["status"] == "ok":
            out[unit.id] = record["meta"]
    return out


def day_table(
    results: pd.DataFrame,
    metas: dict[str, dict[str, Any]],
    units: list[Unit],
    points: pd.DataFrame,
    weights: tuple[float, float],
) -> pd.DataFrame:
    """One row per finished unit: day totals, normalised costs, decision time, indicators."""
    rows = []
    w = np.asarray(weights, dtype=float)
    grouped = {key: g for key, g in results.groupby(["day", "seed", "controller"], sort=False)}
    for unit in units:
        meta = metas.get(unit.id)
        steps = grouped.get((unit.day.label, unit.seed, unit.controller))
        if meta is None or steps is None:
            continue
        f_norm = steps[["f1_norm", "f2_norm"]].to_numpy()
        rows.append(
            {
                "day": unit.day.label,
                "season": unit.day.season,
                "day_type": unit.day.day_type,
                "seed": unit.seed,
                "controller": unit.controller,
                **meta["summary"],
                "f1_norm_mean": float(f_norm[:, 0].mean()),
                "f2_norm_mean": float(f_norm[:, 1].mean()),
                "weighted_cost": float((f_norm @ w).mean()),
                "decision_ms_per_step": 1e3 * float(steps["decision_s"].mean()),
            }
        )
    days = with_optimality_gap(pd.DataFrame(rows))
    if days.empty or points.empty:
        return days
    per_day = indicators.day_indicators(points)
    return days.merge(per_day, on=["day", "seed", "controller"], how="left")


def with_optimality_gap(days: pd.DataFrame) -> pd.DataFrame:
    """``days`` plus ``optimality_gap`` = (cost - oracle) / (no control - oracle).

    Costs are the weighted day costs of the same day and seed; NaN where the day lacks the
    oracle or no control (or they cost the same).
    """
    if days.empty:
        return days
    gap = np.full(len(days), np.nan)
    for _, group in days.groupby(["day", "seed"], sort=False):
        cost = dict(zip(group["controller"], group["weighted_cost"], strict=True))
        best, worst = cost.get("oracle"), cost.get("no_control")
        if best is not None and worst is not None and worst > best:
            rows = days.index.get_indexer(group.index)
            gap[rows] = (group["weighted_cost"].to_numpy() - best) / (worst - best)
    return days.assign(optimality_gap=gap)


def write_tables(run_dir: Path, config: BenchmarkConfig, units: list[Unit]) -> dict[str, str]:
    """Write every table of the run folder; return the failed units (id -> error)."""
    results, fronts, table = collect(run_dir, units)
    runs.write_parquet(run_dir / "results.parquet", results)
    runs.write_parquet(run_dir / "fronts.parquet", fronts)
    runs.write_parquet(run_dir / "units.parquet", table)
    metas = unit_summaries(run_dir, units)
    guarantee = any(m.get("energy_guarantee", True) for m in metas.values())
    points = indicators.point_indicators(results, fronts, guarantee)
    agents = [a.name for a in config.agents]
    hv = (
        indicators.step_hypervolumes(fronts, points, agents) if not fronts.empty else pd.DataFrame()
    )
    runs.write_parquet(run_dir / "indicators.parquet", points)
    runs.write_parquet(run_dir / "hypervolume.parquet", hv)
    days = day_table(results, metas, units, points, config.weights)
    runs.write_parquet(run_dir / "days.parquet", days)
    failed = table[table["status"] != "ok"]
    return dict(zip(failed["unit"], failed["error"].fillna("not run"), strict=True))


def day_points(results: pd.DataFrame, day: str, seed: int) -> pd.DataFrame:
    """One row per controller of one day and seed, in the results' order: the day totals
    ``f1_total`` = sum_t f1_t / F1_ref and ``f2_total`` = sum_t f2_t / F2_ref (a point of the
    day's Pareto plane), and ``pui_worst_pct`` / ``pui_mean_pct``: the worst step's and the
    mean PUI over the CP buses, percent.
    """
    rows = results[(results["day"] == day) & (results["seed"] == seed)]
    cps = [c.removeprefix("cp_kw_") for c in rows.columns if c.startswith("cp_kw_")]
    out = []
    for controller, steps in rows.groupby("controller", sort=False):
        pui = steps[[f"pui_{cp}" for cp in cps]].to_numpy(dtype=float)
        out.append(
            {
                "controller": str(controller),
                "f1_total": float(steps["f1_norm"].sum()),
                "f2_total": float(steps["f2_norm"].sum()),
                "pui_worst_pct": float(pui.max()) if pui.size else np.nan,
                "pui_mean_pct": float(pui.mean()) if pui.size else np.nan,
            }
        )
    return pd.DataFrame(
        out, columns=["controller", "f1_total", "f2_total", "pui_worst_pct", "pui_mean_pct"]
    )
