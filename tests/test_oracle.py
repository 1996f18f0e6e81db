"""The day's optimum (feasible, replayed in OpenDSS as planned, below every controller at
every weight, tracing the day's Pareto front) and the look-ahead controller built on it."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from baselines.heuristics import FlatRateCharging, PVFollowingCharging, VoltWattPV
from baselines.lookahead import LookAheadConfig, LookAheadController
from baselines.no_control import NoControl
from baselines.nsga2 import NSGA2Config, NSGA2Controller
from baselines.oracle import OracleConfig, OracleController, day_front
from powertrip_env.config import load_scenario_config
from powertrip_env.errors import ConfigError
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator

WEIGHTS = (0.5, 0.5)
#: The weights the oracle must beat every controller at: the day's front from (0, 1) to (1, 0).
FRONT_WEIGHTS = ((0.0, 1.0), (0.25, 0.75), (0.5, 0.5), (0.75, 0.25), (1.0, 0.0))


def day_cost(steps, refs, weights=WEIGHTS) -> float:
    """The day's weighted normalised cost of a simulated day (OpenDSS values)."""
    return float((weights[0] * steps["f1"] / refs[0] + weights[1] * steps["f2"] / refs[1]).sum())


@pytest.fixture(scope="module")
def day():
    with FeederSimulator(build_scenario(load_scenario_config(), 0, n_loads=55)) as sim:
        refs = sim.objective_refs()
        oracle = OracleController(sim, OracleConfig(weights=WEIGHTS), refs)
        yield sim, refs, oracle


@pytest.mark.parametrize(
    "kwargs",
    [{"weights": (0.6, 0.6)}, {"max_iter": 0}, {"gap_tol": 0.0}, {"fd_kw": -1.0}],
)
def test_bad_oracle_settings_raise_config_error(kwargs) -> None:
    with pytest.raises(ConfigError, match="oracle"):
        OracleConfig(**kwargs)


@pytest.mark.slow
def test_plan_is_feasible_and_opendss_agrees_with_it(day) -> None:
    sim, refs, oracle = day
    plan = oracle.plan
    x = plan.x_kw
    available = sim.profiles.pv_available_kw
    assert np.all(x >= -1e-9)
    assert np.all(x[:, sim.n_cp :] <= available + 1e-9)
    assert np.all(x[:, : sim.n_cp] <= sim.cp_p_max_kw + 1e-9)
    for s in sim.ev.sessions:  # every session gets its energy inside its window
        assert x[s.start : s.stop, s.cp].sum() * sim.dt_h == pytest.approx(s.energy_kwh, rel=1e-9)
    outside = sim.ev.session_at.T < 0
    assert np.all(x[:, : sim.n_cp][outside] == 0.0)
    result = sim.run(oracle)
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
    # OpenDSS solves to its default tolerance (about 3e-5 pu), the plan to about 1e-12 pu.
    assert day_cost(result.steps, refs) == pytest.approx(plan.cost, rel=1e-4)
    assert 0.0 <= plan.gap < 0.1 * plan.cost


@pytest.mark.slow
def test_oracle_is_at_or_below_every_controller(day) -> None:
    sim, refs, oracle = day
    oracle_cost = day_cost(sim.run(oracle).steps, refs)
    controllers = [
        NoControl(),
        FlatRateCharging(),
        PVFollowingCharging(),
        VoltWattPV(sim),
        NSGA2Controller(sim, NSGA2Config(pop_size=20, n_gen=10, weights=WEIGHTS), refs),
    ]
    for controller in controllers:
        result = sim.run(controller)
        np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
        assert oracle_cost <= day_cost(result.steps, refs) + oracle.plan.gap, controller


@pytest.fixture(scope="module")
def short_day():
    """The default day at 15-minute steps (96, a third of the 5-minute day's cost) and its
    Pareto front at five weights."""
    config = load_scenario_config()
    config = replace(config, profiles=replace(config.profiles, resolution_min=15))
    with FeederSimulator(build_scenario(config, 0)) as sim:
        refs = sim.objective_refs()
        front = day_front(sim, refs, len(FRONT_WEIGHTS))
        yield sim, refs, front


