"""``powertrip simulate``: a day on the feeder under no control, with figures (architecture.md §1).

With ``--controller`` the day also runs under a rule-based baseline (``flat_rate``,
``pv_following``, ``volt_watt``) or the day's optimum (``oracle``, at ``--weights``), side by
side with no control.

Writes ``runs/<run-id>/`` with ``config.json``, ``results.parquet`` (one row per controller x
timestep), ``summary.json``, ``figures/*.png`` and ``report.md``, and prints a summary table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from baselines import RULE_BASED, rule_based
from baselines.no_control import NoControl
from experiments import runs
from experiments.day_strip import RecordedSetpoints, replay_day, write_gif, write_strip
from powertrip_env.config import ScenarioConfig, load_scenario_config
from powertrip_env.errors import ConfigError
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import Controller, DayResult, FeederSimulator


@dataclass(frozen=True)
class SimulateArgs:
    """Arguments of ``powertrip simulate``."""

    scenario: str | None = None
    """Scenario YAML; the shipped default (embedded feeder, 3 CPs, 12 PVs) when omitted."""
    seed: int = 0
    """Seed of the day's profiles."""
    steps: int | None = None
    """Simulate only the first N steps (a short horizon, for quick checks)."""
    out: str = "runs"
    """Folder under which the run folder is created."""
    progress: bool = True
    """Show a progress bar."""
    controller: str = "no_control"
    """``no_control``, a rule-based baseline (``flat_rate``, ``pv_following``, ``volt_watt``)
    or ``oracle``; other than no control, it runs beside no control."""
    weights: tuple[float, float] = (0.5, 0.5)
    """(unbalance, curtailment) weights of the oracle's day cost."""
    day_pictures: bool = True
    """Draw the (controlled) day's strip of feeder frames and its GIF (a few seconds)."""

    def __post_init__(self) -> None:
        check_steps(self.steps)
        if self.controller not in SIMULATE_CONTROLLERS:
            raise ConfigError(
                f"controller={self.controller!r} is not one of {SIMULATE_CONTROLLERS}"
            )


#: Controllers ``powertrip simulate`` runs.
SIMULATE_CONTROLLERS = ("no_control", *RULE_BASED, "oracle")


def day_controller(name: str, sim: FeederSimulator, weights: tuple[float, float]) -> Controller:
    """The controller ``name`` (one of :data:`SIMULATE_CONTROLLERS`) for ``sim``'s day."""
    if name == "no_control":
        return NoControl()
    if name == "oracle":
        from baselines.oracle import OracleConfig, OracleController

        return OracleController(sim, OracleConfig(weights=weights))
    return rule_based(name, sim)


def check_steps(steps: object) -> None:
    """Refuse a step budget that is not ``None`` or a positive integer (0 steps is no day)."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps={steps!r} must be a positive integer (or None: the whole day)")


def run_day(
    sim: FeederSimulator, controller: Controller, label: str, steps: int | None, progress: bool
) -> DayResult:
    """Run ``controller`` over the day (or its first ``steps``) with an optional progress bar."""
    n = sim.n_steps if steps is None else min(steps, sim.n_steps)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=n)
        return sim.run(controller, progress=lambda t: bar.update(task, completed=t), steps=n)


def summary_table(title: str, summaries: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for label in summaries:
        table.add_column(label, justify="right")
    keys = next(iter(summaries.values())).keys()
    for key in keys:
        cells = []
        for summary in summaries.values():
            value = summary[key]
            cells.append(f"{value:.4g}" if isinstance(value, float) else str(value))
        table.add_row(key, *cells)
    return table


def write_day_figures(
    results: dict[str, DayResult], sim: FeederSimulator, figures_dir: Path
) -> list[Path]:
    """The study's figures for one or more controllers on the same scenario-day."""
    from experiments import figures
    from experiments.feeder_drawing import node_distances_m

    feeder = sim.scenario.feeder
    distances = node_distances_m(feeder)
    cp_names = [d.name for d in sim.scenario.devices.cps]
    return [
        figures.plot_unbalance(results, figures_dir),
        figures.plot_voltage_drop(
            results,
            figures_dir,
            distances,
            node_names=sim.engine.node_names,
            base_v=float(sim.engine.base_v[0]),
        ),
        figures.plot_pv_usage(results, figures_dir),
        figures.plot_ev_energy(results, figures_dir, cp_names),
    ]


