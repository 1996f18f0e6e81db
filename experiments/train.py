"""``powertrip train`` and ``powertrip evaluate``: SB3 agents on the scalarised PowerTrip env.

One training run writes ``runs/<run-id>/`` (layout in :mod:`agents.models`): ``config.json``
(the resolved :class:`~agents.config.TrainConfig`, seed, package versions, git commit), the
final ``model.zip`` and ``vecnormalize.pkl``, ``checkpoints/``, the learning curve
(``monitor/``, ``progress.csv``, TensorBoard in ``tb/``) and ``eval.csv`` (held-out days).
:func:`resume` continues a run from its latest checkpoint: the step count, the TensorBoard
curve, ``progress.csv``, ``eval.csv`` and the episode logs carry on where it stopped.

Usage::

    powertrip train --algo sac --weights 0.5,0.5 --timesteps 20000 [--seed 0]
    powertrip train --sweep --algo sac --timesteps 20000      # five weights, (1,0) .. (0,1)
    powertrip train --algo ppo --env-backend batched --n-envs 64 --train-days 256 \
        --initial-action 1 --timesteps 1000000   # ~1000x the samples/s of the OpenDSS env
    powertrip train --algo ppo --env-backend batched --n-envs 64 --prefetch-days \
        --timesteps 1000000   # a new day every episode, built in the background
    powertrip train --resume runs/<run-id> [--timesteps 40000]
    powertrip evaluate runs/<run-id> [--days 1000000000,1000000001]
"""

from __future__ import annotations

import contextlib
import json
import pickle
import signal
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch
from rich.console import Console
from stable_baselines3.common.callbacks import BaseCallback

from agents.callbacks import Checkpointer, HeldOutEval, make_logger
from agents.config import (
    DEFAULT_SWEEP_WEIGHTS,
    Algo,
    EnvBackend,
    TrainConfig,
    check_weights,
    load_hyperparams,
)
from agents.envs import make_eval_env, make_vec_env
from agents.evaluation import Evaluation, evaluate_days
from agents.models import (
    ALGO_CLASSES,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    VECNORMALIZE_FILE,
    Checkpoint,
    atomic_save,
    build_model,
    latest_checkpoint,
    read_run_config,
)
from agents.policy import AgentController
from agents.snapshot import RestoreTrainingState, load_state
from experiments import runs
from powertrip_env.config import load_scenario_config
from powertrip_env.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class TrainArgs:
    """Arguments of ``powertrip train`` (parsed by the CLI, turned into a :class:`TrainConfig`)."""

    algo: Algo = "sac"
    """Learner: ``ppo``, ``sac`` or ``td3``."""
    weights: str = "0.5,0.5"
    """Weights of (grid impact, PV curtailment) as ``w1,w2``, summing to 1."""
    conditioned: bool = False
    """Train one weight-conditioned policy (w appended to the observation, drawn per episode)."""
    sweep: bool = False
    """Train one policy per weight of the default sweep (1,0), (.75,.25), ..., (0,1)."""
    timesteps: int | None = None
    """Env steps in all (default: 20,000; with ``resume``: the run's recorded total)."""
    seed: int = 0
    """The run's seed."""
    n_envs: int = 1
    """Env copies stepped in process."""
    checkpoint_every: int = 5_000
    """Env steps between checkpoints."""
    eval_every: int = 5_000
    """Env steps between held-out evaluations (0: only at the end)."""
    train_days: int | None = None
    """Train on day seeds 0..N-1 only (default: a fresh day per episode)."""
    env_backend: EnvBackend = "opendss"
    """Training env: ``opendss`` or ``batched`` (see :attr:`TrainConfig.env_backend`)."""
    prefetch_days: bool = False
    """Batched backend: build the next days in a background process (see
    :attr:`TrainConfig.prefetch_days`)."""
    action_margin: float = 0.0
    """Policy range past the env's [0, 1] (see :attr:`TrainConfig.action_margin`)."""
    initial_action: float | None = None
    """The fresh policy's action in [-1, 1] (see :attr:`TrainConfig.initial_action`)."""
    hyperparams: str | None = None
    """Hyperparameter YAML (default: the shipped ``agents/hyperparams/<algo>.yaml``, or
    ``<algo>_batched.yaml`` on the batched backend where one is shipped)."""
    scenario: str | None = None
    """Scenario YAML (default: the shipped one)."""
    resume: str | None = None
    """Run folder to continue from its latest checkpoint (other options but the budget and
    the progress bar come from the run's config)."""
    out: str = "runs"
    """Folder under which run folders are created."""
    progress: bool = True
    """Show a progress bar."""


