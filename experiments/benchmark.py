"""``powertrip benchmark``: controllers on test days x seeds, with indicators and a report.

The benchmark (configured by :class:`~experiments.benchmark_config.BenchmarkConfig`) is a grid
of independent **units**, one per test day x seed x controller. A unit builds its own
scenario-day and simulator (its own OpenDSS engine, architecture.md §10), runs the controller over
the day, timing each decision, and returns its rows; the driver writes each finished unit
atomically under ``runs/<id>/units/`` (steps and fronts first, the ``<unit>.json`` status
last). So an interrupted benchmark resumes (``--resume RUN_DIR``) without redoing finished
units, and a unit that fails (an agent's run folder missing, a crash) is recorded with its
error while the rest go on; failed units are retried on resume.

Units run in this process (``workers=1``), on a local process pool (default, ``spawn``) or
on Ray (``backend="ray"``: ``ray.init(num_cpus=workers)`` locally, or ``address=`` of a
cluster whose nodes have PowerTrip installed and see the agents' run folders). Each unit is
deterministic (the day from its seed, NSGA-II step t seeded ``seed + t``), so every backend
gives the same results; only the wall-clock timings differ.

When every unit is done the run folder gets (architecture.md §9):

* ``config.json``: the resolved benchmark and scenario configs, versions, git commit;
* ``results.parquet``: one row per controller x day x seed x timestep with every metric,
  the normalised costs ``f1_norm``, ``f2_norm`` and the decision time ``decision_s``;
* ``fronts.parquet``: every NSGA-II front (search and OpenDSS values, normalised costs);
* ``units.parquet``: each unit's status, error, wall time and day references;
* ``indicators.parquet``, ``hypervolume.parquet``, ``days.parquet``: see
  :mod:`experiments.indicators`;
* ``report.html`` (self-contained) and ``report.md`` with ``figures/``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from experiments import runs
from experiments.benchmark_config import (
    BenchmarkConfig,
    benchmark_config_from_dict,
    day_scenario,
    load_benchmark_config,
)
from experiments.benchmark_tables import write_tables
from experiments.benchmark_units import (
    UNITS_DIR,
    Unit,
    UnitOutput,
    failed_output,
    finished_units,
    plan_units,
    write_unit,
)
from experiments.report import write_report
from powertrip_env.config import ScenarioConfig, scenario_config_from_dict
from powertrip_env.errors import ConfigError, PowerTripError
from powertrip_env.parallel import terminate_pool, watch_parent
from powertrip_env.simulator import Controller, FeederSimulator, SimState

BACKENDS = ("process", "ray")
#: What a unit's worker process runs with (architecture.md §8: steadier single-threaded numpy).
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class UnitsFailedError(PowerTripError):
    """Some benchmark units failed (each is recorded with its error in the run folder)."""


class _StepTimer:
    """Wraps a controller and records the wall time of each decision (``act``), seconds."""

    def __init__(self, inner: Controller) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    def act(self, state: SimState) -> np.ndarray:
        start = time.perf_counter()
        x = self.inner.act(state)
        self.seconds.append(time.perf_counter() - start)
        return x


def _controller(
    config: BenchmarkConfig,
    unit: Unit,
    sim: FeederSimulator,
    refs: tuple[float, float],
    scenario: ScenarioConfig,
) -> tuple[Controller, Callable[[], None]]:
    """The unit's controller and a function releasing what it holds."""
    if unit.controller == "no_control":
        from baselines.no_control import NoControl

        return NoControl(), lambda: None
    if unit.controller == "nsga2":
        from baselines.nsga2 import NSGA2Controller

        assert config.nsga2 is not None  # plan_units lists nsga2 units only when set
        nsga = config.nsga2.config(unit.seed, config.weights)
        return NSGA2Controller(sim, nsga, refs), lambda: None
    if unit.controller == "oracle":
        from baselines.oracle import OracleConfig, OracleController

        return OracleController(sim, OracleConfig(weights=config.weights), refs), lambda: None
    if unit.controller.startswith("lookahead_"):
        from baselines.lookahead import LookAheadConfig, LookAheadController

        forecast = unit.controller.removeprefix("lookahead_")
        settings = LookAheadConfig(
            horizon_h=float(config.lookahead_horizon_h),
            forecast=forecast,  # type: ignore[arg-type]  # validated by the config
            weights=config.weights,
        )
        return LookAheadController(sim, settings, refs), lambda: None
    if unit.controller in config.rule_based:
        from baselines import rule_based

        return rule_based(unit.controller, sim), lambda: None
    spec = config.agent(unit.controller)
    if not Path(spec.run_dir).exists():
        raise ConfigError(
            f"agent {spec.name!r}: run folder {spec.run_dir!r} does not exist "
            "(train it with powertrip train, or fix agents[].run_dir)"
        )
    # Imported here: torch and stable-baselines3 load only in agent units.
    import torch

    from agents.policy import AgentController
    from powertrip_env.env import PowerTripEnv

    torch.set_num_threads(1)
    # Observations and kW setpoints come from an env of the benchmark's own day scenario.
    env = PowerTripEnv(scenario, info_metrics=False)
    return AgentController(spec.run_dir, env=env, weights=spec.weights), env.close


