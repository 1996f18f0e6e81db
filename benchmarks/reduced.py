"""Cost per candidate of the reduced network model against one full OpenDSS solve (DESIGN §8).

The reduced model solves a batch of candidates (3 CP + 12 PV setpoints each, the 55 houses
fixed, as within one timestep) on the default scenario; OpenDSS does one step per candidate
(set powers + solve + read the CP-bus phasors) at its default tolerance. Both are measured in
the same run, and their ratio is printed (ratios are steadier than times on shared machines).
The largest disagreement between the two over the candidates is printed as well.

Usage::

    python benchmarks/reduced.py [--candidates 2000] [--repeats 5]
"""

from __future__ import annotations

import os

# Batched numpy is steadier single-threaded on small machines (architecture.md §8); this must be set
# before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable

import numpy as np

from powertrip_env.config import load_scenario_config
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import embedded_feeder
from powertrip_env.grid.reduced import ReducedNetwork

TAN_PHI = np.tan(np.arccos(0.95))
BATCH_SIZES = (1, 100, 1000)


def _best_us_per_candidate(run: Callable[[], None], n_candidates: int, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return 1e6 * best / n_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--candidates", type=int, default=2000, help="OpenDSS solves to time")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()

    devices = load_scenario_config().devices
    engine = OpenDSSEngine(embedded_feeder(), devices)
    t0 = time.perf_counter()
    net = ReducedNetwork(engine)
    t_build = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    load_p = rng.uniform(0.2, 3.0, engine.n_loads)
    load_q = load_p * TAN_PHI
    n = max(args.candidates, max(BATCH_SIZES))
    cp = rng.uniform(0.0, 7.0, (n, devices.n_cp))
    pv = rng.uniform(0.0, 1.0, (n, devices.n_pv)) * [d.p_max_kw for d in devices.pvs]

    def opendss() -> None:
        for k in range(args.candidates):
            engine.set_powers(load_p, load_q, cp[k], pv[k])
            engine.run_pf()
            engine.cp_bus_phasors()

    opendss()  # warm up
    us_dss = _best_us_per_candidate(opendss, args.candidates, max(1, args.repeats // 2))

    print(
        f"embedded feeder, {devices.n_cp} CPs + {devices.n_pv} PVs + {engine.n_loads} loads, "
        f"{net.n_inj} injection nodes; reduced model built in {t_build:.2f} s; "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    print(f"  OpenDSS, one solve per candidate   {us_dss:8.1f} us/candidate")
    for b in BATCH_SIZES:
        reps = max(args.repeats, 1000 // b)

        def reduced(b: int = b) -> None:
            sol = net.solve(load_p, load_q, cp[:b], pv[:b])
            net.cp_bus_phasors(sol)

        reduced()  # warm up
        us = _best_us_per_candidate(reduced, b, reps)
        iterations = net.solve(load_p, load_q, cp[:b], pv[:b]).iterations
        print(
            f"  reduced model, batch {b:5d}         {us:8.1f} us/candidate "
            f"({iterations} iterations)   OpenDSS / reduced = {us_dss / us:6.1f}x"
        )

    # How far apart the two are, at OpenDSS's default tolerance (1e-4, architecture.md §8).
    sol = net.solve(load_p, load_q, cp[:100], pv[:100])
    v_red = net.cp_bus_phasors(sol)
    err = 0.0
    for k in range(100):
        engine.set_powers(load_p, load_q, cp[k], pv[k])
        engine.run_pf()
        err = max(err, float(np.abs(engine.cp_bus_phasors() - v_red[k]).max()))
    print(f"  max |V_reduced - V_OpenDSS| at CP buses over 100 candidates: {err / 230.0:.1e} pu")
    engine.close()


if __name__ == "__main__":
    main()
