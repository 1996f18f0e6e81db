"""NSGA-II per timestep: OpenDSS per candidate vs the batched reduced model vs pymoo's floor.

At one telling step of the default day (11:40, EVs plugged in and PV available), with
population 100 and 100 generations, measured in one run:

(a) one OpenDSS solve per candidate;
(b) the whole population through the exact reduced network model at once;
(c) pymoo's own time with a trivial objective (the floor once evaluation is free);

plus the hypervolume of the fronts of (a) and (b) (normalised by the day's references,
reference point (1.1, 1.1)), and, with ``--day``, the time of a full default day under (b)
with the default settings (warm start from the previous step's front, stop when the front
stalls, a cold start where the problem changed) and each step's hypervolume beside a
100 x 100 cold start on the same state (the day's time excludes the cold starts; ``--every
N`` compares every N-th step only). Two verdict lines close the day: its time against 60 s
(with the machine's load average, as the time depends on it) and the steps within 1 % of
the cold start's hypervolume against the steps compared.

Usage::

    python benchmarks/nsga2.py [--day [--every N]]
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

from baselines.nsga2 import NSGA2Config, NSGA2Controller, StepFront
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


def _front_hv(front: StepFront, refs: np.ndarray) -> float:
    ok = np.isfinite(front.f_opendss).all(axis=1)
    return _hypervolume(front.f_opendss[ok], refs) if ok.any() else 0.0


def _day_against_cold_start(sim: FeederSimulator, refs: np.ndarray, every: int) -> None:
    """The default settings over a whole day, each step's front beside a cold start."""
    fast = NSGA2Controller(sim, NSGA2Config(), refs=(refs[0], refs[1]))
    cold = NSGA2Controller(
        sim,
        NSGA2Config(pop_size=POP, n_gen=GEN, warm_start=False, termination="n_gen"),
        refs=(refs[0], refs[1]),
    )
    rows: list[tuple[int, int, float, float, float]] = []
    day_s = 0.0
    sim.reset()
    while not sim.done:
        state = sim.observe()
        t0 = time.perf_counter()
        x = fast.act(state)
        day_s += time.perf_counter() - t0
        front = fast.fronts[-1]
        if front.generations and state.t % every == 0:
            t0 = time.perf_counter()
            reference = cold.front(state)
            cold_s = time.perf_counter() - t0
            hv_fast, hv_cold = _front_hv(front, refs), _front_hv(reference, refs)
            rows.append((state.t, front.generations, hv_fast, hv_cold, cold_s))
        t0 = time.perf_counter()
        sim.step(x, with_metrics=False)
        day_s += time.perf_counter() - t0
    optimised = [f for f in fast.fronts if f.generations]
    generations = [f.generations for f in optimised]
    n_cold = sum(1 for f in optimised if f.changed)
    print(
        f"default day under NSGA-II, default settings: {sim.n_steps} steps, "
        f"{len(optimised)} with free setpoints ({n_cold} cold: an EV arrived or left, or "
        f"the front moved); generations per step: mean {np.mean(generations):.1f}, "
        f"max {max(generations)}"
    )
    print("step  hh:mm  gens  hv(default)  hv(100x100 cold)  difference %")
    worst = 0.0
    for t, gens, hv_fast, hv_cold, _ in rows:
        diff = 100.0 * (hv_cold - hv_fast) / hv_cold if hv_cold > 0 else 0.0
        worst = max(worst, diff)
        print(
            f"{t:4d}  {t * 5 // 60:02d}:{t * 5 % 60:02d}  {gens:4d}  {hv_fast:11.5f}  "
            f"{hv_cold:16.5f}  {diff:12.3f}"
        )
    within = sum(1 for _, _, f, c, _ in rows if c <= 0 or (c - f) / c <= 0.01)
    print(f"cold starts took {sum(r[4] for r in rows):.0f} s in all (not in the day's time)")
    load = os.getloadavg()[0]
    print(
        f"VERDICT day time: {day_s:.1f} s (target <= 60 s; load average {load:.1f} on "
        f"{os.cpu_count()} cores): {'MET' if day_s <= 60 else 'MISSED'}"
    )
    print(
        f"VERDICT hypervolume: {within}/{len(rows)} compared steps within 1 % of the cold "
        f"start, worst shortfall {worst:.3f} % (target: every step): "
        f"{'MET' if within == len(rows) else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", action="store_true", help="also time a full default day")
    parser.add_argument("--every", type=int, default=1, help="compare every N-th step only")
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
                sim,
                NSGA2Config(pop_size=POP, n_gen=GEN, evaluator=evaluator, termination="n_gen"),
                refs=refs,
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
            _day_against_cold_start(sim, ref_arr, max(1, args.every))


if __name__ == "__main__":
    main()
