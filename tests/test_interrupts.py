"""Real signals on tiny budgets: an interrupted run stops promptly, keeps its finished work,
says how to resume, and resumes to the result of a run never interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from powertrip_env.config import default_scenario_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[1]
#: Columns holding wall-clock timings: the only ones two equal runs may differ in.
TIMINGS = ["decision_s", "decision_ms_per_step", "wall_s", "decision_s_per_step"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "experiments.cli", *args, "--no-progress"]


def _start(args: list[str]) -> subprocess.Popen[str]:
    # A session of its own, so that a signal can reach the whole group as a terminal's does.
    return subprocess.Popen(
        args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _scenario(folder: Path, guarantee: bool = True) -> Path:
    data = yaml.safe_load(default_scenario_path().read_text(encoding="utf-8"))
    data["profiles"]["resolution_min"] = 15
    data["ev"]["energy_guarantee"] = guarantee
    path = folder / "scenario15.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _benchmark_config(folder: Path) -> Path:
    data = {
        "scenario": str(_scenario(folder)),
        "days": [{"season": "summer", "day_type": "weekday"}],
        "seeds": [0, 1, 2],
        "steps": 24,
        "nsga2": {"pop_size": 12, "n_gen": 4},
        "rule_based": [],
        "lookahead": [],
        "oracle": False,
        "out": str(folder / "runs"),
    }
    path = folder / "benchmark.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _resume_line(stderr: str, command: str) -> str:
    lines = stderr.strip().splitlines()
    assert lines, stderr
    last = lines[-1]
    assert last.startswith("powertrip: interrupted: finished work is kept in "), stderr
    assert f"continue with: powertrip {command} --resume " in last
    assert "Traceback" not in stderr
    return last.split("--resume ", 1)[1]


def test_sigint_stops_a_benchmark_promptly_and_resume_matches(tmp_path: Path) -> None:
    config = _benchmark_config(tmp_path)
    proc = _start(_cli("benchmark", "--config", str(config), "--workers", "2"))
    runs_dir = tmp_path / "runs"

    def a_unit_done() -> bool:
        return any(runs_dir.glob("*/units/*.json"))

    _wait_for(a_unit_done, 600, "the first finished unit")
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the driver and its workers
    start = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - start < 20  # terminated, not waited for
    _wait_for(lambda: _group_gone(proc.pid), 10, "the pool workers to exit")
    run_dir = Path(_resume_line(err, "benchmark"))
    kept = sorted(p.name for p in (run_dir / "units").glob("*.json"))
    assert kept and len(kept) < 6  # no control and NSGA-II on three seeds

    resumed = subprocess.run(
        _cli("benchmark", "--resume", str(run_dir), "--workers", "2"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr
    # Kept units are not redone (test_benchmark holds a resumed run equal to an uninterrupted
    # one); every unit is there now.
    assert f"6 units ({len(kept)} already done)" in " ".join(resumed.stdout.split())
    assert len(list((run_dir / "units").glob("*.json"))) == 6
    assert (run_dir / "results.parquet").is_file()


def test_workers_exit_when_the_benchmark_driver_is_killed(tmp_path: Path) -> None:
    config = _benchmark_config(tmp_path)
    proc = _start(_cli("benchmark", "--config", str(config), "--workers", "2"))

    def workers_started() -> bool:
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        return len(children) >= 2

    _wait_for(workers_started, 300, "the pool workers")
    time.sleep(3)  # into the units
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    _wait_for(lambda: _group_gone(proc.pid), 20, "the orphaned workers to exit")


def test_optimize_stopped_by_sigterm_or_kill_9_resumes_to_the_uninterrupted_run(
    tmp_path: Path,
) -> None:
    # The seed formulation, so that one of the two runs can compute its fronts in a pool.
    scenario = _scenario(tmp_path, guarantee=False)
    common = ["--scenario", str(scenario), "--steps", "48", "--pop-size", "8", "--n-gen", "3"]
    reference = subprocess.run(
        _cli("optimize", *common, "--out", str(tmp_path / "ref")),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert reference.returncode == 0, reference.stderr
    (ref_dir,) = (tmp_path / "ref").iterdir()

    for name, sig, workers in (("term", signal.SIGTERM, "2"), ("kill", signal.SIGKILL, "1")):
        out = tmp_path / name
        proc = _start(_cli("optimize", *common, "--workers", workers, "--out", str(out)))
        _wait_for(lambda: any(out.glob("*/checkpoint.json")), 600, "the first checkpoint")  # noqa: B023
        os.kill(proc.pid, sig)  # the driver only: it must stop its pool itself
        _, err = proc.communicate(timeout=60)
        _wait_for(lambda: _group_gone(proc.pid), 20, "the pool workers to exit")  # noqa: B023
        (run_dir,) = out.iterdir()
        if sig == signal.SIGTERM:
            assert proc.returncode == 130, err
            assert Path(_resume_line(err, "optimize")) == run_dir
        done = len(json.loads((run_dir / "checkpoint.json").read_text())["chosen_kw"])
        assert 0 < done < 48

        resumed = subprocess.run(
            _cli("optimize", "--resume", str(run_dir)), cwd=ROOT, capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stderr
        for table in ("fronts.parquet", "results.parquet"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(run_dir / table),
                pd.read_parquet(ref_dir / table),
                check_exact=True,
            )


def test_sigint_stops_training_with_a_checkpoint_and_a_resume_command(tmp_path: Path) -> None:
    args = ["--algo", "ppo", "--env-backend", "batched", "--n-envs", "4", "--timesteps"]
    args += ["200000", "--checkpoint-every", "512", "--eval-every", "0", "--train-days", "4"]
    proc = _start(_cli("train", *args, "--out", str(tmp_path)))
    _wait_for(lambda: any(tmp_path.glob("*/checkpoints/model_*_steps.zip")), 600, "a checkpoint")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_dir = Path(_resume_line(err, "train"))
    steps = sorted(
        int(p.name.split("_")[1]) for p in (run_dir / "checkpoints").glob("model_*_steps.zip")
    )
    assert steps and not list(run_dir.rglob(".*.tmp*"))
    resumed = subprocess.run(
        _cli("train", "--resume", str(run_dir), "--timesteps", str(steps[-1] + 512)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (run_dir / "model.zip").is_file()


TINY_HYPERPARAMS = {
    "sac": {"learning_starts": 32, "batch_size": 16, "buffer_size": 2000, "net_arch": [16, 16]},
    "ppo": {"n_steps": 64, "batch_size": 64, "n_epochs": 2, "net_arch": [16, 16]},
}


def _policy_parameters(run_dir: Path) -> dict[str, object]:
    from agents.models import ALGO_CLASSES, read_run_config

    algo = read_run_config(run_dir).algo
    model = ALGO_CLASSES[algo].load(run_dir / "model.zip", device="cpu")
    return {"steps": model.num_timesteps, **model.policy.state_dict()}


@pytest.mark.parametrize(
    ("algo", "backend", "budget"),
    [
        ("sac", "opendss", ["--timesteps", "192", "--checkpoint-every", "64"]),
        ("ppo", "batched", ["--timesteps", "1024", "--checkpoint-every", "256"]),
    ],
)
def test_train_resumed_after_kill_9_ends_bit_identical(
    tmp_path: Path, algo: str, backend: str, budget: list[str]
) -> None:
    args, whole_dir = _uninterrupted_training(tmp_path, algo, backend, budget)
    proc = _start(_cli(*args, "--out", str(tmp_path / "killed")))
    states = tmp_path / "killed"
    _wait_for(lambda: any(states.glob("*/checkpoints/model_*_steps.zip")), 600, "a checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    (killed_dir,) = states.iterdir()
    assert not (killed_dir / "model.zip").exists()  # killed before the end
    _assert_resumes_to(killed_dir, whole_dir)


@pytest.mark.parametrize(
    ("algo", "backend", "budget"),
    [
        ("sac", "opendss", ["--timesteps", "192", "--checkpoint-every", "64"]),
        ("ppo", "batched", ["--timesteps", "1024", "--checkpoint-every", "256"]),
    ],
)
def test_train_stopped_by_sigint_resumes_bit_identical(
    tmp_path: Path, algo: str, backend: str, budget: list[str]
) -> None:
    """Ctrl-C stops at the next rollout boundary with an exact checkpoint: the resumed run
    ends with the uninterrupted run's parameters, bit for bit."""
    args, whole_dir = _uninterrupted_training(tmp_path, algo, backend, budget)
    proc = _start(_cli(*args, "--out", str(tmp_path / "stopped")))
    states = tmp_path / "stopped"
    _wait_for(lambda: any(states.glob("*/checkpoints/model_*_steps.zip")), 600, "a checkpoint")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    stopped_dir = Path(_resume_line(err, "train"))
    assert not (stopped_dir / "model.zip").exists()  # stopped before the end
    _assert_resumes_to(stopped_dir, whole_dir)


