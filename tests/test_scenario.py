"""Scenario config and the day simulator under no control (issue: day scenarios)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from baselines.no_control import NoControl
from powertrip_env.config import (
    default_scenario_path,
    load_scenario_config,
    scenario_config_from_dict,
)
from powertrip_env.errors import ConfigError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator


@pytest.fixture(scope="module")
def default_day():
    scenario = build_scenario(load_scenario_config(), 0, n_loads=55)
    with FeederSimulator(scenario) as sim:
        yield scenario, sim.run(NoControl())


def _default_dict() -> dict:
    return yaml.safe_load(default_scenario_path().read_text())


def test_default_scenario_matches_the_brief() -> None:
    cfg = load_scenario_config()
    assert cfg.devices.n_cp == 3 and cfg.devices.n_pv == 12
    assert all(d.p_max_kw == 7.0 for d in cfg.devices.cps)
    assert all(3.0 <= d.p_max_kw <= 5.0 for d in cfg.devices.pvs)
    assert len({d.phase for d in cfg.devices.cps}) > 1  # unequal phases
    assert (cfg.profiles.season, cfg.profiles.day_type) == ("summer", "weekday")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["devices"]["pvs"][0].update(p_max_kw=-3.0), "devices.pvs[0]"),
        (lambda d: d["profiles"].update(resolution_min=7), "profiles.resolution_min"),
        (lambda d: d["profiles"].update(season="monsoon"), "profiles.season"),
        (lambda d: d["ev"].update(sessons="mixed"), "sessons"),
        (lambda d: d["devices"]["cps"][0].update(phase=4), "devices.cps[0]"),
    ],
)
def test_bad_config_names_the_field(edit, field) -> None:
    data = _default_dict()
    edit(data)
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        scenario_config_from_dict(data)


def test_unknown_bus_is_a_config_error() -> None:
    data = _default_dict()
    data["devices"]["cps"][0]["bus"] = "9999"
    with pytest.raises(ConfigError, match=r"devices\.cps\[0\] \('cp1'\): bus '9999'"):
        scenario_config_from_dict(data)  # refused where the scenario is read
    cfg = load_scenario_config()
    bad = replace(cfg.devices, cps=(replace(cfg.devices.cps[0], bus="9999"),))
    with pytest.raises(ConfigError, match="9999"):
        OpenDSSEngine(cfg.feeder.build(), bad)  # and by the engine


def test_departure_before_arrival_is_a_config_error() -> None:
    from powertrip_env.ev import align_sessions

    with pytest.raises(ConfigError, match="departure"):
        align_sessions((((18.0, 17.0, 5.0),),), np.array([7.0]), 5 / 60, 288)


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_scenario_config(tmp_path / "none.yaml")


def test_one_seed_one_day_and_seeds_differ() -> None:
    cfg = load_scenario_config()
    a, b, c = (build_scenario(cfg, s, n_loads=55) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.profiles.load_p_kw, b.profiles.load_p_kw)
    np.testing.assert_array_equal(a.profiles.pv_available_kw, b.profiles.pv_available_kw)
    assert a.sessions == b.sessions
    assert not np.array_equal(a.profiles.load_p_kw, c.profiles.load_p_kw)
    assert a.sessions != c.sessions


@pytest.mark.slow
def test_no_control_day_converges_and_serves_every_ev(default_day) -> None:
    _, result = default_day
    steps = result.steps
    assert len(steps) == 288 and steps["converged"].all()
    # Every EV gets what it asked for (sessions are capped at what the charger can deliver).
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-9)
    assert result.summary()["ev_delivered_kwh"] == pytest.approx(result.ev_requested_kwh.sum())
    # No curtailment under no control.
    assert steps["pv_curtailed_kw"].max() == 0.0
    assert result.summary()["pv_usage_efficiency"] == pytest.approx(1.0)


@pytest.mark.slow
def test_unbalance_rises_while_evs_charge(default_day) -> None:
    scenario, result = default_day
    steps = result.steps
    first_arrival = min(s.start for s in scenario.sessions)
    for spec in scenario.devices.cps:
        before = steps[f"pui_{spec.name}"].iloc[:first_arrival].mean()
        charging = steps[f"pui_{spec.name}"][steps[f"cp_kw_{spec.name}"] > 0].mean()
        assert charging > before, spec.name


def test_energy_guarantee_bounds(default_day) -> None:
    scenario, _ = default_day
    with FeederSimulator(scenario) as sim:
        for t in range(sim.n_steps):
            lower, upper = sim.bounds(t)
            assert np.all(lower <= upper + 1e-12) and np.all(lower >= 0)

        # Charging at the guaranteed minimum only still delivers every session in full.
        class Minimum:
            def act(self, state):
                return state.lower_kw

        result = sim.run(Minimum())
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)


def test_seed_formulation_owes_nothing(default_day) -> None:
    scenario, _ = default_day
    cfg = scenario.config
    seed_cfg = replace(cfg, ev=replace(cfg.ev, energy_guarantee=False))
    seed_scenario = replace(scenario, config=seed_cfg)
    with FeederSimulator(seed_scenario) as sim:
        assert all(np.all(sim.bounds(t)[0] == 0) for t in range(sim.n_steps))


def test_nan_setpoints_raise(default_day) -> None:
    scenario, _ = default_day
    with FeederSimulator(scenario) as sim:
        with pytest.raises(ValueError, match="finite"):
            sim.step(np.full(15, np.nan))
        with pytest.raises(ValueError, match="shape"):
            sim.step(np.zeros(3))


def test_a_day_result_survives_the_next_run() -> None:
    """The simulator reuses its day log; results handed out earlier must not change."""

    with FeederSimulator(build_scenario(load_scenario_config(), 0)) as sim:
        first = sim.run(NoControl(), steps=40)
        kept = first.steps.copy(deep=True)
        worst = None if first.worst_v_pu is None else first.worst_v_pu.copy()
        sim.run(UpperHalf(), steps=60)
        pd.testing.assert_frame_equal(first.steps, kept)
        np.testing.assert_array_equal(first.worst_v_pu, worst)
        third = sim.run(NoControl(), steps=40)
        pd.testing.assert_frame_equal(third.steps, kept)


class UpperHalf:
    """Half of every upper bound: a day unlike no control's."""

    def act(self, state):
        return 0.5 * state.upper_kw
