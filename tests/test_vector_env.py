"""The batched vector env: exact against OpenDSS, in lockstep with PowerTripEnv, deterministic."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from mo_gymnasium.wrappers.vector import MOSyncVectorEnv

from powertrip_env.config import ObjectiveConfig, load_scenario_config
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import ConfigError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.reduced import ReducedSolution
from powertrip_env.metrics import UnbalanceIndex
from powertrip_env.scenario import build_scenario
from powertrip_env.vector_env import BatchedPowerTripEnv

N_ACT = 15
#: Observation entries that come from the power flow (CP-bus voltages, unbalance); every other
#: entry is computed from the same numbers in both envs and must be identical.
V_CP = slice(29, 38)
UNBALANCE = slice(41, 44)


@pytest.fixture(scope="module")
def venv() -> Iterator[BatchedPowerTripEnv]:
    e = BatchedPowerTripEnv(4)
    yield e
    e.close()


def _actions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random((n, N_ACT)).astype(np.float32)


def test_cp_bus_voltages_match_a_tightly_converged_opendss() -> None:
    """The reduced model is exact: within 1e-6 pu of OpenDSS solved to 1e-10 over a day."""
    venv = BatchedPowerTripEnv(3)
    _, info = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    records = []
    for t in range(venv.n_steps):
        _, _, terminated, _, step_info = venv.step(_actions(rng, 3))
        assert not terminated.any()
        if t % 6 == 0:
            records.append((t, step_info["setpoints_kw"].copy(), step_info["v_cp_pu"].copy()))
    cfg = venv.config
    engine = OpenDSSEngine(venv.feeder, cfg.devices, max_iterations=100, tolerance=1e-10)
    try:
        profiles = [
            build_scenario(cfg, int(s), n_loads=engine.n_loads, feeder=venv.feeder).profiles
            for s in info["day_seed"]
        ]
        worst, active = 0.0, 0
        for t, x, v_pu in records:
            for k, p in enumerate(profiles):
                engine.set_powers(p.load_p_kw[t], p.load_q_kvar[t], x[k, :3], x[k, 3:])
                assert engine.run_pf()[0]
                v_ref = np.abs(engine.cp_bus_phasors()) / venv.v_base
                worst = max(worst, float(np.abs(v_pu[k] - v_ref).max()))
                active += bool(x[k, :3].any() and x[k, 3:].any())
    finally:
        engine.close()
    assert worst < 1e-6, worst
    assert active >= 3, "the compared steps must include some with both EVs and PV at work"


@pytest.mark.parametrize(
    ("energy_guarantee", "index"), [(True, "pui"), (False, "pui"), (True, "vuf")]
)
def test_lockstep_with_power_trip_envs_through_day_end_and_autoreset(
    energy_guarantee: bool, index: UnbalanceIndex
) -> None:
    """Same seeds, same actions: N PowerTripEnvs (OpenDSS) and the batched env agree.

    Days, EV bounds, setpoints, the day's references (one computation, through the reduced
    model, serves both) and every non-grid observation entry are identical; voltages differ
    by OpenDSS's 1e-4 solve tolerance (about 3e-6 pu here), and so do rewards, relatively by
    up to about 1e-3 (the per-step f1 carries that error). Episode ends and the NEXT_STEP
    autoreset match MOSyncVectorEnv's.
    """
    n = 2
    cfg = replace(load_scenario_config(), objective=ObjectiveConfig(unbalance_index=index))
    batched = BatchedPowerTripEnv(n, config=cfg, energy_guarantee=energy_guarantee)
    single = MOSyncVectorEnv(  # MO-Gymnasium annotates env_fns as an Iterator
        [lambda: PowerTripEnv(config=cfg, energy_guarantee=energy_guarantee) for _ in range(n)]  # type: ignore[arg-type]
    )
    try:
        ob, ib = batched.reset(seed=5)
        os_, is_ = single.reset(seed=5)  # copy k of both is seeded with 5 + k
        np.testing.assert_array_equal(ib["day_seed"], is_["day_seed"])
        np.testing.assert_array_equal(ib["f2_ref"], is_["f2_ref"])
        # The same no-control pass, each day solved on its own: equal to the last bit.
        np.testing.assert_array_equal(ib["f1_ref"], is_["f1_ref"])
        np.testing.assert_array_equal(ob, os_)
        rng = np.random.default_rng(1)
        other = np.ones(ob.shape[1], dtype=bool)
        other[V_CP] = other[UNBALANCE] = False
        ends = 0
        for _ in range(batched.n_steps + 3):
            a = _actions(rng, n)
            ob, rb, tb, trb, ib = batched.step(a)
            os_, rs, ts, trs, is_ = single.step(a)
            np.testing.assert_array_equal(tb, ts)
            np.testing.assert_array_equal(trb, trs)
            np.testing.assert_array_equal(ob[:, other], os_[:, other])
            np.testing.assert_allclose(ob[:, V_CP], os_[:, V_CP], atol=1e-4)
            np.testing.assert_allclose(ob[:, UNBALANCE], os_[:, UNBALANCE], atol=2e-3)
            np.testing.assert_allclose(rb, rs, rtol=2e-3, atol=1e-5)
            if "setpoints_kw" in is_:
                np.testing.assert_array_equal(ib["setpoints_kw"], is_["setpoints_kw"])
            if "day_seed" in is_:  # the autoreset step: new days, reward 0
                np.testing.assert_array_equal(ib["day_seed"], is_["day_seed"])
                np.testing.assert_array_equal(rb, 0.0)
            ends += int(trb.sum())
        assert ends == n
    finally:
        batched.close()
        single.close()


def test_truncates_at_day_end_then_autoresets_next_step() -> None:
    venv = BatchedPowerTripEnv(3, day_seed=11)
    first_obs, _ = venv.reset(seed=0)
    a = np.full((3, N_ACT), 0.5, dtype=np.float32)
    for t in range(venv.n_steps):
        obs, _, terminated, truncated, info = venv.step(a)
        assert not terminated.any()
        assert truncated.all() == (t == venv.n_steps - 1)
    assert "day_seed" not in info
    obs, rewards, terminated, truncated, info = venv.step(a)  # the autoreset step
    np.testing.assert_array_equal(obs, first_obs)  # the same fixed day from its start
    np.testing.assert_array_equal(rewards, np.zeros((3, 2), dtype=np.float32))
    assert not terminated.any() and not truncated.any()
    np.testing.assert_array_equal(info["day_seed"], [11, 11, 11])
    assert info["_day_seed"].all() and "f1" not in info
    _, rewards, _, truncated, info = venv.step(a)  # stepping the new day
    assert not truncated.any() and info["_f1"].all() and (rewards <= 0).all()


def test_one_seed_gives_identical_trajectories() -> None:
    a, b = BatchedPowerTripEnv(3), BatchedPowerTripEnv(3)
    rng = np.random.default_rng(2)
    actions = [_actions(rng, 3) for _ in range(30)]
    try:

        def rollout(env: BatchedPowerTripEnv) -> list[np.ndarray]:
            obs, info = env.reset(seed=3)
            out = [obs, info["day_seed"]]
            for act in actions:
                obs, r, term, trunc, info = env.step(act)
                out += [obs, r, term, trunc, info["f1"], info["v_cp_pu"]]
            return out

        first = rollout(a)
        for other in (rollout(b), rollout(a)):  # another env, and the same env reset again
            for x, y in zip(first, other, strict=True):
                np.testing.assert_array_equal(x, y)
        _, info = a.reset(seed=4)
        assert not np.array_equal(info["day_seed"], first[1])
        assert len(set(first[1].tolist())) == 3, "every copy draws its own day"
    finally:
        a.close()
        b.close()


def test_spaces_contain_what_is_returned(venv: BatchedPowerTripEnv) -> None:
    obs, _ = venv.reset(seed=0)
    venv.action_space.seed(0)
    assert venv.observation_space.contains(obs)
    assert venv.metadata["autoreset_mode"].value == "NextStep" and venv.reward_dim == 2
    extremes = [np.zeros((4, N_ACT)), np.ones((4, N_ACT)), np.full((4, N_ACT), 7.0)]
    for k in range(40):
        act = extremes[k] if k < len(extremes) else venv.action_space.sample()
        obs, rewards, terminated, truncated, info = venv.step(act)
        assert venv.observation_space.contains(obs)
        assert rewards.shape == (4, 2) and rewards.dtype == np.float32
        assert all(venv.reward_space.contains(r) for r in rewards)
        assert terminated.dtype == truncated.dtype == np.bool_ and terminated.shape == (4,)
        assert info["setpoints_kw"].shape == (4, N_ACT) and info["v_cp_pu"].shape == (4, 3, 3)


@pytest.mark.parametrize(
    "actions",
    [
        np.full((4, N_ACT), np.nan),
        np.where(np.eye(4, N_ACT) > 0, np.inf, 0.5),
        np.zeros((3, N_ACT)),
        np.zeros((4, N_ACT - 1)),
        np.zeros(N_ACT),
    ],
)
def test_bad_actions_raise_value_error(venv: BatchedPowerTripEnv, actions: np.ndarray) -> None:
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="actions must"):
        venv.step(actions)
    _, rewards, *_ = venv.step(np.zeros((4, N_ACT), dtype=np.float32))  # still usable
    assert np.isfinite(rewards).all()


def test_power_flow_failure_terminates_only_that_copy(
    venv: BatchedPowerTripEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv.reset(seed=0)
    solve = venv.net.solve

    def copy_1_fails(*args: Any, **kwargs: Any) -> ReducedSolution:
        sol = solve(*args, **kwargs)
        converged, volts = sol.converged.copy(), sol.volts.copy()
        converged[1], volts[1] = False, np.nan
        return ReducedSolution(volts, converged, sol.out_of_band, sol.currents, sol.iterations)

    monkeypatch.setattr(venv.net, "solve", copy_1_fails)
    a = np.full((4, N_ACT), 0.5, dtype=np.float32)
    obs, rewards, terminated, truncated, info = venv.step(a)
    monkeypatch.undo()
    np.testing.assert_array_equal(terminated, [False, True, False, False])
    assert not truncated.any()
    np.testing.assert_array_equal(rewards[1], [-10.0, -10.0])
    assert np.isfinite(rewards).all() and all(venv.reward_space.contains(r) for r in rewards)
    np.testing.assert_array_equal(info["_termination_reason"], [False, True, False, False])
    assert "did not converge" in info["termination_reason"][1]
    assert venv.observation_space.contains(obs)
    _, rewards, terminated, _, info = venv.step(a)  # copy 1 autoresets, the others go on
    np.testing.assert_array_equal(info["_day_seed"], [False, True, False, False])
    np.testing.assert_array_equal(info["_f1"], [True, False, True, True])
    np.testing.assert_array_equal(rewards[1], [0.0, 0.0])
    assert not terminated.any()


def test_reset_options_choose_days_and_copies(venv: BatchedPowerTripEnv) -> None:
    _, info = venv.reset(options={"day_seed": [1, 2, 3, 4]})
    np.testing.assert_array_equal(info["day_seed"], [1, 2, 3, 4])
    stepped, *_ = venv.step(np.ones((4, N_ACT), dtype=np.float32))
    mask = np.array([False, False, True, False])
    obs, info = venv.reset(options={"day_seed": 9, "reset_mask": mask})
    np.testing.assert_array_equal(info["_day_seed"], mask)
    assert info["day_seed"][2] == 9
    np.testing.assert_array_equal(obs[~mask], stepped[~mask])  # the others are untouched
    start, _ = venv.reset(options={"day_seed": 9})
    np.testing.assert_array_equal(obs[2], start[2])
    with pytest.raises(ValueError, match="reset option"):
        venv.reset(options={"day": 1})
    with pytest.raises(ValueError, match="day_seed"):
        venv.reset(options={"day_seed": [1, 2]})


def test_power_unbalance_index_is_refused() -> None:
    cfg = replace(load_scenario_config(), objective=ObjectiveConfig(unbalance_index="power"))
    with pytest.raises(ConfigError, match="power"):
        BatchedPowerTripEnv(2, config=cfg)


def test_pickle_round_trip(venv: BatchedPowerTripEnv) -> None:
    clone = pickle.loads(pickle.dumps(venv))
    try:
        o1, _ = venv.reset(seed=3)
        o2, _ = clone.reset(seed=3)
        np.testing.assert_array_equal(o1, o2)
    finally:
        clone.close()
