"""Milliseconds per rendered frame: enough for ``RecordVideo`` of a whole day?

Steps a whole day of each env with ``render_mode="rgb_array"`` and times every ``render()``
call on its own (the step is not counted):

1. ``PowerTripEnv`` (the frame from the engine's node voltages);
2. ``BatchedPowerTripEnv`` with ``--copies`` copies, rendering copy 0 (the frame also
   computes that copy's voltage at every bus from the reduced model's solution).

Target: under 20 ms a frame (mean and 95th percentile), so that drawing a day's 288 frames
costs under 6 s. Also reports the wall time of a whole day recorded with Gymnasium's
``RecordVideo`` (MP4 encoding included) when moviepy is installed, and can save one frame.

Usage::

    python benchmarks/render.py [--copies 16] [--frame frame.png]
"""

from __future__ import annotations

import os

# Batched numpy is steadier single-threaded on small machines; set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

import powertrip_env  # noqa: F401 - registers the ids
from powertrip_env.env import PowerTripEnv
from powertrip_env.vector_env import BatchedPowerTripEnv

DAY_SEED = 7
TARGET_MS = 20.0


def _time_day(step: Callable[[], object], render: Callable[[], object]) -> np.ndarray:
    """Milliseconds of each ``render()`` after each of a day's steps."""
    times = []
    for _ in range(288):
        step()
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    return 1e3 * np.array(times)


def _report(name: str, ms: np.ndarray) -> bool:
    mean, p95 = float(ms.mean()), float(np.percentile(ms, 95))
    met = mean < TARGET_MS and p95 < TARGET_MS
    print(
        f"{name:<34} mean {mean:6.2f} ms  p95 {p95:6.2f} ms  max {ms.max():6.2f} ms  "
        f"({1e3 / mean:5.0f} frames/s) target < {TARGET_MS:g} ms: {'MET' if met else 'NOT MET'}"
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=16, help="copies of the batched env")
    parser.add_argument("--frame", type=Path, help="save the single env's frame at 12:30 here")
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    env = PowerTripEnv(day_seed=DAY_SEED, info_metrics=False, render_mode="rgb_array")
    env.reset(seed=0)
    env.render()  # builds the geometry and the static background once
    env.reset(seed=0)
    single = _time_day(lambda: env.step(rng.random(15).astype(np.float32)), env.render)
    if args.frame is not None:
        env.reset(seed=0)
        for _ in range(150):
            env.step(np.full(15, 0.5, dtype=np.float32))
        from PIL import Image

        frame = env.render()
        assert frame is not None
        Image.fromarray(frame).save(args.frame)
        print(f"frame at 12:30 written to {args.frame}")
    env.close()

    venv = BatchedPowerTripEnv(args.copies, day_seed=DAY_SEED, render_mode="rgb_array")
    venv.reset(seed=0)
    venv.render()
    batched = _time_day(
        lambda: venv.step(rng.random((args.copies, 15)).astype(np.float32)), venv.render
    )
    venv.close()

    print("one frame = (480, 720, 3) uint8, a day = 288 frames, after each step of the day")
    ok = _report("PowerTripEnv", single)
    ok &= _report(f"BatchedPowerTripEnv({args.copies}), copy 0", batched)

    if importlib.util.find_spec("moviepy") is None:
        print("RecordVideo: moviepy is not installed (pip install moviepy); not timed")
    else:
        with tempfile.TemporaryDirectory() as folder:
            recorded = gym.wrappers.RecordVideo(
                gym.make("powertrip/PowerTrip-v0", day_seed=DAY_SEED, render_mode="rgb_array"),
                str(Path(folder) / "video"),
                episode_trigger=lambda _: True,
                disable_logger=True,
            )
            start = time.perf_counter()
            recorded.reset(seed=0)
            done = False
            while not done:
                *_, terminated, truncated, _ = recorded.step(recorded.action_space.sample())
                done = terminated or truncated
            recorded.close()  # writes the MP4
            wall = time.perf_counter() - start
            size = sum(p.stat().st_size for p in Path(folder).glob("video/*.mp4"))
        print(
            f"RecordVideo of a whole day (steps + frames + MP4): {wall:.1f} s, {size / 1e3:.0f} kB"
        )
    print("all targets MET" if ok else "some targets NOT MET")


if __name__ == "__main__":
    main()
