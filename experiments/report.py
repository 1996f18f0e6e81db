"""The benchmark report: ``report.html`` (self-contained, opens offline) and ``report.md``.

Built from a benchmark run folder's tables (:mod:`experiments.benchmark_tables`):

* the results table: every architecture.md §7 day total, the normalised costs, the weighted day
  cost, the decision time and the indicators, per controller, as the mean over seeds with a
  95 % Student-t interval (over all test days, then per day);
* the hypervolume of NSGA-II's front and of the agents' points per day;
* for each test day (its first seed): the comparison figures of :mod:`experiments.figures`
  (PUI per CP bus, PUI over the day per controller, voltage, PV, EV energy), NSGA-II's
  Pareto fronts with every controller's point overlaid, a heat map of PUI per CP bus over
  the day (mean over seeds), and the controlled day as a strip of the env's
  feeder frames and an animated GIF (:mod:`experiments.day_strip`).

The HTML embeds its figures as base64 PNGs and loads nothing from the network; the Markdown
links the PNGs under ``figures/``.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from experiments import runs
from experiments.benchmark_config import BenchmarkConfig, benchmark_config_from_dict, day_scenario
from experiments.benchmark_tables import unit_summaries
from experiments.benchmark_units import plan_units
from experiments.day_strip import (
    DayStripSettings,
    RecordedSetpoints,
    replay_day,
    write_gif,
    write_strip,
)
from powertrip_env.config import ScenarioConfig, scenario_config_from_dict
from powertrip_env.simulator import DayResult

#: Rows of the results table: (days.parquet column, label).
METRICS: tuple[tuple[str, str], ...] = (
    ("weighted_cost", "normalised weighted day cost w·mean(f/F_ref) (lower is better)"),
    ("optimality_gap", "optimality gap (cost - oracle) / (no control - oracle)"),
    ("f1_norm_mean", "mean f1 / F1_ref"),
    ("f2_norm_mean", "mean f2 / F2_ref"),
    ("f1_total", "f1 total: Σ steps Σ PUI² at CP buses (%²)"),
    ("f2_total", "f2 total: Σ steps Σ curtailment² (kW²)"),
    ("pui_mean_pct", "mean PUI at CP buses (%)"),
    ("pui_max_pct", "max PUI at CP buses (%)"),
    ("vuf_max_pct", "max VUF at CP buses (%)"),
    ("v_min_pu", "lowest phase voltage (pu)"),
    ("v_max_pu", "highest phase voltage (pu)"),
    ("voltage_drop_max_pu", "largest voltage drop (pu)"),
    ("n_outside_uk_statutory", "bus-phase-steps outside UK statutory limits"),
    ("n_outside_en50160", "bus-phase-steps outside EN 50160"),
    ("pv_available_kwh", "PV available (kWh)"),
    ("pv_used_kwh", "PV used (kWh)"),
    ("pv_curtailed_kwh", "PV curtailed (kWh)"),
    ("pv_usage_efficiency", "PV usage efficiency (used / available)"),
    ("ev_requested_kwh", "EV energy requested (kWh)"),
    ("ev_delivered_kwh", "EV energy delivered (kWh)"),
    ("ev_unserved_kwh", "EV energy unserved (kWh)"),
    ("transformer_loading_max_pct", "max transformer loading (%)"),
    ("losses_kwh", "losses (kWh)"),
    ("converged_steps", "converged power flows (steps)"),
    ("decision_ms_per_step", "decision time per step (ms)"),
    ("compared_steps", "steps compared with the front (comparable, front of 2+ points)"),
    ("igd_plus_mean", "IGD+ of the point to the NSGA-II front (mean over compared steps)"),
    ("epsilon_additive_mean", "additive epsilon of the point to the front (mean, compared)"),
    ("front_dominates_share", "share of compared steps where the front dominates the point"),
    ("comparable_share", "share of all steps comparable with the front"),
)
HV_METRICS: tuple[tuple[str, str], ...] = (
    ("hv_front", "hypervolume of the NSGA-II front"),
    ("hv_agents", "hypervolume of the agents' points (comparable steps)"),
)
CI_LEVEL = 0.95


def mean_ci(values: npt.ArrayLike, level: float = CI_LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its Student-t ``level`` interval over the values.

    NaN values are dropped; with one value the interval is (NaN, NaN), with none all is NaN.
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size == 1:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def _number(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.4g}"


def format_ci(values: npt.ArrayLike) -> str:
    """``mean [low, high]`` (or just the mean with one value, ``–`` with none)."""
    mean, low, high = mean_ci(values)
    if math.isnan(low):
        return _number(mean)
    return f"{_number(mean)} [{_number(low)}, {_number(high)}]"


@dataclass(frozen=True)
class Table:
    """A report table: a title, column headers, rows of cells, and a note below it."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def results_table(
    days: pd.DataFrame, controllers: Sequence[str], day: str | None, seeds: int
) -> Table:
    """Metric rows x controller columns of mean [95 % interval] over seeds.

    With ``day`` None, each seed's value is first averaged over the test days.
    """
    frame = days if day is None else days[days["day"] == day]
    per_seed = frame.groupby(["controller", "seed"], sort=False).mean(numeric_only=True)
    present = [c for c in controllers if c in per_seed.index.get_level_values(0)]
    rows = []
    for column, label in METRICS:
        if column not in per_seed.columns or per_seed[column].isna().all():
            continue
        cells = [format_ci(per_seed.xs(c, level="controller")[column]) for c in present]
        rows.append([label, *cells])
    where = "all test days (each seed's mean over the days)" if day is None else day
    return Table(
        title=f"Results: {where}",
        header=["metric", *present],
        rows=rows,
        note=(
            f"Mean over {seeds} seeds with its {CI_LEVEL:.0%} Student-t interval in brackets."
            if seeds > 1
            else "One seed: no interval over seeds."
        ),
    )