def test_day_front_ends_short_of_a_zero_weight(short_day) -> None:
    """At w = (0, 1) every charging schedule costs 0: the front's end is the best of them."""
    _, _, front = short_day
    assert [p.weights[0] for p in front] == pytest.approx([0.01, 0.255, 0.5, 0.745, 0.99])
    assert front[0].f2_total <= 1e-3 * front[-1].f2_total


def test_day_front_needs_two_weights() -> None:
    with pytest.raises(ConfigError, match="n_weights"):
        day_front(None, (1.0, 1.0), 1)  # type: ignore[arg-type]  # refused before use


#: (0.5, 0.5) is checked on the 5-minute day by test_oracle_is_at_or_below_every_controller.
OTHER_WEIGHTS = [k for k, w in enumerate(FRONT_WEIGHTS) if w != WEIGHTS]


@pytest.mark.slow
@pytest.mark.parametrize("k", OTHER_WEIGHTS, ids=[str(FRONT_WEIGHTS[k]) for k in OTHER_WEIGHTS])
def test_oracle_is_at_or_below_every_controller_at_every_weight(short_day, k: int) -> None:
    """At each weight no controller's day costs less than the oracle's beyond its gap."""
    sim, refs, _ = short_day
    weights = FRONT_WEIGHTS[k]
    oracle = OracleController(sim, OracleConfig(weights=weights), refs)
    oracle_cost = day_cost(sim.run(oracle).steps, refs, weights)
    gap = oracle.plan.gap
    controllers = {
        "no control": NoControl(),
        "flat rate": FlatRateCharging(),
        "PV following": PVFollowingCharging(),
        "volt-watt": VoltWattPV(sim),
        "NSGA-II": NSGA2Controller(sim, NSGA2Config(pop_size=20, n_gen=10, weights=weights), refs),
    }
    for forecast in ("persistence", "perfect"):
        settings = LookAheadConfig(forecast=forecast, weights=weights, horizon_h=1.0)
        controllers[f"look-ahead, {forecast}"] = LookAheadController(sim, settings, refs)
    below = {}
    for label, controller in controllers.items():
        result = sim.run(controller)
        np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6, err_msg=label)
        cost = day_cost(result.steps, refs, weights)
        if cost < oracle_cost - gap:
            below[label] = cost
    assert not below, f"w = {weights}: oracle {oracle_cost:.4f} (gap {gap:.4f}), {below}"


@pytest.mark.slow
def test_day_front_trades_unbalance_for_curtailment(short_day) -> None:
    """More weight on unbalance never buys more unbalance (up to the plans' gaps)."""
    _, _, front = short_day
    for lo, hi in itertools.pairwise(front):
        # Each plan is within its gap of its weight's optimum: summing the two optimality
        # inequalities bounds the rise of f1 by hi.gap + w2_hi (lo.gap + hi.gap) / (w1_hi - w1_lo).
        step = hi.weights[0] - lo.weights[0]
        slack = hi.gap + hi.weights[1] * (lo.gap + hi.gap) / step + 1e-3 * lo.f1_total
        assert hi.f1_total <= lo.f1_total + slack, (lo, hi)


@pytest.mark.parametrize(
    "kwargs", [{"horizon_h": 0.0}, {"forecast": "crystal_ball"}, {"max_iter": 0}]
)
def test_bad_lookahead_settings_raise_config_error(kwargs) -> None:
    with pytest.raises(ConfigError, match=r"lookahead|oracle"):
        LookAheadConfig(**kwargs)


@pytest.mark.slow
def test_lookahead_with_persistence_forecasts_closes_most_of_the_gap(day) -> None:
    """Realistic forecasts: between the oracle and no control, every EV served."""
    sim, refs, oracle = day
    oracle_cost = day_cost(sim.run(oracle).steps, refs)
    no_control = day_cost(sim.run(NoControl()).steps, refs)
    controller = LookAheadController(sim, LookAheadConfig(forecast="persistence"), refs)
    result = sim.run(controller)
    np.testing.assert_allclose(result.ev_unserved_kwh, 0.0, atol=1e-6)
    cost = day_cost(result.steps, refs)
    assert oracle_cost - oracle.plan.gap <= cost
    assert (no_control - cost) / (no_control - oracle_cost) >= 0.7
