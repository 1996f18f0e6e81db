"""The benchmark's units and their files: what one unit is, returns and leaves on disk.

A unit (a controller on a test day with a seed) runs independently (:mod:`experiments.benchmark`
schedules them); its files in ``<run>/units/`` are written atomically, the status record last,
so a unit counts as done only when everything it wrote is there. The tables and the report
(:mod:`experiments.benchmark_tables`, :mod:`experiments.report`) read them back from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments import runs
from experiments.benchmark_config import BenchmarkConfig, TestDay

UNITS_DIR = "units"


# --- Units ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One independent piece of the benchmark: a controller on a test day with a seed."""

    day: TestDay
    seed: int
    controller: str

    @property
    def id(self) -> str:
        """File-name-safe identifier, e.g. ``summer-weekday__seed0__nsga2``."""
        return f"{self.day.label}__seed{self.seed}__{self.controller}"


@dataclass
class UnitOutput:
    """What a unit returns to the driver.

    Attributes:
        unit: the unit.
        ok: whether it finished.
        error: ``<ExceptionType>: message`` when it failed.
        steps: the day's per-step metrics (``DayLog`` columns, ``f1_norm``, ``f2_norm``,
            ``decision_s``), or None when it failed.
        fronts: NSGA-II's fronts (:func:`experiments.optimize.fronts_frame` columns plus
            ``f1_norm``, ``f2_norm``), empty for other controllers.
        meta: day facts for the report: references, step length, summary, EV energy per
            CP, the lowest-voltage profile, timings (and the traceback of a failure).
    """

    unit: Unit
    ok: bool
    error: str | None = None
    steps: pd.DataFrame | None = None
    fronts: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def plan_units(config: BenchmarkConfig) -> list[Unit]:
    """Every unit of the grid, in report order (day, seed, controller)."""
    return [
        Unit(day, seed, controller)
        for day in config.days
        for seed in config.seeds
        for controller in config.controllers
    ]


def failed_output(unit: Unit, exc: BaseException, trace: str = "") -> UnitOutput:
    """A failed unit's output, naming the error."""
    return UnitOutput(unit, False, error=f"{type(exc).__name__}: {exc}", meta={"traceback": trace})


# --- Unit files ---------------------------------------------------------------------------------


def _unit_paths(units_dir: Path, unit_id: str) -> tuple[Path, Path, Path]:
    """(status JSON, steps parquet, fronts parquet) of a unit."""
    return (
        units_dir / f"{unit_id}.json",
        units_dir / f"{unit_id}.steps.parquet",
        units_dir / f"{unit_id}.fronts.parquet",
    )


def write_unit(units_dir: Path, out: UnitOutput) -> None:
    """Write a unit's files atomically, its status JSON last (the unit counts done then)."""
    status, steps, fronts = _unit_paths(units_dir, out.unit.id)
    if out.ok:
        assert out.steps is not None
        runs.write_parquet(steps, out.steps)
        runs.write_parquet(fronts, out.fronts if out.fronts is not None else pd.DataFrame())
    record = {
        "unit": {
            "id": out.unit.id,
            **asdict(out.unit.day),
            "seed": out.unit.seed,
            "controller": out.unit.controller,
        },
        "status": "ok" if out.ok else "failed",
        "error": out.error,
        "meta": out.meta,
    }
    runs.write_json(status, record)


def read_status(units_dir: Path, unit_id: str) -> dict[str, Any] | None:
    """The unit's status record when it finished (its files all there), else None."""
    status, steps, fronts = _unit_paths(units_dir, unit_id)
    if not status.is_file():
        return None
    record: dict[str, Any] = json.loads(status.read_text(encoding="utf-8"))
    if record.get("status") == "ok" and not (steps.is_file() and fronts.is_file()):
        return None
    return record


def finished_units(units_dir: Path, units: Iterable[Unit]) -> set[str]:
    """Ids of the units that finished successfully."""
    out = set()
    for unit in units:
        record = read_status(units_dir, unit.id)
        if record is not None and record["status"] == "ok":
            out.add(unit.id)
    return out
