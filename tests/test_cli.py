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
    figures = sorted(p.name for p in (run / "figures").iterdir())  # PNGs and the day's GIF
    assert len(figures) >= 4
    assert (run / "report.md").read_text().count("![") == len(figures)
    # The default day stays inside its load model's range: nothing to warn about.
    assert json.loads((run / "summary.json").read_text())["warnings"] == []
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


# ------------------------------------------------------------------ one line for every error
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "--steps", "-5"], "--steps: must be a positive integer"),
        (["simulate", "--steps", "0"], "--steps: must be a positive integer"),
        (["optimize", "--steps", "0"], "--steps: must be a positive integer"),
        (["optimize", "--weights", "nan,nan"], "--weights: weights must be finite"),
        (["optimize", "--workers", "0"], "--workers: must be a positive integer"),
        (["optimize", "--workers", "-3"], "--workers: must be a positive integer"),
        (["simulate", "--seed", "-1"], "--seed: must be a non-negative integer"),
    ],
)
def test_bad_numbers_on_the_command_line_are_refused(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_optimize_workers_need_independent_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["optimize", "--workers", "2", "--no-progress"]) == 2
    line = _last_line(capsys)
    assert line.startswith("powertrip: error: --workers 2 needs independent timesteps")
    assert "energy_guarantee: false" in line


def test_resume_of_another_commands_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"command": "simulate", "config": {}}))
    assert main(["optimize", "--resume", str(tmp_path)]) == 2
    assert "not an optimize run folder (made by 'simulate')" in _last_line(capsys)
    (tmp_path / "config.json").write_text('{"command": "optim')  # truncated by a full disk
    assert main(["optimize", "--resume", str(tmp_path)]) == 2
    assert "is damaged (not JSON" in _last_line(capsys)


def test_out_paths_that_cannot_hold_a_run_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["simulate", "--steps", "1", "--out", str(a_file), "--no-progress"]) == 2
    assert _last_line(capsys) == f"powertrip: error: cannot use {str(a_file)!r}: not a " + (
        "directory (a file is in the way)"
    )
    too_long = tmp_path / ("x" * 300)
    assert main(["simulate", "--steps", "1", "--out", str(too_long), "--no-progress"]) == 2
    line = _last_line(capsys)
    assert "x" * 300 in line and "name too long" in line
    assert main(["draw", "--out", str(tmp_path)]) == 2
    assert _last_line(capsys) == f"powertrip: error: cannot use {str(tmp_path)!r}: Is a directory"


def test_permission_and_full_disk_errors_name_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import errno

    from experiments import runs

    def denied(out: object, *args: object) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(out))

    monkeypatch.setattr(runs, "new_run_dir", denied)
    assert main(["simulate", "--steps", "1", "--out", "/srv/runs", "--no-progress"]) == 2
    assert _last_line(capsys) == "powertrip: error: cannot use '/srv/runs': Permission denied"
    monkeypatch.undo()

    def full(path: Path, frame: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runs, "write_parquet", full)
    assert main(["simulate", "--steps", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    (run,) = tmp_path.iterdir()
    line = _last_line(capsys)
    assert line == f"powertrip: error: cannot use {str(run)!r}: No space left on device"


def test_an_unexpected_error_is_one_line_and_a_logged_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import experiments.simulate
    from experiments import runs

    def boom(args: object) -> None:
        runs.new_run_dir(tmp_path, "simulate", "x", 0)
        raise RuntimeError("boom")

    monkeypatch.setattr(experiments.simulate, "simulate", boom)
    assert main(["simulate"]) == 2
    line = _last_line(capsys)
    assert line.startswith("powertrip: error: unexpected RuntimeError: boom (full traceback in ")
    log = Path(line.split("full traceback in ")[1].rstrip(")"))
    assert log.parent.parent == tmp_path and log.name == "error.log"
    assert "Traceback" in log.read_text() and "RuntimeError: boom" in log.read_text()


def test_a_closed_pipe_ends_the_listing_quietly() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments.cli", "buses"],
        cwd=Path(__file__).parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as `powertrip buses | head` does once head has its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert err == b""
