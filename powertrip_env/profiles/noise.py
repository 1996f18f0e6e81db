"""Seeded, temporally correlated noise shared by the load and PV models.

Every draw comes from the caller's :class:`numpy.random.Generator`; nothing here touches a
global random state.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter


def ar1_filter(eps: NDArray[np.float64], correlation_steps: float) -> NDArray[np.float64]:
    """Stationary Gaussian AR(1) series with zero mean and unit variance, driven by the
    standard normals ``eps`` (drawn by the caller from its generator).

    ``x[t] = phi * x[t-1] + sqrt(1 - phi**2) * e[t]`` with ``phi = exp(-1 / correlation_steps)``,
    so the autocorrelation at lag ``L`` steps is ``exp(-L / correlation_steps)``; ``x[0] =
    e[0]``, a draw from the stationary distribution. ``correlation_steps <= 0`` gives white
    noise.

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


def lognormal_of(
    x: NDArray[np.float64], sigma: float, *, in_place: bool = False
) -> NDArray[np.float64]:
    """``exp(sigma * x - sigma**2 / 2)``: mean 1 for standard normal ``x`` (any shape).

    ``in_place=True`` overwrites ``x`` (a float array) with the result: a day's noise arrays
    are large, and fresh ones cost page faults. The same operations either way.
    """
    y = x if in_place else np.array(x, dtype=float)
    y *= sigma
    y -= 0.5 * sigma * sigma
    return np.exp(y, out=y)
