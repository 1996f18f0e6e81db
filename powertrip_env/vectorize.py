"""Refuse, with a message naming what works, the vector envs that expect a scalar reward.

PowerTrip's reward is a vector (MO-Gymnasium's convention). Gymnasium's ``SyncVectorEnv``
(``gym.make_vec(id, vectorization_mode="sync")``) and SB3's ``DummyVecEnv`` keep one float per
copy, Gymnasium's async worker answers an autoreset step with a scalar 0 (so the rewards change
shape at the episode boundary), and SB3's ``Monitor`` sums floats: each fails on the first step
or the first episode end with a numpy message that does not say why. :func:`refuse_scalar_callers`
runs once, at an env's first ``reset``, and looks up the call stack for one of those callers
with no user wrapper (which may scalarise, as ``LinearReward`` does) in between.
"""

from __future__ import annotations

import sys
from types import FrameType

import gymnasium as gym

from powertrip_env.errors import VectorRewardError

_LINEAR = "wrap each copy in mo_gymnasium.wrappers.LinearReward (it keeps the vector in info)"

#: (module, class) of the callers that store one float per copy, and what to do instead.
_SCALAR_CLASSES = {
    ("gymnasium.vector.sync_vector_env", "SyncVectorEnv"): (
        "gymnasium's SyncVectorEnv (gym.make_vec(id, vectorization_mode='sync')) keeps one "
        "float reward per copy. Use gym.make_vec(id, num_envs=N) (the batched env), "
        "mo_gymnasium.wrappers.vector.MOSyncVectorEnv, or gym.make_vec(id, "
        "vectorization_mode='sync', wrappers=[LinearReward]) to scalarise"
    ),
    ("stable_baselines3.common.vec_env.dummy_vec_env", "DummyVecEnv"): (
        f"SB3's DummyVecEnv keeps one float reward per copy: {_LINEAR}, e.g. "
        "DummyVecEnv([lambda: LinearReward(mo.make(id), weight=w)])"
    ),
    ("stable_baselines3.common.monitor", "Monitor"): (
        "SB3's Monitor sums float rewards, and make_vec_env(id, ...) puts it right on the "
        "env, under any wrapper_class; pass a callable that scalarises instead: "
        "make_vec_env(lambda: LinearReward(mo.make(id), weight=w), n_envs=N)"
    ),
}
#: (module, function) of the subprocess workers that do the same.
_SCALAR_WORKERS = {
    ("gymnasium.vector.async_vector_env", "_async_worker"): (
        "gymnasium's AsyncVectorEnv worker (gym.make_vec(id, vectorization_mode='async')) "
        "returns a scalar reward on autoreset steps. Use "
        "powertrip_env.mo_async.MOAsyncVectorEnv(env_fns), gym.make_vec(id, "
        "vectorization_mode='async', vector_kwargs={'worker': "
        "powertrip_env.mo_async.mo_async_worker}), or wrappers=[LinearReward] to scalarise"
    ),
    ("stable_baselines3.common.vec_env.subproc_vec_env", "_worker"): (
        f"SB3's SubprocVecEnv keeps one float reward per copy: {_LINEAR}"
    ),
}
_MAX_DEPTH = 12  # frames looked at above reset(): wrappers, checkers, the vector env


def refuse_scalar_callers(depth: int = 2) -> None:
    """Raise if a scalar-reward vector env or SB3 Monitor called ``reset`` on this env.

    ``depth`` skips this function's frame and the env's ``reset``. A Gymnasium wrapper that
    passes the reward through (``TimeLimit``, ``OrderEnforcing``, the checkers, observation
    wrappers) is looked through; any other wrapper (``LinearReward``, the user's own) stops
    the search, since it may scalarise.

    Raises:
        VectorRewardError: the caller cannot store a vector reward; the message names what to
            use instead.
    """
    frame: FrameType | None = sys._getframe(depth)
    for _ in range(_MAX_DEPTH):
        if frame is None:
            return
        owner = frame.f_locals.get("self")
        if owner is not None:
            kind = type(owner)
            advice = _SCALAR_CLASSES.get((kind.__module__, kind.__name__))
            if advice is not None:
                raise VectorRewardError(f"PowerTrip's reward is a vector of 2: {advice}")
            if isinstance(owner, gym.Wrapper) and not _passes_reward_through(owner):
                return
        module = frame.f_globals.get("__name__", "")
        advice = _SCALAR_WORKERS.get((module, frame.f_code.co_name))
        if advice is not None:
            raise VectorRewardError(f"PowerTrip's reward is a vector of 2: {advice}")
        frame = frame.f_back


def _passes_reward_through(wrapper: gym.Wrapper) -> bool:
    """Whether ``wrapper`` is one of Gymnasium's own that leave the reward a vector."""
    module = type(wrapper).__module__
    return module.startswith("gymnasium.") and not isinstance(wrapper, gym.RewardWrapper)