def day_pictures(
    config: ScenarioConfig, seed: int, label: str, x_kw: np.ndarray, run_dir: Path
) -> list[str]:
    """Replay the day's setpoints ``x_kw`` in the env; write its strip and GIF under
    ``figures/``; return the report's Markdown lines for them."""
    replay = replay_day(config, seed, RecordedSetpoints(x_kw), len(x_kw))
    title = f"{label}, seed {seed}: the feeder at moments of the day (lowest phase voltage)"
    strip = write_strip(replay, run_dir / "figures" / "day_strip.png", title)
    lines = [f"![{label}: the day in frames](figures/{strip.name})"]
    gif = write_gif(replay, run_dir / "figures" / "day.gif")
    if gif is not None:
        lines += ["", f"![{label}: the whole day](figures/{gif.name})"]
    return lines


def simulate(args: SimulateArgs, config: ScenarioConfig | None = None) -> Path:
    """Run the no-control study and return its run folder."""
    config = config or load_scenario_config(args.scenario)
    console = Console()
    scenario = build_scenario(config, args.seed)
    run_dir = runs.new_run_dir(args.out, "simulate", scenario.feeder.name, args.seed)
    runs.write_json(
        run_dir / "config.json",
        runs.run_metadata(config.to_dict(), args.seed, command="simulate", steps=args.steps),
    )
    names = ["no_control"] + ([args.controller] if args.controller != "no_control" else [])
    with FeederSimulator(scenario) as sim:
        results = {
            name: run_day(
                sim, day_controller(name, sim, args.weights), name, args.steps, args.progress
            )
            for name in names
        }
        frame = pd.concat(
            [r.steps.assign(controller=name) for name, r in results.items()], ignore_index=True
        )
        runs.write_parquet(run_dir / "results.parquet", frame)
        # The log holds the last day run: the controlled one (no control without --controller).
        recorded = sim.log.x_kw[: len(results[names[-1]].steps)].copy()
        summaries = {name: r.summary() for name, r in results.items()}
        warnings = results[names[-1]].warnings()
        runs.write_json(run_dir / "summary.json", {**summaries, "warnings": warnings})
        labels = {name: name.replace("_", " ") for name in names}
        paths = write_day_figures(
            {labels[n]: r for n, r in results.items()}, sim, run_dir / "figures"
        )
    shown = {labels[n]: s for n, s in summaries.items()}
    title = " vs ".join(shown).capitalize()
    table = summary_table(f"{title}, {scenario.feeder.name}, seed {args.seed}", shown)
    console.print(table)
    report = [f"# {title}: {scenario.feeder.name}, seed {args.seed}", ""]
    for key in summaries["no_control"]:
        cells = [
            f"{s[key]:.4g}" if isinstance(s[key], float) else str(s[key])
            for s in summaries.values()
        ]
        report.append(f"| {key} | " + " | ".join(cells) + " |")
    report.insert(2, "| metric | " + " | ".join(shown) + " |\n|---|" + "---|" * len(shown))
    report += ["", *(f"**Warning:** {w}" for w in warnings)] if warnings else []
    for w in warnings:
        console.print(f"[bold yellow]warning:[/] {w}")
    report += ["", *[f"![{p.stem}](figures/{p.name})" for p in paths]]
    if args.day_pictures:
        report += ["", *day_pictures(config, args.seed, labels[names[-1]], recorded, run_dir)]
    runs.write_text(run_dir / "report.md", "\n".join(report) + "\n")
    console.print(f"run folder: {run_dir}")
    return run_dir