def hypervolume_table(hv: pd.DataFrame, day_labels: Sequence[str]) -> Table | None:
    """Per day: mean hypervolume of the front and of the agents' points, over seeds."""
    if hv.empty:
        return None
    rows = []
    for day in day_labels:
        # Steps whose front is one point (nothing to trade off) would only dilute the mean.
        rows_day = hv[(hv["day"] == day) & (hv["n_front"] > 1)]
        if rows_day.empty:
            continue
        front = rows_day.groupby("seed")["hv_front"].mean().to_numpy()
        comparable = rows_day[rows_day["agents_comparable"]]
        agents = comparable.groupby("seed")["hv_agents"].mean().to_numpy()
        rows.append([day, format_ci(front), format_ci(agents)])
    return Table(
        title="Hypervolume in normalised costs, reference point (1.1, 1.1)",
        header=["day", HV_METRICS[0][1], HV_METRICS[1][1]],
        rows=rows,
        note="Mean over the steps whose front has two or more points, then mean over seeds "
        "[95 % interval]. Larger is better; the agents' points of a step form one set (a "
        "weight sweep).",
    )


# --- Figures ------------------------------------------------------------------------------------


def _day_result(steps: pd.DataFrame, meta: dict[str, Any]) -> DayResult:
    worst = meta.get("worst_v_pu")
    return DayResult(
        steps=steps.reset_index(drop=True),
        worst_v_pu=None if worst is None else np.asarray(worst, dtype=float),
        ev_requested_kwh=np.asarray(meta["ev_requested_kwh"], dtype=float),
        ev_unserved_kwh=np.asarray(meta["ev_unserved_kwh"], dtype=float),
        dt_h=float(meta["dt_h"]),
    )


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: its file and caption."""

    path: Path
    caption: str


def day_figures(
    run_dir: Path,
    config: BenchmarkConfig,
    base: ScenarioConfig,
    results: pd.DataFrame,
    fronts: pd.DataFrame,
    points: pd.DataFrame,
) -> dict[str, list[ReportFigure]]:
    """Test day label -> its figures (first seed with results), under ``figures/<day>/``."""
    from experiments import figures
    from experiments.benchmark_figures import plot_day_fronts, plot_unbalance_heatmap
    from experiments.feeder_drawing import node_distances_m
    from powertrip_env.grid.engine import OpenDSSEngine

    metas = unit_summaries(run_dir, plan_units(config))
    feeder = base.feeder.build()
    with OpenDSSEngine(feeder, base.devices) as engine:
        node_names, base_v = list(engine.node_names), float(engine.base_v[0])
    distances = node_distances_m(feeder)
    cp_names = [d.name for d in base.devices.cps]
    out: dict[str, list[ReportFigure]] = {}
    for day in config.days:
        rows = results[results["day"] == day.label]
        if rows.empty:
            continue
        seed = int(rows["seed"].iloc[0])
        folder = run_dir / "figures" / day.label
        mine = rows[rows["seed"] == seed]
        day_results = {
            str(c): _day_result(g, metas[f"{day.label}__seed{seed}__{c}"])
            for c, g in mine.groupby("controller", sort=False)
        }
        when = f"{day.label}, seed {seed}"
        found = [
            ReportFigure(
                figures.plot_unbalance(day_results, folder), f"PUI at the CP buses ({when})"
            ),
            ReportFigure(
                figures.plot_pui_over_day(day_results, folder, cp_names),
                f"PUI over the day per controller: worst CP bus and mean over CP buses ({when})",
            ),
            ReportFigure(
                figures.plot_voltage_drop(
                    day_results, folder, distances, node_names=node_names, base_v=base_v
                ),
                f"Lowest voltage and voltage profile ({when})",
            ),
            ReportFigure(figures.plot_pv_usage(day_results, folder), f"PV usage ({when})"),
            ReportFigure(
                figures.plot_ev_energy(day_results, folder, cp_names), f"EV energy ({when})"
            ),
        ]
        day_fronts = (
            fronts[(fronts["day"] == day.label) & (fronts["seed"] == seed)]
            if not fronts.empty
            else fronts
        )
        if not day_fronts.empty:
            day_points = points[(points["day"] == day.label) & (points["seed"] == seed)]
            dt_h = float(metas[f"{day.label}__seed{seed}__nsga2"]["dt_h"])
            path = plot_day_fronts(day_fronts, day_points, dt_h, folder)
            if path is not None:
                found.append(
                    ReportFigure(path, f"NSGA-II fronts with every controller's point ({when})")
                )
        heat = {
            str(c): g.groupby("step")[[f"pui_{cp}" for cp in cp_names]].mean().to_numpy().T
            for c, g in rows.groupby("controller", sort=False)
        }
        hours = np.sort(rows["hour"].unique())
        found.append(
            ReportFigure(
                plot_unbalance_heatmap(
                    heat,
                    hours,
                    cp_names,
                    folder,
                    title=f"PUI per CP bus over the day, mean over seeds ({day.label})",
                ),
                f"PUI per CP bus over the day, mean over seeds ({day.label})",
            )
        )
        out[day.label] = found
    return out


def recorded_setpoints(
    rows: pd.DataFrame, fronts: pd.DataFrame, base: ScenarioConfig
) -> RecordedSetpoints:
    """A controller's recorded setpoints of one unit, step by step.

    The CP powers are in the results; each PV's setpoint only in NSGA-II's fronts (its chosen
    point). Elsewhere a PV setpoint is left NaN: the replay shares the step's recorded PV total
    out in proportion to availability (:class:`~experiments.day_strip.RecordedSetpoints`).
    """
    rows = rows.sort_values("step")
    cps = [d.name for d in base.devices.cps]
    pvs = [d.name for d in base.devices.pvs]
    x = np.full((len(rows), len(cps) + len(pvs)), np.nan)
    x[:, : len(cps)] = rows[[f"cp_kw_{c}" for c in cps]].to_numpy()
    if not fronts.empty:
        chosen = fronts[fronts["chosen"]].set_index("step")
        where = rows["step"].isin(chosen.index).to_numpy()
        steps = rows["step"].to_numpy()[where]
        x[where, len(cps) :] = chosen.loc[steps, [f"x_kw_{p}" for p in pvs]].to_numpy()
    available = rows["pv_available_kw"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(available > 0, rows["pv_kw"].to_numpy() / available, 0.0)
    return RecordedSetpoints(x, share)


def day_pictures(
    run_dir: Path,
    config: BenchmarkConfig,
    base: ScenarioConfig,
    results: pd.DataFrame,
    fronts: pd.DataFrame,
    settings: DayStripSettings,
) -> dict[str, list[ReportFigure]]:
    """Test day label -> the strip (and GIF) of its controlled day, first seed with results.

    The day shown is NSGA-II's when it ran, else the first other controller's (no control's
    only when it ran alone), replayed from its recorded setpoints in the env.
    """
    # Imported here: experiments.benchmark imports this module (it writes the report).

    out: dict[str, list[ReportFigure]] = {}
    if not settings.strip:
        return out
    for day in config.days:
        rows = results[results["day"] == day.label]
        if rows.empty:
            continue
        seed = int(rows["seed"].iloc[0])
        mine = rows[rows["seed"] == seed]
        ran = list(dict.fromkeys(mine["controller"]))
        controller = (
            "nsga2" if "nsga2" in ran else next((c for c in ran if c != "no_control"), ran[0])
        )
        unit_fronts = (
            fronts[(fronts["day"] == day.label) & (fronts["seed"] == seed)]
            if controller == "nsga2" and not fronts.empty
            else pd.DataFrame()
        )
        setpoints = recorded_setpoints(mine[mine["controller"] == controller], unit_fronts, base)
        replay = replay_day(day_scenario(base, day), seed, setpoints, len(setpoints.x_kw), settings)
        if not replay.frames:  # its first power flow failed: nothing to show
            continue
        when = f"{controller}, {day.label}, seed {seed}"
        folder = run_dir / "figures" / day.label
        approximated = setpoints.approximated_steps
        note = (
            f"; PV setpoints of {approximated} steps shared out of the recorded PV total"
            if approximated
            else ""
        )
        title = f"{when}: the feeder at moments of the day (lowest phase voltage)"
        found = [
            ReportFigure(
                write_strip(replay, folder / "day_strip.png", title),
                f"The day in frames, replayed from its setpoints in the env ({when}{note})",
            )
        ]
        gif = write_gif(replay, folder / "day.gif")
        if gif is not None:
            found.append(ReportFigure(gif, f"The whole day, animated ({when}{note})"))
        out[day.label] = found
    return out


# --- Writing ------------------------------------------------------------------------------------


def _md_table(table: Table) -> list[str]:
    lines = [f"### {table.title}", ""]
    lines.append("| " + " | ".join(table.header) + " |")
    lines.append("|" + "---|" * len(table.header))
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return [*lines, "", table.note, ""] if table.note else [*lines, ""]


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table.rows
    )
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    return (
        f"<h3>{html.escape(table.title)}</h3>"
        f"<table class='results'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def _html_figure(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.path.read_bytes()).decode("ascii")
    caption = html.escape(figure.caption)
    kind = "gif" if figure.path.suffix == ".gif" else "png"
    return (
        f"<figure><img alt='{caption}' src='data:image/{kind};base64,{data}'>"
        f"<figcaption>{caption}</figcaption></figure>"
    )


_CSS = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
table.results { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
table.results th, table.results td { border: 1px solid #bbb; padding: 3px 8px; }
table.results td:not(:first-child) { text-align: right; white-space: nowrap; }
table.results thead { background: #eee; }
p.note { font-size: 0.85em; color: #555; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; }
.failed { color: #a00; }
"""


