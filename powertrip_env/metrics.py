"""Grid metrics and the control objectives, as pure batched numpy functions.

Definitions: architecture.md §6, §7.

Every function takes arrays whose *last* axis is the one it reduces over (the three phases of
a bus, the buses of a feeder, the PV systems of a scenario, the timesteps of a day) and any
number of leading batch axes, so a whole population of candidates or a whole day is scored in
one call. Nothing here imports OpenDSS.

Sign convention: objectives are costs (minimised, as in pymoo); the environment reward is the
negated objective vector (maximised, as in RL). :func:`objectives_to_reward` and
:func:`reward_to_objectives` are the only place that conversion happens.
"""

from __future__ import annotations

import math
from typing import Literal, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from powertrip_env.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

#: UK statutory supply voltage, 230 V +10 % / -6 % (ESQCR 2002), in pu of 230 V. Inclusive.
UK_STATUTORY_LIMITS_PU: tuple[float, float] = (0.94, 1.10)
#: EN 50160 supply voltage, 230 V +-10 %, in pu of 230 V. Inclusive.
EN50160_LIMITS_PU: tuple[float, float] = (0.90, 1.10)

#: Operator ``a = exp(j 2 pi / 3)`` of the symmetrical-component transform.
_A = np.exp(2j * np.pi / 3)
#: ``[V0, V1, V2] = _SEQ @ [Va, Vb, Vc]`` (Fortescue, phase a as reference).
_SEQ = np.array([[1, 1, 1], [1, _A, _A**2], [1, _A**2, _A]], dtype=np.complex128) / 3


def _require_last_axis(x: np.ndarray, size: int, name: str) -> None:
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(
            f"{name} must have a last axis of length {size} (phases a, b, c); "
            f"got an array of shape {x.shape}"
        )


def _require_nonempty_last_axis(x: np.ndarray, name: str) -> None:
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(
            f"{name} must have a non-empty last axis to reduce over; got shape {x.shape}"
        )


def _broadcast_pair(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape == b.shape:  # the common case, without np.broadcast_shapes' cost
        return
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{names} must have broadcastable shapes; got {a.shape} and {b.shape}"
        ) from None


def _safe_ratio(num: FloatArray, den: FloatArray, zero: npt.NDArray[np.bool_]) -> FloatArray:
    """``num / den``, with 0 where ``zero`` and ``inf`` where only the denominator is 0.

    (``np.divide`` with ``where=`` rather than ``np.errstate``, whose context manager costs
    more than the division on the few values of one step.)
    """
    out = np.where(zero, 0.0, np.inf)
    np.divide(num, den, out=out, where=(den != 0) & ~zero)
    return out


# --- Unbalance -------------------------------------------------------------------------------


def pui(v_mag: npt.ArrayLike) -> FloatArray:
    """Phase voltage unbalance rate (IEEE definition), in percent.

    ``PUI = 100 * max_phi |V_phi - V_mean| / V_mean`` over the phase-to-neutral magnitudes.

    Args:
        v_mag: phase-to-neutral voltage magnitudes, shape ``(..., 3)``, any unit (V or pu),
            non-negative.

    Returns:
        PUI in percent, shape ``(...)``. A dead bus (all three magnitudes 0) has PUI 0.

    Raises:
        ValueError: the last axis is not 3 long, or a magnitude is negative.
    """
    v = np.asarray(v_mag, dtype=np.float64)
    _require_last_axis(v, 3, "v_mag")
    if (v < 0).any():
        raise ValueError(f"v_mag holds negative magnitudes (min {v.min()}); magnitudes are >= 0")
    mean = np.add.reduce(v, axis=-1) / 3.0  # = v.mean(axis=-1), without its wrapper
    dev = np.maximum.reduce(np.abs(v - mean[..., None]), axis=-1)
    out = np.zeros_like(mean)  # a dead bus (mean 0) has PUI 0
    np.divide(100.0 * dev, mean, out=out, where=mean != 0)
    return out


