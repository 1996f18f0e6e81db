"""Training on the batched feeder: an SB3 ``VecEnv`` over :class:`BatchedPowerTripEnv`.

With ``TrainConfig.env_backend = "batched"`` the ``n_envs`` training copies are the rows of
one :class:`~powertrip_env.vector_env.BatchedPowerTripEnv`, which solves them all in one numpy
call with the exact reduced network model (architecture.md §8; held to OpenDSS within 1e-6 pu by
``tests/test_vector_env.py``) instead of one OpenDSS solve per copy: about 1000x the samples
per second. Held-out evaluation still runs on the OpenDSS :class:`PowerTripEnv`.

:class:`BatchedTrainingVecEnv` does, for every copy at once, what the OpenDSS stack of
:mod:`agents.envs` does for one copy, through the same :mod:`agents.episodes` (one seed, the
same days and weights on either backend):

* days drawn from the training range only (``TrainingDays``): from ``[0, train_days)``, or
  from ``[0, EVAL_DAY_BASE)``, with copy k's own generator seeded ``seed + k``;
* ``max_episode_steps`` (``TimeLimit``);
* the scalar reward ``w . r`` with the vector in ``info["vector_reward"]``
  (``LinearReward``), or a per-episode weight appended to the observation
  (``WeightConditioned``);
* agent actions in [-1, 1] mapped to the env's fractions by :func:`fraction_from_action`
  (with the run's ``action_margin``);
* SB3's same-step autoreset: a finished copy's last observation travels in
  ``info["terminal_observation"]`` and ``TimeLimit.truncated`` says whether it was cut.

With ``TrainConfig.prefetch_days`` the batched env builds each copy's next day in a background
process while the copies step: each copy draws its next day one episode early
(:func:`agents.episodes.draw_episode_starts`, the same days and weights) and the env is told
(:meth:`~powertrip_env.vector_env.BatchedPowerTripEnv.prefetch`) after every reset.

Wrap it in ``VecMonitor`` (episode returns) and ``VecNormalize`` as the OpenDSS stack is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from agents.actions import fraction_from_action
from agents.config import TrainConfig
from agents.episodes import (
    draw_episode_starts,
    scalarise,
    seeded_generators,
    weighted_observation_space,
    with_weights,
)
from powertrip_env.config import ScenarioConfig
from powertrip_env.vector_env import BatchedPowerTripEnv


class BatchedTrainingVecEnv(VecEnv):
    """``config.n_envs`` training copies on one :class:`BatchedPowerTripEnv` (SB3 ``VecEnv``).

    Args:
        config: the training run (weights, day range, episode cut, action margin, seed
            via SB3's ``seed()``).
        scenario: the resolved scenario.

    The batched env keeps every training day it has built (``train_days`` of them, or
    ``n_envs`` when days are unlimited), so that after the first episodes no day is rebuilt.
    With ``config.prefetch_days`` it builds each copy's next day in a background process.
    """

    def __init__(self, config: TrainConfig, scenario: ScenarioConfig) -> None:
        n = config.n_envs
        cache = max(n, config.train_days or 0)
        self.benv = BatchedPowerTripEnv(
            n,
            scenario,
            energy_guarantee=config.energy_guarantee,
            day_cache=cache,
            prefetch_days=config.prefetch_days,
        )
        self.config = config
        self.reward_dim = int(self.benv.reward_dim)
        obs_space = self.benv.single_observation_space
        if config.weight_conditioned:
            obs_space = weighted_observation_space(obs_space, self.reward_dim)
        assert isinstance(obs_space, spaces.Box)
        n_act = self.benv.single_action_space.shape[0]  # type: ignore[index]
        act_space = spaces.Box(-1.0, 1.0, shape=(n_act,), dtype=np.float32)
        super().__init__(n, obs_space, act_space)
        self._day_rngs = seeded_generators([None] * n, [None] * n)  # seeded by reset()
        #: Prefetching: each copy's next day, drawn at its last episode start (None: not yet).
        self._days_ahead: list[int | None] = [None] * n
        self._w = np.tile(np.asarray(config.weights, np.float32), (n, 1))
        self._episode_steps = np.zeros(n, dtype=np.int64)
        self._actions: np.ndarray | None = None

    # ------------------------------------------------------------------------- helpers
    def _start_episodes(self, ids: np.ndarray) -> list[int | None]:
        """Draw the next episodes of copies ``ids`` (agents.episodes): their weights (when
        weight-conditioned) go to ``self._w``; the day seeds are returned, one per copy
        (None for copies not in ``ids``). Prefetching, each of these copies' day is the one
        drawn at its last start (if any) and its next one is drawn now, into
        ``self._days_ahead`` (:meth:`_prefetch_next_days` announces them)."""
        reward_dim = self.reward_dim if self.config.weight_conditioned else None
        rngs = [self._day_rngs[k] for k in ids]
        ahead = [self._days_ahead[k] for k in ids] if self.config.prefetch_days else None
        starts = draw_episode_starts(rngs, self.config.train_days, reward_dim, days_ahead=ahead)
        if starts.weights is not None:
            self._w[ids] = starts.weights
        out: list[int | None] = [None] * self.num_envs
        assert starts.day_seeds is not None
        for k, day in zip(ids, starts.day_seeds, strict=True):
            out[k] = day
        if starts.next_day_seeds is not None:
            for k, day in zip(ids, starts.next_day_seeds, strict=True):
                self._days_ahead[k] = day
        return out

    def _prefetch_next_days(self, ids: np.ndarray) -> None:
        """Announce the next days of copies ``ids`` (just started) to the batched env."""
        if self.config.prefetch_days:
            self.benv.prefetch([d for d in (self._days_ahead[k] for k in ids) if d is not None])

    def _with_w(self, obs: np.ndarray) -> np.ndarray:
        return with_weights(obs, self._w) if self.config.weight_conditioned else obs

    # --------------------------------------------------------------------- SB3 VecEnv API
    def reset(self) -> np.ndarray:
        """Reset every copy on a training day; copy k's generator is seeded ``seed + k``."""
        self._day_rngs = seeded_generators(self._day_rngs, self._seeds)
        for k, seed in enumerate(self._seeds):  # a re-seeded copy draws its days afresh
            if seed is not None:
                self._days_ahead[k] = None
        self._reset_seeds()
        self._reset_options()
        everyone = np.arange(self.num_envs)
        days = self._start_episodes(everyone)
        obs, info = self.benv.reset(options={"day_seed": days})
        self._prefetch_next_days(everyone)
        self._episode_steps[:] = 0
        self.reset_infos = [{"day_seed": int(d)} for d in info["day_seed"]]
        return self._with_w(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        fraction = fraction_from_action(self._actions, self.config.action_margin)
        obs, vector, terminated, truncated, info = self.benv.step(fraction)
        self._episode_steps += 1
        limit = self.config.max_episode_steps
        cut = (
            (self._episode_steps >= limit) & ~terminated & ~truncated
            if limit is not None
            else np.zeros(self.num_envs, dtype=bool)
        )
        truncated = truncated | cut
        done = terminated | truncated
        reward = scalarise(self._w, vector)
        infos: list[dict[str, Any]] = [
            {"vector_reward": vector[k], "reward_weights": self._w[k].copy()}
            for k in range(self.num_envs)
        ]
        obs = self._with_w(obs)
        if done.any():
            ids = np.flatnonzero(done)
            for k in ids:
                infos[k]["terminal_observation"] = obs[k].copy()
                infos[k]["TimeLimit.truncated"] = bool(truncated[k] and not terminated[k])
                if terminated[k] and "termination_reason" in info:
                    infos[k]["termination_reason"] = info["termination_reason"][k]
            days = self._start_episodes(ids)
            fresh, _ = self.benv.reset(options={"reset_mask": done, "day_seed": days})
            self._prefetch_next_days(ids)
            obs[ids] = self._with_w(fresh)[ids]
            self._episode_steps[ids] = 0
            for k in ids:  # as DummyVecEnv keeps each copy's last reset info
                self.reset_infos[k] = {"day_seed": days[k]}
        return obs, reward, done, infos

    def close(self) -> None:
        self.benv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name) if hasattr(self, attr_name) else None
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **kwargs: Any
    ) -> list[Any]:
        method = getattr(self, method_name)
        return [method(*method_args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        # No gymnasium wrappers: SB3 then counts episodes through VecMonitor's "episode" info.
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
