"""NSGA-II per timestep: OpenDSS per candidate vs the batched reduced model vs pymoo's floor.

At one telling step of the default day (11:40, EVs plugged in and PV available), with
population 100 and 100 generations, measured in one run:

(a) one OpenDSS solve per candidate;
(b) the whole population through the exact reduced network model at once;
(c) pymoo's own time with a trivial objective (the floor once evaluation is free);

plus the hypervolume of the fronts of (a) and (b) (normalised by the day's references,
reference point (1.1, 1.1)), and, with ``--day``, the time of a full default day under (b).

Usage::

    python benchmarks/nsga2.py [--day]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.problem import Problem
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize

from baselines.nsga2 import NSGA2Config, NSGA2Controller
from powertrip_env import metrics
from powertrip_env.config import load_scenario_config
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator

STEP = 140
POP, GEN = 100, 100


class _Trivial(Problem):
    def __init__(self, n_var: int) -> None:
        super().__init__(n_var=n_var, n_obj=2, xl=0.0, xu=1.0)

    def _evaluate(self, x, out, *args, **kwargs):
        out["F"] = np.column_stack([x.sum(axis=1), (1.0 - x).sum(axis=1)])


def _hypervolume(f: np.ndarray, refs: np.ndarray) -> float:
    return float(HV(ref_point=np.array([1.1, 1.1]))(metrics.normalise(f, refs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", action="store_true", help="also time a full default day")
    args = parser.parse_args()
    scenario = build_scenario(load_scenario_config(), 0)
    with FeederSimulator(scenario) as sim:
        refs = sim.objective_refs()
        sim.reset()
        while sim.t < STEP:
            sim.step(sim.bounds()[1], with_metrics=False)
        state = sim.observe()
        n_free = int(np.count_nonzero(state.upper_kw - state.lower_kw > 1e-9))
        timings, fronts = {}, {}
        for evaluator in ("opendss", "reduced"):
            controller = NSGA2Controller(
                sim, NSGA2Config(pop_size=POP, n_gen=GEN, evaluator=evaluator), refs=refs
            )
            t0 = time.perf_counter()
            front = controller.front(state)
            timings[evaluator] = time.perf_counter() - t0
            fronts[evaluator] = front.f_opendss
        t0 = time.perf_counter()
        minimize(_Trivial(n_free), NSGA2(pop_size=POP), ("n_gen", GEN), seed=0)
        t_floor = time.perf_counter() - t0

        ref_arr = np.asarray(refs)
        hv = {k: _hypervolume(f, ref_arr) for k, f in fronts.items()}
        print(
            f"default day, seed 0, step {STEP} ({STEP * 5 // 60:02d}:{STEP * 5 % 60:02d}), "
            f"{n_free} free variables, population {POP}, {GEN} generations"
        )
        print(f"  (a) OpenDSS per candidate     {timings['opendss']:7.2f} s")
        print(f"  (b) batched reduced model     {timings['reduced']:7.2f} s")
        print(f"  (c) pymoo floor (trivial f)   {t_floor:7.2f} s")
        speedup = timings["opendss"] / timings["reduced"]
        floor_ratio = timings["reduced"] / t_floor
        hv_gap = abs(hv["opendss"] - hv["reduced"]) / hv["opendss"]
        print(
            f"  hypervolume (a) {hv['opendss']:.5f}   (b) {hv['reduced']:.5f}   "
            f"difference {100 * hv_gap:.3f} %"
        )
        print(
            f"(b) vs (a): {speedup:.1f}x faster (target >= 3x): "
            f"{'MET' if speedup >= 3 else 'MISSED'}"
        )
        print(
            f"(b) vs floor (c): {floor_ratio:.2f}x (target <= 1.5x): "
            f"{'MET' if floor_ratio <= 1.5 else 'MISSED'}"
        )
        print(f"hypervolume difference (target <= 0.5 %): {'MET' if hv_gap <= 0.005 else 'MISSED'}")
        if args.day:
            controller = NSGA2Controller(sim, NSGA2Config(pop_size=POP, n_gen=GEN), refs=refs)
            t0 = time.perf_counter()
            sim.run(controller)
            print(f"full default day under NSGA-II (b): {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
