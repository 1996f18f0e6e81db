"""``powertrip sweep-feeders``: a no-control day on every ENWL feeder under a folder.

Every feeder found (:func:`~powertrip_env.grid.enwl.find_enwl_feeders`) gets the same day:
the scenario template's profiles and EVs, and its devices placed by rule on that feeder's
houses (by default 3 CPs at the remote end and 12 PV systems on random houses, fewer where a
feeder has fewer houses). The feeders run on a process pool, one OpenDSS engine per worker.
The run folder holds ``sweep.csv`` (one row per feeder: feeder, buses, houses, f1, PUI max,
v_min, v_max, losses, converged steps, seconds, or the error that stopped it),
``figures/sweep_distribution.png`` (each metric across the feeders), ``config.json`` and
``report.md``.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from experiments import runs
from powertrip_env.config import default_scenario_path, read_yaml, scenario_config_from_dict
from powertrip_env.errors import ConfigError, PowerTripError
from powertrip_env.grid.enwl import find_enwl_feeders

#: Devices of the sweep when the scenario template lists none by rule.
DEFAULT_DEVICES: dict[str, Any] = {
    "cps": {"count": 3, "placement": "remote_end", "p_max_kw": 7.0},
    "pvs": {"count": 12, "placement": "random_houses", "kwp": [3.0, 5.0]},
}
COLUMNS = [
    "feeder",
    "buses",
    "houses",
    "cps",
    "pvs",
    "f1",
    "pui_max_pct",
    "v_min_pu",
    "v_max_pu",
    "losses_kwh",
    "converged_steps",
    "steps",
    "steps_below_load_model_range",
    "seconds",
    "error",
    "folder",
]
#: Metrics drawn in the distribution figure: column -> axis label.
_FIGURE_METRICS = {
    "pui_max_pct": "PUI max at a CP bus (%)",
    "v_min_pu": "lowest voltage (pu)",
    "v_max_pu": "highest voltage (pu)",
    "losses_kwh": "losses (kWh/day)",
    "f1": "f1 over the day",
    "seconds": "seconds per feeder",
}


@dataclass(frozen=True)
class SweepArgs:
    """Arguments of ``powertrip sweep-feeders``."""

    path: str
    """The ENWL dataset folder, one ``network_N`` folder or one feeder folder."""
    scenario: str | None = None
    """Scenario YAML (its feeder section is replaced); the shipped default with
    :data:`DEFAULT_DEVICES` when omitted. Its devices must be placement rules; of its feeder
    section only ``load_model`` is kept."""
    seed: int = 0
    """Seed of the day's profiles, and of the placement unless the template sets
    ``devices.seed``."""
    steps: int | None = None
    """Simulate only the first N steps of the day."""
    workers: int = 2
    """Worker processes; 1 runs every feeder in this process."""
    out: str = "runs"
    """Folder under which the run folder is created."""

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers={self.workers!r} must be a positive integer")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps={self.steps!r} must be a positive number of steps")


def sweep_template(scenario: str | None, seed: int) -> dict[str, Any]:
    """The scenario data every feeder gets (of its ``feeder`` section, only ``load_model``).

    Raises:
        ConfigError: the template's devices are listed bus by bus (they cannot fit every
            feeder); give placement rules instead.
    """
    data = read_yaml(scenario or default_scenario_path(), "scenario file")
    if not isinstance(data, dict):
        raise ConfigError(f"scenario file {scenario!r} must hold a mapping")
    feeder = data.pop("feeder", None) or {}
    # The feeder changes from row to row; how its loads respond to voltage does not.
    if isinstance(feeder, dict) and "load_model" in feeder:
        data["feeder"] = {"load_model": feeder["load_model"]}
    devices = data.get("devices") if scenario is not None else None
    if devices is None:
        devices = copy.deepcopy(DEFAULT_DEVICES)
    listed = [k for k in ("cps", "pvs") if isinstance(devices.get(k), list) and devices[k]]
    if listed:
        raise ConfigError(
            f"devices.{listed[0]} of {scenario!r} lists devices bus by bus, which cannot fit "
            "every feeder; give a placement rule, e.g. {count: 3, placement: remote_end}"
        )
    devices.setdefault("seed", seed)
    data["devices"] = devices
    return data


def _fit_counts(devices: dict[str, Any], n_houses: int) -> dict[str, Any]:
    """``devices`` with the rules' counts lowered to fit ``n_houses`` (CPs first)."""
    fitted = copy.deepcopy(devices)
    free = n_houses
    for kind in ("cps", "pvs"):
        rule = fitted.get(kind)
        if isinstance(rule, dict) and "count" in rule:
            rule["count"] = min(int(rule["count"]), free)
            free -= rule["count"]
            if rule["count"] == 0:
                fitted[kind] = []
    return fitted


