"""The env's costs under each unbalance index, against a second engine and the formulas by hand.

f1 = sum over CP buses of index(bus)^2 and f2 = sum over PV of (available - setpoint)^2, for
the three indices a scenario can choose (PUI, VUF, power), recomputed outside the env: the
step's inputs solved again by a second OpenDSS engine, each index written out from its
definition.
"""

from __future__ import annotations

import cmath
from dataclasses import replace

import numpy as np
import pytest

from powertrip_env.config import ObjectiveConfig, load_scenario_config
from powertrip_env.env import PowerTripEnv
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.metrics import UnbalanceIndex

DAY_SEED = 3
FIRST, LAST = 130, 160  # around midday: EVs plugged in and PV available
A = cmath.exp(2j * cmath.pi / 3)


def _pui(v: np.ndarray) -> float:
    mag = np.abs(v)
    return float(100 * np.max(np.abs(mag - mag.mean())) / mag.mean())


def _vuf(v: np.ndarray) -> float:
    va, vb, vc = v
    v1 = (va + A * vb + A * A * vc) / 3
    v2 = (va + A * A * vb + A * vc) / 3
    return float(100 * abs(v2) / abs(v1))


def _power(p: np.ndarray) -> float:
    mean = p.mean()
    return float(100 * np.max(np.abs(p - mean)) / abs(mean))


@pytest.mark.parametrize("index", ["pui", "vuf", "power"])
def test_f1_and_f2_follow_their_definitions(index: UnbalanceIndex) -> None:
    config = replace(load_scenario_config(), objective=ObjectiveConfig(unbalance_index=index))
    env = PowerTripEnv(config=config, day_seed=DAY_SEED)
    try:
        env.reset(seed=0)
        assert env.sim is not None
        profiles = env.sim.scenario.profiles
        rng = np.random.default_rng(1)
        checked = 0
        with OpenDSSEngine(env.feeder, config.devices) as engine:
            for t in range(LAST):
                _, reward, terminated, _, info = env.step(rng.random(15).astype(np.float32))
                assert not terminated
                if t < FIRST:
                    continue
                x = np.asarray(info["setpoints_kw"])
                engine.reset_solution()
                engine.set_powers(profiles.load_p_kw[t], profiles.load_q_kvar[t], x[:3], x[3:])
                converged, error = engine.run_pf()
                assert converged, error
                if index == "power":
                    per_bus = [_power(p) for p in engine.cp_bus_phase_powers()]
                else:
                    rule = _pui if index == "pui" else _vuf
                    per_bus = [rule(v) for v in engine.cp_bus_phasors()]
                f1 = sum(u * u for u in per_bus)
                f2 = float(np.sum((profiles.pv_available_kw[t] - x[3:]) ** 2))
                # OpenDSS solves to 1e-4 of the voltage; the two engines warm-start differently.
                assert info["f1"] == pytest.approx(f1, rel=2e-3, abs=1e-4), (t, index)
                assert info["f2"] == pytest.approx(f2, rel=1e-6, abs=1e-6), t
                assert isinstance(reward, np.ndarray)
                np.testing.assert_allclose(-reward, info["f_norm"], rtol=1e-6)
                checked += 1
        assert checked == LAST - FIRST
    finally:
        env.close()