def _settings_lines(config: BenchmarkConfig, base: ScenarioConfig) -> list[str]:
    nsga = config.nsga2
    nsga_text = (
        "off"
        if nsga is None
        else f"population {nsga.pop_size}, {nsga.n_gen} generations, evaluator "
        f"{nsga.evaluator}, selection {nsga.selection} with weights {config.weights}"
    )
    guarantee = base.ev.energy_guarantee
    return [
        f"Test days: {', '.join(d.label for d in config.days)}; seeds: "
        f"{', '.join(map(str, config.seeds))}; steps per day: "
        f"{config.steps if config.steps is not None else 'all'}.",
        f"Controllers: {', '.join(config.controllers)}. NSGA-II: {nsga_text}.",
        "EV energy guarantee: "
        + (
            "on (a controller's step is compared with the front only where its EV energy so "
            "far equals NSGA-II's: 'comparable' steps)."
            if guarantee
            else "off (the seed formulation: every step is comparable with the front)."
        ),
        "Indicators use the costs normalised by each day's references (F1_ref: the largest "
        "no-control f1 of the day; F2_ref: full curtailment) with pymoo's HV, IGD+ and "
        "additive epsilon; the hypervolume reference point is (1.1, 1.1). IGD+ and epsilon "
        "of one point measure how far it is from covering the whole front (0, or <= 0 for "
        "epsilon, only when it weakly dominates every front point).",
        "Decision time: the wall time of each controller's act() per step, in the worker that "
        "ran the unit (NSGA-II's includes the OpenDSS re-check of its front); it varies with "
        "the machine's load.",
    ]