def sweep_one(
    folder: str, template: dict[str, Any], seed: int, steps: int | None
) -> dict[str, Any]:
    """One feeder's row: its size, then the no-control day's metrics, or the error."""
    from baselines.no_control import NoControl
    from powertrip_env.grid.enwl import load_enwl_feeder
    from powertrip_env.grid.layout import feeder_layout
    from powertrip_env.scenario import build_scenario
    from powertrip_env.simulator import FeederSimulator

    start = time.perf_counter()
    row: dict[str, Any] = {"folder": folder}
    try:
        feeder = load_enwl_feeder(folder)
        layout = feeder_layout(feeder)
        row |= {"feeder": feeder.name, "buses": len(layout.buses), "houses": len(layout.houses)}
        if not layout.houses:
            raise ConfigError(f"feeder {feeder.name!r} has no single-phase house for a device")
        data = {**template, "devices": _fit_counts(template["devices"], len(layout.houses))}
        data["feeder"] = {**template.get("feeder", {}), "kind": "enwl", "path": folder}
        config = scenario_config_from_dict(data)
        row |= {"cps": config.devices.n_cp, "pvs": config.devices.n_pv}
        scenario = build_scenario(config, seed, feeder=config.feeder.build())
        with FeederSimulator(scenario) as sim:
            summary = sim.run(NoControl(), steps=steps).summary()
        row |= {
            "f1": summary["f1_total"],
            "pui_max_pct": summary["pui_max_pct"],
            "v_min_pu": summary["v_min_pu"],
            "v_max_pu": summary["v_max_pu"],
            "losses_kwh": summary["losses_kwh"],
            "converged_steps": summary["converged_steps"],
            "steps": summary["steps"],
            # Steps whose voltages left the range where the load model means anything: the
            # day's numbers there are the model's, not the feeder's (architecture.md §3).
            "steps_below_load_model_range": summary["steps_below_load_model_range"],
        }
    except PowerTripError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    row.setdefault("feeder", Path(folder).name)
    row["seconds"] = round(time.perf_counter() - start, 2)
    return row


def _run_rows(
    folders: list[str], template: dict[str, Any], seed: int, steps: int | None, workers: int
) -> list[dict[str, Any]]:
    if workers == 1:
        return [sweep_one(folder, template, seed, steps) for folder in folders]
    from experiments.benchmark import WORKER_ENV

    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)  # inherited by the spawned workers
    context = multiprocessing.get_context("spawn")
    rows = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(sweep_one, f, template, seed, steps): f for f in folders}
        for future in as_completed(futures):
            try:
                rows.append(future.result())
            except Exception as exc:  # the worker died (e.g. a crash inside OpenDSS)
                folder = futures[future]
                rows.append({"folder": folder, "feeder": Path(folder).name, "error": repr(exc)})
    return rows


def sweep_table(rows: list[dict[str, Any]], order: list[str]) -> pd.DataFrame:
    """The rows as one table, in ``order`` of their folders, with :data:`COLUMNS`."""
    rank = {folder: k for k, folder in enumerate(order)}
    ordered = sorted(rows, key=lambda row: rank[str(row["folder"])])
    table = pd.DataFrame(ordered).reindex(columns=COLUMNS)
    counts = ("buses", "houses", "cps", "pvs", "converged_steps", "steps")
    for column in (*counts, "steps_below_load_model_range"):
        table[column] = table[column].astype("Int64")
    return table


def plot_sweep(table: pd.DataFrame, path: Path) -> Path:
    """Each metric across the feeders: a box with every feeder as a dot."""
    from experiments.figures import DPI, save_figure

    fig = Figure(figsize=(12, 4.5), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 6).ravel()
    ok = table[table["error"].isna()]
    rng = np.random.default_rng(0)  # jitter of the dots only
    for ax, (column, label) in zip(axes, _FIGURE_METRICS.items(), strict=True):
        values = ok[column].astype(float).dropna().to_numpy()
        if values.size:
            ax.boxplot(values, widths=0.5, showfliers=False)
            ax.scatter(1 + rng.uniform(-0.15, 0.15, values.size), values, s=14, alpha=0.7)
        ax.set_xticks([])
        ax.set_ylabel(label)
    fig.suptitle(f"No-control day across {len(ok)} feeder(s) ({len(table) - len(ok)} failed)")
    return save_figure(fig, path)


def _markdown(table: pd.DataFrame) -> str:
    shown = table.drop(columns=["folder"])
    header = "| " + " | ".join(shown.columns) + " |"
    lines = [header, "|" + "---|" * len(shown.columns)]
    for _, row in shown.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_feeders(args: SweepArgs) -> Path:
    """Run the sweep, write its run folder, print the table; return the run folder."""
    found = find_enwl_feeders(args.path)
    template = sweep_template(args.scenario, args.seed)
    folders = [str(f.folder) for f in found]
    run_dir = runs.new_run_dir(args.out, "sweep", Path(args.path).resolve().name, args.seed)
    meta = {"path": str(Path(args.path).resolve()), "template": template, "feeders": folders}
    runs.write_json(
        run_dir / "config.json",
        runs.run_metadata(meta, args.seed, command="sweep-feeders", steps=args.steps),
    )
    start = time.perf_counter()
    rows = _run_rows(folders, template, args.seed, args.steps, args.workers)
    wall_s = time.perf_counter() - start
    table = sweep_table(rows, folders)
    runs.write_text(run_dir / "sweep.csv", table.to_csv(index=False))
    figure = plot_sweep(table, run_dir / "figures" / "sweep_distribution.png")
    n_failed = int(table["error"].notna().sum())
    tail = f"{len(table)} feeder(s), {n_failed} failed, {wall_s:.1f} s on {args.workers} worker(s)"
    report = [f"# No-control day on every feeder under {meta['path']}", "", _markdown(table)]
    report += ["", tail, "", f"![distribution](figures/{figure.name})", ""]
    runs.write_text(run_dir / "report.md", "\n".join(report))
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(
            table.drop(columns=["folder", "error"] if not n_failed else ["folder"]).to_string(
                index=False, float_format=lambda v: f"{v:.4g}"
            )
        )
    print(tail)
    print(f"run folder: {run_dir}")
    return run_dir
