"""``powertrip reproduce``: regenerate the README's figures and tables from scratch.

One command, in order, each step through the library the other commands use:

1. the feeder drawing (``powertrip draw``);
2. study 1, a day without control (``powertrip simulate``, seed 0);
3. study 2, the day under NSGA-II (``powertrip optimize``, seed 0, population 100,
   100 generations): the README's results table and figures;
4. the benchmark of ``experiments/configs/benchmark.yaml`` (``powertrip benchmark``);
5. from the benchmark's default day (seed 0): PUI over the day per controller
   (``figures/pui_over_day.png``) and the day's Pareto front, the oracle planned at
   ``FRONT_WEIGHTS`` weights, with every controller's day point (``figures/day_pareto.png``),
   and their table in ``REPRODUCE.md``;
6. the speed benchmarks the README quotes (``benchmarks/*.py``, when the source tree is
   there), their output saved as text.

Everything goes to ``<out>/reproduce__<time>/``: the run folders, ``feeder.png``,
``speed/*.txt`` and ``REPRODUCE.md`` (the README's tables as regenerated, the run folders and
the run time). ``--update-docs`` also copies the README's figures into ``docs/figures/``.
``--quick`` runs the same pipeline on a tiny budget (NSGA-II population 8 x 3 generations,
one test day, two seeds, no look-ahead controllers, no day front, no speed benchmarks) to
check that it works; its numbers are not the README's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from experiments import runs
from experiments.benchmark_config import (
    BenchmarkConfig,
    NSGA2Settings,
    TestDay,
    load_benchmark_config,
)
from powertrip_env.config import ScenarioConfig
from powertrip_env.errors import ConfigError

#: The speed benchmarks whose output the README quotes (``benchmarks/<name>.py``).
SPEED_BENCHMARKS = (
    "engine",
    "day",
    "reduced",
    "env_step",
    "scalar_paths",
    "topology",
    "render",
    "nsga2",
    "nsga2 --day",
    "oracle",
)
#: Figures of the NSGA-II study that the README shows, copied by ``--update-docs``.
README_FIGURES = ("unbalance.png", "voltage_drop.png", "pv_usage.png", "pareto_fronts.png")
#: Figures of the benchmark's default day that the README shows (``<reproduction>/figures/``),
#: copied by ``--update-docs``; the day front only without ``--quick``.
DAY_FIGURES = ("pui_over_day.png", "day_pareto.png")
#: Weights of the day's Pareto front, w1 from 0 to 1 (the oracle plans the day at each).
FRONT_WEIGHTS = 11
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ReproduceArgs:
    """Arguments of ``powertrip reproduce``."""

    quick: bool = False
    """Tiny budget: check that the pipeline runs (its numbers are not the README's)."""
    out: str = "runs"
    """Folder under which ``reproduce__<time>/`` is created."""
    workers: int = 2
    """Processes of the benchmark."""
    update_docs: bool = False
    """Copy the README's figures into ``docs/figures/`` (not with ``quick``)."""
    speed: bool = True
    """Run the speed benchmarks (skipped with ``quick``)."""
    agents: bool = False
    """Also run the agents' quality benchmark (``benchmarks/agents_quality.py``: trains five PPO
    agents on the batched env and runs NSGA-II at their weights; about 45 minutes on 2 cores,
    less where NSGA-II's day results are already in its cache)."""

    def __post_init__(self) -> None:
        if self.quick and self.update_docs:
            raise ConfigError("--update-docs with --quick would put toy figures in the README")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers={self.workers!r} must be an integer >= 1")


@dataclass(frozen=True)
class Reproduction:
    """What a reproduction wrote, and how long it took."""

    folder: Path
    simulate_dir: Path
    optimize_dir: Path
    benchmark_dir: Path
    seconds: float


def _readme_table(summary: dict[str, dict[str, float]]) -> list[str]:
    """The README's study-2 table from ``powertrip optimize``'s ``summary.json``."""
    nc, smart = summary["no control"], summary["NSGA-II"]

    def pv(s: dict[str, float]) -> str:
        text = f"{s['pv_used_kwh']:.1f} / {s['pv_available_kwh']:.1f}"
        if s["pv_used_kwh"] < s["pv_available_kwh"] - 1e-9:
            text += f" ({100 * s['pv_usage_efficiency']:.1f} %)"
        return text

    rows = [
        ("f1 total (sum over steps of sum PUI², %²)", lambda s: f"{s['f1_total']:.4g}"),
        ("f2 total (kW²)", lambda s: f"{s['f2_total']:.4g}"),
        ("mean PUI at the CP buses (%)", lambda s: f"{s['pui_mean_pct']:.2f}"),
        ("max PUI at the CP buses (%)", lambda s: f"{s['pui_max_pct']:.2f}"),
        ("max VUF at the CP buses (%)", lambda s: f"{s['vuf_max_pct']:.2f}"),
        ("PV used / available (kWh)", pv),
        (
            "EV energy delivered / requested (kWh)",
            lambda s: f"{s['ev_delivered_kwh']:.2f} / {s['ev_requested_kwh']:.2f}",
        ),
        (
            "lowest / highest phase voltage (pu of 240.2 V)",
            lambda s: f"{s['v_min_pu']:.3f} / {s['v_max_pu']:.3f}",
        ),
        (
            "bus-phase-steps outside the UK statutory limits",
            lambda s: f"{int(s['n_outside_uk_statutory']):,}",
        ),
        ("losses (kWh)", lambda s: f"{s['losses_kwh']:.2f}"),
    ]
    lines = ["| metric | no control | NSGA-II |", "|---|---|---|"]
    return lines + [f"| {label} | {cell(nc)} | {cell(smart)} |" for label, cell in rows]


def _speed(folder: Path, names: tuple[str, ...] = SPEED_BENCHMARKS) -> list[str]:
    """Run the benchmark scripts ``names`` (a script's name, then its arguments), saving each
    one's output under ``speed/``; return report lines."""
    scripts = REPO_ROOT / "benchmarks"
    if not scripts.is_dir():
        return ["Speed benchmarks skipped: no benchmarks/ folder (not a source checkout)."]
    lines = []
    for command in names:
        name, *script_args = command.split()
        output = "_".join([name, *(a.lstrip("-") for a in script_args)]) + ".txt"
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(scripts / f"{name}.py"), *script_args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        runs.write_text(folder / "speed" / output, done.stdout + done.stderr)
        status = "ok" if done.returncode == 0 else f"exit status {done.returncode}"
        lines.append(
            f"- `python {' '.join(['benchmarks/' + name + '.py', *script_args])}`: {status}, "
            f"{time.perf_counter() - start:.0f} s, "
            f"output in `speed/{output}`"
        )
    return lines


def _copy_docs(optimize_dir: Path, folder: Path) -> list[Path]:
    docs = REPO_ROOT / "docs" / "figures"
    docs.mkdir(parents=True, exist_ok=True)
    copied = [Path(shutil.copy2(folder / "feeder.png", docs / "feeder.png"))]
    for name in README_FIGURES:
        copied.append(Path(shutil.copy2(optimize_dir / "figures" / name, docs / name)))
    for name in DAY_FIGURES:
        if (folder / "figures" / name).is_file():
            copied.append(Path(shutil.copy2(folder / "figures" / name, docs / name)))
    return copied


def _default_day(bench: BenchmarkConfig, base: ScenarioConfig) -> TestDay:
    """The benchmark day that is the scenario's own day (else the benchmark's first)."""
    own = TestDay(base.profiles.season, base.profiles.day_type)
    return own if own in bench.days else bench.days[0]


def study2_day(
    benchmark_dir: Path,
    bench: BenchmarkConfig,
    folder: Path,
    front_weights: int = FRONT_WEIGHTS,
) -> tuple[list[str], list[Path]]:
    """The default day's figures and table from a finished benchmark; return the report
    lines and the figures written (under ``folder/figures/``).

    The day is the scenario's own (seed: the benchmark's first); the controllers' steps come
    from the benchmark's ``results.parquet``. ``front_weights`` >= 2 also plans that day with
    the oracle at as many weights (:func:`baselines.oracle.day_front`) for the day's Pareto
    front, whole days only (``bench.steps`` None); fewer skip it.
    """
    from baselines.oracle import day_front
    from experiments.benchmark_config import day_scenario
    from experiments.benchmark_tables import controller_label, day_points
    from experiments.figures import plot_day_front, plot_pui_over_day
    from powertrip_env.scenario import build_scenario
    from powertrip_env.simulator import DayResult, FeederSimulator

    base = bench.base_scenario()
    day, seed = _default_day(bench, base), bench.seeds[0]
    results = pd.read_parquet(benchmark_dir / "results.parquet")
    rows = results[(results["day"] == day.label) & (results["seed"] == seed)]
    if rows.empty:
        return [f"No benchmark results for {day.label}, seed {seed}: no day figures.", ""], []
    out_dir = folder / "figures"
    when = f"{day.label}, seed {seed}, w = {bench.weights}"
    dt_h = float(rows["hour"].iloc[1] - rows["hour"].iloc[0]) if len(rows) > 1 else 1.0
    days = {
        controller_label(str(c)): DayResult(
            steps=g.reset_index(drop=True),
            worst_v_pu=None,
            ev_requested_kwh=np.zeros(0),
            ev_unserved_kwh=np.zeros(0),
            dt_h=dt_h,
        )
        for c, g in rows.groupby("controller", sort=False)
    }
    written = [plot_pui_over_day(days, out_dir)]
    points = day_points(results, day.label, seed)
    w1, w2 = bench.weights
    cost = w1 * points["f1_total"] + w2 * points["f2_total"]
    lines = [
        f"## Study 2: every controller on the default day ({when})",
        "",
        "| controller | Σ f1/F1_ref | Σ f2/F2_ref | day cost w·Σ f/F_ref "
        "| worst-step PUI (%) | mean PUI (%) |",
        "|---|---|---|---|---|---|",
    ]
    for row, c in zip(points.itertuples(index=False), cost, strict=True):
        lines.append(
            f"| {controller_label(str(row.controller))} | {row.f1_total:.3f} | {row.f2_total:.3f} "
            f"| {c:.3f} | {row.pui_worst_pct:.3f} | {row.pui_mean_pct:.3f} |"
        )
    lines.append("")
    if front_weights >= 2 and bench.steps is None:
        with FeederSimulator(build_scenario(day_scenario(base, day), seed)) as sim:
            front = day_front(sim, sim.objective_refs(), front_weights)
        marked = {
            controller_label(c) + (f" (w = {bench.weights})" if c == "oracle" else ""): (a, b)
            for c, a, b in points[["controller", "f1_total", "f2_total"]].itertuples(index=False)
        }
        written.append(
            plot_day_front(
                [(p.f1_total, p.f2_total) for p in front],
                marked,
                out_dir,
                front_weights=[p.weights[0] for p in front],
                title=f"The day's Pareto front and each controller's day ({when})",
            )
        )
        lines += [
            "The day's Pareto front (the oracle at w = (w1, 1 - w1), replayed in OpenDSS):",
            "",
            "| w1 | Σ f1/F1_ref | Σ f2/F2_ref | Frank-Wolfe gap |",
            "|---|---|---|---|",
            *[
                f"| {p.weights[0]:.2f} | {p.f1_total:.3f} | {p.f2_total:.3f} | {p.gap:.3f} |"
                for p in front
            ],
            "",
        ]
    lines += ["Figures: " + ", ".join(f"`figures/{p.name}`" for p in written), ""]
    return lines, written


def reproduce(args: ReproduceArgs) -> Reproduction:
    """Run the whole reproduction (see the module docstring) and return what it wrote."""
    from experiments.benchmark import run_benchmark
    from experiments.feeder_drawing import draw_feeder
    from experiments.optimize import OptimizeArgs, optimize
    from experiments.simulate import SimulateArgs, simulate
    from powertrip_env.config import load_scenario_config

    start = time.perf_counter()
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = Path(args.out) / f"reproduce{'-quick' if args.quick else ''}__{stamp}"
    folder.mkdir(parents=True, exist_ok=False)
    out = str(folder)

    config = load_scenario_config()
    feeder = config.feeder.build()
    if feeder.bus_coords_csv is not None:
        draw_feeder(feeder.bus_coords_csv, feeder, config.devices, folder / "feeder.png")
    simulate_dir = simulate(SimulateArgs(seed=0, out=out, progress=False))
    pop_size, n_gen = (8, 3) if args.quick else (100, 100)
    optimize_dir = optimize(
        OptimizeArgs(seed=0, pop_size=pop_size, n_gen=n_gen, out=out, progress=False)
    )

    bench = load_benchmark_config()
    if args.quick:
        bench = replace(
            bench,
            days=(TestDay("summer", "weekday"),),
            seeds=(0, 1),
            nsga2=NSGA2Settings(pop_size=pop_size, n_gen=n_gen),
            lookahead=(),  # a plan every step: minutes a day, not a tiny budget
        )
    bench = replace(bench, out=out)
    benchmark_run = run_benchmark(bench, workers=args.workers, progress=False)

    day_lines, _ = study2_day(
        benchmark_run.run_dir, bench, folder, 0 if args.quick else FRONT_WEIGHTS
    )
    summary = json.loads((optimize_dir / "summary.json").read_text(encoding="utf-8"))
    title = "# PowerTrip reproduction"
    if args.quick:
        title += " (quick: a tiny budget, not the README's numbers)"
    lines = [
        title,
        "",
        "## Study 2: NSGA-II vs no control (default day, seed 0)",
        "",
        *_readme_table(summary),
        "",
        *day_lines,
        "## Run folders",
        "",
        f"- study 1 (no control): `{simulate_dir.name}`",
        f"- study 2 (NSGA-II): `{optimize_dir.name}`",
        f"- benchmark: `{benchmark_run.run_dir.name}` (report.html, report.md)",
        "",
    ]
    if benchmark_run.failed:
        lines += [f"Failed benchmark units: {', '.join(sorted(benchmark_run.failed))}", ""]
    if args.speed and not args.quick:
        names = (*SPEED_BENCHMARKS, "agents_quality") if args.agents else SPEED_BENCHMARKS
        lines += ["## Speed and quality benchmarks", "", *_speed(folder, names), ""]
    if args.update_docs:
        copied = _copy_docs(optimize_dir, folder)
        lines += ["Copied into docs/figures: " + ", ".join(p.name for p in copied), ""]
    seconds = time.perf_counter() - start
    cores = os.cpu_count() or 1
    lines.append(f"Run time: {seconds / 60:.1f} min ({seconds:.0f} s) on {cores} cores.")
    runs.write_text(folder / "REPRODUCE.md", "\n".join(lines) + "\n")
    print(f"reproduction finished in {seconds / 60:.1f} min ({seconds:.0f} s) on {cores} cores")
    print(f"outputs: {folder}")
    return Reproduction(folder, simulate_dir, optimize_dir, benchmark_run.run_dir, seconds)
