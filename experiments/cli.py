"""The ``powertrip`` command: thin argument parsing over the library (conventions.md habit 9)."""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from powertrip_env.errors import PowerTripError


def _simulate(ns: argparse.Namespace) -> None:
    from experiments.simulate import SimulateArgs, simulate

    simulate(
        SimulateArgs(
            scenario=ns.scenario,
            seed=ns.seed,
            steps=ns.steps,
            out=ns.out,
            progress=not ns.no_progress,
            controller=ns.controller,
            weights=ns.weights,
            day_pictures=not ns.no_pictures,
        )
    )


def _weights(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"weights must be two numbers like 0.5,0.5, got {text!r}"
        ) from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise argparse.ArgumentTypeError(
            f"weights must be finite numbers like 0.5,0.5, got {text!r}"
        )
    return a, b


def _count(text: str) -> int:
    """An argparse type: an integer of at least 1 (a step count, a worker count, ...)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {text!r}")
    return value


def _seed(text: str) -> int:
    """An argparse type: a non-negative integer seed."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _optimize(ns: argparse.Namespace) -> None:
    from experiments.optimize import OptimizeArgs, optimize

    optimize(
        OptimizeArgs(
            scenario=ns.scenario,
            seed=ns.seed,
            pop_size=ns.pop_size,
            n_gen=ns.n_gen,
            evaluator=ns.evaluator,
            selection=ns.selection,
            weights=ns.weights,
            cp_floor=ns.cp_floor,
            cap_f1=not ns.no_cap,
            steps=ns.steps,
            out=ns.out,
            resume=ns.resume,
            workers=ns.workers,
            progress=not ns.no_progress,
        )
    )


def _train(ns: argparse.Namespace) -> None:
    from experiments.train import TrainArgs, run_train

    for run_dir in run_train(
        TrainArgs(
            algo=ns.algo,
            weights=ns.weights,
            conditioned=ns.conditioned,
            sweep=ns.sweep,
            timesteps=ns.timesteps,
            seed=ns.seed,
            n_envs=ns.n_envs,
            checkpoint_every=ns.checkpoint_every,
            eval_every=ns.eval_every,
            train_days=ns.train_days,
            env_backend=ns.env_backend,
            prefetch_days=ns.prefetch_days,
            action_margin=ns.action_margin,
            initial_action=ns.initial_action,
            hyperparams=ns.hyperparams,
            scenario=ns.scenario,
            resume=ns.resume,
            out=ns.out,
            progress=not ns.no_progress,
        )
    ):
        print(f"run folder: {run_dir}")


def _evaluate(ns: argparse.Namespace) -> None:
    from experiments.train import evaluate_run, parse_days, parse_weights, print_evaluation

    days = parse_days(ns.days) if ns.days else None
    weights = parse_weights(ns.weights) if ns.weights else None
    print_evaluation(ns.run_dir, evaluate_run(ns.run_dir, days=days, weights=weights))


def _draw(ns: argparse.Namespace) -> None:
    from experiments.feeder_drawing import draw_feeder
    from powertrip_env.config import load_scenario_config
    from powertrip_env.errors import FeederError
    from powertrip_env.grid.layout import feeder_coords_file

    config = load_scenario_config(ns.scenario)
    feeder = config.feeder.build()
    coords = feeder_coords_file(feeder)
    if coords is None:
        raise FeederError(
            f"feeder {feeder.name!r} has no bus coordinates to draw it with (a bus,x_m,y_m CSV "
            "or, for an ENWL feeder, XY_Position.xls in its folder)"
        )
    drawing = draw_feeder(coords, feeder, config.devices, ns.out)
    print(
        f"wrote {drawing.path} ({drawing.n_lines} lines, {drawing.n_cps} CPs, {drawing.n_pvs} PVs)"
    )


