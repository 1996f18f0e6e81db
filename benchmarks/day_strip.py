"""Seconds the controlled day's pictures add to a report: replay, strip and GIF.

Runs one day of the default scenario under a controller (``powertrip simulate``'s choices),
then times what the reports do with it (:mod:`experiments.day_strip`): the replay of its
recorded setpoints in ``PowerTripEnv(render_mode="rgb_array")`` with the frames rendered, the
strip PNG and the GIF. Writes ``day_strip.png`` and ``day.gif`` into ``--out``.

Usage::

    python benchmarks/day_strip.py [--controller oracle] [--seed 0] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from experiments.day_strip import RecordedSetpoints, replay_day, write_gif, write_strip
from experiments.simulate import SIMULATE_CONTROLLERS, day_controller
from powertrip_env.config import load_scenario_config
from powertrip_env.scenario import build_scenario
from powertrip_env.simulator import FeederSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--controller", default="oracle", choices=SIMULATE_CONTROLLERS)
    parser.add_argument("--seed", type=int, default=0, help="the day's seed")
    parser.add_argument("--out", default="day_strip_out", help="folder for the PNG and GIF")
    args = parser.parse_args()
    config = load_scenario_config(None)
    with FeederSimulator(build_scenario(config, args.seed)) as sim:
        start = time.perf_counter()
        sim.run(day_controller(args.controller, sim, (0.5, 0.5)))
        day_s = time.perf_counter() - start
        x_kw = sim.log.x_kw.copy()
    out = Path(args.out)
    start = time.perf_counter()
    replay = replay_day(config, args.seed, RecordedSetpoints(x_kw), len(x_kw))
    replay_s = time.perf_counter() - start
    label = args.controller.replace("_", " ")
    title = f"{label}, seed {args.seed}: the feeder at moments of the day (lowest phase voltage)"
    start = time.perf_counter()
    strip = write_strip(replay, out / "day_strip.png", title)
    strip_s = time.perf_counter() - start
    start = time.perf_counter()
    gif = write_gif(replay, out / "day.gif")
    gif_s = time.perf_counter() - start
    assert gif is not None
    print(f"{args.controller} day (not part of the pictures): {day_s:6.2f} s")
    print(f"replay in the env, {len(replay.frames):3d} frames rendered: {replay_s:6.2f} s")
    print(f"strip PNG, {len(replay.moments)} frames:               {strip_s:6.2f} s")
    print(f"GIF, {len(replay.gif_steps)} frames:                      {gif_s:6.2f} s")
    print(f"pictures in all:                          {replay_s + strip_s + gif_s:6.2f} s")
    for path in (strip, gif):
        print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
