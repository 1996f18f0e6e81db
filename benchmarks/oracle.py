"""The day's optimum (perfect foresight) and every controller's optimality gap on one day.

Plans the default day (seed 0, or ``--seed``) at one weight with
:class:`~baselines.oracle.OracleController`, times it (target: at most 60 s on 2 cores),
replays it in OpenDSS, and runs the other controllers on the same day (the rule-based
baselines, per-step NSGA-II, look-ahead control over 4 h with persistence and with perfect
forecasts). Prints, per
controller, the day cost sum_t w . [f1/F1_ref, f2/F2_ref] (OpenDSS values), the optimality
gap (cost - oracle) / (no control - oracle), the mean and worst-step PUI at the CP buses, PV
used and EV energy served, as a markdown table.

With ``--front N`` it also plans the day at N weights w1 from 0.01 to 0.99, the day's Pareto
front in day totals (sum over steps of f1/F1_ref and of f2/F2_ref, OpenDSS values), and with
``--figure PATH`` draws that front with every controller's day point.

Usage::

    python benchmarks/oracle.py [--weights 0.5,0.5] [--seed 0] [--no-nsga2]
                                [--front 7 --figure day_pareto.png]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

import pandas as pd

from baselines.heuristics import FlatRateCharging, PVFollowingCharging, VoltWattPV
from baselines.lookahead import LookAheadConfig, LookAheadController
from baselines.no_control import NoControl
from baselines.nsga2 import NSGA2Config, NSGA2Controller
from baselines.oracle import OracleConfig, OracleController, day_front
from experiments.figures import plot_day_front
from powertrip_env.config import load_scenario_config
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import Controller, FeederSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="0.5,0.5", help="w1,w2 of (unbalance, curtailment)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the day")
    parser.add_argument("--no-nsga2", action="store_true", help="skip the per-step NSGA-II day")
    parser.add_argument("--front", type=int, default=0, help="weights of the day's front")
    parser.add_argument("--figure", default=None, help="PNG of the front and controllers")
    args = parser.parse_args()
    w1, w2 = (float(v) for v in args.weights.split(","))
    scenario = build_scenario(load_scenario_config(), args.seed)
    with FeederSimulator(scenario) as sim:
        refs = sim.objective_refs()
        started = time.perf_counter()
        oracle = OracleController(sim, OracleConfig(weights=(w1, w2)), refs)
        seconds = time.perf_counter() - started
        plan = oracle.plan
        print(
            f"default day, seed {args.seed}, w = ({w1}, {w2}): oracle planned in {seconds:.1f} s "
            f"({plan.iterations} iterations; target <= 60 s: "
            f"{'MET' if seconds <= 60 else 'MISSED'}); planned cost {plan.cost:.4f}, "
            f"Frank-Wolfe gap {plan.gap:.4f} (lower bound {plan.lower_bound:.4f})"
        )
        controllers: dict[str, Controller] = {
            "no control": NoControl(),
            "flat rate": FlatRateCharging(),
            "PV following": PVFollowingCharging(),
            "volt-watt": VoltWattPV(sim),
        }
        if not args.no_nsga2:
            nsga = NSGA2Config(weights=(w1, w2), seed=args.seed)
            controllers["NSGA-II (per step)"] = NSGA2Controller(sim, nsga, refs)
        for forecast in ("persistence", "perfect"):
            settings = LookAheadConfig(forecast=forecast, weights=(w1, w2))
            controllers[f"look-ahead 4 h, {forecast}"] = LookAheadController(sim, settings, refs)
        controllers["oracle"] = oracle
        rows = {}
        points: dict[str, tuple[float, float]] = {}
        for label, controller in controllers.items():
            started = time.perf_counter()
            result = sim.run(controller)
            steps, summary = result.steps, result.summary()
            cost = float((w1 * steps["f1"] / refs[0] + w2 * steps["f2"] / refs[1]).sum())
            rows[label] = (cost, summary, time.perf_counter() - started)
            points[label] = _day_point(steps, refs)
        best, worst = rows["oracle"][0], rows["no control"][0]
        print(
            "| controller | day cost | optimality gap | mean PUI (%) | worst-step PUI (%) "
            "| PV used (kWh) | EV served / requested (kWh) | day time (s) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for label, (cost, s, wall) in rows.items():
            gap = (cost - best) / (worst - best) if worst > best else float("nan")
            served = s["ev_requested_kwh"] - s["ev_unserved_kwh"]
            print(
                f"| {label} | {cost:.3f} | {gap:.3f} | {s['pui_mean_pct']:.3f} | "
                f"{s['pui_max_pct']:.3f} | {s['pv_used_kwh']:.1f} / {s['pv_available_kwh']:.1f} "
                f"| {served:.2f} / {s['ev_requested_kwh']:.2f} | {wall:.1f} |"
            )
        ahead = rows["look-ahead 4 h, persistence"][0]
        closed = (worst - ahead) / (worst - best) if worst > best else float("nan")
        print(
            f"look-ahead with persistence forecasts closes {100 * closed:.0f} % of the gap "
            f"between no control and the oracle (target >= 70 %): "
            f"{'MET' if closed >= 0.7 else 'MISSED'}"
        )
        below = [k for k, (c, _, _) in rows.items() if c < best - plan.gap]
        print(
            "oracle at or below every controller within its gap: "
            f"{'yes' if not below else 'NO: ' + ', '.join(below)}"
        )
        if args.front >= 2:
            front = day_front(sim, refs, args.front)
            print("day's Pareto front (oracle at w = (w1, 1 - w1)), day totals:")
            print("| w1 | sum f1/F1_ref | sum f2/F2_ref | Frank-Wolfe gap |")
            print("|---|---|---|---|")
            for p in front:
                print(f"| {p.weights[0]:.3f} | {p.f1_total:.2f} | {p.f2_total:.2f} | {p.gap:.3f} |")
            if args.figure:
                path = Path(args.figure)
                points = {
                    f"{k} (w = ({w1}, {w2}))" if k == "oracle" else k: v for k, v in points.items()
                }
                plot_day_front(
                    [(p.f1_total, p.f2_total) for p in front],
                    points,
                    path.parent,
                    front_weights=[p.weights[0] for p in front],
                    filename=path.name,
                )
                print(f"figure: {args.figure}")


def _day_point(steps: pd.DataFrame, refs: tuple[float, float]) -> tuple[float, float]:
    """The day's totals of the normalised costs (sum over steps of f1/F1_ref, f2/F2_ref)."""
    return float((steps["f1"] / refs[0]).sum()), float((steps["f2"] / refs[1]).sum())


if __name__ == "__main__":
    main()
