"""Nothing silently wrong, nothing lost: run folders, temporaries, file modes, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from experiments import runs


def _new_run(out: str) -> str:
    return str(runs.new_run_dir(out, "simulate", "ieee_lv", 0))


def test_runs_started_together_never_share_a_folder(tmp_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        folders = list(pool.map(_new_run, [str(tmp_path)] * 8))
    assert len(set(folders)) == 8
    assert all(Path(f).is_dir() and not any(Path(f).iterdir()) for f in folders)


def test_a_run_folder_cannot_be_made_under_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("")
    with pytest.raises(OSError):
        runs.new_run_dir(out, "simulate", "ieee_lv", 0)


def test_stale_temporaries_are_removed_and_results_kept(tmp_path: Path) -> None:
    kept = runs.write_json(tmp_path / "units" / "a.json", {"ok": True})
    stale = [tmp_path / ".summary.json.abc123.tmp", tmp_path / "units" / ".model_5.x.tmp.zip"]
    for path in stale:
        path.write_text("half")
    removed = runs.remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted(stale)
    assert kept.is_file() and not any(p.exists() for p in stale)


def test_results_and_figures_get_the_mode_of_a_plain_open(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from experiments.figures import save_figure

    old = os.umask(0o027)
    try:
        text = runs.write_text(tmp_path / "a.txt", "x")
        fig = plt.figure()
        png = save_figure(fig, tmp_path / "figures" / "f.png")
        plt.close(fig)
    finally:
        os.umask(old)
    assert text.stat().st_mode & 0o777 == 0o640
    assert png.stat().st_mode & 0o777 == 0o640
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_four_simulate_runs_started_together_each_keep_their_folder(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "experiments.cli", "simulate", "--steps", "2"]
    command += ["--no-progress", "--out", str(tmp_path)]
    procs = [
        subprocess.Popen(command, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    folders = sorted(tmp_path.iterdir())
    assert len(folders) == 4
    for folder in folders:
        assert (folder / "summary.json").is_file() and (folder / "results.parquet").is_file()
    for out in outputs:
        assert "run folder:" in out
