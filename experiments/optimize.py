"""``powertrip optimize``: a day under NSGA-II control against no control (architecture.md §1).

Writes ``runs/<run-id>/`` with ``config.json``, ``fronts.parquet`` (every timestep's front,
its OpenDSS re-check and the chosen point), ``results.parquet`` (one row per controller x
timestep), ``summary.json``, ``report.md`` and ``figures/``. The run checkpoints after every
step; ``--resume RUN_DIR`` replays the finished steps (each step's power flow depends only on
its inputs) and continues, ending with the same results as a run never interrupted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from baselines.no_control import NoControl
from baselines.nsga2 import (
    Evaluator,
    FrontPool,
    NSGA2Config,
    NSGA2Controller,
    Selection,
    StepFront,
)
from experiments import runs
from experiments.simulate import check_steps, run_day, summary_table, write_day_figures
from powertrip_env.config import ScenarioConfig, load_scenario_config, scenario_config_from_dict
from powertrip_env.errors import ConfigError
from powertrip_env.ev import CPFloor
from powertrip_env.scenario import Scenario, build_scenario
from powertrip_env.simulator import FeederSimulator, SimState

CHECKPOINT = "checkpoint.json"


@dataclass(frozen=True)
class OptimizeArgs:
    """Arguments of ``powertrip optimize``."""

    scenario: str | None = None
    """Scenario YAML; the shipped default when omitted."""
    seed: int = 0
    """Seed of the day's profiles and of NSGA-II."""
    pop_size: int = 100
    """NSGA-II population per timestep."""
    n_gen: int = 100
    """NSGA-II generations per timestep."""
    evaluator: Evaluator = "reduced"
    """``reduced`` (exact reduced model, batched) or ``opendss`` (one solve per candidate)."""
    selection: Selection = "pseudo_weights"
    """Compromise: ``pseudo_weights``, ``knee`` or ``weighted_sum``."""
    weights: tuple[float, float] = (0.5, 0.5)
    """(unbalance, curtailment) weights of the compromise; sum to 1."""
    cp_floor: CPFloor = "flat_rate"
    """Lowest CP power searched: ``flat_rate`` (owed energy spread over the time left) or
    ``latest`` (only what the EV energy guarantee forces: the original formulation)."""
    cap_f1: bool = True
    """Constrain each step's f1 to at most the day's worst no-control step (F1_ref)."""
    steps: int | None = None
    """Optimise only the first N steps."""
    out: str = "runs"
    """Folder under which the run folder is created."""
    resume: str | None = None
    """A run folder to resume (its config is used; other arguments are ignored)."""
    workers: int = 1
    """Processes computing fronts ahead (seed formulation only: steps are independent)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        check_steps(self.steps)
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers={self.workers!r} must be an integer >= 1")

    def nsga2(self) -> NSGA2Config:
        return NSGA2Config(
            pop_size=self.pop_size,
            n_gen=self.n_gen,
            seed=self.seed,
            evaluator=self.evaluator,
            selection=self.selection,
            weights=self.weights,
            cp_floor=self.cp_floor,
            cap_f1=self.cap_f1,
        )


def fronts_frame(fronts: list[StepFront], cp_names: list[str], pv_names: list[str]) -> pd.DataFrame:
    """One row per front point: step, objectives (search and OpenDSS), chosen flag, setpoints."""
    frames = []
    for front in fronts:
        n = len(front.x_kw)
        cols: dict[str, Any] = {
            "step": np.full(n, front.t),
            "point": np.arange(n),
            "chosen": np.arange(n) == front.chosen,
            "f1": front.f_reduced[:, 0],
            "f2": front.f_reduced[:, 1],
            "f1_opendss": front.f_opendss[:, 0],
            "f2_opendss": front.f_opendss[:, 1],
            "f1_no_control": np.full(n, front.f_no_control[0]),
            "f2_no_control": np.full(n, front.f_no_control[1]),
        }
        for k, name in enumerate([*cp_names, *pv_names]):
            cols[f"x_kw_{name}"] = front.x_kw[:, k]
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fronts_from_frame(frame: pd.DataFrame, names: list[str]) -> list[StepFront]:
    fronts = []
    for _, rows in frame.groupby("step", sort=True):
        rows = rows.sort_values("point")
        fronts.append(
            StepFront(
                t=int(rows["step"].iloc[0]),
                x_kw=rows[[f"x_kw_{n}" for n in names]].to_numpy(),
                f_reduced=rows[["f1", "f2"]].to_numpy(),
                f_opendss=rows[["f1_opendss", "f2_opendss"]].to_numpy(),
                chosen=int(np.flatnonzero(rows["chosen"].to_numpy())[0]),
                f_no_control=rows[["f1_no_control", "f2_no_control"]].to_numpy()[0],
            )
        )
    return fronts


#: Steps a front pool computes ahead at a time (two hours at 5 minutes).
POOL_CHUNK = 24


class _Checkpointed:
    """Wraps the NSGA-II controller: replays finished steps, checkpoints new ones.

    With a :class:`FrontPool`, fronts of the next ``POOL_CHUNK`` steps are computed in
    parallel before they are applied one by one.
    """

    def __init__(
        self,
        controller: NSGA2Controller,
        run_dir: Path,
        names: list[str],
        pool: FrontPool | None = None,
    ) -> None:
        self.controller = controller
        self.pool = pool
        self.run_dir = run_dir
        self.names = names
        self.chosen: list[list[float]] = []
        path = run_dir / CHECKPOINT
        if path.exists():
            self.chosen = runs.read_json(path, "--resume")["chosen_kw"]
            try:
                fronts = pd.read_parquet(run_dir / "fronts.parquet")
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"--resume: {str(run_dir / 'fronts.parquet')!r} is missing or damaged "
                    f"({exc}); start a new run"
                ) from exc
            controller.fronts = _fronts_from_frame(fronts, names)[: len(self.chosen)]
        # One small frame per finished step, so a checkpoint does not rebuild the day's.
        n_cp = controller.sim.n_cp
        self._frames = [fronts_frame([f], names[:n_cp], names[n_cp:]) for f in controller.fronts]

    def act(self, state: SimState) -> np.ndarray:
        if state.t < len(self.chosen):
            self.controller.sim.engine.reset_solution()
            return np.asarray(self.chosen[state.t])
        if self.pool is not None and state.t not in self.controller.precomputed:
            stop = min(state.t + POOL_CHUNK, self.controller.sim.n_steps)
            self.controller.precomputed.update(self.pool.fronts(range(state.t, stop)))
        x = self.controller.act(state)
        self.chosen.append(x.tolist())
        n_cp = self.controller.sim.n_cp
        last = self.controller.fronts[-1]
        self._frames.append(fronts_frame([last], self.names[:n_cp], self.names[n_cp:]))
        frame = pd.concat(self._frames, ignore_index=True)
        runs.write_parquet(self.run_dir / "fronts.parquet", frame)
        runs.write_json(self.run_dir / CHECKPOINT, {"chosen_kw": self.chosen})
        return x


def telling_steps(fronts: pd.DataFrame, n: int = 3) -> list[int]:
    """Steps whose fronts span the widest trade-off, at least an hour apart."""
    if fronts.empty:
        return []
    grouped = fronts.groupby("step")
    f1, f2 = grouped["f1_opendss"], grouped["f2_opendss"]
    span = (f1.max() - f1.min()) * (f2.max() - f2.min())
    chosen: list[int] = []
    for step in span.sort_values(ascending=False).index:
        if all(abs(int(step) - c) >= 12 for c in chosen):
            chosen.append(int(step))
        if len(chosen) == n:
            break
    return sorted(chosen)


def _load_resume(args: OptimizeArgs) -> tuple[OptimizeArgs, dict[str, Any], Path]:
    run_dir = Path(str(args.resume))
    where = f"--resume {run_dir}"
    meta = runs.read_json(run_dir / "config.json", where)
    command = meta.get("command") if isinstance(meta, dict) else None
    if command != "optimize" or not isinstance(meta.get("args"), dict):
        raise ConfigError(
            f"{where}: not an optimize run folder (made by {command or 'something else'!r}); "
            "resume it with its own command"
        )
    saved = {**meta["args"], "resume": str(run_dir), "progress": args.progress}
    saved["weights"] = tuple(saved["weights"])
    runs.remove_stale_temporaries(run_dir)
    return OptimizeArgs(**saved), meta["config"], run_dir


def optimize(args: OptimizeArgs) -> Path:
    """Run (or resume) a day under NSGA-II control and return its run folder."""
    if args.resume:
        args, saved_config, run_dir = _load_resume(args)
        config = scenario_config_from_dict(saved_config)
    else:
        config = load_scenario_config(args.scenario)
        run_dir = None
    nsga = args.nsga2()  # validates the optimiser settings before any work
    if args.workers > 1 and config.ev.energy_guarantee:
        raise ConfigError(
            f"--workers {args.workers} needs independent timesteps, but with the EV energy "
            "guarantee (ev.energy_guarantee: true) each step owes what earlier steps deferred, "
            "so the day is sequential; set ev.energy_guarantee: false in the scenario (the seed "
            "formulation) or use --workers 1"
        )
    scenario = build_scenario(config, args.seed)
    if run_dir is None:
        run_dir = runs.new_run_dir(args.out, "optimize", scenario.feeder.name, args.seed)
        saved_args = {**asdict(args), "resume": None}
        runs.write_json(
            run_dir / "config.json",
            runs.run_metadata(config.to_dict(), args.seed, command="optimize", args=saved_args),
        )
    try:
        return _optimize_day(args, config, scenario, nsga, run_dir)
    except KeyboardInterrupt:
        # Every finished step is in the checkpoint already (written after each step).
        raise runs.RunInterrupted(run_dir, f"powertrip optimize --resume {run_dir}") from None


def _optimize_day(
    args: OptimizeArgs, config: ScenarioConfig, scenario: Scenario, nsga: NSGA2Config, run_dir: Path
) -> Path:
    console = Console()
    names = [d.name for d in (*config.devices.cps, *config.devices.pvs)]
    with FeederSimulator(scenario) as sim:
        controller = NSGA2Controller(sim, nsga)
        pool = (
            FrontPool(scenario, nsga, (controller.refs[0], controller.refs[1]), args.workers)
            if args.workers > 1
            else None
        )
        try:
            wrapped = _Checkpointed(controller, run_dir, names, pool)
            smart = run_day(sim, wrapped, "NSGA-II", args.steps, args.progress)
        except KeyboardInterrupt:
            if pool is not None:  # stop the workers now rather than wait for their steps
                pool.terminate()
                pool = None
            raise
        finally:
            if pool is not None:
                pool.close()
        fronts = fronts_frame(controller.fronts, names[: sim.n_cp], names[sim.n_cp :])
        baseline = run_day(sim, NoControl(), "no control", args.steps, args.progress)
        results = {"no control": baseline, "NSGA-II": smart}
        frame = pd.concat(
            [
                baseline.steps.assign(controller="no_control"),
                smart.steps.assign(controller="nsga2"),
            ],
            ignore_index=True,
        )
        runs.write_parquet(run_dir / "results.parquet", frame)
        runs.write_parquet(run_dir / "fronts.parquet", fronts)
        summaries = {label: r.summary() for label, r in results.items()}
        warnings = {label: r.warnings() for label, r in results.items()}
        runs.write_json(run_dir / "summary.json", {**summaries, "warnings": warnings})
        paths = write_day_figures(results, sim, run_dir / "figures")
    paths.append(_pareto_figure(fronts, run_dir / "figures"))
    console.print(
        summary_table(f"NSGA-II vs no control, {scenario.feeder.name}, seed {args.seed}", summaries)
    )
    _report(run_dir, scenario.feeder.name, args, summaries, paths, warnings)
    for label, texts in warnings.items():
        for w in texts:
            console.print(f"[bold yellow]warning ({label}):[/] {w}")
    console.print(f"run folder: {run_dir}")
    return run_dir


def _pareto_figure(fronts: pd.DataFrame, figures_dir: Path) -> Path:
    from experiments.figures import plot_pareto_fronts

    steps = telling_steps(fronts)
    data, marked = {}, {}
    for step in steps:
        rows = fronts[fronts["step"] == step]
        hour = step * 5 / 60
        label = f"step {step} ({int(hour):02d}:{round(hour % 1 * 60):02d})"
        data[label] = rows[["f1_opendss", "f2_opendss"]].to_numpy()
        chosen = rows[rows["chosen"]].iloc[0]
        marked[label] = {
            "no control": (
                float(rows["f1_no_control"].iloc[0]),
                float(rows["f2_no_control"].iloc[0]),
            ),
            "chosen": (float(chosen["f1_opendss"]), float(chosen["f2_opendss"])),
        }
    return plot_pareto_fronts(data, figures_dir, marked)


def _report(
    run_dir: Path,
    feeder: str,
    args: OptimizeArgs,
    summaries: dict[str, dict[str, float]],
    paths: list[Path],
    warnings: dict[str, list[str]],
) -> None:
    labels = list(summaries)
    lines = [
        f"# NSGA-II vs no control: {feeder}, seed {args.seed}",
        "",
        f"NSGA-II: population {args.pop_size}, {args.n_gen} generations, evaluator "
        f"{args.evaluator}, selection {args.selection}, weights {args.weights}, CP floor "
        f"{args.cp_floor}, f1 {'capped at F1_ref' if args.cap_f1 else 'uncapped'}.",
        "",
        "| metric | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for key in summaries[labels[0]]:
        cells = []
        for label in labels:
            v = summaries[label][key]
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", *(f"**Warning ({k}):** {w}" for k, texts in warnings.items() for w in texts)]
    lines += ["", *[f"![{p.stem}](figures/{p.name})" for p in paths]]
    runs.write_text(run_dir / "report.md", "\n".join(lines) + "\n")
