"""The reduced and OpenDSS evaluators give NSGA-II the same day on ENWL's loads as written."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from baselines.nsga2 import NSGA2Config, NSGA2Controller
from powertrip_env.config import FeederConfig, load_scenario_config
from powertrip_env.grid.feeder import embedded_feeder_dir
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator, SimState

START, STEPS = 130, 40  # 10:50-14:10: PV high, houses near the transformer leave their band


class _FromStart:
    """No control before ``START``, then NSGA-II: the optimised steps are the ones that
    matter here, and the steps before them stay cheap."""

    name = "nsga2_from_start"

    def __init__(self, nsga2: NSGA2Controller) -> None:
        self.nsga2 = nsga2

    def act(self, state: SimState) -> np.ndarray:
        return state.upper_kw.copy() if state.t < START else self.nsga2.act(state)


@pytest.mark.slow
def test_reduced_and_opendss_evaluators_give_the_same_day() -> None:
    """``kind: master`` on ENWL's loads as written (``load_model: opendss``): the same day
    (losses, f1, f2 summed over the steps) within 1e-6 relative from either evaluator, with
    OpenDSS at its default tolerance in the simulator."""
    master = embedded_feeder_dir("enwl_n1f1") / "Master.dss"
    feeder = FeederConfig(kind="master", path=str(master), load_model="opendss")
    scenario = build_scenario(replace(load_scenario_config(), feeder=feeder), 0)
    day: dict[str, np.ndarray] = {}
    applied: dict[str, np.ndarray] = {}
    out_of_band = 0
    for evaluator in ("reduced", "opendss"):
        config = NSGA2Config(pop_size=12, n_gen=4, evaluator=evaluator)
        with FeederSimulator(scenario) as sim:
            nsga2 = NSGA2Controller(sim, config)
            steps = sim.run(_FromStart(nsga2), steps=START + STEPS).steps
            if evaluator == "reduced":
                network = nsga2.objectives._reduced
                assert network is not None
                profiles, n_cp = scenario.profiles, sim.n_cp
                for front in nsga2.fronts:
                    solution = network.solve(
                        profiles.load_p_kw[front.t],
                        profiles.load_q_kvar[front.t],
                        front.x_kw[:, :n_cp],
                        front.x_kw[:, n_cp:],
                    )
                    out_of_band += int(solution.out_of_band.sum())
            nsga2.close()
        day[evaluator] = np.array([steps[k].sum() for k in ("losses_kw", "f1", "f2")])
        applied[evaluator] = np.stack([f.x_kw[f.chosen] for f in nsga2.fronts])
    assert out_of_band > 0, "no candidate left its band: the test would not test the band"
    assert len(applied["reduced"]) == STEPS
    np.testing.assert_allclose(day["reduced"], day["opendss"], rtol=1e-6, atol=0.0)
    np.testing.assert_allclose(applied["reduced"], applied["opendss"], rtol=1e-6, atol=1e-9)