def _simulate_unit(config: BenchmarkConfig, base: ScenarioConfig, unit: Unit) -> UnitOutput:
    from experiments.indicators import step_costs, with_normalised_fronts
    from experiments.optimize import fronts_frame
    from powertrip_env.scenario import build_scenario

    scenario_config = day_scenario(base, unit.day)
    scenario = build_scenario(scenario_config, unit.seed)
    with FeederSimulator(scenario) as sim:
        refs = sim.objective_refs()
        controller, release = _controller(config, unit, sim, refs, scenario_config)
        try:
            timer = _StepTimer(controller)
            result = sim.run(timer, steps=config.steps)
        finally:
            release()
        f_norm = step_costs(result.steps, refs)
        steps = result.steps.assign(
            f1_norm=f_norm[:, 0], f2_norm=f_norm[:, 1], decision_s=timer.seconds
        )
        fronts = pd.DataFrame()
        if unit.controller == "nsga2":
            names = [d.name for d in (*scenario.devices.cps, *scenario.devices.pvs)]
            fronts = fronts_frame(
                controller.fronts,  # type: ignore[attr-defined]
                names[: sim.n_cp],
                names[sim.n_cp :],
            )
            fronts = with_normalised_fronts(fronts, refs)
    worst = result.worst_v_pu
    meta = {
        "refs": list(refs),
        "dt_h": result.dt_h,
        "summary": result.summary(),
        "ev_requested_kwh": result.ev_requested_kwh.tolist(),
        "ev_unserved_kwh": result.ev_unserved_kwh.tolist(),
        "worst_v_pu": None if worst is None else worst.tolist(),
        "decision_s_per_step": float(np.mean(timer.seconds)) if timer.seconds else 0.0,
        "energy_guarantee": scenario_config.ev.energy_guarantee,
    }
    plan = getattr(controller, "plan", None)
    if plan is not None:  # the oracle plans before the day: its certificate and its time
        meta["oracle_gap"] = float(plan.gap)
        meta["plan_s"] = float(plan.seconds)
    return UnitOutput(unit, True, steps=steps, fronts=fronts, meta=meta)


def run_unit(config: BenchmarkConfig, base: ScenarioConfig, unit: Unit) -> UnitOutput:
    """Run one unit; any error is caught and returned as a failed :class:`UnitOutput`.

    Runs in a worker process or a Ray task: everything it needs travels in its arguments
    (plain frozen dataclasses) and it writes nothing; the driver writes its output.
    """
    start = time.perf_counter()
    try:
        out = _simulate_unit(config, base, unit)
    except Exception as exc:  # a failing unit is recorded; the benchmark goes on
        out = failed_output(unit, exc, traceback.format_exc())
    out.meta["wall_s"] = time.perf_counter() - start
    return out


# --- Backends -----------------------------------------------------------------------------------


def _longest_first(units: list[Unit]) -> list[Unit]:
    """NSGA-II units first: they take far longer, so a pool ends sooner with them early."""
    return sorted(units, key=lambda u: u.controller != "nsga2")


def _run_in_process(
    units: list[Unit],
    config: BenchmarkConfig,
    base: ScenarioConfig,
    done: Callable[[UnitOutput], None],
) -> None:
    for unit in units:
        # Looked up at call time, so a test can stand in for the unit runner.
        done(globals()["run_unit"](config, base, unit))


