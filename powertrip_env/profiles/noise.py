"""Seeded, temporally correlated noise shared by the load and PV models.

Every draw comes from the caller's :class:`numpy.random.Generator`; nothing here touches a
global random state.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter


def ar1_normal(
    rng: np.random.Generator, n_series: int, n_steps: int, correlation_steps: float
) -> NDArray[np.float64]:
    """Stationary Gaussian AR(1) series with zero mean and unit variance.

    ``x[t] = phi * x[t-1] + sqrt(1 - phi**2) * e[t]`` with ``phi = exp(-1 / correlation_steps)``,
    so the autocorrelation at lag ``L`` steps is ``exp(-L / correlation_steps)``; ``x[0]`` is
    drawn from the stationary distribution. ``correlation_steps <= 0`` gives white noise.

    Args:
        rng: source of every draw (``n_series * n_steps`` standard normals).
        n_series: number of independent series.
        n_steps: length of each series.
        correlation_steps: e-folding time of the autocorrelation, in steps.

    Returns:
        Array of shape ``(n_series, n_steps)``.
    """
    return ar1_filter(rng.standard_normal((n_series, n_steps)), correlation_steps)


def ar1_filter(eps: NDArray[np.float64], correlation_steps: float) -> NDArray[np.float64]:
    """The AR(1) series of :func:`ar1_normal` driven by the standard normals ``eps``.

    ``eps`` is ``(..., n_steps)``: any leading axes (series, days) are filtered at once, so
    draws made from many generators are filtered together. Each series is filtered on its
    own, so the result does not depend on what else is in the batch.
    """
    eps = np.asarray(eps, dtype=float)
    n_steps = eps.shape[-1]
    if correlation_steps <= 0 or n_steps < 2:
        return eps
    phi = float(np.exp(-1.0 / correlation_steps))
    gain = float(np.sqrt(1.0 - phi * phi))
    rows = eps.reshape(-1, n_steps)
    x0 = rows[:, :1]
    rest, _ = lfilter([gain], [1.0, -phi], rows[:, 1:], axis=1, zi=phi * x0)
    return np.concatenate([x0, np.asarray(rest, dtype=float)], axis=1).reshape(eps.shape)


def lognormal_factor(
    rng: np.random.Generator,
    n_series: int,
    n_steps: int,
    sigma: float,
    correlation_steps: float,
) -> NDArray[np.float64]:
    """Correlated multiplicative noise ``exp(sigma * x - sigma**2 / 2)`` with mean 1.

    ``x`` is :func:`ar1_normal`; shape ``(n_series, n_steps)``, all values positive.
    """
    return lognormal_of(ar1_normal(rng, n_series, n_steps, correlation_steps), sigma)


def lognormal_of(x: NDArray[np.float64], sigma: float) -> NDArray[np.float64]:
    """``exp(sigma * x - sigma**2 / 2)``: mean 1 for standard normal ``x`` (any shape)."""
    return np.exp(sigma * x - 0.5 * sigma * sigma)
