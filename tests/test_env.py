"""The Gymnasium environment: API checks, vector reward, determinism, bad actions."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator

import gymnasium as gym
import mo_gymnasium as mo
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import powertrip_env  # noqa: F401 - registers the ids
from powertrip_env.config import default_scenario_path, read_yaml, scenario_config_from_dict
from powertrip_env.env import PowerTripEnv


@pytest.fixture(scope="module")
def env() -> Iterator[PowerTripEnv]:
    e = PowerTripEnv(day_seed=7)
    yield e
    e.close()


def test_gymnasium_check_env(env: PowerTripEnv) -> None:
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # The only complaint allowed is the one about the (intended) vector reward.
    others = [
        w for w in caught if "reward returned by `step()` must be a float" not in str(w.message)
    ]
    assert not others, [str(w.message) for w in others]


def test_make_without_checker_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make in (gym.make, mo.make):
            e = make("powertrip/PowerTrip-v0", day_seed=3)
            e.reset(seed=0)
            _, r, *_ = e.step(e.action_space.sample())
            assert isinstance(r, np.ndarray)
            assert r.shape == (2,) and r.dtype == np.float32
            e.close()


def test_sb3_check_env_on_scalarised_env() -> None:
    from stable_baselines3.common.env_checker import check_env

    e = mo.wrappers.LinearReward(
        mo.make("powertrip/PowerTrip-v0", day_seed=3), weight=np.array([0.5, 0.5])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SB3's advice to use a [-1, 1] action box
        check_env(e)
    e.reset(seed=0)
    _, r, _, _, info = e.step(e.action_space.sample())
    assert np.isscalar(r) or np.ndim(r) == 0
    assert r == pytest.approx(float(np.dot([0.5, 0.5], info["vector_reward"])))
    e.close()


@pytest.mark.slow
def test_rollout_stays_in_spaces_and_truncates_at_day_end(env: PowerTripEnv) -> None:
    obs, info = env.reset(seed=1)
    env.action_space.seed(1)
    steps = 0
    while True:
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert env.reward_space.contains(reward)
        assert {"f1", "f2", "pui_cp1", "v_min_pu", "pv_curtailed_kw"} <= set(info)
        if terminated or truncated:
            break
    assert truncated and not terminated and steps == 288


def test_two_envs_one_seed_identical_trajectories() -> None:
    a, b = PowerTripEnv(), PowerTripEnv()
    try:
        oa, ia = a.reset(seed=11)
        ob, ib = b.reset(seed=11)
        np.testing.assert_array_equal(oa, ob)
        assert ia["day_seed"] == ib["day_seed"]
        rng = np.random.default_rng(0)
        for _ in range(40):
            act = rng.random(15).astype(np.float32)
            ra, rb = a.step(act), b.step(act)
            np.testing.assert_array_equal(ra[0], rb[0])
            np.testing.assert_array_equal(ra[1], rb[1])
    finally:
        a.close()
        b.close()


def test_reset_same_seed_same_episode_on_one_env(env: PowerTripEnv) -> None:
    act = np.full(15, 0.5, dtype=np.float32)
    env.reset(seed=5)
    first = [env.step(act)[1] for _ in range(20)]
    env.reset(seed=5)
    second = [env.step(act)[1] for _ in range(20)]
    np.testing.assert_array_equal(first, second)


def test_different_seeds_give_different_days() -> None:
    e = PowerTripEnv()
    try:
        _, i1 = e.reset(seed=1)
        _, i2 = e.reset(seed=2)
        assert i1["day_seed"] != i2["day_seed"]
        _, i3 = e.reset(options={"day_seed": 42})
        assert i3["day_seed"] == 42
    finally:
        e.close()


def test_pickle_round_trip(env: PowerTripEnv) -> None:
    clone = pickle.loads(pickle.dumps(env))
    try:
        o1, _ = env.reset(seed=3)
        o2, _ = clone.reset(seed=3)
        np.testing.assert_array_equal(o1, o2)
        assert clone.engine is not env.engine
    finally:
        clone.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=15, max_size=15)
)
def test_any_finite_action_is_clipped_not_crashing(action: list[float]) -> None:
    e = _shared_env()
    obs, reward, *_ = e.step(np.array(action, dtype=np.float32))
    assert e.observation_space.contains(obs) and e.reward_space.contains(reward)
    if e.sim is not None and e.sim.done:
        e.reset(seed=0)


_ENV: list[PowerTripEnv] = []


def _shared_env() -> PowerTripEnv:
    if not _ENV:
        _ENV.append(PowerTripEnv(day_seed=1))
        _ENV[0].reset(seed=0)
    return _ENV[0]


@pytest.mark.parametrize(
    "action",
    [np.full(15, np.nan), np.full(15, np.inf), np.zeros(14), np.zeros((15, 1))],
)
def test_bad_actions_raise_clear_errors(env: PowerTripEnv, action: np.ndarray) -> None:
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must"):
        env.step(action)
    # The env is still usable.
    env.step(np.zeros(15, dtype=np.float32))


def test_power_flow_failure_ends_episode_cleanly() -> None:
    e = PowerTripEnv(day_seed=2)
    try:
        e.reset(seed=0)
        e.engine.dss.Solution.MaxIterations(1)
        _, reward, terminated, truncated, info = e.step(np.ones(15, dtype=np.float32))
        assert terminated and not truncated
        assert "did not converge" in info["termination_reason"]
        assert e.reward_space.contains(reward)
    finally:
        e.close()


def test_seed_formulation_is_registered() -> None:
    e = gym.make("powertrip/PowerTripSeed-v0", day_seed=1)
    assert isinstance(e.unwrapped, PowerTripEnv)
    assert e.unwrapped.config.ev.energy_guarantee is False
    e.close()


def test_vector_envs() -> None:
    from mo_gymnasium.wrappers.vector import MOSyncVectorEnv
    from stable_baselines3.common.vec_env import DummyVecEnv

    # MO-Gymnasium annotates env_fns as an Iterator; any iterable of callables works.
    venv = MOSyncVectorEnv([lambda: PowerTripEnv(day_seed=1) for _ in range(2)])  # type: ignore[arg-type]
    obs, _ = venv.reset(seed=0)
    obs, rew, *_ = venv.step(venv.action_space.sample())
    assert obs.shape == (2, 44) and rew.shape == (2, 2)
    venv.close()
    scalar = gym.vector.SyncVectorEnv(
        [lambda: mo.wrappers.LinearReward(PowerTripEnv(day_seed=1), weight=np.array([0.5, 0.5]))]
        * 2
    )
    scalar.reset(seed=0)
    _, rew, *_ = scalar.step(scalar.action_space.sample())
    assert rew.shape == (2,)
    scalar.close()
    wrapped = DummyVecEnv(
        [lambda: mo.wrappers.LinearReward(PowerTripEnv(day_seed=1), weight=np.array([0.5, 0.5]))]
    )
    wrapped.reset()
    _, r, _, _ = wrapped.step(np.zeros((1, 15), dtype=np.float32))
    assert r.shape == (1,)
    wrapped.close()


def test_info_metrics_equal_the_day_log() -> None:
    """Each step's info holds that step's row of the simulator's batched day metrics.

    On the IEEE variant, whose voltages pass the UK limit, so the counts are not all zero."""
    data = read_yaml(default_scenario_path(), "scenario")
    ieee = scenario_config_from_dict({**data, "feeder": {"kind": "embedded", "name": "ieee_lv"}})
    env = PowerTripEnv(ieee, day_seed=7)
    try:
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        infos = []
        for _ in range(150):  # past noon: PV, EVs and voltages above the UK limit
            _, reward, _, _, info = env.step(rng.random(15).astype(np.float32))
            infos.append(info)
            np.testing.assert_allclose(-reward, info["f_norm"], rtol=1e-6)
        assert env.sim is not None
        frame = env.sim.log.frame(env.sim.layout, 0, len(infos))
        assert frame["n_outside_uk_statutory"].max() > 0
        for t, info in enumerate(infos):
            for key, value in frame.iloc[t].items():
                assert info[str(key)] == pytest.approx(value, rel=1e-12, abs=1e-12), (t, key)
    finally:
        env.close()


def test_training_mode_steps_like_the_full_env() -> None:
    """info_metrics=False (the lean step: CP buses only, no day log) gives the same episode."""
    full, lean = PowerTripEnv(day_seed=7), PowerTripEnv(day_seed=7, info_metrics=False)
    try:
        obs_full, _ = full.reset(seed=1)
        obs_lean, _ = lean.reset(seed=1)
        rng = np.random.default_rng(2)
        for _ in range(60):
            action = rng.random(15).astype(np.float32)
            obs_full, r_full, *_, info_full = full.step(action)
            obs_lean, r_lean, *_, info_lean = lean.step(action)
            np.testing.assert_array_equal(obs_lean, obs_full)
            np.testing.assert_array_equal(r_lean, r_full)
            assert set(info_lean) == {"f1", "f2", "f_norm", "setpoints_kw"}
            assert (info_lean["f1"], info_lean["f2"]) == (info_full["f1"], info_full["f2"])
            assert lean.sim is not None
            np.testing.assert_array_equal(lean.observation(lean.sim.observe()), obs_lean)
    finally:
        full.close()
        lean.close()
