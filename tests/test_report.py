"""Indicators on hand-computed cases, the report's statistics and figures, and the report
itself: its tables and figures, and how headless Chromium renders it offline."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from experiments import indicators
from experiments.benchmark import run_benchmark
from experiments.benchmark_config import TestDay, benchmark_config_from_dict, day_scenario
from experiments.benchmark_figures import plot_unbalance_heatmap
from experiments.day_strip import replay_day
from experiments.report import format_ci, mean_ci, recorded_setpoints
from powertrip_env import metrics
from powertrip_env.config import default_scenario_path, scenario_config_from_dict
from powertrip_env.errors import ConfigError
from powertrip_env.render import FRAME_SHAPE

FRONT = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# --------------------------------------------------------------------------- indicators
def test_hypervolume_of_a_staircase() -> None:
    # Rectangles up to (1.1, 1.1): 0.3 x 0.3 + 0.3 x 0.6 + 0.3 x 0.9.
    assert indicators.hypervolume(FRONT) == pytest.approx(0.54)
    assert indicators.hypervolume([[1.2, 0.1]]) == 0.0  # beyond the reference point
    assert indicators.hypervolume(np.zeros((0, 2))) == 0.0


def test_igd_plus_and_epsilon_of_a_point_against_a_front() -> None:
    # From (0.5, 0.5): 0.3 short of (0.2, .) and of (., 0.2); nothing short of (0.5, 0.5).
    assert indicators.igd_plus([0.5, 0.5], FRONT) == pytest.approx(0.2)
    assert indicators.epsilon_additive([0.5, 0.5], FRONT) == pytest.approx(0.3)
    # A point that dominates the whole front: nothing short, negative epsilon.
    assert indicators.igd_plus([0.1, 0.1], FRONT) == 0.0
    assert indicators.epsilon_additive([0.1, 0.1], FRONT) == pytest.approx(-0.1)


def test_dominance_is_pareto_dominance() -> None:
    assert indicators.dominated_by(FRONT, [0.6, 0.6])
    assert not indicators.dominated_by(FRONT, [0.5, 0.5])  # equal to a front point
    assert not indicators.dominated_by(FRONT, [0.1, 0.9])


def test_indicators_go_through_the_one_sign_convention() -> None:
    refs = (4.0, 10.0)
    f = np.array([[2.0, 5.0], [1.0, 8.0]])
    costs = indicators.normalised_costs(f, refs)
    np.testing.assert_allclose(costs, metrics.normalise(f, refs))
    rewards = metrics.objectives_to_reward(costs)
    np.testing.assert_allclose(indicators.costs_from_rewards(rewards), costs, rtol=1e-6)
    with pytest.raises(ConfigError, match="f_ref"):
        indicators.normalised_costs(f, (0.0, 1.0))


def test_comparable_steps_follow_the_ev_energy_delivered() -> None:
    # NSGA-II charges 7 kW at step 1; the agent spreads it over steps 1 and 2.
    rows = [
        {"day": "d", "seed": 0, "controller": c, "step": t, "cp_kw_cp1": kw, "cp_kw": kw}
        for c, powers in (("nsga2", [0, 7, 0, 0]), ("agent", [0, 3, 4, 0]))
        for t, kw in enumerate(powers)
    ]
    frame = pd.DataFrame(rows)
    same = indicators.comparable_steps(frame, energy_guarantee=True)
    assert same[frame["controller"] == "agent"].tolist() == [True, True, False, True]
    assert same[frame["controller"] == "nsga2"].all()
    assert indicators.comparable_steps(frame, energy_guarantee=False).all()


def test_mean_and_95_percent_interval() -> None:
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, 2) x sd 1 / sqrt(3)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert np.isnan(mean_ci([5.0])[1]) and format_ci([5.0]) == "5"
    assert format_ci([]) == "–"


def pixels(png: bytes | Path) -> np.ndarray:
    source = io.BytesIO(png) if isinstance(png, bytes) else png
    return np.asarray(mpimg.imread(source, format="png"))[..., :3]


def assert_drawn(image: np.ndarray, min_width: int = 600, min_height: int = 300) -> None:
    """A figure of a reasonable size with ink and several colours on it."""
    height, width = image.shape[:2]
    assert width >= min_width and height >= min_height, image.shape
    ink = (image < 0.9).any(axis=-1).mean()
    colours = len(np.unique((image * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert ink > 0.03 and colours > 20, (ink, colours)


def test_heat_map_of_unbalance(tmp_path: Path) -> None:
    hours = np.arange(96) * 0.25
    pui = np.vstack([np.sin(hours / 24 * np.pi) * (k + 1) for k in range(3)])
    path = plot_unbalance_heatmap(
        {"no control": pui, "nsga2": pui / 2}, hours, ["cp1", "cp2", "cp3"], tmp_path
    )
    assert_drawn(pixels(path))
    with pytest.raises(ValueError, match="CPs, steps"):
        plot_unbalance_heatmap({"x": pui[:2]}, hours, ["cp1", "cp2", "cp3"], tmp_path)


# ----------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No control and NSGA-II on a summer weekday to 13:00 (15-minute steps), two seeds."""
    folder = tmp_path_factory.mktemp("report")
    scenario = yaml.safe_load(default_scenario_path().read_text(encoding="utf-8"))
    scenario["profiles"]["resolution_min"] = 15
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario), encoding="utf-8")
    config = benchmark_config_from_dict(
        {
            "scenario": str(folder / "scenario.yaml"),
            "seeds": [0, 1],
            "steps": 52,
            "nsga2": {"pop_size": 8, "n_gen": 3},
        }
    )
    return run_benchmark(config, run_dir=folder / "run", workers=1, progress=False).run_dir