def write_report(
    run_dir: Path,
    pictures: DayStripSettings | None = None,
) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` of a benchmark run folder; return their paths.

    ``pictures``: whether (and how) each test day's controlled day is drawn as a strip of
    feeder frames and a GIF (:mod:`experiments.day_strip`; a few seconds a day); default:
    both, at :class:`~experiments.day_strip.DayStripSettings`' defaults.
    """
    meta = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    config = benchmark_config_from_dict(meta["benchmark"], resolve_paths=False)
    base = scenario_config_from_dict(meta["config"])
    read = {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in _TABLES}
    results, days, units = read["results"], read["days"], read["units"]
    labels = [d.label for d in config.days]
    tables: list[Table] = []
    if not days.empty:
        tables.append(results_table(days, config.controllers, None, len(config.seeds)))
        hv = hypervolume_table(read["hypervolume"], labels)
        if hv is not None:
            tables.append(hv)
        if len(labels) > 1:  # with one day, the all-days table is that day's
            tables += [
                results_table(days, config.controllers, d, len(config.seeds))
                for d in labels
                if d in set(days["day"])
            ]
    figures = (
        day_figures(run_dir, config, base, results, read["fronts"], read["indicators"])
        if not results.empty
        else {}
    )
    if not results.empty:
        for day, found in day_pictures(
            run_dir, config, base, results, read["fronts"], pictures or DayStripSettings()
        ).items():
            figures.setdefault(day, []).extend(found)
    failed = units[units["status"] != "ok"]
    title = f"PowerTrip benchmark: {run_dir.name}"
    settings = _settings_lines(config, base)
    md = [f"# {title}", "", *[f"- {s}" for s in settings], ""]
    page = [f"<h1>{html.escape(title)}</h1><ul>"]
    page += [f"<li>{html.escape(s)}</li>" for s in settings]
    page.append("</ul>")
    if not failed.empty:
        md += ["## Failed units", ""]
        md += [f"- `{u}`: {e}" for u, e in zip(failed["unit"], failed["error"], strict=True)]
        md.append("")
        page.append("<h2 class='failed'>Failed units</h2><ul class='failed'>")
        page += [
            f"<li><code>{html.escape(str(u))}</code>: {html.escape(str(e))}</li>"
            for u, e in zip(failed["unit"], failed["error"], strict=True)
        ]
        page.append("</ul>")
    md += ["## Results", ""]
    page.append("<h2>Results</h2>")
    for table in tables:
        md += _md_table(table)
        page.append(_html_table(table))
    md += ["## Figures", ""]
    page.append("<h2>Figures</h2>")
    for day, found in figures.items():
        md += [f"### {day}", ""]
        page.append(f"<h3>{html.escape(day)}</h3>")
        for figure in found:
            md += [f"![{figure.caption}]({figure.path.relative_to(run_dir).as_posix()})", ""]
            page.append(_html_figure(figure))
    document = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(page)
        + "</body></html>\n"
    )
    return (
        runs.write_text(run_dir / "report.html", document),
        runs.write_text(run_dir / "report.md", "\n".join(md) + "\n"),
    )


_TABLES = ("results", "fronts", "units", "indicators", "hypervolume", "days")