def _run_pool(
    units: list[Unit],
    config: BenchmarkConfig,
    base: ScenarioConfig,
    workers: int,
    done: Callable[[UnitOutput], None],
) -> None:
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)  # inherited by the spawned workers
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=watch_parent,  # workers exit if this driver dies
        initargs=(os.getpid(),),
    )
    try:
        futures = {pool.submit(run_unit, config, base, unit): unit for unit in units}
        for future in as_completed(futures):
            try:
                out = future.result()
            except Exception as exc:  # the worker died (e.g. a crash inside OpenDSS)
                out = failed_output(futures[future], exc)
            done(out)
    except BaseException:
        # Interrupted (or done() failed): stop the running units now; finished ones are kept.
        terminate_pool(pool)
        raise
    pool.shutdown()


def _run_ray(
    units: list[Unit],
    config: BenchmarkConfig,
    base: ScenarioConfig,
    workers: int,
    address: str | None,
    done: Callable[[UnitOutput], None],
) -> None:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "backend 'ray' needs Ray: pip install 'powertrip[scale]' (or pip install ray)"
        ) from None
    started = False
    if not ray.is_initialized():
        runtime_env = {"env_vars": dict(WORKER_ENV)}
        if address:
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
        else:
            ray.init(
                num_cpus=workers,
                include_dashboard=False,
                runtime_env=runtime_env,
                log_to_driver=False,
            )
        started = True
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_unit)
        config_ref, base_ref = ray.put(config), ray.put(base)
        pending = {task.remote(config_ref, base_ref, unit): unit for unit in units}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                unit = pending.pop(ref)
                try:
                    out = ray.get(ref)
                except Exception as exc:  # the task's worker died
                    out = failed_output(unit, exc)
                done(out)
    finally:
        if started:
            ray.shutdown()


def execute(
    units: list[Unit],
    config: BenchmarkConfig,
    base: ScenarioConfig,
    done: Callable[[UnitOutput], None],
    backend: str = "process",
    workers: int = 2,
    address: str | None = None,
) -> None:
    """Run ``units`` on ``backend`` and hand each output to ``done`` as it finishes.

    ``backend="process"`` with ``workers=1`` runs the units in this process.
    """
    units = _longest_first(units)
    if backend == "ray":
        _run_ray(units, config, base, workers, address, done)
    elif workers == 1:
        _run_in_process(units, config, base, done)
    else:
        _run_pool(units, config, base, workers, done)


