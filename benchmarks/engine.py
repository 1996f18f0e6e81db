"""Per-step cost of the OpenDSS engine on the embedded feeder (issue: feeder core).

One step = set every power (55 loads + 3 CPs + 12 PVs) + solve + read all node voltages. The
whole step is compared with a bare ``Solve()`` after the same kind of change, measured in the
same run (ratios are steadier than absolute times on shared machines).

Usage::

    python benchmarks/engine.py [--steps 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from powertrip_env.config import load_scenario_config
from powertrip_env.grid.devices import DevicePlacement
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import embedded_feeder

TAN_PHI = np.tan(np.arccos(0.95))


def _inputs(rng: np.random.Generator, n_steps: int, devices: DevicePlacement) -> list:
    return [
        (
            rng.uniform(0.2, 3.0, 55),
            rng.uniform(0.2, 3.0, 55) * TAN_PHI,
            rng.uniform(0.0, 7.0, devices.n_cp),
            rng.uniform(0.0, 4.0, devices.n_pv),
        )
        for _ in range(n_steps)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    devices = load_scenario_config().devices
    engine = OpenDSSEngine(embedded_feeder(), devices)
    rng = np.random.default_rng(0)
    inputs = _inputs(rng, args.steps, devices)
    for x in inputs[:50]:  # warm up
        engine.set_powers(*x)
        engine.run_pf()

    t_set = t_solve = t_read = 0.0
    for x in inputs:
        t0 = time.perf_counter()
        engine.set_powers(*x)
        t1 = time.perf_counter()
        engine.run_pf()
        t2 = time.perf_counter()
        engine.node_voltages()
        t3 = time.perf_counter()
        t_set, t_solve, t_read = t_set + t1 - t0, t_solve + t2 - t1, t_read + t3 - t2

    # Bare Solve() on the raw OpenDSS interface, after the same changes made outside the clock.
    t_bare = 0.0
    for x in inputs:
        engine.set_powers(*x)
        t0 = time.perf_counter()
        engine.dss.Solution.Solve()
        t_bare += time.perf_counter() - t0

    t0 = time.perf_counter()
    for x in inputs:
        engine.set_powers(*x)
        engine.run_pf()
        engine.node_voltages()
    t_step = time.perf_counter() - t0
    engine.close()

    n = args.steps
    us = 1e6 / n
    print(f"embedded feeder, {devices.n_cp} CPs + {devices.n_pv} PVs + 55 loads, {n} steps")
    print(f"  set powers      {t_set * us:8.1f} us")
    print(f"  solve           {t_solve * us:8.1f} us")
    print(f"  read voltages   {t_read * us:8.1f} us")
    print(f"  whole step      {t_step * us:8.1f} us  ({n / t_step:,.0f} steps/s)")
    print(f"  bare Solve()    {t_bare * us:8.1f} us")
    ratio = t_step / t_bare
    verdict = "MET" if ratio <= 1.5 else "MISSED"
    print(f"ratio whole step / bare solve: {ratio:.2f} (target <= 1.5): {verdict}")


if __name__ == "__main__":
    main()