def pui_of_buses(v_mag: np.ndarray) -> list[float]:
    """:func:`pui` of a few buses, as Python floats: one step's hot path.

    On the (n_cp, 3) magnitudes of one step, numpy's per-call cost outweighs the arithmetic;
    this does the same operations in the same order with Python floats, so the results equal
    :func:`pui`'s bit for bit (``tests/test_metrics.py`` holds them together).

    Args:
        v_mag: (n_buses, 3) non-negative phase-to-neutral magnitudes.
    """
    out = []
    for a, b, c in v_mag.tolist():
        if a < 0 or b < 0 or c < 0:
            raise ValueError(f"v_mag holds negative magnitudes {[a, b, c]}; magnitudes are >= 0")
        mean = (a + b + c) / 3.0
        dev = max(abs(a - mean), abs(b - mean), abs(c - mean))
        out.append(100.0 * dev / mean if mean != 0 else 0.0)
    return out


def vuf_of_buses(v_phasors: np.ndarray) -> list[float]:
    """:func:`vuf` of a few buses as Python floats (one step's hot path, as
    :func:`pui_of_buses`); equal to :func:`vuf` within rounding (a test holds them to 1e-12).

    Args:
        v_phasors: (n_buses, 3) complex phasors, phases a, b, c.
    """
    (_, _, _), (p0, p1, p2), (n0, n1, n2) = _SEQ.tolist()
    out = []
    for va, vb, vc in v_phasors.tolist():
        v1 = abs(va * p0 + vb * p1 + vc * p2)
        v2 = abs(va * n0 + vb * n1 + vc * n2)
        out.append(100.0 * v2 / v1 if v1 != 0 else (0.0 if v2 == 0 else math.inf))
    return out


def power_unbalance_of_buses(p_phase: np.ndarray, *, atol: float = 1e-9) -> list[float]:
    """:func:`power_unbalance` of a few buses as Python floats (one step's hot path, as
    :func:`pui_of_buses`), bit for bit.

    Args:
        p_phase: (n_buses, 3) power per phase.
        atol: as :func:`power_unbalance`.
    """
    out = []
    for a, b, c in p_phase.tolist():
        mean = (a + b + c) / 3.0
        dev = max(abs(a - mean), abs(b - mean), abs(c - mean))
        if abs(a) <= atol and abs(b) <= atol and abs(c) <= atol:
            out.append(0.0)
        elif abs(mean) <= atol:
            out.append(math.inf)
        else:
            out.append(100.0 * dev / abs(mean))
    return out


def sequence_components(v_phasors: npt.ArrayLike) -> npt.NDArray[np.complex128]:
    """Symmetrical components ``[V0, V1, V2]`` of phase phasors ``[Va, Vb, Vc]``.

    Uses ``a = exp(j 2 pi / 3)``: ``V1 = (Va + a Vb + a^2 Vc) / 3``,
    ``V2 = (Va + a^2 Vb + a Vc) / 3``, ``V0 = (Va + Vb + Vc) / 3``.

    Args:
        v_phasors: complex phase-to-neutral phasors, shape ``(..., 3)`` (phases a, b, c in the
            positive sequence order a -> b -> c, i.e. b lags a by 120 degrees).

    Returns:
        Complex array of shape ``(..., 3)``: zero, positive and negative sequence, same unit.

    Raises:
        ValueError: the last axis is not 3 long.
    """
    v = np.asarray(v_phasors, dtype=np.complex128)
    _require_last_axis(v, 3, "v_phasors")
    return np.asarray(v @ _SEQ.T, dtype=np.complex128)


def vuf(v_phasors: npt.ArrayLike) -> FloatArray:
    """Voltage unbalance factor ``100 * |V2| / |V1|``, in percent (IEC 61000-2-2: 2 % planning).

    Args:
        v_phasors: complex phase-to-neutral phasors, shape ``(..., 3)``, phases a, b, c.

    Returns:
        VUF in percent, shape ``(...)``. 0 where the bus is dead (V1 = V2 = 0); ``inf`` where
        there is negative but no positive sequence.

    Raises:
        ValueError: the last axis is not 3 long.
    """
    seq = sequence_components(v_phasors)
    v1 = np.abs(seq[..., 1])
    v2 = np.abs(seq[..., 2])
    return _safe_ratio(100.0 * v2, v1, (v1 == 0) & (v2 == 0))


