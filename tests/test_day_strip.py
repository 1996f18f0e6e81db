"""The controlled day in pictures: the strip's moments, its settings, and the simulate report."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

from experiments.cli import main
from experiments.day_strip import DayStripSettings, strip_moments
from experiments.simulate import SimulateArgs, simulate
from powertrip_env.errors import ConfigError
from powertrip_env.render import FRAME_SHAPE


def test_moments_are_the_clock_times_and_the_days_peaks_in_time_order() -> None:
    dt_h = 0.25  # 96 steps
    pv = np.zeros(96)
    pv[52] = 5.0  # 13:00
    cp = np.zeros(96)
    cp[72] = 7.0  # 18:00
    cp[50] = 9.0  # a higher midday (fleet) peak: not the evening's
    f1 = np.zeros(96)
    f1[72] = 2.0  # the evening EV peak is also the worst unbalance: one frame, both labels
    assert strip_moments(dt_h, pv, cp, f1) == [
        ("night", 12),
        ("morning", 30),
        ("PV peak", 52),
        ("worst f1, evening EV peak", 72),
        ("late evening", 88),
    ]
    # A short night horizon without sun or EVs still gets two frames: its first and last.
    assert strip_moments(dt_h, np.zeros(8), np.zeros(8), np.zeros(8)) == [
        ("step", 0),
        ("step", 7),
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"gif": "yes"}, "gif"),
        ({"strip": 1}, "strip"),
        ({"gif_step_min": 0}, "gif_step_min"),
        ({"gif_step_min": True}, "gif_step_min"),
        ({"colour": "heat"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        DayStripSettings(**changes)  # type: ignore[arg-type]


def test_simulate_report_shows_the_day_in_frames(tmp_path: Path) -> None:
    run = simulate(
        SimulateArgs(steps=100, out=str(tmp_path), progress=False, controller="pv_following")
    )
    report = (run / "report.md").read_text(encoding="utf-8")
    assert "![pv following: the day in frames](figures/day_strip.png)" in report
    assert "![pv following: the whole day](figures/day.gif)" in report
    strip = np.asarray(mpimg.imread(run / "figures" / "day_strip.png"))
    assert strip.shape[0] >= 400 and strip.shape[1] >= 1500  # tiles of the 720-px frames
    with Image.open(run / "figures" / "day.gif") as gif:
        # 100 five-minute steps, a frame every 30 minutes.
        assert (gif.n_frames, gif.size) == (16, (FRAME_SHAPE[1], FRAME_SHAPE[0]))
        gif.seek(0)
        first = np.asarray(gif.convert("RGB"))
        gif.seek(gif.n_frames - 1)
        last = np.asarray(gif.convert("RGB"))
    assert (first != last).any()


def test_simulate_no_pictures_draws_none(tmp_path: Path) -> None:
    args = ["simulate", "--steps", "4", "--out", str(tmp_path), "--no-progress", "--no-pictures"]
    assert main(args) == 0
    (run,) = tmp_path.iterdir()
    assert not (run / "figures" / "day_strip.png").exists()
    assert "day_strip" not in (run / "report.md").read_text(encoding="utf-8")
