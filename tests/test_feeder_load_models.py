"""Both envs on a real ENWL feeder with a three-phase load, under either load model.

``tests/data/enwl_sample/network_16/Feeder_1`` is ENWL network 16 feeder 1 (CC BY 4.0, see
NOTICE): 39 houses and ``New Load.LOAD15 Phases=3 Bus1=164 kV=0.412 kW=3``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from baselines.nsga2 import NSGA2Config, NSGA2Controller
from powertrip_env.config import (
    FeederConfig,
    ScenarioConfig,
    load_scenario_config,
    scenario_config_from_dict,
)
from powertrip_env.env import PowerTripEnv
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import embedded_feeder_dir
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator
from powertrip_env.vector_env import BatchedPowerTripEnv

SAMPLE = Path(__file__).parent / "data" / "enwl_sample"


def _config(load_model: str) -> ScenarioConfig:
    data: dict[str, Any] = {
        "feeder": {
            "kind": "enwl",
            "path": str(SAMPLE),
            "network": 16,
            "feeder": 1,
            "load_model": load_model,
        },
        "profiles": {"resolution_min": 15},
        "devices": {
            # House buses of the feeder (Loads.txt), on the houses' phases.
            "cps": [
                {"name": "cp1", "bus": "7", "phase": 1, "p_max_kw": 7.0},
                {"name": "cp2", "bus": "13", "phase": 2, "p_max_kw": 7.0},
            ],
            "pvs": [
                {"name": "pv1", "bus": "8", "phase": 2, "p_max_kw": 4.0},
                {"name": "pv2", "bus": "10", "phase": 3, "p_max_kw": 4.0},
            ],
        },
    }
    return scenario_config_from_dict(data)


def test_a_three_phase_load_splits_over_its_phases() -> None:
    with OpenDSSEngine(_config("constant_pq").feeder.build()) as engine:
        row = engine.load_names.index("load15")
        assert engine.load_phases[row] == (1, 2, 3)
        np.testing.assert_allclose(engine.load_phase_shares[row], [1 / 3, 1 / 3, 1 / 3])
        single = [k for k, p in enumerate(engine.load_phases) if len(p) == 1]
        assert engine.load_phase_shares[single].sum(axis=1).tolist() == [1.0] * len(single)


@pytest.mark.slow
@pytest.mark.parametrize("load_model", ["constant_pq", "opendss"])
def test_both_envs_run_full_episodes(load_model: str) -> None:
    cfg = _config(load_model)
    env = PowerTripEnv(cfg)
    try:
        obs, _ = env.reset(seed=3)
        steps, done = 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            assert not terminated, info.get("termination_reason")
            assert env.observation_space.contains(obs)
            steps, done = steps + 1, truncated
        assert env.sim is not None and steps == env.sim.n_steps == 96
    finally:
        env.close()

    venv = BatchedPowerTripEnv(3, cfg)
    try:
        venv.reset(seed=3)
        venv.action_space.seed(3)
        ended = np.zeros(venv.num_envs, dtype=bool)
        for _ in range(venv.n_steps):
            _, rewards, failed, ended, batch_info = venv.step(venv.action_space.sample())
            assert not failed.any(), batch_info.get("termination_reason")
            assert np.isfinite(rewards).all()
        assert ended.all()
    finally:
        venv.close()


def test_batched_env_runs_a_day_whose_loads_leave_their_band(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENWL's own network 1 feeder 1 with its loads as written: PV lifts houses above
    1.05 x 230 V at midday. No copy ends for that; the reduced model solves those steps."""
    cfg = load_scenario_config()
    cfg = replace(
        cfg,
        feeder=FeederConfig(kind="embedded", name="enwl_n1f1", load_model="opendss"),
        profiles=replace(cfg.profiles, resolution_min=15),
    )
    venv = BatchedPowerTripEnv(2, cfg)
    left_band = []
    solve = venv.net.solve

    def spy(*args: Any, **kwargs: Any) -> Any:
        solution = solve(*args, **kwargs)
        left_band.append(solution.out_of_band.copy())
        return solution

    monkeypatch.setattr(venv.net, "solve", spy)
    try:
        venv.reset(seed=0)
        for _ in range(venv.n_steps):
            full = np.ones((2, venv.n_cp + venv.n_pv), dtype=np.float32)
            _, rewards, failed, ended, _ = venv.step(full)  # no curtailment: PV at its most
            assert not failed.any() and np.isfinite(rewards).all()
        assert ended.all()
        assert np.concatenate(left_band).any()
    finally:
        venv.close()


def test_both_evaluators_score_candidates_alike_when_loads_leave_their_band() -> None:
    """``kind: master`` on ENWL's loads as written: the optimiser's reduced evaluator gives
    the OpenDSS evaluator's f1 and f2 (OpenDSS solved tightly) for candidates whose houses
    leave their band; none is penalised for it."""
    master = embedded_feeder_dir("enwl_n1f1") / "Master.dss"
    cfg = replace(
        load_scenario_config(),
        feeder=FeederConfig(kind="master", path=str(master), load_model="opendss"),
    )
    scenario = build_scenario(cfg, 0)
    engine = OpenDSSEngine(scenario.feeder, scenario.devices, 100, 1e-12)
    with FeederSimulator(scenario, engine) as sim:
        sim.reset()
        while sim.t < 150:  # 12:30, PV high
            sim.step(sim.bounds()[1], with_metrics=False)
        state = sim.observe()
        rng = np.random.default_rng(0)
        x = state.lower_kw + rng.random((40, state.lower_kw.size)) * (
            state.upper_kw - state.lower_kw
        )
        config = NSGA2Config(pop_size=4, n_gen=1)
        reduced = NSGA2Controller(sim, config, refs=(1.0, 1.0)).objectives
        opendss = NSGA2Controller(sim, replace(config, evaluator="opendss"), refs=(1.0, 1.0))
        f_reduced, f_opendss = reduced(state, x), opendss.objectives(state, x)
        network = reduced._reduced
        assert network is not None
        n_cp = sim.n_cp
        solution = network.solve(state.load_p_kw, state.load_q_kvar, x[:, :n_cp], x[:, n_cp:])
    assert solution.out_of_band.sum() >= 10  # the band is left, and solved
    assert np.isfinite(f_reduced).all()
    np.testing.assert_allclose(f_reduced, f_opendss, rtol=1e-6, atol=1e-9)