def _uninterrupted_training(
    tmp_path: Path, algo: str, backend: str, budget: list[str]
) -> tuple[list[str], Path]:
    """The CLI arguments of a tiny training and the folder of its uninterrupted run."""
    hyperparams = tmp_path / f"{algo}.yaml"
    hyperparams.write_text(yaml.safe_dump(TINY_HYPERPARAMS[algo]))
    args = ["train", "--algo", algo, "--env-backend", backend, "--n-envs", "2", *budget]
    args += ["--hyperparams", str(hyperparams), "--eval-every", "0", "--train-days", "3"]
    whole = subprocess.run(
        _cli(*args, "--out", str(tmp_path / "whole")), cwd=ROOT, capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr
    (whole_dir,) = (tmp_path / "whole").iterdir()
    return args, whole_dir


def _assert_resumes_to(stopped_dir: Path, whole_dir: Path) -> None:
    """``train --resume`` of ``stopped_dir`` ends with ``whole_dir``'s policy, bit for bit."""
    import torch

    resumed = subprocess.run(
        _cli("train", "--resume", str(stopped_dir)), cwd=ROOT, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    expected, got = _policy_parameters(whole_dir), _policy_parameters(stopped_dir)
    assert expected["steps"] == got["steps"]
    for name, tensor in expected.items():
        if name != "steps":
            assert torch.equal(tensor, got[name]), name  # type: ignore[arg-type]
