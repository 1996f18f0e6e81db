"""The day's references (architecture.md §6): one computation for the simulator and the batched
env, held to an OpenDSS no-control pass."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from powertrip_env import metrics
from powertrip_env import simulator as simulator_module
from powertrip_env.config import ObjectiveConfig, load_scenario_config
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator, SimState, refs_from_f1


@pytest.mark.parametrize("energy_guarantee", [True, False])
def test_reduced_refs_agree_with_an_opendss_no_control_pass(
    monkeypatch: pytest.MonkeyPatch, energy_guarantee: bool
) -> None:
    """The reduced-model references equal those of the OpenDSS pass (the fallback for feeders
    the model cannot represent) within OpenDSS's 1e-4 solve tolerance; F2_ref exactly."""
    cfg = load_scenario_config()
    cfg = replace(cfg, ev=replace(cfg.ev, energy_guarantee=energy_guarantee))
    scenario = build_scenario(cfg, 3, n_loads=55)
    with FeederSimulator(scenario) as sim:
        reduced = sim.objective_refs()
        monkeypatch.setattr(simulator_module, "reduced_network", lambda *args: None)
        opendss = sim.objective_refs()
    assert reduced[1] == opendss[1]
    assert reduced[0] == pytest.approx(opendss[0], rel=1e-3)
    assert reduced[0] != opendss[0]  # two different solvers really ran


def test_power_index_refs_come_from_opendss() -> None:
    """The reduced model gives no branch powers: the ``power`` index takes the OpenDSS pass."""
    cfg = replace(load_scenario_config(), objective=ObjectiveConfig(unbalance_index="power"))
    with FeederSimulator(build_scenario(cfg, 0, n_loads=55)) as sim:
        f1_ref, f2_ref = sim.objective_refs()
        day = sim.run(_UpperBounds())
    assert f1_ref == pytest.approx(float(day.steps["f1"].max()), rel=1e-12)
    assert f2_ref > 1.0


class _UpperBounds:
    def act(self, state: SimState) -> np.ndarray:
        return state.upper_kw


def test_refs_from_f1_takes_the_largest_finite_value_and_floors_at_1e_9() -> None:
    f1 = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [0.0, 0.0, 0.0]])
    pv = np.zeros((3, 3, 2))
    pv[0, 1] = [3.0, 4.0]  # 25 kW^2 at one step
    refs = refs_from_f1(f1, pv)
    np.testing.assert_array_equal(refs, [[3.0, 25.0], [1e-9, 1e-9], [1e-9, 1e-9]])


def test_screened_no_control_maximum_equals_every_step_solved_tightly() -> None:
    """Screening the steps at a loose tolerance loses nothing: the largest f1 of each day is
    that of solving every step at the model's default tolerance."""
    from powertrip_env.ev import session_tables
    from powertrip_env.scenario import build_scenarios
    from powertrip_env.simulator import reduced_network, reduced_no_control_f1_max

    cfg = load_scenario_config()
    days = build_scenarios(cfg, list(range(6)), n_loads=55)
    net = reduced_network(days[0].feeder, cfg.devices, "pui")
    assert net is not None
    p_max = np.array([d.p_max_kw for d in cfg.devices.cps])
    cp = session_tables([d.sessions for d in days], p_max, 1 / 12, 288).no_control_kw
    args = [
        np.stack([d.profiles.load_p_kw for d in days]),
        np.stack([d.profiles.load_q_kvar for d in days]),
        cp.transpose(0, 2, 1),
        np.stack([d.profiles.pv_available_kw for d in days]),
    ]
    largest = reduced_no_control_f1_max(net, "pui", *args)
    for k in range(len(days)):
        sol = net.solve(*(a[k] for a in args))
        f1 = metrics.f_unbalance(metrics.unbalance("pui", net.cp_bus_phasors(sol)))
        assert largest[k] == pytest.approx(f1.max(), rel=1e-10)
        assert np.sort(f1)[-2] < f1.max()  # a real maximum, not a flat day


def test_a_screen_too_coarse_for_its_margin_solves_the_whole_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a screen whose error is not far inside the margin, every step is solved at the
    default tolerance: the maximum is still exact."""
    from powertrip_env.scenario import build_scenarios
    from powertrip_env.simulator import reduced_network, reduced_no_control_f1_max

    cfg = load_scenario_config()
    day = build_scenarios(cfg, [2], n_loads=55)[0]
    net = reduced_network(day.feeder, cfg.devices, "pui")
    assert net is not None
    p = day.profiles
    cp = np.zeros((1, p.n_steps, 3))
    cp[0, 200:210] = 7.0  # one EV charging for 50 minutes in the evening
    args = [p.load_p_kw[None], p.load_q_kvar[None], cp, p.pv_available_kw[None]]
    calls: list[int] = []
    rows = simulator_module._f1_rows

    def counted(*a: object) -> np.ndarray:
        out = rows(*a)  # type: ignore[arg-type]
        calls.append(out.size)
        return out

    monkeypatch.setattr(simulator_module, "_f1_rows", counted)
    monkeypatch.setattr(simulator_module, "_SCREEN_TOL", 0.3)  # one or two iterations
    largest = reduced_no_control_f1_max(net, "pui", *args)
    assert calls[0] == calls[-1] == p.n_steps  # screened, then solved in full
    sol = net.solve(*(a[0] for a in args))
    f1 = metrics.f_unbalance(metrics.unbalance("pui", net.cp_bus_phasors(sol)))
    assert largest[0] == pytest.approx(f1.max(), rel=1e-10)
