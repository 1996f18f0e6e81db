"""Nothing silently wrong, nothing lost: run folders, temporaries, file modes, bad input."""

from __future__ import annotations

import os
import shutil
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


def _simulate_two_steps(out: str) -> str:
    from experiments.simulate import SimulateArgs, simulate

    return str(simulate(SimulateArgs(steps=2, out=out, progress=False)))


@pytest.mark.slow
def test_four_simulate_runs_started_together_each_keep_their_folder(tmp_path: Path) -> None:
    import multiprocessing

    import powertrip_env.scenario  # noqa: F401 - imported once, before the fork

    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(4, mp_context=context) as pool:
        folders = list(pool.map(_simulate_two_steps, [str(tmp_path)] * 4))
    assert len(set(folders)) == 4
    assert sorted(folders) == sorted(str(p) for p in tmp_path.iterdir())
    for folder in map(Path, folders):
        assert (folder / "summary.json").is_file() and (folder / "results.parquet").is_file()
        assert len(list((folder / "figures").glob("*.png"))) >= 4


# ------------------------------------------------------------------- strict scenario files
def _scenario(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


CPS = "devices: {cps: [{name: a, bus: '898', phase: 1, p_max_kw: 7.0}]}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "profiles: {season: summer}\nprofiles: {season: winter}\n" + CPS,
            "'profiles' appears twice in one mapping \\(lines 1 and 2\\)",
        ),
        (
            "devices: {cps: [{name: a, bus: '898', phase: 1, p_max_kw: true}]}\n",
            r"p_max_kw=True must be a number, not a boolean",
        ),
        (
            "devices: {cps: [{name: a, bus: '898', phase: 1.0, p_max_kw: 7}]}\n",
            r"phase=1.0 must be an integer",
        ),
        ("ev: {energy_guarantee: 'no'}\n" + CPS, r"energy_guarantee='no' must be true or false"),
        ("profiles: {resolution_min: '5'}\n" + CPS, r"resolution_min='5' must be an integer.*text"),
        ("profiles: {load_power_factor: 95e-2}\n" + CPS, r"load_power_factor='95e-2'.*3.0e-4"),
    ],
)
def test_a_scenario_with_wrong_types_or_repeated_keys_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    from powertrip_env.config import load_scenario_config
    from powertrip_env.errors import ConfigError

    with pytest.raises(ConfigError, match=expected):
        load_scenario_config(_scenario(tmp_path, text))


def test_unreadable_scenario_files_are_named(tmp_path: Path) -> None:
    from powertrip_env.config import load_scenario_config
    from powertrip_env.errors import ConfigError

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("profiles: {season: 'été'}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_scenario_config(latin1)
    with pytest.raises(ConfigError, match="is a directory"):
        load_scenario_config(tmp_path)


def test_relative_paths_resolve_against_the_scenario_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from powertrip_env.config import load_scenario_config
    from powertrip_env.grid.feeder import embedded_feeder_dir

    folder = tmp_path / "study"
    shutil.copytree(embedded_feeder_dir("ieee_lv"), folder / "feeder")  # a self-contained one
    scenario = _scenario(folder, "feeder: {kind: master, path: feeder/Master.dss}\n" + CPS)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_scenario_config(Path("..") / "study" / "s.yaml")
    assert config.feeder.path == str((folder / "feeder" / "Master.dss").resolve())
    assert Path(config.to_dict()["feeder"]["path"]).is_absolute()
    assert config == load_scenario_config(scenario)


# ------------------------------------------------------------------------------ env input
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"energy_guarantee": "no"}, "energy_guarantee='no' must be True or False"),
        ({"info_metrics": "false"}, "info_metrics='false' must be True or False"),
        ({"day_seed": 3.9}, "day_seed=3.9 must be an integer"),
        ({"day_seed": "7"}, "day_seed='7' must be an integer"),
        ({"day_seed": 2**70}, r"must be in \[0, 2\*\*63 - 1\]"),
    ],
)
def test_env_constructor_flags_and_seeds_are_not_coerced(
    kwargs: dict[str, object], expected: str
) -> None:
    from powertrip_env.env import PowerTripEnv
    from powertrip_env.errors import ConfigError

    with pytest.raises(ConfigError, match=expected):
        PowerTripEnv(**kwargs)  # type: ignore[arg-type]


def test_env_refuses_a_bad_day_seed_option_and_steps_after_termination() -> None:
    import gymnasium as gym
    import numpy as np

    from powertrip_env.env import PowerTripEnv
    from powertrip_env.errors import ConfigError

    env = PowerTripEnv()
    try:
        with pytest.raises(ConfigError, match=r"day_seed'\]=3.9"):
            env.reset(options={"day_seed": 3.9})
        env.reset(seed=0, options={"day_seed": 5})
        env.engine.dss.Text.Command("Open Line.LINE1 1")  # the supply fails mid-episode
        *_, terminated, truncated, info = env.step(np.ones(env.n_cp + env.n_pv))
        assert terminated and not truncated and "~0 V" in info["termination_reason"]
        with pytest.raises(gym.error.ResetNeeded, match="terminated"):
            env.step(np.ones(env.n_cp + env.n_pv))
    finally:
        env.close()


def test_batched_env_refuses_a_huge_day_seed_before_touching_its_copies() -> None:
    from powertrip_env.vector_env import BatchedPowerTripEnv

    env = BatchedPowerTripEnv(num_envs=2)
    try:
        env.reset(seed=0, options={"day_seed": 3})
        days = env._day_of_copy.copy()
        with pytest.raises(ValueError, match="day_seed"):
            env.reset(options={"day_seed": 2**70})
        assert (env._day_of_copy == days).all()
    finally:
        env.close()


# ------------------------------------------------------------------- damaged run folders
@pytest.mark.slow
def test_a_truncated_training_checkpoint_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dataclasses import replace

    from agents.config import TrainConfig, load_hyperparams
    from agents.models import latest_checkpoint
    from experiments.cli import main
    from experiments.train import train

    params = replace(load_hyperparams("ppo"), n_steps=32, batch_size=32, net_arch=(8,))  # type: ignore[arg-type]
    config = TrainConfig(
        algo="ppo", total_timesteps=32, checkpoint_every=32, eval_every=0, train_days=1,
        max_episode_steps=16, params=params, out=str(tmp_path), progress_bar=False,
    )  # fmt: skip
    run = train(config)
    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None and checkpoint.state is not None
    checkpoint.model.write_bytes(checkpoint.model.read_bytes()[:100])  # a disk that filled up
    assert main(["train", "--resume", str(run), "--timesteps", "64", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(checkpoint.model) in err[0] and "is damaged" in err[0]


def test_a_damaged_benchmark_folder_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from experiments.cli import main

    (tmp_path / "config.json").write_text('{"command": "bench')
    assert main(["benchmark", "--resume", str(tmp_path), "--no-progress"]) == 2
    assert "is damaged (not JSON" in capsys.readouterr().err
    (tmp_path / "config.json").write_text('{"command": "optimize"}')
    assert main(["benchmark", "--resume", str(tmp_path), "--no-progress"]) == 2
    assert "not a benchmark run folder (made by 'optimize')" in capsys.readouterr().err


def test_a_master_path_that_is_a_directory_is_named_as_one(tmp_path: Path) -> None:
    from powertrip_env.errors import FeederError
    from powertrip_env.grid.master import feeder_from_master

    with pytest.raises(FeederError, match="is a directory; give the master file in it"):
        feeder_from_master(tmp_path)
    with pytest.raises(FeederError, match="does not exist"):
        feeder_from_master(tmp_path / "Master.dss")
