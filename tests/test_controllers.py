"""Rule-based baselines: flat-rate and PV-following charging, volt-watt PV."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.heuristics import (
    FlatRateCharging,
    PVFollowingCharging,
    VoltWattPV,
    volt_watt_fraction,
)
from baselines.no_control import NoControl
from powertrip_env.config import (
    VoltWattConfig,
    default_scenario_path,
    load_scenario_config,
    read_yaml,
    scenario_config_from_dict,
)
from powertrip_env.errors import ConfigError
from powertrip_env.ev import cp_floor_kw, flat_rate_kw
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator


@pytest.fixture(scope="module")
def sim():
    with FeederSimulator(build_scenario(load_scenario_config(), 0, n_loads=55)) as s:
        yield s


@pytest.fixture(scope="module")
def no_control(sim):
    return sim.run(NoControl()).summary()


def test_flat_rate_and_floors_by_hand() -> None:
    remaining = np.array([6.0, 1.0, 0.0])
    hours = np.array([2.0, 0.05, 0.0])  # the second EV needs more than the charger gives
    upper = np.array([7.0, 7.0, 0.0])
    np.testing.assert_allclose(flat_rate_kw(remaining, hours, upper), [3.0, 7.0, 0.0])
    latest = np.array([0.0, 7.0, 0.0])
    np.testing.assert_allclose(
        cp_floor_kw("flat_rate", latest, upper, remaining, hours), [3.0, 7.0, 0.0]
    )
    np.testing.assert_allclose(cp_floor_kw("latest", latest, upper, remaining, hours), latest)
    with pytest.raises(ConfigError, match="cp_floor"):
        cp_floor_kw("soon", latest, upper, remaining, hours)  # type: ignore[arg-type]


def test_flat_rate_charges_each_session_evenly_and_serves_every_ev(sim) -> None:
    result = sim.run(FlatRateCharging())
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
    steps = result.steps
    np.testing.assert_allclose(steps["pv_kw"], steps["pv_available_kw"])  # never curtails
    for session in sim.ev.sessions:
        cp = sim.scenario.devices.cps[session.cp].name
        power = steps[f"cp_kw_{cp}"].to_numpy()[session.start : session.stop]
        rate = session.energy_kwh / ((session.stop - session.start) * sim.dt_h)
        np.testing.assert_allclose(power, min(rate, sim.cp_p_max_kw[session.cp]), rtol=1e-9)


def test_pv_following_charges_more_in_surplus_and_serves_every_ev(sim) -> None:
    flat = sim.run(FlatRateCharging()).steps
    result = sim.run(PVFollowingCharging())
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
    steps = result.steps
    cp_cols = [f"cp_kw_{d.name}" for d in sim.scenario.devices.cps]
    surplus = steps["pv_available_kw"] > steps["load_kw"] + 1.0
    # While the sun covers the houses, the EVs take more than the flat rate somewhere...
    assert (steps.loc[surplus, cp_cols].sum(axis=1) > flat.loc[surplus, cp_cols].sum(axis=1)).any()
    # ...and the same energy in all.
    assert steps[cp_cols].to_numpy().sum() == pytest.approx(flat[cp_cols].to_numpy().sum())
    with pytest.raises(ConfigError, match="floor"):
        PVFollowingCharging("never")  # type: ignore[arg-type]


def test_volt_watt_curve_by_hand() -> None:
    config = VoltWattConfig(u_start_pu=1.06, u_end_pu=1.10, p_end_fraction=0.2)
    v = np.array([1.0, 1.06, 1.08, 1.10, 1.2])
    np.testing.assert_allclose(volt_watt_fraction(v, config), [1.0, 1.0, 0.6, 0.2, 0.2])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"u_start_pu": 1.12, "u_end_pu": 1.10},
        {"p_end_fraction": 1.0},
        {"u_nominal_v": 0.0},
        {"u_start_pu": "high"},
    ],
)
def test_bad_volt_watt_settings_name_the_field(kwargs) -> None:
    with pytest.raises(ConfigError, match="volt_watt"):
        VoltWattConfig(**kwargs)


def test_volt_watt_settings_load_from_the_scenario() -> None:
    data = read_yaml(default_scenario_path(), "scenario")
    assert load_scenario_config().volt_watt == VoltWattConfig()  # the shipped defaults
    config = scenario_config_from_dict(
        {**data, "volt_watt": {"u_start_pu": 1.05, "u_end_pu": 1.09}}
    )
    assert config.volt_watt == VoltWattConfig(u_start_pu=1.05, u_end_pu=1.09)
    with pytest.raises(ConfigError, match="volt_watt"):
        scenario_config_from_dict({**data, "volt_watt": {"u_begin": 1.0}})


def test_volt_watt_pv_sits_on_its_curve_in_opendss(sim) -> None:
    # Binding on the default feeder, whose highest voltage is about 1.066 of 230 V.
    config = VoltWattConfig(u_start_pu=1.04, u_end_pu=1.06)
    controller = VoltWattPV(sim, config)
    sim.reset()
    nodes = [sim.engine.node_names.index(d.node.lower()) for d in sim.scenario.devices.pvs]
    curtailed = 0
    while not sim.done:
        state = sim.observe()
        x = controller.act(state)
        grid = sim.step(x, with_metrics=False).grid
        v_pu = grid.v_pu[nodes] * sim.engine.base_v[nodes] / config.u_nominal_v
        target = state.pv_available_kw * volt_watt_fraction(v_pu, config)
        np.testing.assert_allclose(x[sim.n_cp :], target, atol=2e-3)
        curtailed += int(np.any(target < state.pv_available_kw - 1e-3))
    assert curtailed > 0


def test_volt_watt_beats_no_control_on_mean_and_worst_unbalance() -> None:
    """The IEEE variant's day, where PV lifts buses past 253 V: the droop with its shipped
    EN 50549-1 settings acts and lowers both the mean and the worst-step PUI."""
    data = read_yaml(default_scenario_path(), "scenario")
    config = scenario_config_from_dict({**data, "feeder": {"kind": "embedded", "name": "ieee_lv"}})
    with FeederSimulator(build_scenario(config, 0)) as ieee:
        no_control = ieee.run(NoControl()).summary()
        result = ieee.run(VoltWattPV(ieee))
    summary = result.summary()
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
    assert summary["pv_used_kwh"] < no_control["pv_used_kwh"]  # it acted
    assert summary["pui_mean_pct"] < no_control["pui_mean_pct"]
    assert summary["pui_max_pct"] < no_control["pui_max_pct"]


def test_volt_watt_leaves_a_day_inside_its_band_alone(sim, no_control) -> None:
    """The default feeder with ENWL's source never reaches u_start (253 V): no curtailment."""
    summary = sim.run(VoltWattPV(sim)).summary()
    assert summary["pv_used_kwh"] == pytest.approx(no_control["pv_used_kwh"], rel=1e-12)


def test_simulate_runs_a_baseline_beside_no_control_from_the_cli(tmp_path, capsys) -> None:
    import json

    import pandas as pd

    from experiments.cli import main

    args = ["simulate", "--steps", "150", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--controller", "volt_watt"]) == 0
    (run,) = tmp_path.iterdir()
    frame = pd.read_parquet(run / "results.parquet")
    assert set(frame["controller"]) == {"no_control", "volt_watt"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["volt_watt"]["pv_used_kwh"] <= summary["no_control"]["pv_used_kwh"]
    assert main([*args, "--controller", "magic"]) == 2
    assert "controller='magic'" in capsys.readouterr().err
