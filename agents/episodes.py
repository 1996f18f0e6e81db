"""How a training episode starts and is scored, for a batch of env copies (leading copy axis).

Both training backends start their episodes here: the OpenDSS stack's wrappers
(:class:`agents.envs.TrainingDays`, :class:`agents.envs.WeightConditioned`) as the batch of one
copy, and :class:`agents.batched.BatchedTrainingVecEnv` for its ``n_envs`` copies, so that one
``TrainConfig.seed`` gives the same episodes on either backend.

Copy ``k`` of a run seeded ``s`` owns one generator, seeded ``s + k`` (SB3's convention). At
each of its episodes it draws from it, in this order:

1. the day seed, uniformly from the training range ``[0, train_days)``, or
   ``[0, EVAL_DAY_BASE)`` when days are unlimited: never a held-out day;
2. for a weight-conditioned run only, the weight ``w ~ Dirichlet(1, ..., 1)``, uniform on the
   simplex (with two objectives ``w1 ~ U(0, 1)``, ``w2 = 1 - w1``), as float32.

A fixed-weight run draws only day seeds, so its days do not depend on the number of
objectives. A run that prefetches its days (``TrainConfig.prefetch_days``) draws each copy's
next day one episode early, at the end of the episode start before it (``days_ahead`` of
:func:`draw_episode_starts`): each generator still draws day, weight, day, weight, ... in the
same order, so the days and weights are the same with and without prefetching.

The scalar reward is ``w . r`` in float32 (the env's reward vector ``r`` is float32,
architecture.md §6); a weight-conditioned policy sees its observation followed by ``w``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding

from agents.config import EVAL_DAY_BASE


class EpisodeStarts(NamedTuple):
    """What a batch of copies drew for its next episodes (one row per generator)."""

    #: Day seeds, one per copy; ``None`` when the days were chosen by the caller.
    day_seeds: list[int] | None
    #: ``(B, reward_dim)`` float32 weights; ``None`` when no weight was drawn.
    weights: np.ndarray | None
    #: Each copy's next day seed, drawn one episode early (prefetching); ``None`` otherwise.
    next_day_seeds: list[int] | None = None


def seeded_generators(
    rngs: Sequence[np.random.Generator | None], seeds: Sequence[int | None]
) -> list[np.random.Generator]:
    """Each copy's generator: new from its seed when one is given (``seed + k`` for copy k),
    else the one it has, else a new unseeded one."""
    return [
        seeding.np_random(seed)[0] if seed is not None or rng is None else rng
        for rng, seed in zip(rngs, seeds, strict=True)
    ]


def draw_episode_starts(
    rngs: Sequence[np.random.Generator],
    n_days: int | None,
    reward_dim: int | None = None,
    *,
    draw_days: bool = True,
    days_ahead: Sequence[int | None] | None = None,
) -> EpisodeStarts:
    """Draw the next episode of each copy from its own generator: its day, then its weight.

    Args:
        rngs: the generators of the copies that start an episode, one per copy.
        n_days: days are drawn from ``[0, n_days)``; from ``[0, EVAL_DAY_BASE)`` when None.
        reward_dim: draw a weight on this simplex too (weight-conditioned runs); none when None.
        draw_days: False when the caller chose the days (no day draw moves the generators).
        days_ahead: prefetching: each copy's day drawn at its previous episode start (None
            where none was drawn, e.g. after a re-seed: the day is drawn now). Each copy
            then draws its next episode's day too, after its weight, into
            ``next_day_seeds``: the caller keeps them as the next call's ``days_ahead``.
            Each generator draws exactly what it draws without this, in the same order.

    Raises:
        ValueError: ``days_ahead`` has not one entry per generator, or comes with
            ``draw_days=False``.
    """
    if days_ahead is not None and (not draw_days or len(days_ahead) != len(rngs)):
        raise ValueError(
            f"days_ahead={days_ahead!r} needs draw_days=True and one entry (or None) for each "
            f"of the {len(rngs)} generators"
        )
    high = n_days if n_days is not None else EVAL_DAY_BASE
    ahead = list(days_ahead) if days_ahead is not None else [None] * len(rngs)
    days: list[int] = []
    weights: list[np.ndarray] = []
    next_days: list[int] = []
    for rng, day in zip(rngs, ahead, strict=True):  # copy by copy: day, weight, (next day)
        if draw_days:
            days.append(int(rng.integers(0, high)) if day is None else int(day))
        if reward_dim is not None:
            weights.append(rng.dirichlet(np.ones(reward_dim)))
        if days_ahead is not None:
            next_days.append(int(rng.integers(0, high)))
    return EpisodeStarts(
        days if draw_days else None,
        None if reward_dim is None else np.array(weights, np.float32).reshape(-1, reward_dim),
        next_days if days_ahead is not None else None,
    )


def weighted_observation_space(inner: spaces.Space, reward_dim: int) -> spaces.Box:
    """One copy's observation space with the weight appended (its bounds [0, 1])."""
    assert isinstance(inner, spaces.Box)
    return spaces.Box(
        np.concatenate([inner.low, np.zeros(reward_dim, np.float32)]),
        np.concatenate([inner.high, np.ones(reward_dim, np.float32)]),
        dtype=np.float32,
    )


def with_weights(observations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(B, n_obs)`` observations followed by their copies' ``(B, reward_dim)`` weights,
    as float32 ``(B, n_obs + reward_dim)``."""
    return np.concatenate([observations, weights], axis=1).astype(np.float32)


def scalarise(weights: np.ndarray, vector_rewards: np.ndarray) -> np.ndarray:
    """The ``(B,)`` float32 scalar rewards ``w . r`` of ``(B, reward_dim)`` weights and
    vector rewards: for two objectives the same float32 sum, to the bit, as the ``np.dot`` of
    MO-Gymnasium's ``LinearReward`` (the OpenDSS stack's fixed-weight scalariser)."""
    w = np.asarray(weights, np.float32)
    r = np.asarray(vector_rewards, np.float32)
    return np.einsum("ij,ij->i", w, r).astype(np.float32)