def power_unbalance(p_phase: npt.ArrayLike, *, atol: float = 1e-9) -> FloatArray:
    """Power-based unbalance of the phase powers entering a bus, in percent.

    ``100 * max_phi |P_phi - P_mean| / |P_mean|``.

    Args:
        p_phase: power per phase, shape ``(..., 3)``, any unit (e.g. kW), positive =
            consumption.
        atol: a phase power with ``|P| <= atol`` (same unit) counts as zero.

    Returns:
        Unbalance in percent, shape ``(...)``. Where all three phase powers are zero (within
        ``atol``) the bus carries no power and the result is 0. Where the phases cancel out
        (``|P_mean| <= atol`` but some phase is not zero, e.g. export on one phase and import
        on another) the unbalance is unbounded and the result is ``inf``.

    Raises:
        ValueError: the last axis is not 3 long, or ``atol`` is negative.
    """
    p = np.asarray(p_phase, dtype=np.float64)
    _require_last_axis(p, 3, "p_phase")
    if not atol >= 0:
        raise ValueError(f"atol={atol} must be >= 0")
    mean = np.add.reduce(p, axis=-1) / 3.0  # = p.mean(axis=-1), without its wrapper
    dev = np.maximum.reduce(np.abs(p - mean[..., None]), axis=-1)
    all_zero = np.logical_and.reduce(np.abs(p) <= atol, axis=-1)
    abs_mean = np.abs(mean)
    den = np.where(abs_mean <= atol, 0.0, abs_mean)
    return _safe_ratio(100.0 * dev, den, all_zero)


# --- Voltage magnitude ----------------------------------------------------------------------


UnbalanceIndex = Literal["pui", "vuf", "power"]
#: The unbalance indices a scenario can choose to drive f1 (architecture.md §6).
UNBALANCE_INDICES: tuple[UnbalanceIndex, ...] = get_args(UnbalanceIndex)
#: The indices that bus voltages alone give (the reduced model's output).
VOLTAGE_INDICES: tuple[UnbalanceIndex, ...] = ("pui", "vuf")
_T = TypeVar("_T")


def by_index(index: UnbalanceIndex, *, pui: _T, vuf: _T, power: _T) -> _T:
    """The one of ``pui``, ``vuf``, ``power`` that ``index`` names: the single dispatch on it.

    Raises:
        ValueError: ``index`` is not one of :data:`UNBALANCE_INDICES`.
    """
    if index == "pui":
        return pui
    if index == "vuf":
        return vuf
    if index == "power":
        return power
    raise ValueError(f"unbalance index {index!r} is not one of {UNBALANCE_INDICES}")


def _given(x: np.ndarray | None, index: UnbalanceIndex, name: str) -> np.ndarray:
    if x is None:
        raise ValueError(f"the {index!r} unbalance index needs {name}")
    return x


def unbalance(
    index: UnbalanceIndex, v_phasors: np.ndarray | None = None, p_phase: np.ndarray | None = None
) -> FloatArray:
    """The unbalance index ``index`` of each bus, percent, batched like its definition.

    Args:
        index: ``pui`` (:func:`pui`) or ``vuf`` (:func:`vuf`), which read ``v_phasors``, the
            (..., 3) complex phase-to-neutral phasors; or ``power`` (:func:`power_unbalance`),
            which reads ``p_phase``, the (..., 3) phase powers entering the bus.
    """
    compute = by_index(
        index,
        pui=lambda: pui(np.abs(_given(v_phasors, index, "v_phasors"))),
        vuf=lambda: vuf(_given(v_phasors, index, "v_phasors")),
        power=lambda: power_unbalance(_given(p_phase, index, "p_phase")),
    )
    return compute()