def _buses(ns: argparse.Namespace) -> None:
    from experiments.feeders import bus_heading, bus_table
    from powertrip_env.config import load_scenario_config
    from powertrip_env.grid.layout import feeder_layout

    feeder = load_scenario_config(ns.scenario).feeder.build()
    layout = feeder_layout(feeder)
    table = bus_table(layout, sort=ns.sort, houses_only=ns.houses)
    if ns.reverse:
        table = table.iloc[::-1]
    print(bus_heading(feeder, layout))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


def _feeders(ns: argparse.Namespace) -> None:
    import pandas as pd

    from experiments.feeders import feeder_table

    table = feeder_table(ns.path, solve=not ns.no_solve)
    if ns.csv:
        table.to_csv(ns.csv, index=False)
    shown = table.drop(columns=[] if ns.folders else ["folder"])
    with pd.option_context("display.max_colwidth", 120, "display.width", 250):
        print(shown.to_string(index=False))
    if ns.no_solve:
        read = int((~table["loads"].str.startswith("no")).sum())
        print(f"{len(table)} feeder(s) found, {read} read (no power flow run)")
    else:
        print(f"{len(table)} feeder(s) found, {int((table['loads'] == 'yes').sum())} load")


def _sweep_feeders(ns: argparse.Namespace) -> None:
    from experiments.sweep import SweepArgs, sweep_feeders

    sweep_feeders(
        SweepArgs(
            path=ns.path,
            scenario=ns.scenario,
            seed=ns.seed,
            steps=ns.steps,
            workers=ns.workers,
            out=ns.out,
        )
    )


def _benchmark(ns: argparse.Namespace) -> None:
    from experiments.benchmark import BenchmarkArgs, UnitsFailedError, benchmark

    run = benchmark(
        BenchmarkArgs(
            config=ns.config,
            backend=ns.backend,
            workers=ns.workers,
            address=ns.address,
            steps=ns.steps,
            out=ns.out,
            resume=ns.resume,
            progress=not ns.no_progress,
        )
    )
    if run.failed:
        raise UnitsFailedError(
            f"{len(run.failed)} unit(s) failed ({', '.join(sorted(run.failed))}); the tables "
            f"and {run.run_dir / 'report.html'} cover the others. Fix the cause and run "
            f"powertrip benchmark --resume {run.run_dir}"
        )


