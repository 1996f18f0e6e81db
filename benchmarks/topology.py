"""What the broken-feeder guards cost on the embedded feeder.

* the topology check (``powertrip_env.grid.topology``), once per engine build;
* the dead-device-node check, once per solve read (``OpenDSSEngine.state`` and
  ``read_cp_buses``), beside a whole step (set powers, solve, read the CP buses).

Usage::

    python benchmarks/topology.py
"""

from __future__ import annotations

import timeit

import numpy as np

from powertrip_env.config import load_scenario_config
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.topology import circuit_topology


def main() -> None:
    config = load_scenario_config()
    with OpenDSSEngine(config.feeder.build(), config.devices) as engine:
        n = engine.n_loads
        load_p, load_q = np.full(n, 0.5), np.full(n, 0.1)
        cp, pv = np.full(config.devices.n_cp, 3.0), np.ones(config.devices.n_pv)

        def step() -> None:
            engine.set_powers(load_p, load_q, cp, pv)
            engine.read_cp_buses(*engine.run_pf())

        step()
        volts = engine.all_voltages()
        check = min(timeit.repeat(lambda: engine._dead_device_nodes(volts), number=20_000)) / 2e4
        whole = min(timeit.repeat(step, number=2_000)) / 2e3
        topology = min(timeit.repeat(lambda: circuit_topology(engine.dss), number=5)) / 5
    print(
        f"dead-device-node check: {check * 1e6:.1f} us per solve, {100 * check / whole:.1f} % of "
        f"a step ({whole * 1e6:.0f} us: set powers, solve, read the CP buses)"
    )
    print(f"topology check: {topology * 1e3:.1f} ms per engine build")


if __name__ == "__main__":
    main()
