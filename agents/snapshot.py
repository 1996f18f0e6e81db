"""The training state SB3's own files leave out, so that a resumed run continues exactly.

A checkpoint's ``model_<N>_steps.zip``, VecNormalize statistics and replay buffer are not
enough to continue a run bit-identically: SB3 reloads with a fresh environment reset, and the
random generators (Python's, numpy's global one, torch's, the action space's, each env copy's)
and the env copies' episodes in progress are lost. :func:`capture` records them beside the
checkpoint (``training_state_<N>_steps.pkl``) and :class:`RestoreTrainingState`, a callback,
puts them back when the resumed ``learn()`` starts, after SB3's own reset.

Checkpoints are taken at rollout boundaries (:class:`agents.callbacks.Checkpointer`), where
SB3 holds no half-collected transition. Env copies in process (OpenDSS backend) are restored by
replaying their episode in progress from its day seed (each solve then starts from the same
history, so the engine reproduces it), the batched env by its arrays.
"""

from __future__ import annotations

import copy
import pickle
import random
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor, VecNormalize

#: SB3 attributes that change while learning and are not restored from the model file.
SB3_FIELDS = (
    "_last_obs",
    "_last_original_obs",
    "_last_episode_starts",
    "_episode_num",
    "_n_updates",
    "_num_timesteps_at_start",
    "_current_progress_remaining",
    "ep_info_buffer",
    "ep_success_buffer",
    "action_noise",
)
#: Per-layer state of an env copy's wrappers (random generators, counters, the episode's w).
LAYER_FIELDS = (
    "_np_random",
    "_day_rng",
    "_w_rng",
    "w",
    "_elapsed_steps",
    "rewards",
    "needs_reset",
    "episode_returns",
    "episode_lengths",
    "episode_times",
    "total_steps",
)
VECNORMALIZE_FIELDS = ("obs_rms", "ret_rms", "returns", "old_obs", "old_reward")
VECMONITOR_FIELDS = ("episode_returns", "episode_lengths", "episode_count")


class EpisodeRecorder(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """Outermost wrapper of a training copy: remembers the episode in progress (its day seed,
    from the reset's info, and every action since) so that :meth:`restore` can rebuild it."""

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray]) -> None:
        super().__init__(env)
        self._day_seed: int | None = None
        self._actions: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._day_seed = info.get("day_seed")
        self._actions = []
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        self._actions.append(np.array(action, copy=True))
        return self.env.step(action)

    def _layers(self) -> list[Any]:
        layers, env = [], self.env
        while True:
            layers.append(env)
            if not isinstance(env, gym.Wrapper):
                return layers
            env = env.env

    def snapshot(self) -> dict[str, Any]:
        """The episode in progress and every layer's random generators and counters."""
        layers = [
            {k: copy.deepcopy(v) for k, v in vars(layer).items() if k in LAYER_FIELDS}
            for layer in self._layers()
        ]
        return {"day_seed": self._day_seed, "actions": list(self._actions), "layers": layers}

    def restore(self, state: dict[str, Any]) -> None:
        """Rebuild the snapshot's episode (reset to its day, replay its actions), then put
        back every layer's generators and counters."""
        if state["day_seed"] is not None:
            self.env.reset(options={"day_seed": state["day_seed"]})
            for action in state["actions"]:
                self.env.step(action)
        self._day_seed = state["day_seed"]
        self._actions = list(state["actions"])
        for layer, fields in zip(self._layers(), state["layers"], strict=True):
            for key, value in fields.items():
                setattr(layer, key, copy.deepcopy(value))


def _venv_layers(venv: VecEnv) -> tuple[VecNormalize | None, VecMonitor | None, VecEnv]:
    normalise = venv if isinstance(venv, VecNormalize) else None
    inner = normalise.venv if normalise is not None else venv
    monitor = inner if isinstance(inner, VecMonitor) else None
    base = monitor.venv if monitor is not None else inner
    return normalise, monitor, base


def _env_state(base: VecEnv) -> Any:
    if isinstance(base, DummyVecEnv):
        if not all(isinstance(env, EpisodeRecorder) for env in base.envs):
            raise TypeError("exact resume needs every env copy wrapped in EpisodeRecorder")
        return [env.snapshot() for env in base.envs]  # type: ignore[attr-defined]
    # The batched backend holds its whole state in arrays and generators: copy them. Its
    # background day builder (prefetch_days) is a live process, not state: it stays with the
    # env, and a day it has not delivered is built on demand after a restore.
    inner = getattr(base, "benv", None)
    outer = {k: v for k, v in vars(base).items() if k != "benv"}
    state = None if inner is None else {k: v for k, v in vars(inner).items() if k != "_prefetcher"}
    return pickle.dumps((outer, state))


def _restore_env(base: VecEnv, state: Any) -> None:
    if isinstance(base, DummyVecEnv):
        for env, snap in zip(base.envs, state, strict=True):
            env.restore(snap)  # type: ignore[attr-defined]
        return
    outer, inner = pickle.loads(state)
    vars(base).update(outer)
    if inner is not None:
        vars(base.benv).update(inner)  # type: ignore[attr-defined]


def capture(model: BaseAlgorithm) -> dict[str, Any]:
    """Everything beyond the model file that the next steps of ``model.learn`` depend on."""
    assert model.env is not None
    normalise, monitor, base = _venv_layers(model.env)
    return {
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),  # noqa: NPY002 - SB3 draws from it
            "torch": torch.get_rng_state(),
        },
        "action_space": copy.deepcopy(model.action_space.np_random),
        "sb3": {k: copy.deepcopy(getattr(model, k)) for k in SB3_FIELDS if hasattr(model, k)},
        "vecnormalize": None
        if normalise is None
        else {k: copy.deepcopy(getattr(normalise, k)) for k in VECNORMALIZE_FIELDS},
        "vecmonitor": None
        if monitor is None
        else {k: copy.deepcopy(getattr(monitor, k)) for k in VECMONITOR_FIELDS},
        "env": _env_state(base),
    }


def restore(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put ``state`` (from :func:`capture`) back into ``model`` and its environment."""
    assert model.env is not None
    normalise, monitor, base = _venv_layers(model.env)
    _restore_env(base, state["env"])  # first: replaying the episodes moves the generators
    for key, value in state["sb3"].items():
        setattr(model, key, copy.deepcopy(value))
    if normalise is not None and state["vecnormalize"] is not None:
        for key, value in state["vecnormalize"].items():
            setattr(normalise, key, copy.deepcopy(value))
    if monitor is not None and state["vecmonitor"] is not None:
        for key, value in state["vecmonitor"].items():
            setattr(monitor, key, copy.deepcopy(value))
    model.action_space._np_random = copy.deepcopy(state["action_space"])
    random.setstate(state["rng"]["python"])
    np.random.set_state(state["rng"]["numpy"])  # noqa: NPY002 - SB3 draws from it
    torch.set_rng_state(state["rng"]["torch"])


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` (pickle; the caller makes it atomic)."""
    with open(path, "wb") as stream:
        pickle.dump(state, stream, protocol=pickle.HIGHEST_PROTOCOL)


def load_state(path: Path) -> dict[str, Any]:
    """Read a state written by :func:`save_state`."""
    with open(path, "rb") as stream:
        state: dict[str, Any] = pickle.load(stream)
    return state


class RestoreTrainingState(BaseCallback):
    """Restores a captured state when a resumed ``learn()`` starts (after SB3's env reset)."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__()
        self.state = state

    def _on_training_start(self) -> None:
        restore(self.model, self.state)

    def _on_step(self) -> bool:
        return True
