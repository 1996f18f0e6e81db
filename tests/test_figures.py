"""Figures and the feeder drawing: each writes a readable PNG; distances follow the cables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from experiments.feeder_drawing import (
    bus_distances_m,
    draw_feeder,
    feeder_lines,
    node_distances_m,
)
from experiments.figures import (
    plot_day_front,
    plot_ev_energy,
    plot_pareto_fronts,
    plot_pui_over_day,
    plot_pv_usage,
    plot_unbalance,
    plot_voltage_drop,
)
from powertrip_env.config import load_scenario_config
from powertrip_env.errors import FeederError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.enwl import load_enwl_feeder
from powertrip_env.grid.feeder import Feeder, embedded_feeder_dir
from powertrip_env.simulator import DayResult

CPS = ("cp1", "cp2", "cp3")
DT_H = 0.25


def synthetic_day(node_distance_m: dict[str, float], scale: float, seed: int) -> DayResult:
    """A day shaped like ``FeederSimulator.run``'s: 96 quarter-hour steps, three CPs."""
    rng = np.random.default_rng(seed)
    hour = np.arange(96) * DT_H
    sun = np.clip(np.sin((hour - 6.0) / 12.0 * np.pi), 0.0, None)
    evening = ((hour >= 17) & (hour < 22)).astype(float)
    steps = pd.DataFrame({"step": np.arange(96), "hour": hour, "converged": True})
    for k, cp in enumerate(CPS):
        request = 7.0 * evening
        steps[f"pui_{cp}"] = scale * (0.5 + evening * (k + 1) + 0.1 * rng.random(96))
        steps[f"vuf_{cp}"] = 0.5 * steps[f"pui_{cp}"]
        steps[f"power_unbalance_{cp}"] = 10.0 * evening
        steps[f"cp_kw_{cp}"] = scale * request
        steps[f"cp_request_kw_{cp}"] = request
    steps["v_min_pu"] = 1.03 - 0.12 * scale * evening - 0.01 * rng.random(96)
    steps["v_max_pu"] = 1.05 + 0.02 * sun
    steps["voltage_drop_pu"] = 1.0 - steps["v_min_pu"]
    steps["pv_available_kw"] = 45.0 * sun
    steps["pv_kw"] = steps["pv_available_kw"] * (1.0 - 0.2 * (1 - scale) * sun)
    steps["pv_curtailed_kw"] = steps["pv_available_kw"] - steps["pv_kw"]
    steps["cp_kw"] = steps[[f"cp_kw_{cp}" for cp in CPS]].sum(axis=1)
    steps["cp_request_kw"] = steps[[f"cp_request_kw_{cp}" for cp in CPS]].sum(axis=1)
    steps["f1"] = sum(steps[f"pui_{cp}"] ** 2 for cp in CPS)
    steps["f2"] = steps["pv_curtailed_kw"] ** 2
    distance = np.array(list(node_distance_m.values()))
    phase = np.array([int(n[-1]) for n in node_distance_m])
    worst = 1.03 - 0.12 * scale * distance / distance.max() * (1 + 0.1 * (phase == 1))
    requested = np.full(len(CPS), 7.0 * 5)
    return DayResult(
        steps=steps,
        worst_v_pu=worst,
        ev_requested_kwh=requested,
        ev_unserved_kwh=requested * (1 - scale),
        dt_h=DT_H,
    )


@pytest.fixture(scope="module")
def distances(feeder: Feeder) -> dict[str, float]:
    return node_distances_m(feeder)


@pytest.fixture(scope="module")
def results(distances: dict[str, float]) -> dict[str, DayResult]:
    return {
        "no control": synthetic_day(distances, 1.0, seed=0),
        "NSGA-II": synthetic_day(distances, 0.6, seed=1),
    }


def assert_readable_png(path: Path, min_px: tuple[int, int] = (300, 500)) -> None:
    """A PNG that exists, is a plausible size (rows, columns) and is not one flat colour."""
    assert path.is_file() and path.suffix == ".png" and path.stat().st_size > 0
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] >= min_px[0] and image.shape[1] >= min_px[1]
    assert image.shape[0] <= 4000 and image.shape[1] <= 4000
    assert np.ptp(image[..., :3]) > 0.5, "the image is (almost) a single colour"


# --- Figures --------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [("no control",), ("no control", "NSGA-II")])
def test_each_figure_writes_a_readable_png(
    labels: tuple[str, ...],
    results: dict[str, DayResult],
    distances: dict[str, float],
    tmp_path: Path,
) -> None:
    chosen = {label: results[label] for label in labels}
    paths = [
        plot_unbalance(chosen, tmp_path),
        plot_pui_over_day(chosen, tmp_path),
        plot_voltage_drop(chosen, tmp_path, distances, list(distances)),
        plot_pv_usage(chosen, tmp_path),
        plot_ev_energy(chosen, tmp_path, list(CPS)),
    ]
    assert len({p.name for p in paths}) == len(paths)
    for path in paths:
        assert path.parent == tmp_path
        assert_readable_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def test_pareto_fronts_small_multiples(tmp_path: Path) -> None:
    f1 = np.linspace(0.0, 4.0, 30)
    fronts = {f"{h:02d}:00": np.column_stack([f1 * h, 100.0 / (1.0 + f1)]) for h in (9, 12, 15, 18)}
    marked = {"12:00": {"no control": (50.0, 0.0), "chosen": (10.0, 30.0)}}
    assert_readable_png(plot_pareto_fronts(fronts, tmp_path, marked))


