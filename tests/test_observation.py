"""Every observation entry, decoded by the env's documented table, against independent truth.

The truth comes from outside the env's observation code: the scenario's profiles and EV
sessions, the energy the env reports it delivered (``info["setpoints_kw"]``), a second OpenDSS
engine solving the previous step's inputs, and the unbalance formula written out by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from powertrip_env.env import PowerTripEnv
from powertrip_env.grid.engine import OpenDSSEngine

DAY_SEED = 3
N_STEPS = 170  # past midday: fleet sessions plugged in, PV available, EVs charged


def _phase_of(node: str) -> int:
    """Phase index 0..2 of a single-phase node name ``bus.k``."""
    return int(node.rsplit(".", 1)[1]) - 1


def _pui(v: np.ndarray) -> float:
    """PUI in %, by its definition: 100 max |V - mean| / mean over the three magnitudes."""
    mean = v.mean()
    return float(100.0 * np.max(np.abs(v - mean)) / mean)


@pytest.fixture(scope="module")
def episode() -> dict[str, object]:
    """One episode of random actions: observations, actions, infos and the env's day."""
    env = PowerTripEnv(day_seed=DAY_SEED)
    try:
        obs, _ = env.reset(seed=0)
        assert env.sim is not None
        scenario = env.sim.scenario
        rng = np.random.default_rng(0)
        observations, actions, infos = [obs], [], []
        for _ in range(N_STEPS):
            action = rng.random(env.n_cp + env.n_pv).astype(np.float32)
            obs, _, terminated, truncated, info = env.step(action)
            assert not (terminated or truncated)
            observations.append(obs)
            actions.append(action)
            infos.append(info)
        return {
            "obs": np.array(observations),
            "actions": np.array(actions),
            "setpoints": np.array([info["setpoints_kw"] for info in infos]),
            "scenario": scenario,
            "feeder": env.feeder,
            "devices": env.config.devices,
            "v_base": float(env.engine.base_v[0]),
            "load_nodes": list(env.engine.load_nodes),
        }
    finally:
        env.close()


def test_time_and_pv_entries(episode: dict[str, object]) -> None:
    obs = episode["obs"]
    scenario = episode["scenario"]
    assert isinstance(obs, np.ndarray)
    dt_h = scenario.profiles.dt_h  # type: ignore[attr-defined]
    n_cp, n_pv = 3, 12
    pv = slice(2 + 5 * n_cp, 2 + 5 * n_cp + n_pv)
    for t in range(N_STEPS + 1):
        angle = 2 * math.pi * t * dt_h / 24
        np.testing.assert_allclose(obs[t, :2], [math.sin(angle), math.cos(angle)], atol=1e-6)
        available = scenario.profiles.pv_available_kw[t]  # type: ignore[attr-defined]
        np.testing.assert_allclose(obs[t, pv], available, rtol=1e-6, atol=1e-5)
    assert obs[:, pv].max() > 0.5  # the episode reaches daylight


def test_ev_entries_follow_the_sessions_and_the_delivered_energy(
    episode: dict[str, object],
) -> None:
    obs, setpoints = episode["obs"], episode["setpoints"]
    scenario, devices = episode["scenario"], episode["devices"]
    assert isinstance(obs, np.ndarray) and isinstance(setpoints, np.ndarray)
    dt_h = scenario.profiles.dt_h  # type: ignore[attr-defined]
    p_max = np.array([cp.p_max_kw for cp in devices.cps])  # type: ignore[attr-defined]
    plugged_steps = 0
    for cp in range(3):
        entries = obs[:, 2 + 5 * cp : 2 + 5 * cp + 5]
        sessions = [s for s in scenario.sessions if s.cp == cp]  # type: ignore[attr-defined]
        for t in range(N_STEPS + 1):
            plugged, owed, to_departure, request, minimum = entries[t]
            session = next((s for s in sessions if s.start <= t < s.stop), None)
            if session is None:
                assert plugged == 0 and owed == 0 and request == 0 and minimum == 0, (cp, t)
                continue
            plugged_steps += 1
            delivered = setpoints[session.start : t, cp].sum() * dt_h
            expected_owed = max(session.energy_kwh - delivered, 0.0)
            assert plugged == 1
            assert owed == pytest.approx(expected_owed, rel=1e-5, abs=1e-5), (cp, t)
            assert to_departure == pytest.approx((session.stop - t) * dt_h, abs=1e-5)
            assert request == pytest.approx(min(p_max[cp], expected_owed / dt_h), abs=1e-4)
            # Whatever floor the scenario uses, it must keep the EV's energy deliverable.
            assert 0 <= minimum <= request + 1e-5
            assert minimum * dt_h + p_max[cp] * (to_departure - dt_h) >= owed - 1e-4
    assert plugged_steps > 10


