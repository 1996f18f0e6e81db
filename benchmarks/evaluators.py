"""One NSGA-II day from the reduced and the OpenDSS evaluators, on ENWL's loads as written.

The feeder is ENWL network 1 feeder 1 with ENWL's own parameters (the embedded ``enwl_n1f1``
master, compiled as ``kind: master``) and ``load_model: opendss``: its loads keep OpenDSS's
default band (0.95-1.05 of 230 V) and leave it during the day. The default scenario's devices
and seed 0; NSGA-II with a small budget. For each evaluator the day's losses, f1 and f2 are
printed, then their relative differences and the verdict against the target (within 1e-6
relative). The OpenDSS evaluator solves its candidates in an engine of its own at 1e-10
(``baselines/nsga2.py``: stated precision); ``--tolerance`` solves the simulator's engine
(the applied steps and the re-check of each front, shared by both days) to that tolerance
instead of OpenDSS's 1e-4.

Usage::

    python benchmarks/evaluators.py [--steps 288] [--tolerance 1e-10] [--load-model opendss]
"""

from __future__ import annotations

import os

# Batched numpy is steadier single-threaded on small machines (architecture.md §8); this must
# be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from dataclasses import replace

import numpy as np

from baselines.nsga2 import NSGA2Config, NSGA2Controller
from powertrip_env.config import FeederConfig, load_scenario_config
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import embedded_feeder_dir
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=288, help="steps of the day to run")
    parser.add_argument("--tolerance", type=float, default=None, help="engine tolerance, pu")
    parser.add_argument("--load-model", default="opendss", help="constant_pq or opendss")
    parser.add_argument("--pop-size", type=int, default=20)
    parser.add_argument("--n-gen", type=int, default=10)
    args = parser.parse_args()

    master = embedded_feeder_dir("enwl_n1f1") / "Master.dss"
    feeder = FeederConfig(kind="master", path=str(master), load_model=args.load_model)
    scenario = build_scenario(replace(load_scenario_config(), feeder=feeder), 0)
    day = {}
    for evaluator in ("reduced", "opendss"):
        engine = (
            OpenDSSEngine(scenario.feeder, scenario.devices, 100, args.tolerance)
            if args.tolerance
            else None
        )
        config = NSGA2Config(pop_size=args.pop_size, n_gen=args.n_gen, evaluator=evaluator)
        t0 = time.perf_counter()
        with FeederSimulator(scenario, engine) as sim:
            controller = NSGA2Controller(sim, config)
            steps = sim.run(controller, steps=args.steps).steps
            controller.close()
        day[evaluator] = np.array([steps[k].sum() for k in ("losses_kw", "f1", "f2")])
        losses, f1, f2 = day[evaluator]
        print(
            f"{evaluator:8s} losses {losses * scenario.profiles.dt_h:.6f} kWh  f1 {f1:.6f}  "
            f"f2 {f2:.6f}  ({time.perf_counter() - t0:.1f} s)"
        )
    diff, scale = np.abs(day["reduced"] - day["opendss"]), np.abs(day["opendss"])
    rel = np.divide(diff, scale, out=np.zeros(3), where=scale > 0.0)
    print(f"relative difference: losses {rel[0]:.2e}  f1 {rel[1]:.2e}  f2 {rel[2]:.2e}")
    verdict = "MET" if rel.max() <= 1e-6 else "MISSED"
    print(f"same day from both evaluators (target: within 1e-6 relative): {verdict}")


if __name__ == "__main__":
    main()
