"""``powertrip reproduce``'s default-day study: PUI over the day per controller, the day's
Pareto front with every controller's day, and their table, from a benchmark's results."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.benchmark_config import TestDay, load_benchmark_config
from experiments.benchmark_reproduce import DAY_FIGURES, _speed, study2_day
from experiments.benchmark_tables import day_points

CPS = ("cp1", "cp2")
DAY = TestDay("summer", "weekday")


def fake_results(n_steps: int = 288) -> pd.DataFrame:
    """A benchmark's results.parquet for the default day, seed 0: two controllers."""
    rng = np.random.default_rng(0)
    frames = []
    for controller, scale in (("no_control", 1.0), ("oracle", 0.5)):
        steps = pd.DataFrame(
            {
                "day": DAY.label,
                "seed": 0,
                "controller": controller,
                "step": np.arange(n_steps),
                "hour": np.arange(n_steps) * 24.0 / n_steps,
                "f1_norm": scale * rng.random(n_steps),
                "f2_norm": (1.0 - scale) * rng.random(n_steps),
            }
        )
        for k, cp in enumerate(CPS):
            steps[f"cp_kw_{cp}"] = 7.0
            steps[f"pui_{cp}"] = scale * (k + 1) * rng.random(n_steps)
        frames.append(steps)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def benchmark_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "benchmark"
    folder.mkdir()
    fake_results().to_parquet(folder / "results.parquet")
    return folder


def test_day_points_are_the_day_totals_and_worst_step() -> None:
    results = fake_results()
    points = day_points(results, DAY.label, 0).set_index("controller")
    oracle = results[results["controller"] == "oracle"]
    assert points.loc["oracle", "f1_total"] == pytest.approx(oracle["f1_norm"].sum())
    assert points.loc["oracle", "f2_total"] == pytest.approx(oracle["f2_norm"].sum())
    worst = oracle[[f"pui_{cp}" for cp in CPS]].to_numpy().max()
    assert points.loc["oracle", "pui_worst_pct"] == pytest.approx(worst)
    assert list(points.index) == ["no_control", "oracle"]
    assert day_points(results, DAY.label, 7).empty


def test_quick_study_draws_pui_over_the_day_and_tabulates_every_controller(
    benchmark_dir: Path, tmp_path: Path
) -> None:
    bench = replace(load_benchmark_config(), days=(DAY,), seeds=(0,))
    lines, written = study2_day(benchmark_dir, bench, tmp_path / "out", front_weights=0)
    assert [p.name for p in written] == ["pui_over_day.png"]
    assert written[0].is_file() and written[0].name in DAY_FIGURES
    text = "\n".join(lines)
    assert "| no control |" in text and "| oracle |" in text
    assert "Pareto front" not in text  # no front without weights


def test_missing_day_gives_a_note_not_a_crash(benchmark_dir: Path, tmp_path: Path) -> None:
    bench = replace(load_benchmark_config(), days=(TestDay("winter", "weekend"),), seeds=(0,))
    lines, written = study2_day(benchmark_dir, bench, tmp_path / "out", front_weights=0)
    assert written == [] and "No benchmark results" in lines[0]


@pytest.mark.slow
def test_day_front_figure_puts_the_oracle_front_under_the_controllers(
    benchmark_dir: Path, tmp_path: Path
) -> None:
    bench = replace(load_benchmark_config(), days=(DAY,), seeds=(0,))
    lines, written = study2_day(benchmark_dir, bench, tmp_path / "out", front_weights=2)
    assert [p.name for p in written] == list(DAY_FIGURES)
    assert all(p.is_file() for p in written)
    rows = [line.split("|") for line in lines if line.startswith(("| 0.01 |", "| 0.99 |"))]
    assert len(rows) == 2
    # Unbalance traded for curtailment: more weight on f1, less f1 and more f2.
    assert float(rows[1][2]) < float(rows[0][2]) and float(rows[1][3]) > float(rows[0][3])


def test_speed_benchmarks_run_with_their_arguments_and_keep_their_output(tmp_path: Path) -> None:
    lines = _speed(tmp_path, ("scalar_paths --step 5",))
    assert lines[0].startswith("- `python benchmarks/scalar_paths.py --step 5`: ok, ")
    output = (tmp_path / "speed" / "scalar_paths_step_5.txt").read_text()
    assert "step 5," in output and "PUI at the CP buses" in output
