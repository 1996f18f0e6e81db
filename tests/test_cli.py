"""The ``powertrip`` command end to end on short horizons."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from experiments.cli import main


@pytest.mark.slow
def test_simulate_writes_the_run_folder(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--steps", "24", "--out", str(tmp_path), "--no-progress"]) == 0
    (run,) = tmp_path.iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["seed"] == 0 and "git_commit" in config and "packages" in config
    results = pd.read_parquet(run / "results.parquet")
    assert len(results) == 24 and {"f1", "f2", "v_min_pu", "controller"} <= set(results)
    figures = sorted(p.name for p in (run / "figures").glob("*.png"))
    assert len(figures) >= 4
    assert (run / "report.md").read_text().count("![") == len(figures)
    assert "pv_usage_efficiency" in capsys.readouterr().out


def test_bad_scenario_is_a_clean_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "profiles: {resolution_min: 7}\n"
        "devices: {cps: [{name: a, bus: '1', phase: 1, p_max_kw: 7}]}\n"
    )
    assert main(["simulate", "--scenario", str(bad), "--out", str(tmp_path)]) == 2
    assert "resolution_min" in capsys.readouterr().err


def test_buses_lists_the_feeder(capsys) -> None:
    assert main(["buses"]) == 0
    out = capsys.readouterr().out
    assert "906 LV buses" in out and "LOAD53" in out.upper()