def parse_weights(text: str) -> tuple[float, float]:
    """``"0.5,0.5"`` -> ``(0.5, 0.5)``; raises :class:`ConfigError` naming ``--weights``."""
    try:
        values = tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--weights={text!r} must be two numbers like 0.5,0.5") from exc
    return check_weights(values, "--weights")


def parse_days(text: str) -> tuple[int, ...]:
    """``"1000000000,1000000001"`` -> day seeds; raises :class:`ConfigError` naming ``--days``."""
    try:
        days = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--days={text!r} must be comma-separated integer day seeds") from exc
    if not days or any(d < 0 for d in days):
        raise ConfigError(f"--days={text!r} must name at least one non-negative day seed")
    return days


def config_from_args(args: TrainArgs) -> TrainConfig:
    """The :class:`TrainConfig` of a fresh run described by ``args``."""
    params = load_hyperparams(args.algo, args.hyperparams, args.env_backend)
    return TrainConfig(
        algo=args.algo,
        weights=parse_weights(args.weights),
        weight_conditioned=args.conditioned,
        total_timesteps=args.timesteps if args.timesteps is not None else 20_000,
        seed=args.seed,
        n_envs=args.n_envs,
        checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every,
        train_days=args.train_days,
        env_backend=args.env_backend,
        prefetch_days=args.prefetch_days,
        action_margin=args.action_margin,
        initial_action=args.initial_action,
        scenario=args.scenario,
        params=params,
        out=args.out,
        progress_bar=args.progress,
    )


def run_train(args: TrainArgs) -> list[Path]:
    """What ``powertrip train`` does: resume, sweep or train one run; return the run folders."""
    if args.resume is not None:
        return [resume(args.resume, total_timesteps=args.timesteps, progress_bar=args.progress)]
    config = config_from_args(args)
    if args.sweep:
        return sweep(config)
    return [train(config)]


# --------------------------------------------------------------------------------- training
def _new_run_dir(config: TrainConfig) -> Path:
    scenario = Path(config.scenario).stem if config.scenario else "default"
    tag = "wc" if config.weight_conditioned else f"w{config.weights[0]:.2f}-{config.weights[1]:.2f}"
    return runs.new_run_dir(config.out, f"train-{config.algo}-{tag}", scenario, config.seed)


def train(config: TrainConfig) -> Path:
    """Train one agent as ``config`` says and return its run folder.

    The model is ``Algo(..., seed=config.seed)`` on ``n_envs`` env copies seeded
    ``seed + k``; checkpoints every ``checkpoint_every`` steps; held-out evaluation every
    ``eval_every`` steps and at the end.
    """
    run_dir = _new_run_dir(config)
    scenario_dict = load_scenario_config(config.scenario).to_dict()
    meta = runs.run_metadata(config.to_dict(), config.seed, command="train", scenario=scenario_dict)
    runs.write_json(run_dir / CONFIG_FILE, meta)
    _learn(config, run_dir, None)
    return run_dir