def unbalance_of_buses(
    index: UnbalanceIndex, v_phasors: np.ndarray | None = None, p_phase: np.ndarray | None = None
) -> list[float]:
    """:func:`unbalance` of one step's few buses as Python floats (the env's hot path), through
    the ``*_of_buses`` twins (tests hold them equal to the batched functions)."""
    compute = by_index(
        index,
        pui=lambda: pui_of_buses(np.abs(_given(v_phasors, index, "v_phasors"))),
        vuf=lambda: vuf_of_buses(_given(v_phasors, index, "v_phasors")),
        power=lambda: power_unbalance_of_buses(_given(p_phase, index, "p_phase")),
    )
    return compute()


def voltage_extremes(v_pu: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Lowest and highest voltage over the last axis (e.g. every bus-phase of a feeder).

    Args:
        v_pu: voltage magnitudes, shape ``(..., n)`` with ``n >= 1``, pu.

    Returns:
        ``(v_min_pu, v_max_pu)``, each of shape ``(...)``.
    """
    v = np.asarray(v_pu, dtype=np.float64)
    _require_nonempty_last_axis(v, "v_pu")
    return np.asarray(v.min(axis=-1)), np.asarray(v.max(axis=-1))


def voltage_drop(
    v_pu: npt.ArrayLike, v_ref_pu: npt.ArrayLike = 1.0, *, v_min: npt.ArrayLike | None = None
) -> FloatArray:
    """Voltage drop ``v_ref - min(v_pu)`` over the last axis, in pu.

    With the default ``v_ref_pu = 1`` this is architecture.md's ``1 - Vmin``; the simulator passes
    the voltage at the transformer's LV terminals, so that the figure is the drop across the
    feeder itself (a feeder fed at 1.05 pu would otherwise show a negative "drop").

    Args:
        v_pu: voltage magnitudes, shape ``(..., n)`` with ``n >= 1``, pu.
        v_ref_pu: reference voltage, broadcastable to ``(...)``, pu.
        v_min: ``min(v_pu)`` over the last axis when the caller has it (e.g. from
            :func:`voltage_extremes`), which spares the pass over ``v_pu``.

    Returns:
        Shape ``(...)``, pu (negative = every bus above the reference).
    """
    if v_min is None:
        v_min, _ = voltage_extremes(v_pu)
    return np.asarray(np.asarray(v_ref_pu, dtype=float) - np.asarray(v_min, dtype=float))


def _count_true(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """True values over the last axis (``np.count_nonzero(axis=-1)`` without its wrapper)."""
    return np.add.reduce(mask, axis=-1, dtype=np.int64)


def _check_limits(limits: tuple[float, float]) -> tuple[float, float]:
    if len(limits) != 2:
        raise ConfigError(f"voltage limits must be (low_pu, high_pu); got {limits!r}")
    low, high = float(limits[0]), float(limits[1])
    if not (np.isfinite(low) and np.isfinite(high) and 0 <= low < high):
        raise ConfigError(
            f"voltage limits {limits!r} must be finite with 0 <= low_pu < high_pu, "
            f"e.g. UK_STATUTORY_LIMITS_PU={UK_STATUTORY_LIMITS_PU}"
        )
    return low, high


def count_outside(
    v_pu: npt.ArrayLike,
    limits: tuple[float, float] = UK_STATUTORY_LIMITS_PU,
    *,
    extremes: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
) -> npt.NDArray[np.int64]:
    """Number of voltages outside ``limits`` over the last axis.

    Limits are inclusive: a voltage exactly at a limit is inside. A NaN voltage (e.g. from a
    failed power flow) counts as outside, since nothing vouches for it.

    Args:
        v_pu: voltage magnitudes, shape ``(..., n)``, pu.
        limits: ``(low_pu, high_pu)``, e.g. :data:`UK_STATUTORY_LIMITS_PU` (default) or
            :data:`EN50160_LIMITS_PU`.
        extremes: ``(v_min, v_max)`` of ``v_pu`` over the last axis (:func:`voltage_extremes`)
            when the caller has them: rows whose extremes lie inside the limits then count 0
            without a pass over their voltages, and only the side that is crossed is counted.
            A row with a NaN counts all its ``n`` voltages (in practice a failed power flow
            leaves every voltage NaN).

    Returns:
        Integer counts, shape ``(...)``.

    Raises:
        ConfigError: the limits are not finite with ``0 <= low < high``.
    """
    low, high = _check_limits(limits)
    v = np.asarray(v_pu, dtype=np.float64)
    if v.ndim == 0:
        raise ValueError("v_pu must have at least one axis to count over; got a scalar")
    if extremes is None:
        inside = v >= low
        inside &= v <= high
        return np.asarray(v.shape[-1] - _count_true(inside), dtype=np.int64)
    if v.ndim == 1:  # one row (one step's hot path): plain floats, no masks
        lowest, highest = float(extremes[0]), float(extremes[1])  # type: ignore[arg-type]
        if math.isnan(lowest):
            return np.asarray(v.size, dtype=np.int64)
        n = np.count_nonzero(v < low) if lowest < low else 0
        n += np.count_nonzero(v > high) if highest > high else 0
        return np.asarray(n, dtype=np.int64)
    v_min, v_max = (np.asarray(e, dtype=np.float64) for e in extremes)
    count = np.zeros(v_min.shape, dtype=np.int64)
    below, above = v_min < low, v_max > high
    if below.any():
        count[below] += _count_true(v[below] < low)
    if above.any():
        count[above] += _count_true(v[above] > high)
    nan = np.isnan(v_min)
    if nan.any():
        count[nan] = v.shape[-1]
    return count


# --- PV and energy --------------------------------------------------------------------------


def curtailment_kw(
    available_kw: npt.ArrayLike, used_kw: npt.ArrayLike, *, atol_kw: float = 1e-6
) -> FloatArray:
    """PV power curtailed, ``available - used``, element-wise in kW (always >= 0).

    Args:
        available_kw: PV power available, any shape, kW, >= 0.
        used_kw: PV power injected, broadcastable to ``available_kw``, kW, >= 0.
        atol_kw: ``used`` may exceed ``available`` by this much (rounding); the result is
            clipped to 0 there.

    Raises:
        ValueError: a power is negative, the shapes do not broadcast, or ``used`` exceeds
            ``available`` by more than ``atol_kw``.
    """
    avail = np.asarray(available_kw, dtype=np.float64)
    used = np.asarray(used_kw, dtype=np.float64)
    _broadcast_pair(avail, used, "available_kw and used_kw")
    if (avail < 0).any() or (used < 0).any():
        raise ValueError(
            f"PV powers must be >= 0 kW; got min available {avail.min()}, min used {used.min()}"
        )
    excess = used - avail
    if (excess > atol_kw).any():
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), excess.shape))
        raise ValueError(
            f"used_kw exceeds available_kw by {excess[idx]:.6g} kW at index {idx}; "
            f"PV cannot inject more than is available (tolerance {atol_kw} kW)"
        )
    return np.maximum(-excess, 0.0)


def pv_usage_efficiency(
    available_kwh: npt.ArrayLike, used_kwh: npt.ArrayLike, *, atol_kwh: float = 1e-9
) -> FloatArray:
    """PV usage efficiency ``used / available``, element-wise (pass totals, e.g. per day).

    Args:
        available_kwh: PV energy available, any shape, kWh, >= 0.
        used_kwh: PV energy injected, broadcastable to ``available_kwh``, kWh, >= 0.
        atol_kwh: available energy at or below this counts as none.

    Returns:
        Ratio in [0, 1] (up to rounding). Where no PV energy was available (night, no PV) the
        efficiency is 1.0: nothing was wasted.

    Raises:
        ValueError: an energy is negative, or the shapes do not broadcast.
    """
    avail = np.asarray(available_kwh, dtype=np.float64)
    used = np.asarray(used_kwh, dtype=np.float64)
    _broadcast_pair(avail, used, "available_kwh and used_kwh")
    if np.any(avail < 0) or np.any(used < 0):
        raise ValueError(
            f"PV energies must be >= 0 kWh; got min available {avail.min()}, min used {used.min()}"
        )
    none = avail <= atol_kwh
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = used / np.where(none, 1.0, avail)
    return np.asarray(np.where(none, 1.0, ratio), dtype=np.float64)


def energy_kwh(p_kw: npt.ArrayLike, dt_h: float) -> FloatArray:
    """Energy of a power series held constant over each step: ``sum_t p_kw[..., t] * dt_h``.

    Args:
        p_kw: power per timestep, shape ``(..., T)``, kW.
        dt_h: step length, hours (5-minute steps: ``5 / 60``), > 0.

    Returns:
        Energy in kWh, shape ``(...)``.

    Raises:
        ConfigError: ``dt_h`` is not a finite positive number.
    """
    if not (np.isfinite(dt_h) and dt_h > 0):
        raise ConfigError(f"dt_h={dt_h} must be a finite number of hours > 0")
    p = np.asarray(p_kw, dtype=np.float64)
    if p.ndim == 0:
        raise ValueError("p_kw must have a time axis (last axis); got a scalar")
    return np.asarray(p.sum(axis=-1) * dt_h)


# --- Objectives (architecture.md §6) --------------------------------------------------------------


def f_unbalance(pui_at_cp_buses: npt.ArrayLike) -> FloatArray:
    """Objective f1, grid impact: ``sum_i PUI_i^2`` over the CP buses (last axis), in %^2.

    Args:
        pui_at_cp_buses: unbalance at each CP bus, shape ``(..., n_cp)``, percent.

    Returns:
        Shape ``(...)``, %^2 (minimised).
    """
    u = np.asarray(pui_at_cp_buses, dtype=np.float64)
    if u.ndim == 0:
        raise ValueError("pui_at_cp_buses must have a last axis over the CP buses; got a scalar")
    return np.asarray(np.add.reduce(u * u, axis=-1))


def f_curtailment(available_kw: npt.ArrayLike, pv_kw: npt.ArrayLike) -> FloatArray:
    """Objective f2, PV curtailment: ``sum_p (available_p - P_PV_p)^2`` (last axis), in kW^2.

    Args:
        available_kw: PV power available per system, shape ``(..., n_pv)``, kW.
        pv_kw: PV power set per system, broadcastable to ``available_kw``, kW.

    Returns:
        Shape ``(...)``, kW^2 (minimised).
    """
    avail = np.asarray(available_kw, dtype=np.float64)
    used = np.asarray(pv_kw, dtype=np.float64)
    _broadcast_pair(avail, used, "available_kw and pv_kw")
    if avail.ndim == 0 and used.ndim == 0:
        raise ValueError("available_kw and pv_kw must have a last axis over the PV systems")
    gap = avail - used
    return np.asarray(np.add.reduce(gap * gap, axis=-1))


def objectives_to_reward(f: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Reward vector from objective (cost) vector: ``r = -f``, as float32 (MO-Gymnasium)."""
    return np.asarray(-np.asarray(f, dtype=np.float64), dtype=np.float32)


def reward_to_objectives(r: npt.ArrayLike) -> FloatArray:
    """Objective (cost) vector from reward vector: ``f = -r``, as float64 (pymoo)."""
    return np.asarray(-np.asarray(r, dtype=np.float64), dtype=np.float64)


def normalise(f: npt.ArrayLike, f_ref: npt.ArrayLike) -> FloatArray:
    """Objectives divided by their reference values (architecture.md §6: ``f_k / F_k_ref``).

    Args:
        f: objective values, shape ``(..., k)``.
        f_ref: reference value per objective, shape ``(k,)`` (or broadcastable), each finite
            and > 0 (e.g. the day's largest no-control f1 and full-curtailment f2).

    Returns:
        Normalised objectives, same shape as ``f``, dimensionless.

    Raises:
        ConfigError: a reference value is not finite or is <= 0.
        ValueError: the shapes do not broadcast.
    """
    values = np.asarray(f, dtype=np.float64)
    ref = np.asarray(f_ref, dtype=np.float64)
    bad = ~(np.isfinite(ref) & (ref > 0))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"normalisation reference f_ref{list(idx)}={ref[idx]} is invalid; every reference "
            f"value must be finite and > 0 (got f_ref={ref.tolist()})"
        )
    _broadcast_pair(values, ref, "f and f_ref")
    return np.asarray(values / ref)
