"""The observation both envs return: its layout, bounds and assembly (one implementation).

:class:`~powertrip_env.env.PowerTripEnv` writes one observation per step into a preallocated
buffer; :class:`~powertrip_env.vector_env.BatchedPowerTripEnv` writes a batch. Both go through
:class:`ObservationLayout`, so a policy trained on one runs on the other. The table of entries
is in :class:`~powertrip_env.env.PowerTripEnv`'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def observation_bounds(n_cp: int, n_pv: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 bounds of the observation layout of :class:`PowerTripEnv`.

    Shared with :class:`powertrip_env.vector_env.BatchedPowerTripEnv`, so that a policy trained
    on one env runs on the other.
    """
    lo: list[float] = [-1.0, -1.0]
    hi: list[float] = [1.0, 1.0]
    for _ in range(n_cp):
        lo += [0.0, 0.0, 0.0, 0.0, 0.0]
        hi += [1.0, 100.0, 24.0, 50.0, 50.0]
    lo += [0.0] * n_pv
    hi += [50.0] * n_pv
    lo += [0.0] * (3 * n_cp)
    hi += [2.0] * (3 * n_cp)
    lo += [-1e4] * 3
    hi += [1e4] * 3
    lo += [0.0] * n_cp
    hi += [100.0] * n_cp
    return np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32)


def assemble_observations(
    *,
    hour_h: np.ndarray,
    plugged: np.ndarray,
    remaining_kwh: np.ndarray,
    time_to_departure_h: np.ndarray,
    request_kw: np.ndarray,
    minimum_kw: np.ndarray,
    pv_available_kw: np.ndarray,
    v_cp_pu: np.ndarray,
    net_load_kw: np.ndarray,
    unbalance_pct: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """(B, obs_dim) float32 observations in the layout of :class:`PowerTripEnv`'s docstring.

    Every argument has a leading batch axis B: ``hour_h`` (B,); ``plugged``,
    ``remaining_kwh``, ``time_to_departure_h``, ``request_kw`` (CP upper bound) and
    ``minimum_kw`` (CP lower bound) (B, n_cp); ``pv_available_kw`` (B, n_pv); ``v_cp_pu``
    (B, 3 n_cp) CP-major; ``net_load_kw`` (B, 3); ``unbalance_pct`` (B, n_cp). The result is
    clipped into ``[low, high]`` (from :func:`observation_bounds`).
    """
    angle = 2.0 * np.pi * np.asarray(hour_h, dtype=np.float64) / 24.0
    n_cp, n_pv = plugged.shape[1], pv_available_kw.shape[1]
    layout = ObservationLayout(n_cp, n_pv, low, high)
    return layout.write(
        np.empty((angle.shape[0], low.size)),
        time_sin_cos=np.stack([np.sin(angle), np.cos(angle)], axis=1),
        plugged=plugged,
        remaining_kwh=remaining_kwh,
        time_to_departure_h=time_to_departure_h,
        request_kw=request_kw,
        minimum_kw=minimum_kw,
        pv_available_kw=pv_available_kw,
        v_cp_pu=v_cp_pu.reshape(angle.shape[0], -1),
        net_load_kw=net_load_kw,
        unbalance_pct=unbalance_pct,
    )


def phase_map(phases: Sequence[int]) -> np.ndarray:
    """(n, 3) one-hot map from devices to the phase (0, 1, 2) they connect to."""
    out = np.zeros((len(phases), 3))
    out[np.arange(len(phases)), np.asarray(phases, dtype=np.intp)] = 1.0
    return out


class ObservationLayout:
    """Where each entry of :class:`PowerTripEnv`'s observation sits (its docstring's table).

    :meth:`write` fills one observation (a 1-D buffer, the single env's hot path: no
    intermediate arrays) or a batch (a 2-D buffer, :func:`assemble_observations`) the same way.
    """

    def __init__(self, n_cp: int, n_pv: int, low: np.ndarray, high: np.ndarray) -> None:
        self._low, self._high = low.astype(np.float64), high.astype(np.float64)
        end_cp = 2 + 5 * n_cp
        # Entry k of every CP: plugged, owed energy, time to departure, request, minimum.
        self._cp = [slice(2 + k, end_cp, 5) for k in range(5)]
        self._pv = slice(end_cp, end_cp + n_pv)
        self._v = slice(self._pv.stop, self._pv.stop + 3 * n_cp)
        self._net = slice(self._v.stop, self._v.stop + 3)
        self._unb = slice(self._net.stop, self._net.stop + n_cp)

    def write(
        self,
        out: np.ndarray,
        *,
        time_sin_cos: Sequence[float] | np.ndarray,
        plugged: np.ndarray,
        remaining_kwh: np.ndarray,
        time_to_departure_h: np.ndarray,
        request_kw: np.ndarray,
        minimum_kw: np.ndarray,
        pv_available_kw: np.ndarray,
        v_cp_pu: np.ndarray | None,
        net_load_kw: np.ndarray,
        unbalance_pct: Sequence[float] | np.ndarray | None,
    ) -> np.ndarray:
        """Fill ``out`` (..., obs_dim) and return it clipped into the bounds, as float32.

        ``None`` voltages / unbalance read 1 pu / 0 (before the first solve).
        """
        out[..., :2] = time_sin_cos
        cp = self._cp
        out[..., cp[0]] = plugged
        out[..., cp[1]] = remaining_kwh
        out[..., cp[2]] = time_to_departure_h
        out[..., cp[3]] = request_kw
        out[..., cp[4]] = minimum_kw
        out[..., self._pv] = pv_available_kw
        out[..., self._v] = 1.0 if v_cp_pu is None else v_cp_pu
        out[..., self._net] = net_load_kw
        out[..., self._unb] = 0.0 if unbalance_pct is None else unbalance_pct
        return np.minimum(np.maximum(out, self._low), self._high).astype(np.float32)
