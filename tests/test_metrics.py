"""Metrics and objectives on hand-computed cases (architecture.md §6, §7)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from powertrip_env import metrics
from powertrip_env.errors import ConfigError

A = np.exp(2j * np.pi / 3)
BALANCED = np.array([1.0, A**2, A])  # 1∠0, 1∠-120, 1∠120: pure positive sequence


def polar(mag: float, deg: float) -> complex:
    return complex(mag * np.exp(1j * np.deg2rad(deg)))


# --- PUI ------------------------------------------------------------------------------------


def test_pui_balanced_bus_is_zero() -> None:
    assert metrics.pui([230.0, 230.0, 230.0]) == 0.0


def test_pui_hand_computed() -> None:
    # mean = 680/3 = 226.667 V; largest deviation |220 - 226.667| = 20/3 V;
    # PUI = 100 * (20/3) / (680/3) = 2000/680 = 2.941176... %
    assert metrics.pui([230.0, 230.0, 220.0]) == pytest.approx(2000.0 / 680.0, rel=1e-12)


def test_pui_is_unit_free() -> None:
    assert metrics.pui([1.0, 1.0, 220 / 230]) == pytest.approx(metrics.pui([230, 230, 220]))


def test_pui_dead_bus_is_zero() -> None:
    assert metrics.pui([0.0, 0.0, 0.0]) == 0.0


def test_pui_batched_equals_row_by_row() -> None:
    rng = np.random.default_rng(0)
    v = rng.uniform(0.9, 1.1, size=(4, 5, 3))
    batched = metrics.pui(v)
    assert batched.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            assert batched[i, j] == pytest.approx(float(metrics.pui(v[i, j])), rel=1e-14)


@pytest.mark.parametrize("shape", [(3, 2), (4,), ()])
def test_pui_rejects_wrong_last_axis(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"shape {re.escape(str(shape))}"):
        metrics.pui(np.ones(shape))


def test_pui_rejects_negative_magnitude() -> None:
    with pytest.raises(ValueError, match="negative"):
        metrics.pui([1.0, -1.0, 1.0])


# --- Sequence components and VUF ------------------------------------------------------------


def test_sequence_components_of_balanced_set() -> None:
    seq = metrics.sequence_components(BALANCED)
    np.testing.assert_allclose(seq, [0.0, 1.0, 0.0], atol=1e-15)


def test_vuf_balanced_bus_is_zero() -> None:
    assert metrics.vuf(230 * BALANCED) == pytest.approx(0.0, abs=1e-12)


def test_vuf_of_added_negative_sequence_is_its_ratio() -> None:
    # positive sequence 1 pu + negative sequence (1∠0, 1∠120, 1∠-120) * 0.1 pu:
    # V1 = 1, V2 = 0.1 exactly, so VUF = 10 %.
    negative = np.array([1.0, A, A**2])
    v = BALANCED + 0.1 * negative
    seq = metrics.sequence_components(v)
    np.testing.assert_allclose(seq, [0.0, 1.0, 0.1], atol=1e-15)
    assert metrics.vuf(v) == pytest.approx(10.0, rel=1e-12)


def test_vuf_textbook_set() -> None:
    # Va = 1∠0, Vb = 1∠-120, Vc = 0.9∠120: the set is balanced 1 pu minus 0.1∠120 on phase c.
    # V1 = (1 + a*1∠-120 + a^2*0.9∠120)/3 = (1 + 1 + 0.9)/3 = 2.9/3.
    # V2 = (1 + 1∠120 + 0.9∠240)/3 = (0.05 + j0.0866)/3 = 0.1∠60 / 3.
    # VUF = 100 * 0.1 / 2.9 = 3.448 %.
    v = [polar(1, 0), polar(1, -120), polar(0.9, 120)]
    seq = metrics.sequence_components(v)
    assert abs(seq[1]) == pytest.approx(2.9 / 3, rel=1e-12)
    assert abs(seq[2]) == pytest.approx(0.1 / 3, rel=1e-12)
    assert metrics.vuf(v) == pytest.approx(10.0 / 2.9, rel=1e-12)


def test_vuf_batched_equals_row_by_row() -> None:
    rng = np.random.default_rng(1)
    v = BALANCED + 0.05 * (rng.normal(size=(6, 3)) + 1j * rng.normal(size=(6, 3)))
    batched = metrics.vuf(v)
    assert batched.shape == (6,)
    np.testing.assert_allclose(batched, [metrics.vuf(row) for row in v], rtol=1e-14)


def test_vuf_dead_bus_is_zero() -> None:
    assert metrics.vuf(np.zeros(3, dtype=complex)) == 0.0


def test_vuf_rejects_wrong_last_axis() -> None:
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        metrics.vuf(np.ones((2, 4), dtype=complex))


# --- Power unbalance ------------------------------------------------------------------------


def test_power_unbalance_balanced_is_zero() -> None:
    assert metrics.power_unbalance([3.0, 3.0, 3.0]) == 0.0


def test_power_unbalance_one_phase_only() -> None:
    # P = (3, 0, 0): mean 1, largest deviation |3 - 1| = 2, so 200 %.
    assert metrics.power_unbalance([3.0, 0.0, 0.0]) == pytest.approx(200.0)


def test_power_unbalance_no_power_is_zero_and_cancelling_is_inf() -> None:
    result = metrics.power_unbalance([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]])
    assert result[0] == 0.0
    assert np.isinf(result[1])


def test_power_unbalance_rejects_wrong_last_axis() -> None:
    with pytest.raises(ValueError, match=r"\(5,\)"):
        metrics.power_unbalance(np.ones(5))


# --- Voltage magnitude ----------------------------------------------------------------------


def test_voltage_extremes_and_drop() -> None:
    v = np.array([[1.02, 0.95, 1.0], [0.99, 1.05, 0.97]])
    v_min, v_max = metrics.voltage_extremes(v)
    np.testing.assert_allclose(v_min, [0.95, 0.97])
    np.testing.assert_allclose(v_max, [1.02, 1.05])
    np.testing.assert_allclose(metrics.voltage_drop(v), [0.05, 0.03])


def test_voltage_extremes_rejects_empty() -> None:
    with pytest.raises(ValueError, match=r"\(2, 0\)"):
        metrics.voltage_extremes(np.ones((2, 0)))


def test_limits_constants() -> None:
    assert metrics.UK_STATUTORY_LIMITS_PU == (0.94, 1.10)
    assert metrics.EN50160_LIMITS_PU == (0.90, 1.10)


def test_count_outside_limits_are_inclusive() -> None:
    v = np.array([0.94, 1.10, 0.9399, 1.1001, 1.0])
    assert metrics.count_outside(v, metrics.UK_STATUTORY_LIMITS_PU) == 2
    assert metrics.count_outside(v, metrics.EN50160_LIMITS_PU) == 1
    assert metrics.count_outside(v) == 2  # UK statutory by default


def test_count_outside_batched_and_nan() -> None:
    v = np.array([[0.90, 0.89, 1.0], [1.0, np.nan, 1.11]])
    np.testing.assert_array_equal(metrics.count_outside(v, metrics.EN50160_LIMITS_PU), [1, 2])


def test_count_outside_with_extremes_counts_the_same() -> None:
    """The extremes shortcut (rows inside skipped, one side counted) changes no count."""
    rng = np.random.default_rng(3)
    v = 1.0 + 0.06 * rng.standard_normal((40, 500))
    v[::4] = 1.0 + 0.01 * rng.standard_normal((10, 500))  # rows wholly inside the limits
    v[5] = np.nan  # a failed power flow
    extremes = metrics.voltage_extremes(v)
    for limits in (metrics.UK_STATUTORY_LIMITS_PU, metrics.EN50160_LIMITS_PU, (0.97, 1.02)):
        plain = metrics.count_outside(v, limits)
        np.testing.assert_array_equal(metrics.count_outside(v, limits, extremes=extremes), plain)
        for k in range(len(v)):  # one row at a time (the env's per-step path)
            row_extremes = (extremes[0][k], extremes[1][k])
            assert metrics.count_outside(v[k], limits, extremes=row_extremes) == plain[k]
    uk = metrics.count_outside(v, metrics.UK_STATUTORY_LIMITS_PU)
    assert uk[5] == 500 and uk[0] == 0 and uk[1] > 0


def test_per_bus_twins_equal_the_batched_indices() -> None:
    """The Python-float twins of one step's hot path give the batched functions' numbers."""
    rng = np.random.default_rng(4)
    angles = np.deg2rad([0.0, -120.0, 120.0])
    for _ in range(200):
        mags = 230.0 * (1.0 + 0.05 * rng.standard_normal((3, 3)))
        v = mags * np.exp(1j * (angles + 0.05 * rng.standard_normal((3, 3))))
        p = rng.standard_normal((3, 3))
        assert metrics.pui_of_buses(np.abs(v)) == metrics.pui(np.abs(v)).tolist()
        assert metrics.power_unbalance_of_buses(p) == metrics.power_unbalance(p).tolist()
        np.testing.assert_allclose(metrics.vuf_of_buses(v), metrics.vuf(v), rtol=1e-12)
    dead = np.zeros((1, 3), dtype=complex)
    assert metrics.pui_of_buses(np.abs(dead)) == [0.0] and metrics.vuf_of_buses(dead) == [0.0]
    cancelling = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0]])
    assert metrics.power_unbalance_of_buses(cancelling) == [0.0, np.inf]
    with pytest.raises(ValueError, match="negative"):
        metrics.pui_of_buses(np.array([[1.0, -1.0, 1.0]]))


@pytest.mark.parametrize("limits", [(1.1, 0.9), (0.9, np.inf), (-0.1, 1.0)])
def test_count_outside_rejects_bad_limits(limits: tuple[float, float]) -> None:
    with pytest.raises(ConfigError, match="limits"):
        metrics.count_outside([1.0], limits)


# --- PV and energy --------------------------------------------------------------------------


def test_curtailment_kw() -> None:
    np.testing.assert_allclose(metrics.curtailment_kw([4.0, 3.0, 0.0], [1.0, 3.0, 0.0]), [3, 0, 0])


def test_curtailment_rejects_used_above_available() -> None:
    with pytest.raises(ValueError, match=r"exceeds available_kw by 1 kW at index \(1,\)"):
        metrics.curtailment_kw([4.0, 3.0], [1.0, 4.0])


def test_pv_usage_efficiency() -> None:
    result = metrics.pv_usage_efficiency([10.0, 0.0, 4.0], [5.0, 0.0, 4.0])
    np.testing.assert_allclose(result, [0.5, 1.0, 1.0])


def test_energy_kwh() -> None:
    # 12 five-minute steps at 6 kW = 1 h at 6 kW = 6 kWh
    p = np.full((2, 12), 6.0)
    np.testing.assert_allclose(metrics.energy_kwh(p, 5 / 60), [6.0, 6.0])


@pytest.mark.parametrize("dt_h", [0.0, -1.0, np.nan])
def test_energy_kwh_rejects_bad_dt(dt_h: float) -> None:
    with pytest.raises(ConfigError, match="dt_h"):
        metrics.energy_kwh([1.0], dt_h)


# --- Objectives -----------------------------------------------------------------------------


def test_f_unbalance_is_sum_of_squares() -> None:
    np.testing.assert_allclose(metrics.f_unbalance([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]]), [9.0, 0.0])


def test_f_curtailment_is_sum_of_squared_curtailment() -> None:
    avail = np.array([[4.0, 3.0], [4.0, 3.0]])
    used = np.array([[1.0, 3.0], [4.0, 1.0]])
    np.testing.assert_allclose(metrics.f_curtailment(avail, used), [9.0, 4.0])


def test_objectives_batched_equals_row_by_row() -> None:
    rng = np.random.default_rng(2)
    avail = rng.uniform(0, 5, size=(7, 12))
    used = avail * rng.uniform(0, 1, size=(7, 12))
    batched = metrics.f_curtailment(avail, used)
    np.testing.assert_allclose(
        batched, [metrics.f_curtailment(a, u) for a, u in zip(avail, used, strict=True)]
    )


def test_reward_round_trip() -> None:
    f = np.array([[1.5, 2.0], [0.0, 3.25]])
    r = metrics.objectives_to_reward(f)
    assert r.dtype == np.float32
    np.testing.assert_array_equal(r, -f)
    np.testing.assert_array_equal(metrics.reward_to_objectives(r), f)


def test_normalise() -> None:
    f = np.array([[2.0, 5.0], [4.0, 0.0]])
    np.testing.assert_allclose(metrics.normalise(f, [4.0, 10.0]), [[0.5, 0.5], [1.0, 0.0]])


@pytest.mark.parametrize("ref", [[1.0, 0.0], [-1.0, 1.0], [1.0, np.inf], [np.nan, 1.0]])
def test_normalise_rejects_bad_reference(ref: list[float]) -> None:
    with pytest.raises(ConfigError, match="must be finite and > 0"):
        metrics.normalise([1.0, 1.0], ref)


# ------------------------------------------------------------------ one dispatch on the index
def test_unbalance_dispatches_to_the_named_index() -> None:
    rng = np.random.default_rng(4)
    v = 230 * np.exp(1j * np.array([0, -2.1, 2.05])) * (1 + 0.05 * rng.random((6, 3)))
    p = 1 + rng.random((6, 3))
    np.testing.assert_array_equal(metrics.unbalance("pui", v), metrics.pui(np.abs(v)))
    np.testing.assert_array_equal(metrics.unbalance("vuf", v), metrics.vuf(v))
    np.testing.assert_array_equal(metrics.unbalance("power", p_phase=p), metrics.power_unbalance(p))
    for index in metrics.UNBALANCE_INDICES:
        np.testing.assert_allclose(
            metrics.unbalance_of_buses(index, v, p), metrics.unbalance(index, v, p), rtol=1e-12
        )


def test_unbalance_refuses_an_unknown_index_or_missing_input() -> None:
    v = np.ones((1, 3), dtype=complex)
    with pytest.raises(ValueError, match="not one of"):
        metrics.unbalance("pu", v)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs p_phase"):
        metrics.unbalance("power", v)
    with pytest.raises(ValueError, match="needs v_phasors"):
        metrics.unbalance_of_buses("vuf", None, np.ones((1, 3)))
