"""``powertrip buses``, ``feeders``, ``sweep-feeders`` and ``draw`` on ENWL feeders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from experiments.cli import main

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "enwl_sample"  # real ENWL feeders (CC BY 4.0, see NOTICE)
RF1 = DATA / "enwl_quirks" / "RF1"


def scenario_file(tmp_path: Path, feeder: dict[str, object]) -> Path:
    path = tmp_path / "scenario.yaml"
    devices = {
        "cps": {"count": 2, "placement": "remote_end"},
        "pvs": {"count": 3, "placement": "spread", "kwp": 4},
    }
    path.write_text(yaml.safe_dump({"feeder": feeder, "devices": devices}))
    return path


def test_buses_sorted_by_distance_with_phases(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["buses", "--sort", "distance", "--houses", "--reverse"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("enwl_n1f1: 906 LV buses, 55 houses (a 21, b 19, c 15)")
    assert lines[1].split() == ["bus", "distance_m", "phases", "houses"]
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 55  # one per house bus
    assert rows[0][:4] == ["899", "293.7", "abc", "LOAD53"]  # the farthest house first
    distances = [float(row[1]) for row in rows]
    assert distances == sorted(distances, reverse=True)


def test_buses_of_an_enwl_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = scenario_file(tmp_path, {"kind": "enwl", "path": str(RF1)})
    assert main(["buses", "--scenario", str(scenario), "--sort", "phase"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("enwl_rf1: 6 LV buses, 5 houses (a 1, b 4, c 0)")
    assert "LOAD3 (abc)" in out  # the three-phase load is listed, not counted as a house


def test_feeders_lists_every_feeder_and_why_one_does_not_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "enwl"
    shutil.copytree(SAMPLE, root)
    shutil.copytree(RF1, root / "RF1")
    broken = root / "RF1" / "Lines.txt"
    broken.write_bytes(broken.read_bytes().replace(b"Linecode=4_XC", b"Linecode=nope"))
    table_csv = tmp_path / "feeders.csv"
    assert main(["feeders", str(root), "--csv", str(table_csv)]) == 0
    out = capsys.readouterr().out
    assert "4 feeder(s) found, 3 load" in out
    rows = {str(r["feeder"]): r for r in pd.read_csv(table_csv).to_dict("records")}
    assert list(rows) == ["enwl_n5_f4", "enwl_n13_f4", "enwl_n16_f1", "enwl_rf1"]
    n16, n5 = rows["enwl_n16_f1"], rows["enwl_n5_f4"]
    assert (n16["buses"], n16["houses"], n16["other_loads"]) == (471, 38, 1)
    assert (n5["houses_a"], n5["houses_b"], n5["houses_c"]) == (12, 9, 9)
    assert n5["farthest_house_m"] == pytest.approx(367.1, abs=0.1)
    assert n5["loads"] == "yes"
    reason = str(rows["enwl_rf1"]["loads"])
    assert reason.startswith("no: ") and "Lines.txt, line 4" in reason and "'nope'" in reason


def test_feeders_on_a_folder_without_feeders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["feeders", str(tmp_path)]) == 2
    assert "no feeder folder" in capsys.readouterr().err


def test_draw_an_enwl_feeder_from_its_xy_positions(tmp_path: Path) -> None:
    scenario = scenario_file(
        tmp_path, {"kind": "enwl", "path": str(SAMPLE), "network": 5, "feeder": 4}
    )
    out = tmp_path / "feeder.png"
    assert main(["draw", "--scenario", str(scenario), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_sweep_feeders_writes_one_table_and_a_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["sweep-feeders", str(DATA / "enwl_quirks"), "--steps", "6", "--workers", "1"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    table = pd.read_csv(run / "sweep.csv")
    assert table["feeder"].tolist() == ["enwl_rf1"]
    row = table.iloc[0]
    # 5 houses: the default rule's 3 CPs, then PV on the 2 houses left (of 12 asked)
    assert (row["houses"], row["cps"], row["pvs"]) == (5, 3, 2)
    assert (row["converged_steps"], row["steps"]) == (6, 6)
    assert row["steps_below_load_model_range"] == 0
    assert 0.9 < row["v_min_pu"] <= row["v_max_pu"] < 1.1 and row["losses_kwh"] > 0
    assert (run / "figures" / "sweep_distribution.png").is_file()
    assert "1 feeder(s), 0 failed" in capsys.readouterr().out


def test_sweep_refuses_devices_listed_bus_by_bus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from powertrip_env.config import default_scenario_path

    args = ["sweep-feeders", str(RF1), "--scenario", str(default_scenario_path())]
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "cannot fit every feeder" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_on_a_process_pool(tmp_path: Path) -> None:
    args = ["sweep-feeders", str(DATA), "--steps", "3", "--workers", "2"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    (run,) = tmp_path.iterdir()
    table = pd.read_csv(run / "sweep.csv")
    assert len(table) == 6 and table["error"].isna().all()
    assert (table["converged_steps"] == 3).all()


def test_sweep_template_keeps_the_load_model_and_rules(tmp_path: Path) -> None:
    from experiments.sweep import sweep_template

    template = tmp_path / "template.yaml"
    template.write_text(
        yaml.safe_dump(
            {
                "feeder": {"kind": "embedded", "load_model": "opendss"},
                "profiles": {"season": "winter"},
                "devices": {"cps": {"count": 1, "placement": "spread"}},
            }
        )
    )
    data = sweep_template(str(template), seed=7)
    assert data["feeder"] == {"load_model": "opendss"}
    assert data["profiles"] == {"season": "winter"}
    assert data["devices"] == {"cps": {"count": 1, "placement": "spread"}, "seed": 7}
    assert (
        main(
            [
                "sweep-feeders",
                str(RF1),
                "--scenario",
                str(template),
                "--steps",
                "2",
                "--workers",
                "1",
                "--out",
                str(tmp_path / "runs"),
            ]
        )
        == 0
    )
