"""The ``powertrip`` command: thin argument parsing over the library (STYLE.md habit 9)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from powertrip_env.errors import PowerTripError


def _simulate(ns: argparse.Namespace) -> None:
    from experiments.simulate import SimulateArgs, simulate

    simulate(
        SimulateArgs(
            scenario=ns.scenario,
            seed=ns.seed,
            steps=ns.steps,
            out=ns.out,
            progress=not ns.no_progress,
        )
    )


def _buses(ns: argparse.Namespace) -> None:
    from powertrip_env.config import load_scenario_config
    from powertrip_env.grid.engine import OpenDSSEngine

    feeder = load_scenario_config(ns.scenario).feeder.build()
    with OpenDSSEngine(feeder) as engine:
        print(f"{feeder.name}: {len(engine.bus_names)} LV buses")
        loads = dict(zip(engine.load_nodes, engine.load_names, strict=True))
        for bus in engine.bus_names:
            houses = [
                f"{n} ({node})" for node, n in loads.items() if node.split(".")[0] == bus.lower()
            ]
            print(bus + ("  loads: " + ", ".join(houses) if houses else ""))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=None, help="scenario YAML (default: the shipped one)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="powertrip", description="Smart control of EV charging and PV on LV feeders."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="a day under no control, with figures and a report")
    _common(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the day's profiles")
    p.add_argument("--steps", type=int, default=None, help="only the first N steps")
    p.add_argument("--out", default="runs", help="folder for run folders")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("buses", help="list the feeder's LV buses and the loads on them")
    _common(p)
    p.set_defaults(func=_buses)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        ns.func(ns)
    except PowerTripError as exc:
        print(f"powertrip: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
