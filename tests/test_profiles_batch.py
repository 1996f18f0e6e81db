"""Days built in batches (conventions.md habit 4): each day equals the day built alone."""

from __future__ import annotations

import numpy as np
import pytest

from powertrip_env import profiles as prof
from powertrip_env.config import load_scenario_config
from powertrip_env.profiles.pv import _markov_states
from powertrip_env.scenario import build_scenario, build_scenarios

GRID = prof.DayGrid(5)
DATE = prof.representative_date("summer", "weekday")


def _rngs(seeds: range) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in seeds]


def test_household_loads_of_a_batch_equal_each_day_alone() -> None:
    batch = prof.household_loads_kw(_rngs(range(5)), GRID, DATE, 7)
    assert batch.shape == (5, 7, GRID.n_steps)
    for k, rng in enumerate(_rngs(range(5))):
        np.testing.assert_array_equal(batch[k], prof.household_load_kw(rng, GRID, DATE, 7))
    assert not np.array_equal(batch[0], batch[1])  # the days differ


def test_pv_of_a_batch_equals_each_day_alone() -> None:
    kwp = np.array([3.0, 4.0, 5.0])
    batch = prof.pv_available_days_kw(_rngs(range(4)), GRID, DATE, kwp)
    assert batch.shape == (4, 3, GRID.n_steps)
    for k, rng in enumerate(_rngs(range(4))):
        np.testing.assert_array_equal(batch[k], prof.pv_available_kw(rng, GRID, DATE, kwp))
    assert batch.max() > 1.0 and not np.array_equal(batch[0], batch[1])


def _markov_loop(u: np.ndarray, f: float, p_to_sun: float, p_to_cloud: float) -> np.ndarray:
    """The chain as its definition reads: one minute after the other."""
    out = np.empty(u.size, dtype=bool)
    state = bool(u[0] < f)
    for t in range(u.size):
        if t:
            state = bool(u[t] >= p_to_sun) if state else bool(u[t] < p_to_cloud)
        out[t] = state
    return out


@pytest.mark.parametrize("sky", ["clear", "mixed", "overcast"])
def test_the_cloud_chain_without_a_loop_equals_the_minute_by_minute_chain(sky: str) -> None:
    f = prof.SKY_CLASS_PARAMETERS[sky].cloud_fraction
    p_to_sun, p_to_cloud = min(1.0, 1.0 / max(f * 30, 1.0)), min(1.0, 1.0 / max((1 - f) * 30, 1.0))
    for seed in range(20):
        u = np.random.default_rng(seed).random(1443)
        states = _markov_states(u, f, p_to_sun, p_to_cloud)
        np.testing.assert_array_equal(states, _markov_loop(u, f, p_to_sun, p_to_cloud))
    # Cases where one rule always applies: sets only, flips only, keeps only.
    u = np.random.default_rng(0).random(50)
    for args in ((0.5, 0.0, 1.0), (0.5, 1.0, 1.0), (0.5, 0.0, 0.0)):
        np.testing.assert_array_equal(_markov_states(u, *args), _markov_loop(u, *args))


def test_scenarios_built_together_equal_each_built_alone() -> None:
    cfg = load_scenario_config()
    seeds = [0, 5, 11, 2**31 - 2, 3, 4, 6, 7, 8, 9]  # more than one batch of days
    together = build_scenarios(cfg, seeds, n_loads=55)
    for seed, day in zip(seeds, together, strict=True):
        alone = build_scenario(cfg, seed, n_loads=55)
        assert day.seed == seed and day.sessions == alone.sessions
        for name in ("load_p_kw", "load_q_kvar", "pv_available_kw"):
            np.testing.assert_array_equal(
                getattr(day.profiles, name), getattr(alone.profiles, name)
            )


@pytest.mark.parametrize(("from_min", "to_min"), [(1, 5), (1, 15), (1, 3), (5, 15), (1, 1)])
def test_coarser_steps_are_numpys_mean_bit_for_bit(from_min: int, to_min: int) -> None:
    values = np.random.default_rng(0).lognormal(size=(3, 7, 1440 // from_min))
    expected = values.reshape(3, 7, -1, to_min // from_min).mean(axis=-1)
    np.testing.assert_array_equal(prof.resample_mean(values, from_min, to_min), expected)
    strided = values[:, ::2]  # not C-contiguous: numpy's own mean of it
    expected = strided.reshape(3, 4, -1, to_min // from_min).mean(axis=-1)
    np.testing.assert_array_equal(prof.resample_mean(strided, from_min, to_min), expected)