def _reproduce(ns: argparse.Namespace) -> None:
    from experiments.benchmark_reproduce import ReproduceArgs, reproduce

    reproduce(
        ReproduceArgs(
            quick=ns.quick,
            out=ns.out,
            workers=ns.workers,
            update_docs=ns.update_docs,
            speed=not ns.no_speed,
            agents=ns.agents,
        )
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=None, help="scenario YAML (default: the shipped one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="powertrip", description="Smart control of EV charging and PV on LV feeders."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="a day under no control, with figures and a report")
    _common(p)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the day's profiles")
    p.add_argument("--steps", type=_count, default=None, help="only the first N steps")
    p.add_argument(
        "--controller",
        default="no_control",
        help="also run flat_rate, pv_following, volt_watt or oracle beside no control",
    )
    p.add_argument("--weights", type=_weights, default=(0.5, 0.5), help="oracle's, e.g. 0.5,0.5")
    p.add_argument("--out", default="runs", help="folder for run folders")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--no-pictures", action="store_true", help="skip the day's strip of frames and its GIF"
    )
    p.set_defaults(func=_simulate)

    p = sub.add_parser("optimize", help="a day under NSGA-II control, compared with no control")
    _common(p)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the day and of NSGA-II")
    p.add_argument("--pop-size", type=_count, default=100, help="NSGA-II population per step")
    p.add_argument("--n-gen", type=_count, default=100, help="NSGA-II generations per step")
    p.add_argument("--evaluator", default="reduced", help="reduced (default) or opendss")
    p.add_argument(
        "--selection", default="pseudo_weights", help="pseudo_weights, knee or weighted_sum"
    )
    p.add_argument("--weights", type=_weights, default=(0.5, 0.5), help="e.g. 0.5,0.5")
    p.add_argument(
        "--cp-floor",
        default="flat_rate",
        choices=["flat_rate", "latest"],
        help="lowest CP power searched: flat_rate (default) or latest (the original)",
    )
    p.add_argument(
        "--no-cap", action="store_true", help="let a step's f1 exceed the day's worst no control"
    )
    p.add_argument("--steps", type=_count, default=None, help="only the first N steps")
    p.add_argument("--out", default="runs", help="folder for run folders")
    p.add_argument("--resume", default=None, help="resume this run folder")
    p.add_argument(
        "--workers",
        type=_count,
        default=1,
        help="processes computing fronts (needs ev.energy_guarantee: false, the seed formulation)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_optimize)

    p = sub.add_parser("train", help="train an SB3 agent on the scalarised env (or resume one)")
    _common(p)
    p.add_argument("--algo", default="sac", help="ppo, sac or td3")
    p.add_argument("--weights", default="0.5,0.5", help="w1,w2 of (unbalance, curtailment)")
    p.add_argument("--conditioned", action="store_true", help="one weight-conditioned policy")
    p.add_argument("--sweep", action="store_true", help="one policy per weight, (1,0)..(0,1)")
    p.add_argument("--timesteps", type=_count, default=None, help="env steps in all (20000)")
    p.add_argument("--seed", type=_seed, default=0, help="the run's seed")
    p.add_argument("--n-envs", type=_count, default=1, help="env copies stepped in process")
    p.add_argument("--checkpoint-every", type=_count, default=5000, help="steps per checkpoint")
    p.add_argument("--eval-every", type=int, default=5000, help="steps per held-out evaluation")
    p.add_argument("--train-days", type=int, default=None, help="train on days 0..N-1 only")
    p.add_argument(
        "--env-backend",
        default="opendss",
        choices=["opendss", "batched"],
        help="training env: OpenDSS copies, or one batched reduced-model env (much faster)",
    )
    p.add_argument(
        "--prefetch-days",
        action="store_true",
        help="with --env-backend batched: build each copy's next day in a background process "
        "while the copies step (the same days; worth it without --train-days, or with many)",
    )
    p.add_argument(
        "--action-margin", type=float, default=0.0, help="policy range past [0, 1] (e.g. 0.05)"
    )
    p.add_argument(
        "--initial-action",
        type=float,
        default=None,
        help="start the policy at this action in [-1, 1] (1: no control)",
    )
    p.add_argument("--hyperparams", default=None, help="hyperparameter YAML for the algo")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a run")
    p.add_argument("--out", default="runs", help="folder for run folders")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="a trained agent against no control on held-out days")
    p.add_argument("run_dir", help="a training run folder")
    p.add_argument("--days", default=None, help="comma-separated day seeds (the run's)")
    p.add_argument("--weights", default=None, help="w1,w2 of the weighted cost (the run's)")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("benchmark", help="controllers on test days x seeds, with a report")
    p.add_argument("--config", default=None, help="benchmark YAML (default: the shipped one)")
    p.add_argument("--backend", default="process", help="process (default) or ray")
    p.add_argument("--address", default=None, help="Ray cluster address (local Ray if omitted)")
    p.add_argument("--workers", type=_count, default=2, help="processes or local Ray CPUs")
    p.add_argument("--steps", type=_count, default=None, help="only the first N steps of each day")
    p.add_argument("--out", default=None, help="folder for run folders (the config's)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None, help="finish a benchmark run")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_benchmark)

    p = sub.add_parser("reproduce", help="regenerate the README's figures and tables")
    p.add_argument("--quick", action="store_true", help="tiny budget: check the pipeline runs")
    p.add_argument("--out", default="runs", help="folder for the reproduction's run folders")
    p.add_argument("--workers", type=_count, default=2, help="processes of the benchmark")
    p.add_argument("--update-docs", action="store_true", help="copy figures to docs/figures")
    p.add_argument("--no-speed", action="store_true", help="skip the speed benchmarks")
    p.add_argument(
        "--agents", action="store_true", help="also the agents' quality benchmark (~40 min)"
    )
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("draw", help="draw the feeder and where the scenario's devices sit")
    _common(p)
    p.add_argument("--out", default="feeder.png", help="PNG to write")
    p.set_defaults(func=_draw)

    p = sub.add_parser(
        "buses", help="list the feeder's LV buses: distance from the transformer, phases, houses"
    )
    _common(p)
    p.add_argument(
        "--sort", default="bus", choices=["bus", "distance", "phase"], help="order of the rows"
    )
    p.add_argument("--reverse", action="store_true", help="reverse the order (farthest first)")
    p.add_argument("--houses", action="store_true", help="only buses with a house")
    p.set_defaults(func=_buses)

    p = sub.add_parser(
        "feeders", help="list every ENWL feeder folder under PATH and whether it loads"
    )
    p.add_argument("path", help="the ENWL dataset, one network_N folder or one feeder folder")
    p.add_argument("--no-solve", action="store_true", help="read the files only, no power flow")
    p.add_argument("--csv", default=None, help="also write the table to this CSV")
    p.add_argument("--folders", action="store_true", help="show each feeder's folder")
    p.set_defaults(func=_feeders)

    p = sub.add_parser(
        "sweep-feeders",
        help="a no-control day with rule-placed devices on every ENWL feeder under PATH",
    )
    p.add_argument("path", help="the ENWL dataset, one network_N folder or one feeder folder")
    p.add_argument(
        "--scenario",
        default=None,
        help="scenario YAML whose profiles, EVs and device rules every feeder gets (its feeder "
        "section is replaced; default: 3 CPs remote_end, 12 PVs random_houses)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seed of the day (and the placement)")
    p.add_argument("--steps", type=_count, default=None, help="only the first N steps of the day")
    p.add_argument("--workers", type=_count, default=2, help="processes (1: in this process)")
    p.add_argument("--out", default="runs", help="folder for run folders")
    p.set_defaults(func=_sweep_feeders)
    return parser


#: Exit status of a run stopped by SIGINT or SIGTERM (the shell's 128 + SIGINT).
EXIT_INTERRUPTED = 130
#: Exit status when the reader of our output went away (``powertrip buses | head``).
EXIT_BROKEN_PIPE = 141


def _error(message: str) -> int:
    print(f"powertrip: error: {message}", file=sys.stderr)
    return 2


def _os_error(exc: OSError) -> str:
    """One line for an OS error on a path: what went wrong and where."""
    from experiments import runs

    path = exc.filename2 if exc.filename2 is not None else exc.filename
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC and path is None and runs.current_run_dir() is not None:
        path = runs.current_run_dir()
    where = f" {str(path)!r}" if path is not None else ""
    return f"cannot use{where}: {reason}"


def _traceback_log() -> Path:
    """Write the traceback being handled to the run folder's ``error.log`` (or a temp file)."""
    from experiments import runs

    text = traceback.format_exc()
    run_dir = runs.current_run_dir()
    if run_dir is not None:
        try:
            return runs.write_text(run_dir / "error.log", text)
        except OSError:
            pass
    fd, name = tempfile.mkstemp(prefix="powertrip-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(text)
    return Path(name)


def _stop_on_sigterm() -> Any:
    """SIGTERM stops a run as Ctrl-C does: finished work is kept, the resume command shown.

    Returns the handler it replaced (None outside the main thread, where none is set).
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``powertrip`` command; return its exit status.

    Every error is one line on stderr (``powertrip: error: ...``, status 2); an unexpected one
    also says where its full traceback was written. SIGINT and SIGTERM end a run with status
    130 and, for commands that resume, the ``--resume`` command that continues it.
    """
    from experiments.runs import RunInterrupted

    ns = build_parser().parse_args(argv)
    previous = _stop_on_sigterm()
    try:
        ns.func(ns)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except RunInterrupted as exc:
        print(f"powertrip: interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("powertrip: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader is gone: send what Python would still flush at exit to /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except PowerTripError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(_os_error(exc))
    except Exception as exc:
        log = _traceback_log()
        return _error(f"unexpected {type(exc).__name__}: {exc} (full traceback in {log})")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
