"""The agents' action convention: policy outputs in [-1, 1] to the env's fractions in [0, 1].

Shared by the single-env wrapper stack (:mod:`agents.envs`), the batched training VecEnv
(:mod:`agents.batched`) and the trained-policy adapter (:mod:`agents.policy`).
"""

from __future__ import annotations

import numpy as np


def fraction_from_action(action: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Map agent actions in [-1, 1] (clipped) to the env's fractions in [0, 1].

    With ``margin`` m, [-1, 1] maps linearly to [-m, 1 + m] and the result is clipped to
    [0, 1]: the bounds are reached from inside the policy's range (``TrainConfig.action_margin``).
    """
    fraction = (np.clip(action, -1.0, 1.0) + 1.0) / 2.0
    if margin == 0.0:
        return fraction
    return np.clip(fraction * (1.0 + 2.0 * margin) - margin, 0.0, 1.0)