@contextlib.contextmanager
def _stop_at_rollout_boundary(checkpointer: Checkpointer) -> Iterator[None]:
    """While training: the first SIGINT/SIGTERM asks ``checkpointer`` to stop at the next
    rollout boundary with an exact checkpoint (a resume then ends bit-identical to a run never
    stopped); a second one interrupts at once. Signals a process ignores (a pool worker's
    SIGINT) stay ignored, and nothing changes outside the main thread."""

    def request_stop(signum: int, frame: object) -> None:
        if checkpointer.stop_requested:
            raise KeyboardInterrupt
        checkpointer.stop_requested = True

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(s, request_stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def resume(
    run_dir: str | Path, total_timesteps: int | None = None, progress_bar: bool | None = None
) -> Path:
    """Continue a run from its latest checkpoint up to ``total_timesteps`` (default: its own).

    The step count continues (``reset_num_timesteps=False``), and so do the TensorBoard
    curve, ``progress.csv``, ``eval.csv`` (rows after the checkpoint are dropped, then
    redone) and the monitor logs. A checkpoint taken by the run (at a rollout boundary)
    carries the whole training state (:mod:`agents.snapshot`), so the resumed run ends
    bit-identical to one never stopped, even after ``kill -9``; so does the checkpoint a first
    Ctrl-C/SIGTERM writes at the next rollout boundary. One written by a second interrupt
    (mid-rollout) has no such state: the env copies are then reseeded with
    ``seed + checkpoint steps + k``, so the continued run is reproducible, not identical.

    Raises:
        ConfigError: not a run folder, or no checkpoint in it.
    """
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    checkpoint = latest_checkpoint(run_dir / CHECKPOINT_DIR)
    if checkpoint is None:
        raise ConfigError(f"{str(run_dir)!r} has no checkpoint in {CHECKPOINT_DIR}/ to resume from")
    changes: dict[str, Any] = {}
    if total_timesteps is not None:
        changes["total_timesteps"] = total_timesteps
    if progress_bar is not None:
        changes["progress_bar"] = progress_bar
    config = replace(config, **changes)
    runs.remove_stale_temporaries(run_dir)
    meta = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    meta["config"] = config.to_dict()
    meta.setdefault("resumed", []).append(
        {"from_step": checkpoint.steps, "metadata": runs.run_metadata({}, config.seed)}
    )
    runs.write_json(run_dir / CONFIG_FILE, meta)
    _learn(config, run_dir, checkpoint)
    return run_dir


def sweep(
    base: TrainConfig, weights: Sequence[Sequence[float]] = DEFAULT_SWEEP_WEIGHTS
) -> list[Path]:
    """Train one policy per weight vector (default: (1, 0), (0.75, 0.25), ..., (0, 1))."""
    return [train(replace(base, weights=check_weights(w))) for w in weights]


def _trim_csv(path: Path, column: str, max_step: int) -> list[dict[str, Any]]:
    """Rows of a CSV log up to ``max_step`` (rewritten in place); [] when absent."""
    if not path.is_file() or path.stat().st_size == 0:
        return []
    frame = pd.read_csv(path)
    if column in frame:
        frame = frame[~(frame[column] > max_step)]
    runs.write_text(path, frame.to_csv(index=False))
    return list(frame.to_dict("records"))  # type: ignore[arg-type]


#: What reading a truncated or corrupted checkpoint file raises.
DAMAGED = (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def _read(path: Path, load: Callable[[Path], T]) -> T:
    """``load(path)``, or a :class:`ConfigError` naming a checkpoint file that is damaged."""
    try:
        return load(path)
    except DAMAGED as exc:
        raise ConfigError(
            f"checkpoint file {str(path)!r} is damaged ({type(exc).__name__}: {exc}); delete "
            "this checkpoint's files to resume from the one before"
        ) from exc


def _load_checkpoint(config: TrainConfig, checkpoint: Checkpoint, venv: Any) -> Any:
    """The checkpoint's model on ``venv``, with its replay buffer (off-policy)."""
    algo = ALGO_CLASSES[config.algo]
    model = _read(checkpoint.model, lambda p: algo.load(str(p), env=venv, device="cpu"))
    if checkpoint.replay_buffer is not None and hasattr(model, "load_replay_buffer"):
        _read(checkpoint.replay_buffer, lambda p: model.load_replay_buffer(str(p)))
    return model


def _learn(config: TrainConfig, run_dir: Path, checkpoint: Checkpoint | None) -> None:
    torch.set_num_threads(config.torch_threads)
    resuming = checkpoint is not None
    eval_rows: list[dict[str, Any]] = []
    if checkpoint is not None:
        eval_rows = _trim_csv(run_dir / "eval.csv", "step", checkpoint.steps)
        _trim_csv(run_dir / "progress.csv", "time/total_timesteps", checkpoint.steps)
    venv = make_vec_env(
        config,
        monitor_dir=run_dir / "monitor",
        append_monitor=resuming,
        stats=checkpoint.vecnormalize if checkpoint is not None else None,
    )
    eval_env = make_eval_env(config)
    try:
        restorer: list[BaseCallback] = []
        if checkpoint is not None:
            model = _load_checkpoint(config, checkpoint, venv)
            if checkpoint.state is not None:  # continue exactly where the checkpoint was taken
                restorer.append(RestoreTrainingState(_read(checkpoint.state, load_state)))
            else:  # a checkpoint written mid-rollout (an interrupt): reproducible, not exact
                model.set_random_seed(config.seed + checkpoint.steps)
        else:
            model = build_model(config, venv)
        model.set_logger(make_logger(run_dir))

        def write_eval(rows: list[dict[str, Any]]) -> None:
            eval_rows.extend(rows)
            runs.write_text(run_dir / "eval.csv", pd.DataFrame(eval_rows).to_csv(index=False))

        checkpointer = Checkpointer(run_dir / CHECKPOINT_DIR, config.checkpoint_every)
        evaluator = HeldOutEval(config, eval_env, config.eval_every, write_eval)
        remaining = config.total_timesteps - model.num_timesteps
        if remaining > 0:
            interrupted = runs.RunInterrupted(run_dir, f"powertrip train --resume {run_dir}")
            try:
                with _stop_at_rollout_boundary(checkpointer):
                    model.learn(
                        remaining,
                        callback=[*restorer, checkpointer, evaluator],
                        reset_num_timesteps=not resuming,
                        progress_bar=config.progress_bar,
                    )
            except KeyboardInterrupt:  # a second interrupt: stop now, mid-rollout
                checkpointer.save_now(exact=False)  # the steps learnt so far
                raise interrupted from None
            if checkpointer.stopped_at is not None:  # stopped at a boundary: resumes exactly
                raise interrupted
        else:  # nothing left to learn: still make sure the final files exist
            checkpointer.init_callback(model)
            evaluator.init_callback(model)
        latest = latest_checkpoint(run_dir / CHECKPOINT_DIR)
        if latest is None or latest.steps != model.num_timesteps:
            checkpointer.save_now()
        if evaluator.last_step != model.num_timesteps and not (
            eval_rows and eval_rows[-1]["step"] == model.num_timesteps
        ):
            evaluator.evaluate_now()
        atomic_save(run_dir / MODEL_FILE, model.save)
        vn = model.get_vec_normalize_env()
        if vn is not None:
            atomic_save(run_dir / VECNORMALIZE_FILE, vn.save)
        model.logger.close()
    finally:
        venv.close()
        eval_env.close()


# ------------------------------------------------------------------------------- evaluation
def evaluate_run(
    run_dir: str | Path,
    days: Sequence[int] | None = None,
    weights: tuple[float, float] | None = None,
) -> Evaluation:
    """The run's agent and no control on the same days (default: the run's held-out days).

    Writes ``evaluation.parquet`` (one row per controller x day x timestep, every metric) and
    ``evaluation.json`` (per-day and mean summaries) into the run folder.
    """
    from baselines.no_control import NoControl

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    w = check_weights(weights if weights is not None else config.weights)
    env = make_eval_env(config)
    try:
        agent = AgentController(run_dir, env=env, weights=w)
        result = evaluate_days(
            {"agent": agent, "no control": NoControl()},
            env,
            days if days is not None else config.eval_days,
            w,
        )
    finally:
        env.close()
    runs.write_parquet(run_dir / "evaluation.parquet", result.steps)
    means = result.mean_by_controller()
    runs.write_json(
        run_dir / "evaluation.json",
        {
            "weights": list(w),
            "days": result.days.to_dict("records"),
            "mean": {label: row.to_dict() for label, row in means.iterrows()},
        },
    )
    return result


def print_evaluation(
    run_dir: str | Path, result: Evaluation, console: Console | None = None
) -> None:
    """A rich table: every architecture.md §7 metric (mean over the days) per controller."""
    from experiments.simulate import summary_table

    means = result.mean_by_controller()
    days = sorted(set(result.days["day_seed"]))
    title = f"{Path(run_dir).name}: mean over {len(days)} day(s) {days}"
    table = summary_table(
        title, {str(label): {str(k): v for k, v in row.items()} for label, row in means.iterrows()}
    )
    (console or Console()).print(table)
