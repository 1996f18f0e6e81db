"""The episode contract both envs share: what a failed step costs and how long an episode is."""

from __future__ import annotations

import numpy as np

from powertrip_env.errors import ConfigError

#: Normalised cost of each objective at a step whose power flow failed (the reward is its
#: negative); also the cap of every normalised cost.
FAILURE_COST = 10.0


def check_max_episode_steps(max_episode_steps: int | None) -> int | None:
    """``max_episode_steps`` if it is ``None`` or a positive int (the envs' keyword).

    Raises:
        ConfigError: anything else.
    """
    if max_episode_steps is None:
        return None
    if (
        isinstance(max_episode_steps, bool)
        or not isinstance(max_episode_steps, (int, np.integer))
        or max_episode_steps < 1
    ):
        raise ConfigError(
            f"max_episode_steps={max_episode_steps!r} must be a positive integer or None "
            "(None: the whole day)"
        )
    return int(max_episode_steps)