def test_pareto_fronts_reject_a_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        plot_pareto_fronts({"12:00": np.zeros((4, 3))}, tmp_path)


def test_day_front_with_every_controllers_day(tmp_path: Path) -> None:
    w1 = np.linspace(0.0, 1.0, 5)
    front = np.column_stack([40.0 - 35.0 * w1**0.5, 30.0 * w1**2])
    points = {"no control": (44.7, 0.0), "flat rate": (38.6, 0.0), "oracle": (13.7, 7.1)}
    path = plot_day_front(front, points, tmp_path, front_weights=w1)
    assert path == tmp_path / "day_pareto.png"
    assert_readable_png(path)
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        plot_day_front(np.zeros((0, 2)), points, tmp_path)


def test_figures_name_a_missing_column(results: dict[str, DayResult], tmp_path: Path) -> None:
    day = results["no control"]
    broken = DayResult(
        day.steps.drop(columns=["pv_kw"]), None, day.ev_requested_kwh, day.ev_unserved_kwh, DT_H
    )
    with pytest.raises(ValueError, match="pv_kw"):
        plot_pv_usage({"broken": broken}, tmp_path)
    with pytest.raises(ValueError, match="empty"):
        plot_unbalance({}, tmp_path)
    with pytest.raises(ValueError, match="pui_cp9"):
        plot_pui_over_day({"no control": day}, tmp_path, ["cp1", "cp9"])


def test_voltage_profile_rejects_misaligned_node_names(
    results: dict[str, DayResult], distances: dict[str, float], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="node names"):
        plot_voltage_drop(results, tmp_path, distances, list(distances)[:10])


# --- Distances ------------------------------------------------------------------------------


def test_distances_start_at_the_transformer_and_reach_about_300_m(
    distances: dict[str, float],
) -> None:
    assert distances["1.1"] == distances["1.2"] == distances["1.3"] == 0.0
    others = [d for node, d in distances.items() if not node.startswith("1.")]
    assert min(others) > 0.0
    assert 290.0 <= max(distances.values()) <= 310.0
    assert distances["899.2"] == pytest.approx(294.0, abs=1.0)  # the farthest load bus
    assert len(distances) == 3 * 906


def test_distances_grow_along_every_line(feeder: Feeder) -> None:
    distance = bus_distances_m(feeder)
    for line in feeder_lines(feeder):
        near, far = sorted((line.bus1, line.bus2), key=distance.__getitem__)
        assert distance[far] == pytest.approx(distance[near] + line.length_m)
    assert distance["1"] < distance["2"] < distance["3"] < distance["4"]


def test_distances_read_the_same_from_a_file_a_feeder_and_enwl(feeder: Feeder) -> None:
    # enwl_n1f1 (the default) takes its lines from ieee_lv's files.
    from_file = bus_distances_m(embedded_feeder_dir("ieee_lv") / "Lines.dss")
    assert from_file == bus_distances_m(feeder)
    enwl = bus_distances_m(load_enwl_feeder(Path(__file__).parent / "data" / "enwl", 1, 1))
    assert enwl["1"] == 0.0 and enwl["2"] == pytest.approx(40.5)


def test_distances_need_a_root_bus_on_the_feeder(feeder: Feeder) -> None:
    with pytest.raises(FeederError, match="root bus"):
        node_distances_m(feeder, root_bus="no-such-bus")


# --- Drawing --------------------------------------------------------------------------------


def test_drawing_marks_every_device(feeder: Feeder, tmp_path: Path) -> None:
    devices = load_scenario_config().devices
    assert feeder.bus_coords_csv is not None
    drawing = draw_feeder(feeder.bus_coords_csv, feeder, devices, tmp_path / "feeder.png")
    assert (drawing.n_cps, drawing.n_pvs) == (devices.n_cp, devices.n_pv)
    assert drawing.n_lines == 905
    assert_readable_png(drawing.path, min_px=(600, 600))


def test_drawing_rejects_a_device_without_coordinates(feeder: Feeder, tmp_path: Path) -> None:
    assert feeder.bus_coords_csv is not None
    devices = DevicePlacement(cps=(DeviceSpec("cp1", "nowhere", 1, 7.0),))
    with pytest.raises(FeederError, match="nowhere"):
        draw_feeder(feeder.bus_coords_csv, feeder, devices, tmp_path / "feeder.png")
