"""The training env stack: day sampling, scalarising, action rescaling, vector envs.

For copy ``k`` of a training vector env (outermost last)::

    PowerTripEnv            vector reward -[f1/F1_ref, f2/F2_ref], actions in [0, 1]
    TrainingDays            the episode's day drawn from the training range
                            (WeightConditioned: the day, then w; w appended, scalar w . r)
    TimeLimit               only when ``max_episode_steps`` cuts days short
    LinearReward(w)         fixed-weight runs: scalar w . r, vector kept in info
    RescaleAction(-1, 1)    the symmetric box SB3 expects; fraction = (a + 1) / 2
                            (MarginAction with ``action_margin`` > 0)
    Monitor                 episode returns to ``monitor/env_<k>.monitor.csv``

wrapped in ``DummyVecEnv`` (one-feeder envs stay in process, architecture.md §8) and optionally
``VecNormalize`` (observations only). SB3 seeds copy ``k`` with ``seed + k``.
With ``env_backend: batched`` the copies are rows of one batched env instead
(:mod:`agents.batched`), under ``VecMonitor`` and the same ``VecNormalize``. Both backends
draw each episode's day and weight, and scalarise, through :mod:`agents.episodes`: one seed
gives the same days and weights on either.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import mo_gymnasium as mo_gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor, VecNormalize

from agents.actions import fraction_from_action
from agents.batched import BatchedTrainingVecEnv
from agents.config import TrainConfig, check_weights
from agents.episodes import (
    draw_episode_starts,
    scalarise,
    seeded_generators,
    weighted_observation_space,
    with_weights,
)
from agents.snapshot import EpisodeRecorder
from powertrip_env.config import ScenarioConfig, load_scenario_config
from powertrip_env.env import PowerTripEnv


class MarginAction(gym.ActionWrapper[np.ndarray, np.ndarray, np.ndarray]):
    """Agent actions in [-1, 1] to the env's fractions through :func:`fraction_from_action`."""

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], margin: float) -> None:
        super().__init__(env)
        self.margin = float(margin)
        shape = env.action_space.shape
        self.action_space = spaces.Box(-1.0, 1.0, shape=shape, dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return fraction_from_action(np.asarray(action, dtype=np.float64), self.margin)


class TrainingDays(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Draws each episode's day seed from the training range, never from the held-out one.

    The batch of one copy of :mod:`agents.episodes`: day seeds come uniformly from
    ``[0, EVAL_DAY_BASE)``, or from ``[0, n_days)`` when ``n_days`` is set, drawn from the
    copy's own generator, seeded by ``reset(seed=...)`` (the day must be chosen before the inner
    env resets, so the inner env's ``np_random`` cannot supply it).
    ``reset(options={"day_seed": d})`` still picks a day explicitly. The vector reward passes
    through unchanged.

    Raises:
        ValueError: ``env`` already draws its days (a second layer would redraw them).
    """

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], n_days: int | None = None) -> None:
        layer: gym.Env[Any, Any] = env
        while isinstance(layer, gym.Wrapper):
            if isinstance(layer, TrainingDays):
                raise ValueError(
                    f"{type(self).__name__} draws the days itself: wrap the env without "
                    f"its {type(layer).__name__} layer"
                )
            layer = layer.env
        super().__init__(env)
        self.n_days = n_days
        self._day_rng: np.random.Generator | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info, _ = self._start_episode(seed, dict(options or {}), None)
        return obs, info

    def _start_episode(
        self, seed: int | None, options: dict[str, Any], reward_dim: int | None
    ) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
        """Reset the inner env on the episode's day; the weight too when ``reward_dim`` is set."""
        [self._day_rng] = seeded_generators([self._day_rng], [seed])
        starts = draw_episode_starts(
            [self._day_rng], self.n_days, reward_dim, draw_days="day_seed" not in options
        )
        if starts.day_seeds is not None:
            options["day_seed"] = starts.day_seeds[0]
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, info, None if starts.weights is None else starts.weights[0]


class WeightConditioned(TrainingDays):
    """One policy for every weight: the day and w drawn, w appended, the reward scalarised by w.

    Each episode draws its day (as :class:`TrainingDays` does, ``n_days``) and then ``w``
    uniformly on the simplex, both from the copy's one generator seeded by
    ``reset(seed=...)``, in the order and with the arithmetic of :mod:`agents.episodes`, so that
    the batched backend draws the same for the same seed. ``reset(options={"weight": w})`` fixes
    the episode's weight and ``weight=`` at construction fixes it for every episode
    (evaluation); neither then draws one. The reward is ``w . r`` as a float; the vector travels
    in ``info["vector_reward"]`` and the weight in ``info["reward_weights"]``, as
    ``mo_gymnasium.wrappers.LinearReward`` does.

    Observation: the inner observation followed by ``w`` (bounds [0, 1]).
    """

    def __init__(
        self,
        env: gym.Env[np.ndarray, np.ndarray],
        weight: tuple[float, float] | None = None,
        n_days: int | None = None,
    ) -> None:
        super().__init__(env, n_days)
        self.reward_dim = int(env.unwrapped.reward_dim)  # type: ignore[attr-defined]
        self.observation_space = weighted_observation_space(env.observation_space, self.reward_dim)
        self.fixed = None if weight is None else np.array(check_weights(weight), np.float32)
        self.w: np.ndarray = np.full(self.reward_dim, 1.0 / self.reward_dim, np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        options = dict(options or {})
        chosen = options.pop("weight", None)
        draw = chosen is None and self.fixed is None
        obs, info, drawn = self._start_episode(seed, options, self.reward_dim if draw else None)
        if chosen is not None:
            self.w = np.array(check_weights(chosen, "options['weight']"), np.float32)
        elif self.fixed is not None:
            self.w = self.fixed.copy()
        else:
            assert drawn is not None
            self.w = drawn
        return with_weights(obs[None], self.w[None])[0], info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, vector, terminated, truncated, info = self.env.step(action)
        info["vector_reward"] = vector
        info["reward_weights"] = self.w
        reward = float(scalarise(self.w[None], np.asarray(vector)[None])[0])
        return with_weights(obs[None], self.w[None])[0], reward, terminated, truncated, info


def make_env(
    config: TrainConfig,
    rank: int,
    scenario: ScenarioConfig | None = None,
    monitor_dir: Path | None = None,
    append_monitor: bool = False,
) -> Callable[[], gym.Env[np.ndarray, np.ndarray]]:
    """Factory of training env copy ``rank`` (SB3 seeds it with ``config.seed + rank``).

    Args:
        config: the training run.
        rank: index of the copy in the vector env.
        scenario: the resolved scenario (loaded from ``config.scenario`` when omitted).
        monitor_dir: folder of the episode log ``env_<rank>.monitor.csv`` (none when omitted).
        append_monitor: append to an existing episode log (resuming) instead of replacing it.
    """
    scenario = scenario or load_scenario_config(config.scenario)

    def thunk() -> gym.Env[np.ndarray, np.ndarray]:
        # Training needs the rewards, not every architecture.md §7 metric in each step's info.
        env: gym.Env[Any, Any] = PowerTripEnv(
            scenario, energy_guarantee=config.energy_guarantee, info_metrics=False
        )
        if config.weight_conditioned:
            env = WeightConditioned(env, n_days=config.train_days)
        else:
            env = TrainingDays(env, config.train_days)
        if config.max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, config.max_episode_steps)
        if not config.weight_conditioned:
            env = mo_gym.wrappers.LinearReward(env, weight=np.array(config.weights, np.float32))
        if config.action_margin > 0:
            env = MarginAction(env, config.action_margin)
        else:
            env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
        filename = None if monitor_dir is None else str(monitor_dir / f"env_{rank}")
        env = Monitor(env, filename=filename, override_existing=not append_monitor)
        return EpisodeRecorder(env)  # for checkpoints that resume exactly

    return thunk


def make_vec_env(
    config: TrainConfig,
    monitor_dir: Path | None = None,
    append_monitor: bool = False,
    stats: Path | None = None,
) -> VecEnv:
    """The training vector env: ``n_envs`` in-process copies, observation-normalised if asked.

    Seeding is left to SB3 (``Algo(..., seed=seed)`` calls ``env.seed(seed)``: copy k gets
    ``seed + k``). ``stats`` is a saved VecNormalize to continue from (resuming).
    """
    scenario = load_scenario_config(config.scenario)
    if monitor_dir is not None:
        monitor_dir.mkdir(parents=True, exist_ok=True)
    venv: VecEnv
    if config.env_backend == "batched":
        filename = None if monitor_dir is None else str(monitor_dir / "batched")
        venv = VecMonitor(BatchedTrainingVecEnv(config, scenario), filename=filename)
    else:
        venv = DummyVecEnv(
            [
                make_env(config, k, scenario, monitor_dir, append_monitor)
                for k in range(config.n_envs)
            ]
        )
    if config.normalise_obs and stats is not None:
        return VecNormalize.load(str(stats), venv)
    if config.normalise_obs:
        gamma = config.hyperparams.gamma
        venv = VecNormalize(venv, norm_obs=True, norm_reward=False, clip_obs=10.0, gamma=gamma)
    return venv


def make_eval_env(config: TrainConfig) -> PowerTripEnv:
    """A bare env on the run's scenario for day evaluations (its simulator runs controllers)."""
    return PowerTripEnv(
        load_scenario_config(config.scenario), energy_guarantee=config.energy_guarantee
    )