def embedded_images(page: str) -> list[bytes]:
    found = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    return [base64.b64decode(data) for data in found]


def test_report_has_the_tables_and_every_figure(report_run: Path) -> None:
    page = (report_run / "report.html").read_text(encoding="utf-8")
    md = (report_run / "report.md").read_text(encoding="utf-8")
    for text in (page, md):
        assert "Results: all test days" in text and "summer-weekday" in text
        assert "95%" in text and "Hypervolume" in text
        assert "decision time per step (ms)" in text and "IGD+" in text
    images = embedded_images(page)
    # Unbalance per CP bus, PUI over the day per controller, voltage drop, PV usage, EV
    # energy, Pareto fronts, the heat map, the strip.
    assert len(images) == 8
    for png in images:
        assert_drawn(pixels(png))
    assert len(re.findall(r"src='data:image/gif;base64,", page)) == 1  # the day's GIF
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(linked) == 9 and all((report_run / p).is_file() for p in linked)
    assert (report_run / "figures" / "summer-weekday" / "pui_over_day.png").is_file()
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)  # nothing online


def test_report_shows_the_controlled_day_in_frames(report_run: Path) -> None:
    folder = report_run / "figures" / "summer-weekday"
    strip = pixels(folder / "day_strip.png")
    assert_drawn(strip, min_width=1500, min_height=800)  # 3 x 2 tiles of the feeder
    with Image.open(folder / "day.gif") as gif:
        # 52 steps of 15 minutes, a frame every 30 minutes, each the env's full frame.
        assert (gif.n_frames, gif.size) == (26, (FRAME_SHAPE[1], FRAME_SHAPE[0]))
    md = (report_run / "report.md").read_text(encoding="utf-8")
    assert "replayed from its setpoints in the env (nsga2, summer-weekday, seed 0)" in md


def test_the_replayed_day_is_the_recorded_day(report_run: Path) -> None:
    meta = json.loads((report_run / "config.json").read_text(encoding="utf-8"))
    base = scenario_config_from_dict(meta["config"])
    results = pd.read_parquet(report_run / "results.parquet")
    fronts = pd.read_parquet(report_run / "fronts.parquet")
    mine = (results["day"] == "summer-weekday") & (results["seed"] == 1)
    rows = results[mine & (results["controller"] == "nsga2")].sort_values("step")
    fronts = fronts[(fronts["day"] == "summer-weekday") & (fronts["seed"] == 1)]
    setpoints = recorded_setpoints(rows, fronts, base)
    assert setpoints.approximated_steps == 0  # every PV setpoint from NSGA-II's chosen point
    config = day_scenario(base, TestDay("summer", "weekday"))
    replay = replay_day(config, 1, setpoints, len(rows))
    # Curtailment follows from the setpoints alone: exact. Unbalance agrees to the power
    # flow's tolerance (OpenDSS starts each solve from the last one, and NSGA-II's re-checks
    # of its front ran between the recorded steps).
    np.testing.assert_allclose(replay.f_norm[:, 1], rows["f2_norm"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(replay.f_norm[:, 0], rows["f1_norm"], rtol=5e-3, atol=1e-6)
    moments = {name: t for label, t in replay.moments for name in label.split(", ")}
    assert {"night", "morning", "PV peak"} <= set(moments) and len(replay.moments) >= 4
    night, pv_peak = replay.frames[moments["night"]], replay.frames[moments["PV peak"]]
    assert night.shape == pv_peak.shape == (*FRAME_SHAPE, 3)
    # The feeder itself (left square), not only the panel's text, changes with the sun.
    changed = (night[:, : FRAME_SHAPE[0]] != pv_peak[:, : FRAME_SHAPE[0]]).any(axis=-1)
    assert changed.mean() > 0.01
    again = replay_day(config, 1, setpoints, len(rows))  # seeded: the same pictures
    assert again.moments == replay.moments
    assert all(np.array_equal(again.frames[t], f) for t, f in replay.frames.items())


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (chromium)")
def test_report_renders_offline_in_headless_chromium(report_run: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    page = (report_run / "report.html").read_text(encoding="utf-8")
    # A copy with a probe that writes what the browser laid out into the DOM.
    probe = """<script>
      const images = [...document.images].map(i => [i.complete, i.naturalWidth, i.width]);
      const tables = [...document.querySelectorAll('table')].map(t => t.rows.length);
      const pre = document.createElement('pre'); pre.id = 'probe';
      pre.textContent = JSON.stringify({images, tables}); document.body.appendChild(pre);
    </script>"""
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    common = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
    ]
    dom = subprocess.run(
        [*common, "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    laid_out = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(laid_out["images"]) == 8  # seven PNGs and the GIF
    assert all(
        done and natural >= 600 and shown > 100 for done, natural, shown in laid_out["images"]
    )
    assert len(laid_out["tables"]) == 2 and min(laid_out["tables"]) >= 2  # results, hypervolume
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            *common,
            "--hide-scrollbars",
            "--window-size=1280,2000",
            f"--screenshot={shot}",
            (report_run / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert_drawn(pixels(shot), min_width=1280, min_height=2000)