# --- The benchmark ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkArgs:
    """Arguments of ``powertrip benchmark``."""

    config: str | None = None
    """Benchmark YAML; the shipped ``experiments/configs/benchmark.yaml`` when omitted."""
    backend: str = "process"
    """``process`` (a local process pool) or ``ray``."""
    workers: int = 2
    """Processes (or Ray CPUs of a local Ray); 1 runs the units in this process."""
    address: str | None = None
    """Ray cluster address (``ray://host:10001``, ``host:6379`` or ``auto``); local Ray if None."""
    steps: int | None = None
    """Override of the config's ``steps`` (only the first N steps of each day)."""
    out: str | None = None
    """Override of the config's ``out`` folder."""
    resume: str | None = None
    """A benchmark run folder to finish (its saved config is used)."""
    progress: bool = True
    """Show a progress bar."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend={self.backend!r} is not one of {BACKENDS}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers={self.workers!r} must be an integer >= 1")
        if self.address and self.backend != "ray":
            raise ConfigError(f"address={self.address!r} needs backend 'ray'")


@dataclass(frozen=True)
class BenchmarkRun:
    """A finished benchmark: its folder, the failed units (id -> error) and its wall time."""

    run_dir: Path
    failed: dict[str, str]
    seconds: float


def _resolve(args: BenchmarkArgs) -> tuple[BenchmarkConfig, ScenarioConfig, Path]:
    if args.resume:
        run_dir = Path(args.resume)
        meta = runs.read_json(run_dir / "config.json", f"--resume {run_dir}")
        command = meta.get("command") if isinstance(meta, dict) else None
        if command != "benchmark":
            raise ConfigError(
                f"--resume {run_dir}: not a benchmark run folder (made by "
                f"{command or 'something else'!r}); resume it with its own command"
            )
        config = benchmark_config_from_dict(meta["benchmark"], resolve_paths=False)
        runs.remove_stale_temporaries(run_dir)
        return config, scenario_config_from_dict(meta["config"]), run_dir
    config = load_benchmark_config(args.config)
    if args.steps is not None:
        config = replace(config, steps=args.steps)
    if args.out is not None:
        config = replace(config, out=args.out)
    base = config.base_scenario()
    feeder = base.feeder.build().name
    run_dir = runs.new_run_dir(config.out, "benchmark", feeder, config.seeds[0])
    return config, base, run_dir


def benchmark(args: BenchmarkArgs) -> BenchmarkRun:
    """Run (or resume) the benchmark ``args`` describe; see the module docstring."""
    config, base, run_dir = _resolve(args)
    return run_benchmark(
        config,
        base,
        run_dir,
        backend=args.backend,
        workers=args.workers,
        address=args.address,
        progress=args.progress,
    )


def _check_same_benchmark(run_dir: Path, config: BenchmarkConfig) -> None:
    """Refuse to add units of another benchmark to an existing run folder."""
    path = run_dir / "config.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text(encoding="utf-8")).get("benchmark")
    if saved is None or benchmark_config_from_dict(saved, resolve_paths=False) != config:
        raise ConfigError(
            f"{run_dir} holds another benchmark (its config.json differs); resume it with "
            "its own config (powertrip benchmark --resume) or choose a new run folder"
        )


def run_benchmark(
    config: BenchmarkConfig,
    base: ScenarioConfig | None = None,
    run_dir: Path | None = None,
    *,
    backend: str = "process",
    workers: int = 2,
    address: str | None = None,
    progress: bool = True,
) -> BenchmarkRun:
    """Run the units of ``config`` not yet finished in ``run_dir``, then tables and report.

    Args:
        config: the benchmark.
        base: the resolved base scenario (``config.base_scenario()`` when omitted).
        run_dir: the run folder (a new ``<out>/benchmark__...`` when omitted); finished
            units already in it are kept.
        backend: ``process`` or ``ray``.
        workers: processes, or CPUs of a local Ray.
        address: Ray cluster address (local Ray when omitted).
        progress: show a progress bar.
    """
    start = time.perf_counter()
    BenchmarkArgs(backend=backend, workers=workers, address=address)  # validates them
    base = base if base is not None else config.base_scenario()
    if run_dir is None:
        feeder = base.feeder.build().name
        run_dir = runs.new_run_dir(config.out, "benchmark", feeder, config.seeds[0])
    units_dir = run_dir / UNITS_DIR
    _check_same_benchmark(run_dir, config)
    if not (run_dir / "config.json").is_file():
        runs.write_json(
            run_dir / "config.json",
            runs.run_metadata(
                base.to_dict(), config.seeds[0], command="benchmark", benchmark=config.to_dict()
            ),
        )
    units = plan_units(config)
    finished = finished_units(units_dir, units)
    todo = [u for u in units if u.id not in finished]
    console = Console()
    console.print(
        f"benchmark: {len(units)} units ({len(finished)} already done), backend {backend}, "
        f"{workers} worker(s); run folder {run_dir}"
    )
    with Progress(
        TextColumn("[bold]units"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("units", total=len(todo))

        def done(out: UnitOutput) -> None:
            write_unit(units_dir, out)
            bar.advance(task)
            if not out.ok:
                console.print(f"[red]unit {out.unit.id} failed:[/red] {out.error}")

        try:
            execute(todo, config, base, done, backend=backend, workers=workers, address=address)
        except KeyboardInterrupt:
            raise runs.RunInterrupted(run_dir, f"powertrip benchmark --resume {run_dir}") from None

    try:
        failed = write_tables(run_dir, config, units)
        write_report(run_dir)
    except KeyboardInterrupt:  # every unit is kept; a resume writes the tables again
        raise runs.RunInterrupted(run_dir, f"powertrip benchmark --resume {run_dir}") from None
    seconds = time.perf_counter() - start
    console.print(f"benchmark done in {seconds:.1f} s; report: {run_dir / 'report.html'}")
    return BenchmarkRun(run_dir=run_dir, failed=failed, seconds=seconds)
