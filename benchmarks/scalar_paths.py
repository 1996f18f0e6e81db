"""What the scalar fast paths save over their batched originals, measured on one step.

Two pieces of logic keep a per-step scalar twin beside their one batched implementation, each
held equal to it by a test (architecture.md §2, conventions.md habit 4):

* ``DayLog.row`` (the env's per-step ``info`` with every metric) beside ``DayLog.columns``
  (the batched pass over a range of steps; ``tests/test_env.py`` holds the two equal);
* ``metrics.pui_of_buses`` and siblings (the unbalance at a few CP buses of one step, in
  plain Python) beside ``metrics.pui`` and siblings (``tests/test_metrics.py``).

This script times each twin against the batched original on the same step of the default
day, so that the reason to keep a twin is a measured number, not a remembered one. A twin
that no longer saves time is a candidate for deletion.

Usage::

    python benchmarks/scalar_paths.py [--step 140]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import numpy as np

from baselines.no_control import NoControl
from powertrip_env import metrics
from powertrip_env.config import load_scenario_config
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator


def _us(fn: Callable[[], object], number: int = 300) -> float:
    """Best of five repeats, microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _line(name: str, twin_us: float, batched_us: float) -> str:
    return (
        f"  {name:<28} twin {twin_us:8.1f} us   batched {batched_us:8.1f} us   "
        f"batched / twin = {batched_us / twin_us:5.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=140, help="step of the default day")
    args = parser.parse_args()
    scenario = build_scenario(load_scenario_config(), 0)
    with FeederSimulator(scenario) as sim:
        sim.run(NoControl())
        log, layout, t = sim.log, sim.layout, args.step

        def row_from_columns() -> dict[str, object]:
            return {k: v[0].item() for k, v in log.columns(layout, t, t + 1).items()}

        v_cp = log.v_cp_bus[t]
        v_mag, p_phase = np.abs(v_cp), log.p_phase_cp_bus_kw[t]
        print(f"default day, seed 0, step {t}, {sim.n_cp} CP buses; best of 5 repeats")
        print(
            _line("day log row (env info)", _us(lambda: log.row(layout, t)), _us(row_from_columns))
        )
        print(
            _line(
                "PUI at the CP buses",
                _us(lambda: metrics.pui_of_buses(v_mag)),
                _us(lambda: metrics.pui(v_mag).tolist()),
            )
        )
        print(
            _line(
                "VUF at the CP buses",
                _us(lambda: metrics.vuf_of_buses(v_cp)),
                _us(lambda: metrics.vuf(v_cp).tolist()),
            )
        )
        print(
            _line(
                "power unbalance at the CP buses",
                _us(lambda: metrics.power_unbalance_of_buses(p_phase)),
                _us(lambda: metrics.power_unbalance(p_phase).tolist()),
            )
        )


if __name__ == "__main__":
    main()