def test_actions_decode_into_the_applied_setpoints(episode: dict[str, object]) -> None:
    obs, actions, setpoints = episode["obs"], episode["actions"], episode["setpoints"]
    assert isinstance(obs, np.ndarray) and isinstance(actions, np.ndarray)
    assert isinstance(setpoints, np.ndarray)
    for t in range(N_STEPS):
        request = obs[t, 2 + 3 : 17 : 5]
        minimum = obs[t, 2 + 4 : 17 : 5]
        expected_cp = minimum + actions[t, :3] * (request - minimum)
        np.testing.assert_allclose(setpoints[t, :3], expected_cp, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(
            setpoints[t, 3:], actions[t, 3:] * obs[t, 17:29], rtol=1e-5, atol=1e-4
        )


def test_voltage_net_load_and_unbalance_entries(episode: dict[str, object]) -> None:
    """Voltages and unbalance after step t-1 from a second engine; net load from the profiles."""
    obs, setpoints = episode["obs"], episode["setpoints"]
    scenario, devices = episode["scenario"], episode["devices"]
    assert isinstance(obs, np.ndarray) and isinstance(setpoints, np.ndarray)
    profiles = scenario.profiles  # type: ignore[attr-defined]
    v_base = episode["v_base"]
    assert isinstance(v_base, float)
    voltage, net, unbalance = slice(29, 38), slice(38, 41), slice(41, 44)
    # Before the first solve the voltages read 1 pu and the unbalance 0 (documented).
    np.testing.assert_array_equal(obs[0, voltage], 1.0)
    np.testing.assert_array_equal(obs[0, unbalance], 0.0)

    load_phase = np.array([_phase_of(n) for n in episode["load_nodes"]])  # type: ignore[attr-defined]
    cp_phase = np.array([cp.phase - 1 for cp in devices.cps])  # type: ignore[attr-defined]
    pv_phase = np.array([pv.phase - 1 for pv in devices.pvs])  # type: ignore[attr-defined]
    with OpenDSSEngine(episode["feeder"], devices) as engine:  # type: ignore[arg-type]
        for t in range(1, N_STEPS + 1, 7):
            engine.reset_solution()
            engine.set_powers(
                profiles.load_p_kw[t - 1],
                profiles.load_q_kvar[t - 1],
                setpoints[t - 1, :3],
                setpoints[t - 1, 3:],
            )
            converged, error = engine.run_pf()
            assert converged, error
            v = np.abs(engine.cp_bus_phasors()).reshape(3, 3) / v_base
            # OpenDSS solves to 1e-4 of the voltage; the env's engine warm-starts differently.
            np.testing.assert_allclose(obs[t, voltage], v.ravel(), atol=1e-4)
            np.testing.assert_allclose(obs[t, unbalance], [_pui(v[k]) for k in range(3)], atol=5e-3)
    for t in range(N_STEPS + 1):
        request = obs[t, 2 + 3 : 17 : 5]
        expected = np.zeros(3)
        np.add.at(expected, load_phase, profiles.load_p_kw[t])
        np.add.at(expected, cp_phase, request)
        np.add.at(expected, pv_phase, -profiles.pv_available_kw[t])
        np.testing.assert_allclose(obs[t, net], expected, rtol=1e-5, atol=1e-3)
