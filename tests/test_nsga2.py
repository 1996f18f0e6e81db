"""NSGA-II smart control: fronts, determinism, exactness, the day, resume, bad settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from baselines.no_control import NoControl
from baselines.nsga2 import NSGA2Config, NSGA2Controller, select_compromise
from powertrip_env import metrics
from powertrip_env.config import load_scenario_config
from powertrip_env.errors import ConfigError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator

MIDDAY = 140  # 11:40: EVs plugged in and PV available on the default day, seed 0


@pytest.fixture(scope="module")
def scenario():
    return build_scenario(load_scenario_config(), 0, n_loads=55)


@pytest.fixture(scope="module")
def midday(scenario):
    """A simulator advanced (under no control) to a step where both objectives matter."""
    sim = FeederSimulator(scenario)
    sim.reset()
    while sim.t < MIDDAY:
        sim.step(sim.bounds()[1], with_metrics=False)
    state = sim.observe()
    assert state.plugged.any() and state.pv_available_kw.sum() > 1.0
    yield sim, state
    sim.close()


def _front(sim, state, **kw):
    # Without the unbalance cap: refs here are arbitrary, and the cap is refs[0].
    config = NSGA2Config(**{"cap_f1": False, **kw})
    return NSGA2Controller(sim, config, refs=(10.0, 50.0)).front(state)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pop_size": 3}, "pop_size"),
        ({"n_gen": 0}, "n_gen"),
        ({"weights": (0.7, 0.7)}, "weights"),
        ({"evaluator": "magic"}, "evaluator"),
        ({"selection": "best"}, "selection"),
        ({"cp_floor": "earliest"}, "cp_floor"),
        ({"termination": "never"}, "termination"),
        ({"hv_tol": 0.0}, "hv_tol"),
        ({"period": 0}, "period"),
        ({"cap_f1": "yes"}, "cap_f1"),
        ({"warm_pop_size": 2}, "warm_pop_size"),
        ({"warm_random_share": 1.0}, "warm_random_share"),
        ({"change_tol": 0.0}, "change_tol"),
        ({"constraints": "soft"}, "constraints"),
        ({"f_precision": -1e-9}, "f_precision"),
        ({"eliminate_duplicates": 1}, "eliminate_duplicates"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, field) -> None:
    with pytest.raises(ConfigError, match=field):
        NSGA2Config(**kwargs)


def test_front_is_non_dominated_inside_bounds_with_zero_curtailment_end(midday) -> None:
    sim, state = midday
    front = _front(sim, state, pop_size=40, n_gen=30)
    f = front.f_reduced
    for i in range(len(f)):
        dominated = np.all(f <= f[i], axis=1) & np.any(f < f[i], axis=1)
        assert not dominated.any(), f"point {i} is dominated"
    assert np.all(front.x_kw >= state.lower_kw - 1e-9)
    assert np.all(front.x_kw <= state.upper_kw + 1e-9)
    full_curtailment = float((state.pv_available_kw**2).sum())
    assert f[:, 1].min() <= 0.01 * full_curtailment
    # The chosen point is on the front and the front is a real trade-off.
    assert 0 <= front.chosen < len(f) and np.ptp(f[:, 0]) > 0 and np.ptp(f[:, 1]) > 0


def test_cap_keeps_every_front_point_at_or_below_the_day_reference(midday) -> None:
    sim, state = midday
    f_nc = NSGA2Controller(sim, NSGA2Config(pop_size=4, n_gen=1), refs=(1, 1)).objectives(
        state, state.upper_kw[None, :], reduced=False
    )[0, 0]
    cap = 0.8 * float(f_nc)  # below no control: the cap binds
    config = NSGA2Config(pop_size=30, n_gen=20, termination="n_gen")
    front = NSGA2Controller(sim, config, refs=(cap, 50.0)).front(state)
    assert np.all(front.f_reduced[:, 0] <= cap * (1 + 1e-9))
    assert np.all(front.f_opendss[:, 0] <= cap * (1 + 1e-6))


def test_flat_rate_floor_spreads_owed_energy(midday) -> None:
    sim, state = midday
    n_cp = sim.n_cp
    flat = np.minimum(state.remaining_kwh / np.maximum(state.time_to_departure_h, 1e-12), 1e9)
    flat = np.where(state.plugged, np.minimum(flat, state.upper_kw[:n_cp]), 0.0)
    assert np.any(flat > state.lower_kw[:n_cp] + 1e-6)  # the floors differ at this step
    spread = _front(sim, state, pop_size=20, n_gen=10)
    latest = _front(sim, state, pop_size=20, n_gen=10, cp_floor="latest")
    assert np.all(spread.x_kw[:, :n_cp] >= flat - 1e-9)
    assert np.any(latest.x_kw[:, :n_cp] < flat - 1e-6)


def test_warm_started_step_stops_early_with_the_cold_front_quality(scenario) -> None:
    """The step after a cold one starts from its front and stops once its front stalls."""
    from pymoo.indicators.hv import HV

    refs = (10.0, 50.0)
    # A loose change_tol: this test is about the warm start, not about detecting a change.
    common: dict[str, Any] = {"pop_size": 40, "n_gen": 200, "cap_f1": False, "change_tol": 0.5}
    with FeederSimulator(scenario) as sim:
        sim.reset()
        while sim.t < MIDDAY - 1:
            sim.step(sim.bounds()[1], with_metrics=False)
        controller = NSGA2Controller(sim, NSGA2Config(**common), refs=refs)
        sim.step(controller.act(sim.observe()), with_metrics=False)  # cold: all generations
        state = sim.observe()
        controller.act(state)  # warm: the same EVs are plugged in
        cold, warm = controller.fronts
        full = NSGA2Controller(sim, NSGA2Config(**common, termination="n_gen"), refs=refs)
        reference = full.front(state)
    assert cold.generations == 200 and warm.generations < 50
    assert cold.changed and not warm.changed
    indicator = HV(ref_point=np.array([1.1, 1.1]))
    hv_warm = indicator(metrics.normalise(warm.f_reduced, np.asarray(refs)))
    hv_full = indicator(metrics.normalise(reference.f_reduced, np.asarray(refs)))
    assert hv_warm >= 0.99 * hv_full


def test_one_seed_one_front(midday) -> None:
    sim, state = midday
    a = _front(sim, state, pop_size=20, n_gen=10, seed=3)
    b = _front(sim, state, pop_size=20, n_gen=10, seed=3)
    c = _front(sim, state, pop_size=20, n_gen=10, seed=4)
    np.testing.assert_array_equal(a.x_kw, b.x_kw)
    assert a.x_kw.shape != c.x_kw.shape or not np.array_equal(a.x_kw, c.x_kw)


def test_reduced_model_agrees_with_opendss_on_the_front(scenario, midday) -> None:
    sim, state = midday
    front = _front(sim, state, pop_size=20, n_gen=10)
    reduced = NSGA2Controller(sim, NSGA2Config(pop_size=4, n_gen=1), refs=(1, 1)).objectives
    network = reduced._reduced
    assert network is not None
    n_cp = sim.n_cp
    solution = network.solve(
        state.load_p_kw, state.load_q_kvar, front.x_kw[:, :n_cp], front.x_kw[:, n_cp:]
    )
    v_reduced = network.cp_bus_phasors(solution)
    with OpenDSSEngine(scenario.feeder, scenario.devices, tolerance=1e-10, max_iterations=100) as e:
        for k, x in enumerate(front.x_kw):
            e.set_powers(state.load_p_kw, state.load_q_kvar, x[:n_cp], x[n_cp:])
            assert e.run_pf()[0]
            diff_pu = np.abs(v_reduced[k] - e.cp_bus_phasors()) / e.base_v[0]
            assert diff_pu.max() < 1e-6


def test_selection_rules() -> None:
    f = np.array([[0.0, 1.0], [0.2, 0.3], [0.6, 0.1], [1.0, 0.0]])
    assert select_compromise(f, "weighted_sum", (1.0, 0.0)) == 0
    assert select_compromise(f, "weighted_sum", (0.0, 1.0)) == 3
    assert select_compromise(f, "weighted_sum", (0.5, 0.5)) == 1
    assert select_compromise(f, "pseudo_weights", (0.5, 0.5)) in (1, 2)
    assert select_compromise(f[:1], "knee", (0.5, 0.5)) == 0
    # A point dominated after the OpenDSS re-check (worst in both: pseudo-weights 0 / 0) is
    # never the compromise, whatever its place in the front.
    dominated = np.array([[0.9, 0.9], [0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])
    for selection in ("pseudo_weights", "knee", "weighted_sum"):
        assert select_compromise(dominated, selection, (0.5, 0.5)) != 0
    assert select_compromise(dominated, "pseudo_weights", (0.5, 0.5)) == 2


@pytest.mark.slow
def test_compromise_lowers_unbalance_over_the_default_day(scenario) -> None:
    with FeederSimulator(scenario) as sim:
        baseline = sim.run(NoControl()).summary()
        controller = NSGA2Controller(sim, NSGA2Config(pop_size=16, n_gen=8))
        smart = sim.run(controller)
    summary = smart.summary()
    assert summary["converged_steps"] == 288
    assert summary["f1_total"] < baseline["f1_total"]
    # The EV energy guarantee holds under control too.
    np.testing.assert_allclose(smart.ev_unserved_kwh, 0.0, atol=1e-6)
    assert metrics.pv_usage_efficiency(summary["pv_available_kwh"], summary["pv_used_kwh"]) <= 1.0


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path: Path, monkeypatch) -> None:
    from experiments.optimize import OptimizeArgs, optimize

    args = OptimizeArgs(pop_size=8, n_gen=3, steps=MIDDAY + 6, progress=False)
    whole = optimize(OptimizeArgs(**{**args.__dict__, "out": str(tmp_path / "whole")}))

    calls = {"n": 0}
    original = NSGA2Controller.act

    def flaky(self, state):
        calls["n"] += 1
        if calls["n"] == MIDDAY + 2:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, state)

    monkeypatch.setattr(NSGA2Controller, "act", flaky)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        optimize(OptimizeArgs(**{**args.__dict__, "out": str(out)}))
    monkeypatch.setattr(NSGA2Controller, "act", original)
    (cut,) = out.iterdir()
    assert not (cut / "results.parquet").exists()
    resumed = optimize(OptimizeArgs(resume=str(cut), progress=False))
    for name in ("results.parquet", "fronts.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(whole / name), pd.read_parquet(resumed / name)
        )


@pytest.mark.slow
def test_front_pool_gives_the_sequential_day(tmp_path: Path) -> None:
    """Seed formulation: timesteps spread over 2 processes give the same day as one process."""
    from experiments.optimize import OptimizeArgs, optimize

    scenario_yaml = tmp_path / "seed.yaml"
    text = (Path(__file__).parents[1] / "powertrip_env/scenarios/default.yaml").read_text()
    scenario_yaml.write_text(text.replace("energy_guarantee: true", "energy_guarantee: false"))
    common: dict[str, Any] = {
        "scenario": str(scenario_yaml),
        "pop_size": 8,
        "n_gen": 3,
        "progress": False,
    }
    one = optimize(OptimizeArgs(**common, steps=MIDDAY + 4, out=str(tmp_path / "one")))
    two = optimize(OptimizeArgs(**common, steps=MIDDAY + 4, out=str(tmp_path / "two"), workers=2))
    for name in ("results.parquet", "fronts.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(one / name), pd.read_parquet(two / name))


def test_workers_need_the_seed_formulation(tmp_path: Path) -> None:
    from experiments.optimize import OptimizeArgs, optimize

    with pytest.raises(ConfigError, match="seed formulation"):
        optimize(OptimizeArgs(workers=2, steps=2, out=str(tmp_path), progress=False))


def test_optimize_keeps_the_original_formulation_selectable() -> None:
    from experiments.cli import build_parser
    from experiments.optimize import OptimizeArgs

    ns = build_parser().parse_args(["optimize", "--cp-floor", "latest", "--no-cap"])
    assert (ns.cp_floor, ns.no_cap) == ("latest", True)
    config = OptimizeArgs(cp_floor="latest", cap_f1=False).nsga2()
    assert (config.cp_floor, config.cap_f1) == ("latest", False)
    assert (OptimizeArgs().nsga2().cp_floor, OptimizeArgs().nsga2().cap_f1) == ("flat_rate", True)


def test_knee_selection_on_a_real_front(midday) -> None:
    """On a real step's front, ``knee`` applies pymoo's high trade-off point of the
    normalised, OpenDSS-checked front: a point inside the trade-off, not an extreme."""
    from pymoo.mcdm.high_tradeoff import HighTradeoffPoints

    sim, state = midday
    front = _front(sim, state, pop_size=40, n_gen=30, selection="knee")
    f = front.f_opendss / np.array([10.0, 50.0])  # the refs _front gives the controller
    assert len(f) >= 5 and np.isfinite(f).all()
    knees = HighTradeoffPoints().do(f)
    assert knees is not None and len(knees), "this front has a knee"
    assert front.chosen == int(np.asarray(knees).ravel()[0])
    lo, hi = f[:, 0].min(), f[:, 0].max()
    assert lo < f[front.chosen, 0] < hi  # neither end of the front


def test_constraints_as_dominance_give_pymoos_front(midday) -> None:
    """Folding the constraints into dominance ranks candidates as pymoo's own constraint
    handling does: the same seed gives the same front, with the unbalance cap binding."""
    sim, state = midday
    f_nc = NSGA2Controller(sim, NSGA2Config(pop_size=4, n_gen=1), refs=(1, 1)).objectives(
        state, state.upper_kw[None, :], reduced=False
    )[0, 0]
    refs = (0.8 * float(f_nc), 50.0)  # below no control: the cap binds
    fronts = []
    for constraints in ("dominance", "pymoo"):
        config = NSGA2Config(pop_size=30, n_gen=15, termination="n_gen", constraints=constraints)
        fronts.append(NSGA2Controller(sim, config, refs=refs).front(state))
    np.testing.assert_array_equal(fronts[0].x_kw, fronts[1].x_kw)
    np.testing.assert_array_equal(fronts[0].f_reduced, fronts[1].f_reduced)
    assert np.all(fronts[0].f_reduced[:, 0] <= refs[0])


def test_an_ev_arriving_makes_the_next_step_cold(scenario) -> None:
    """A warm start needs the same problem: the step after an EV plugs in runs cold, with
    the full population and every generation."""
    with FeederSimulator(scenario) as sim:
        plugged = np.stack([sim.ev.plugged(t) for t in range(sim.n_steps)])
        arrivals = np.flatnonzero((plugged[1:] & ~plugged[:-1]).any(axis=1)) + 1
        t_arrival = int(arrivals[arrivals > 1][0])
        config = NSGA2Config(pop_size=12, n_gen=6, warm_pop_size=6, change_tol=0.5)
        controller = NSGA2Controller(sim, config)
        sim.reset()
        while sim.t < t_arrival - 2:
            sim.step(sim.bounds()[1], with_metrics=False)
        for _ in range(3):
            sim.step(controller.act(sim.observe()), with_metrics=False)
    _, steady, arrived = controller.fronts
    assert arrived.t == t_arrival and arrived.changed and arrived.generations == 6
    assert len(arrived.x_kw) <= 12
    if steady.generations:  # free setpoints the step before: warm
        assert not steady.changed


def test_objectives_are_ranked_at_the_stated_precision(midday) -> None:
    """The search's objectives are multiples of f_precision x the day's references, so
    evaluators that agree far below it rank candidates alike."""
    sim, state = midday
    refs = np.array([10.0, 50.0])
    front = _front(sim, state, pop_size=20, n_gen=5, f_precision=1e-6)
    steps = front.f_reduced / (refs * 1e-6)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    raw = _front(sim, state, pop_size=20, n_gen=5, f_precision=0.0).f_reduced / (refs * 1e-6)
    assert not np.allclose(raw, np.round(raw), atol=1e-6)
