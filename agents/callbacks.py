"""Training callbacks and logging: checkpoints, held-out evaluation, a resumable CSV log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecNormalize

from agents.config import TrainConfig
from agents.evaluation import evaluate_days
from agents.models import Checkpoint, atomic_save, checkpoint_paths
from agents.policy import AgentController, ObsNormaliser
from agents.snapshot import capture, save_state
from powertrip_env.env import PowerTripEnv


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV log, but continuing an existing file (resumed runs) instead of truncating it."""

    def __init__(self, filename: str) -> None:
        path = Path(filename)
        if path.is_file() and path.stat().st_size > 0:
            self.file = open(path, "r+")  # noqa: SIM115 - closed by close(), as in SB3
            header = self.file.readline().rstrip("\n")
            self.keys = header.split(",") if header else []
            self.file.seek(0, 2)
            self.separator = ","
            self.quotechar = '"'
        else:
            super().__init__(filename)


def make_logger(run_dir: Path, tensorboard: bool = True) -> Logger:
    """SB3 logger writing ``progress.csv`` (continued on resume) and TensorBoard to ``tb/``."""
    formats: list[Any] = [AppendingCSVOutputFormat(str(run_dir / "progress.csv"))]
    if tensorboard:
        formats.append(TensorBoardOutputFormat(str(run_dir / "tb")))
    return Logger(str(run_dir), formats)


def _next_multiple(steps: int, every: int) -> int:
    return (steps // every + 1) * every


class Checkpointer(BaseCallback):
    """Saves model, VecNormalize statistics, replay buffer and training state every ``every``
    env steps.

    Checkpoints are due at multiples of ``every`` (counted in env steps over all copies,
    continuing across resumes) and taken at the first rollout boundary from there (every
    step for SAC and TD3, every ``n_steps`` for PPO), where SB3 holds no half-collected
    transition, so that a resume continues exactly (:mod:`agents.snapshot`). Each file is
    written atomically; the replay buffer and the training state (large) are kept for the
    latest checkpoint only. :meth:`save_now` saves the current state.
    """

    def __init__(self, folder: Path, every: int, save_replay_buffer: bool = True) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.every = int(every)
        self.save_replay_buffer = save_replay_buffer
        self._due = 0
        #: Set (by a signal handler) to stop at the next rollout boundary with an exact
        #: checkpoint there: a resume then ends as if the run had never stopped.
        self.stop_requested = False
        #: The step count of the checkpoint written on a requested stop (None until then).
        self.stopped_at: int | None = None

    def _init_callback(self) -> None:
        self._due = _next_multiple(self.model.num_timesteps, self.every)

    def _on_rollout_start(self) -> None:
        if self.stop_requested and self.stopped_at is None:
            self.save_now()
            self.stopped_at = self.model.num_timesteps
        elif self.model.num_timesteps >= self._due:
            self.save_now()
            self._due = _next_multiple(self.model.num_timesteps, self.every)

    def _on_step(self) -> bool:
        # After a stop's checkpoint, the first step of the new rollout ends training; that
        # step is not kept (the checkpoint before it is the resume point).
        return self.stopped_at is None

    def save_now(self, exact: bool = True) -> Checkpoint:
        """Write the checkpoint of the current step count and drop older large files.

        ``exact=False`` (a run stopped mid-rollout) writes no training state: a resume from
        it reseeds instead of continuing exactly.
        """
        c = checkpoint_paths(self.folder, self.model.num_timesteps)
        buffer = getattr(self.model, "replay_buffer", None)
        if self.save_replay_buffer and buffer is not None and c.replay_buffer is not None:
            atomic_save(c.replay_buffer, self.model.save_replay_buffer)  # type: ignore[attr-defined]
        vn = self.model.get_vec_normalize_env()
        if vn is not None and c.vecnormalize is not None:
            atomic_save(c.vecnormalize, vn.save)
        if exact and c.state is not None:
            state = capture(self.model)
            atomic_save(c.state, lambda path: save_state(Path(path), state))
        # The model last: its file marks the checkpoint complete (see latest_checkpoint).
        atomic_save(c.model, self.model.save)
        for pattern, keep in (
            ("replay_buffer_*_steps.pkl", c.replay_buffer),
            ("training_state_*_steps.pkl", c.state if exact else None),
        ):
            for old in self.folder.glob(pattern):
                if old != keep:
                    old.unlink(missing_ok=True)
        return c


class HeldOutEval(BaseCallback):
    """Every ``every`` env steps, runs the deterministic policy over the held-out days.

    Each day runs in ``eval_env``'s day simulator through :class:`AgentController` (the
    deployment code path) with a snapshot of the training observation statistics. The mean
    normalised weighted day cost and objectives are logged (``eval/...``) and every row goes to
    ``on_rows`` (the run writes them to ``eval.csv``).
    """

    def __init__(
        self,
        config: TrainConfig,
        eval_env: PowerTripEnv,
        every: int,
        on_rows: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        super().__init__()
        self.config = config
        self.eval_env = eval_env
        self.every = int(every)
        self.on_rows = on_rows
        self._due = 0
        self.last_step = -1

    def _init_callback(self) -> None:
        self._due = _next_multiple(self.model.num_timesteps, self.every) if self.every else 0

    def _on_step(self) -> bool:
        if self.every and self.num_timesteps >= self._due:
            self.evaluate_now()
            self._due = _next_multiple(self.num_timesteps, self.every)
        return True

    def evaluate_now(self) -> list[dict[str, Any]]:
        """Evaluate the current policy on every held-out day; return (and report) the rows."""
        vn = self.model.get_vec_normalize_env()
        normaliser = ObsNormaliser.from_vecnormalize(vn) if isinstance(vn, VecNormalize) else None
        controller = AgentController.from_model(
            self.model, normaliser, self.config, env=self.eval_env
        )
        days = evaluate_days(
            {"agent": controller}, self.eval_env, self.config.eval_days, self.config.weights
        ).days
        step = int(self.model.num_timesteps)
        columns = ["day_seed", "weighted_cost", "f1_norm_mean", "f2_norm_mean"]
        rows = [
            {"step": step, **{str(k): v for k, v in row.items()}}
            for row in days[columns].to_dict("records")
        ]
        self.logger.record("time/total_timesteps", step)
        for key in columns[1:]:
            self.logger.record(f"eval/{key}", float(pd.Series(days[key]).mean()))
        self.logger.dump(step)
        self.on_rows(rows)
        self.last_step = step
        return rows
