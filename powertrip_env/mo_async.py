"""MO-Gymnasium's ``MOAsyncVectorEnv``, mended for Gymnasium 1.4: vector rewards in subprocesses.

Gymnasium 1.4 passes its async workers an eighth argument (a semaphore for
``max_concurrency``), and MO-Gymnasium 1.3's worker takes seven, so
``mo_gymnasium.wrappers.vector.MOAsyncVectorEnv`` refuses to start. :func:`mo_async_worker`
is MO-Gymnasium's worker with that argument accepted (it answers an autoreset step with a
zero *vector* reward, where Gymnasium's worker answers a scalar 0), and
:class:`MOAsyncVectorEnv` uses it. Drop both once MO-Gymnasium's worker takes the semaphore.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv
from gymnasium.vector.utils import create_empty_array
from mo_gymnasium.wrappers.vector import MOAsyncVectorEnv as _MOAsyncVectorEnv
from mo_gymnasium.wrappers.vector.wrappers import _mo_async_worker

from powertrip_env.errors import ConfigError


def mo_async_worker(
    index: int,
    env_fn: Callable[[], gym.Env[Any, Any]],
    pipe: Any,
    parent_pipe: Any,
    shared_memory: Any,
    error_queue: Any,
    autoreset_mode: Any,
    semaphore: Any = None,
) -> None:
    """MO-Gymnasium's async worker with Gymnasium 1.4's signature (no ``max_concurrency``).

    Also usable as ``gym.make_vec(id, vectorization_mode="async",
    vector_kwargs={"worker": mo_async_worker})``: Gymnasium's ``AsyncVectorEnv`` then returns
    ``(num_envs, 2)`` float64 rewards.
    """
    if semaphore is not None:
        raise ConfigError("max_concurrency is not supported by mo_async_worker; leave it unset")
    _mo_async_worker(index, env_fn, pipe, parent_pipe, shared_memory, error_queue, autoreset_mode)


class MOAsyncVectorEnv(_MOAsyncVectorEnv):
    """``mo_gymnasium``'s ``MOAsyncVectorEnv`` that starts under Gymnasium 1.4.

    Same arguments (``env_fns`` and :class:`gymnasium.vector.AsyncVectorEnv`'s keywords, except
    ``worker`` and ``max_concurrency``); ``step`` returns ``(num_envs, reward_dim)`` float32
    rewards, zeros on the step that resets a copy (NEXT_STEP autoreset).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env[Any, Any]]], **kwargs: Any) -> None:
        # Gymnasium's type hint still lists the old six-argument worker; it calls it with eight.
        worker = cast(Any, mo_async_worker)
        AsyncVectorEnv.__init__(self, env_fns=env_fns, worker=worker, **kwargs)
        # The copies' reward space, asked of the first copy (MO-Gymnasium builds a spare env).
        self.reward_space = self.get_attr("reward_space")[0]
        self.rewards = create_empty_array(self.reward_space, n=self.num_envs, fn=np.zeros)
