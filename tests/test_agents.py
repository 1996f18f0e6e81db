"""Agents: tiny-budget SB3 training end to end, seeds, resume, the policy adapter, evaluation.

Budgets here are a few hundred env steps with small networks and short episodes (32 steps),
so that every algorithm runs end to end in seconds; the quality of the agents is the business
of ``experiments/agents_benchmark.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3.common.vec_env import VecMonitor

import experiments.agents_benchmark as bench
from agents.batched import BatchedTrainingVecEnv
from agents.config import (
    DEFAULT_SWEEP_WEIGHTS,
    EVAL_DAY_BASE,
    Algo,
    TrainConfig,
    load_hyperparams,
    train_config_from_dict,
)
from agents.envs import TrainingDays, WeightConditioned, make_vec_env
from agents.episodes import draw_episode_starts
from agents.models import ALGO_CLASSES, deterministic_actor, latest_checkpoint, read_run_config
from agents.policy import AgentController
from experiments.cli import build_parser, main
from experiments.train import TrainArgs, config_from_args, evaluate_run, resume, train
from powertrip_env.config import load_scenario_config
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import ConfigError

EVAL_DAY = EVAL_DAY_BASE
TINY = {
    "ppo": {"n_steps": 32, "batch_size": 32, "n_epochs": 2, "net_arch": (16, 16)},
    "sac": {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000, "net_arch": (16, 16)},
    "td3": {"learning_starts": 32, "batch_size": 16, "buffer_size": 1000, "net_arch": (16, 16)},
}


def tiny_config(algo: Algo, out: Path, **changes: object) -> TrainConfig:
    """A run of 96 steps on one cached training day, 32-step episodes, one held-out day."""
    params = replace(load_hyperparams(algo), **TINY[algo])  # type: ignore[arg-type]
    base = TrainConfig(
        algo=algo,
        total_timesteps=96,
        checkpoint_every=64,
        eval_every=0,
        eval_days=(EVAL_DAY,),
        train_days=1,
        max_episode_steps=32,
        params=params,
        out=str(out),
        progress_bar=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sac_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tiny_config("sac", tmp_path_factory.mktemp("sac")))


@pytest.fixture(scope="module")
def env() -> Iterator[PowerTripEnv]:
    e = PowerTripEnv()
    yield e
    e.close()


# ------------------------------------------------------------------------------- training
@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_each_algorithm_trains_saves_and_loads(
    algo: Algo, tmp_path: Path, env: PowerTripEnv
) -> None:
    run = train(tiny_config(algo, tmp_path))
    meta = json.loads((run / "config.json").read_text())
    assert meta["seed"] == 0 and "git_commit" in meta and meta["config"]["algo"] == algo
    assert read_run_config(run).hyperparams == tiny_config(algo, tmp_path).hyperparams
    for name in ("model.zip", "vecnormalize.pkl", "eval.csv", "progress.csv"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None and checkpoint.steps >= 96 and checkpoint.vecnormalize
    assert (checkpoint.replay_buffer is not None) == (algo != "ppo")
    assert (run / "checkpoints" / "model_64_steps.zip").is_file()

    controller = AgentController(run, env=env)
    env.reset(options={"day_seed": 3})
    assert env.sim is not None
    result = env.sim.run(controller, steps=24)
    assert len(result.steps) == 24 and result.steps["converged"].all()
    obs = np.stack([env.observation(env.sim.observe())] * 5)
    actions = controller.act_batch(obs)
    assert actions.shape == (5, 15) and np.all((actions >= 0) & (actions <= 1))
    # The last checkpoint is the final policy: loaded from its zip (with its own observation
    # statistics), it acts as the run's model.zip does; an earlier checkpoint loads as well.
    from_checkpoint = AgentController(checkpoint.model, env=env)
    np.testing.assert_array_equal(from_checkpoint.act_batch(obs), actions)
    early = AgentController(run / "checkpoints" / "model_64_steps.zip", env=env)
    assert early.act_batch(obs).shape == (5, 15)
    np.testing.assert_array_equal(actions[0], actions[4])


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_fast_actor_matches_sb3_predict(algo: Algo, tmp_path: Path) -> None:
    config = tiny_config(algo, tmp_path)
    venv = make_vec_env(config)
    try:
        # ALGO_CLASSES is typed by the base class, whose constructor also takes learning_rate.
        model = ALGO_CLASSES[algo]("MlpPolicy", venv, seed=1, device="cpu")  # type: ignore[call-arg]
        n_obs = venv.observation_space.shape
        assert n_obs is not None
        obs = np.random.default_rng(0).normal(size=(7, n_obs[0]))
        obs = obs.astype(np.float32)
        expected, _ = model.predict(obs, deterministic=True)
        with torch.inference_mode():
            got = deterministic_actor(model)(torch.from_numpy(obs)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)
    finally:
        venv.close()


def _policy_parameters(run: Path) -> dict[str, torch.Tensor]:
    config = read_run_config(run)
    return ALGO_CLASSES[config.algo].load(run / "model.zip", device="cpu").policy.state_dict()


def test_two_trainings_with_one_seed_are_identical(tmp_path: Path) -> None:
    runs = [
        train(tiny_config("sac", tmp_path / name, total_timesteps=160, seed=seed))
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    ]
    first, second, other = (_policy_parameters(r) for r in runs)
    for key, value in first.items():
        torch.testing.assert_close(value, second[key], rtol=0, atol=0, msg=key)
    assert any(not torch.equal(value, other[key]) for key, value in first.items())
    episodes = [pd.read_csv(r / "monitor" / "env_0.monitor.csv", skiprows=1) for r in runs[:2]]
    pd.testing.assert_frame_equal(episodes[0][["r", "l"]], episodes[1][["r", "l"]])
    evals = [pd.read_csv(r / "eval.csv") for r in runs[:2]]
    pd.testing.assert_frame_equal(evals[0], evals[1])


def test_resume_continues_step_count_and_learning_curve(tmp_path: Path) -> None:
    run = train(tiny_config("sac", tmp_path, total_timesteps=128, eval_every=64))
    episodes_before = len(pd.read_csv(run / "monitor" / "env_0.monitor.csv", skiprows=1))
    progress_before = pd.read_csv(run / "progress.csv")
    assert progress_before["time/total_timesteps"].max() == 128

    assert resume(run, total_timesteps=256) == run
    model = ALGO_CLASSES["sac"].load(run / "model.zip", device="cpu")
    assert model.num_timesteps == 256
    assert read_run_config(run).total_timesteps == 256
    assert json.loads((run / "config.json").read_text())["resumed"][0]["from_step"] == 128
    episodes_after = pd.read_csv(run / "monitor" / "env_0.monitor.csv", skiprows=1)
    assert len(episodes_after) > episodes_before
    progress = pd.read_csv(run / "progress.csv")
    assert len(progress) > len(progress_before)
    steps = progress["time/total_timesteps"].dropna()
    assert steps.is_monotonic_increasing and steps.max() == 256
    assert list(pd.read_csv(run / "eval.csv")["step"]) == [64, 128, 192, 256]
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 2  # one curve, two files
    checkpoint = latest_checkpoint(run / "checkpoints")
    assert checkpoint is not None and checkpoint.steps == 256
    assert [p.name for p in (run / "checkpoints").glob("replay_buffer_*")] == [
        "replay_buffer_256_steps.pkl"
    ]


def test_resume_without_checkpoint_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json"):
        resume(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"config": TrainConfig().to_dict()}))
    with pytest.raises(ConfigError, match="no checkpoint"):
        resume(tmp_path)


def test_weight_conditioned_policy_takes_any_weight(tmp_path: Path, env: PowerTripEnv) -> None:
    run = train(tiny_config("td3", tmp_path, weight_conditioned=True))
    assert "-wc__" in run.name
    env.reset(options={"day_seed": 3})
    assert env.sim is not None
    obs = np.stack([env.observation(env.sim.observe())] * 2)
    for w in DEFAULT_SWEEP_WEIGHTS:
        controller = AgentController(run, env=env, weights=w)
        assert controller.act_batch(obs).shape == (2, 15)
    per_row = AgentController(run, env=env).act_batch(obs, weights=np.array([[1, 0], [0, 1]]))
    assert per_row.shape == (2, 15)


# ------------------------------------------------------------------------- policy adapter
def test_adapter_sees_what_the_env_sees(sac_run: Path, env: PowerTripEnv) -> None:
    """Stepping the env with the agent and running it in the simulator give the same day."""
    controller = AgentController(sac_run, env=env)
    obs, _ = env.reset(options={"day_seed": 11})
    assert env.sim is not None
    env_kw = []
    for _ in range(12):
        state = env.sim.observe()
        np.testing.assert_array_equal(obs, env.observation(state))
        fraction = controller.act_batch(obs[None])[0]
        env_kw.append(env.action_to_setpoints(fraction, state))
        obs, *_ = env.step(fraction)
    sim_kw = env.sim.run(controller, steps=12).steps.filter(like="cp_kw_").to_numpy()
    np.testing.assert_allclose(sim_kw, np.array(env_kw)[:, :3], atol=1e-9)


def test_adapter_rejects_a_folder_without_a_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        AgentController(tmp_path / "nothing")
    with pytest.raises(ConfigError, match=r"config\.json"):
        AgentController(tmp_path)


# ----------------------------------------------------------------------------- evaluation
def test_evaluation_reports_every_design_metric(sac_run: Path, env: PowerTripEnv) -> None:
    from baselines.no_control import NoControl

    env.reset(options={"day_seed": EVAL_DAY})
    assert env.sim is not None
    design_metrics = set(env.sim.run(NoControl(), steps=4).summary())
    result = evaluate_run(sac_run, days=(EVAL_DAY, EVAL_DAY + 1))
    assert design_metrics <= set(result.days.columns)
    assert {"weighted_cost", "f1_norm_mean", "f2_norm_mean"} <= set(result.days.columns)
    assert sorted(set(result.days["controller"])) == ["agent", "no control"]
    assert len(result.days) == 4 and (result.days["steps"] == 288).all()
    nc = result.days[result.days["controller"] == "no control"]
    assert (nc["f2_norm_mean"] == 0).all() and (nc["pv_usage_efficiency"] == 1).all()
    assert (result.days["weighted_cost"] >= 0).all()
    saved = json.loads((sac_run / "evaluation.json").read_text())
    assert set(saved["mean"]) == {"agent", "no control"}
    steps = pd.read_parquet(sac_run / "evaluation.parquet")
    assert len(steps) == 4 * 288 and {"controller", "day_seed", "f1"} <= set(steps)


def test_evaluate_cli_prints_every_metric(sac_run: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(sac_run), "--days", str(EVAL_DAY)]) == 0
    out = capsys.readouterr().out
    for name in ("pui_max_pct", "vuf_max_pct", "v_min_pu", "voltage_drop_max_pu"):
        assert name in out
    for name in ("n_outside_uk_statutory", "pv_usage_efficiency", "ev_unserved_kwh"):
        assert name in out
    for name in ("transformer_loading_max_pct", "losses_kwh", "converged_steps"):
        assert name in out
    assert "no control" in out and "weighted_cost" in out


@pytest.mark.slow
def test_train_cli_trains_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hp = tmp_path / "ppo.yaml"
    hp.write_text("n_steps: 32\nbatch_size: 32\nn_epochs: 1\nnet_arch: [16, 16]\n")
    common = ["--no-progress", "--checkpoint-every", "32", "--eval-every", "0"]
    args = ["train", "--algo", "ppo", "--weights", "0.25,0.75", "--timesteps", "64"]
    args += ["--train-days", "1", "--hyperparams", str(hp), "--out", str(tmp_path / "runs")]
    assert main(args + common) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert read_run_config(run).weights == (0.25, 0.75)
    assert main(["train", "--resume", str(run), "--timesteps", "128", *common]) == 0
    assert ALGO_CLASSES["ppo"].load(run / "model.zip").num_timesteps == 128
    assert str(run) in capsys.readouterr().out


def test_train_cli_batched_backend(tmp_path: Path) -> None:
    hp = tmp_path / "ppo.yaml"
    hp.write_text("n_steps: 16\nbatch_size: 32\nn_epochs: 1\nnet_arch: [16, 16]\n")
    args = ["train", "--algo", "ppo", "--env-backend", "batched", "--n-envs", "4"]
    args += ["--train-days", "2", "--timesteps", "64", "--hyperparams", str(hp)]
    args += ["--initial-action", "1", "--action-margin", "0.05", "--eval-every", "0"]
    assert main([*args, "--no-progress", "--out", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    config = read_run_config(run)
    assert (config.env_backend, config.n_envs, config.train_days) == ("batched", 4, 2)
    assert (config.initial_action, config.action_margin) == (1.0, 0.05)
    assert ALGO_CLASSES["ppo"].load(run / "model.zip").num_timesteps == 64


# ------------------------------------------------------------------------------- wrappers
def test_training_days_never_draw_held_out_days(env: PowerTripEnv) -> None:
    wrapped = TrainingDays(env)
    days = [wrapped.reset(seed=s)[1]["day_seed"] for s in range(3)]
    assert all(0 <= d < EVAL_DAY_BASE for d in days)
    assert days == [TrainingDays(env).reset(seed=s)[1]["day_seed"] for s in range(3)]
    pool = TrainingDays(env, n_days=2)
    assert {pool.reset(seed=s)[1]["day_seed"] for s in range(8)} <= {0, 1}


def test_vector_env_copy_k_is_seeded_seed_plus_k(tmp_path: Path) -> None:
    config = tiny_config("ppo", tmp_path, n_envs=2, train_days=None, normalise_obs=False)
    venv = make_vec_env(config)
    try:
        venv.seed(7)
        venv.reset()
        days = [info["day_seed"] for info in venv.reset_infos]
    finally:
        venv.close()
    e = PowerTripEnv()
    try:
        expected = [TrainingDays(e).reset(seed=7 + k)[1]["day_seed"] for k in range(2)]
    finally:
        e.close()
    assert days == expected and days[0] != days[1]


def test_weight_conditioned_wrapper(env: PowerTripEnv) -> None:
    wrapped = WeightConditioned(env, n_days=1)  # draws the day and w from one generator
    obs, _ = wrapped.reset(seed=4)
    assert obs.shape == (46,) and wrapped.observation_space.contains(obs)
    w = obs[-2:]
    assert w.sum() == pytest.approx(1.0) and np.all(w >= 0)
    _, reward, _, _, info = wrapped.step(np.full(15, 0.5, dtype=np.float32))
    assert reward == pytest.approx(float(np.dot(w, info["vector_reward"])))
    again, _ = WeightConditioned(env, n_days=1).reset(seed=4)
    np.testing.assert_array_equal(again[-2:], w)
    with pytest.raises(ValueError, match="draws the days itself"):
        WeightConditioned(TrainingDays(env, n_days=1))  # the days would be drawn twice
    fixed, _ = wrapped.reset(options={"weight": (0.25, 0.75)})
    np.testing.assert_allclose(fixed[-2:], [0.25, 0.75])
    draws = np.array([wrapped.reset()[0][-2] for _ in range(40)])
    assert draws.min() < 0.25 and draws.max() > 0.75  # spread over the simplex


# ---------------------------------------------------------------------------- bad config
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"weights": (0.5, 0.6)}, "weights"),
        ({"weights": (1.0,)}, "weights"),
        ({"weights": (-0.5, 1.5)}, "weights"),
        ({"algo": "dqn"}, "algo"),
        ({"total_timesteps": 0}, "total_timesteps"),
        ({"eval_days": (3,)}, "eval_days"),
        ({"n_envs": 0}, "n_envs"),
        ({"params": load_hyperparams("ppo")}, "params"),
    ],
)
def test_bad_config_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_unknown_hyperparameter_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "sac.yaml"
    bad.write_text("learning_rate: 0.001\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="learning_rat"):
        load_hyperparams("sac", bad)
    bad.write_text("batch_size: -3\n")
    with pytest.raises(ConfigError, match=r"sac\.batch_size"):
        load_hyperparams("sac", bad)
    with pytest.raises(ConfigError, match="not_a_field"):
        train_config_from_dict({"algo": "sac", "not_a_field": 1})
    with pytest.raises(ConfigError, match="gamma_typo"):
        train_config_from_dict({"algo": "ppo", "params": {"gamma_typo": 0.9}})


def test_config_round_trips_through_plain_data() -> None:
    config = TrainConfig(algo="td3", weights=(0.25, 0.75), train_days=3)
    assert train_config_from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_shipped_hyperparameters_load() -> None:
    for algo in ("ppo", "sac", "td3"):
        assert type(load_hyperparams(algo)).__name__.lower().startswith(algo)


def test_train_cli_bad_weights_is_a_clean_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["train", "--weights", "0.5,0.6", "--no-progress"]) == 2
    assert "--weights" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:rich is experimental")  # tqdm's note on its rich bar
def test_sweep_trains_one_policy_per_weight(tmp_path: Path) -> None:
    from experiments.train import sweep

    base = tiny_config("ppo", tmp_path, total_timesteps=32, progress_bar=True)
    runs = sweep(base, weights=[(1.0, 0.0), (0.0, 1.0)])
    assert len(set(runs)) == 2
    assert [read_run_config(r).weights for r in runs] == [(1.0, 0.0), (0.0, 1.0)]
    assert all((r / "model.zip").is_file() for r in runs)


# ------------------------------------------------------------------ the batched backend
def test_action_margin_reaches_the_bounds_exactly() -> None:
    from agents.actions import fraction_from_action

    a = np.array([-1.0, -0.96, 0.0, 0.95, 1.0, 2.0])
    np.testing.assert_allclose(fraction_from_action(a), (np.clip(a, -1, 1) + 1) / 2)
    f = fraction_from_action(a, 0.05)
    assert f[0] == 0.0 and f[1] == 0.0 and f[-3] == 1.0 and f[-2] == 1.0 and f[-1] == 1.0
    assert f[2] == pytest.approx(0.5)


def test_batched_training_env_draws_training_days_and_scalarises() -> None:
    from agents.batched import BatchedTrainingVecEnv
    from powertrip_env.config import load_scenario_config

    config = TrainConfig(
        algo="ppo", weights=(0.25, 0.75), n_envs=3, train_days=4, max_episode_steps=5,
        env_backend="batched", action_margin=0.05,
    )  # fmt: skip
    scenario = load_scenario_config(None)
    venv = BatchedTrainingVecEnv(config, scenario)
    try:
        venv.seed(11)
        obs = venv.reset()
        days = [info["day_seed"] for info in venv.reset_infos]
        assert obs.shape == (3, 44) and all(0 <= d < 4 for d in days)
        action = np.ones((3, 15), dtype=np.float32)
        for step in range(5):
            _, reward, done, infos = venv.step(action)
            for k in range(3):
                vec = infos[k]["vector_reward"]
                assert reward[k] == pytest.approx(0.25 * vec[0] + 0.75 * vec[1], rel=1e-6)
                assert vec[1] == 0.0  # +1 with the margin: PV never curtailed
            assert done.all() == (step == 4)
        assert all(infos[k]["TimeLimit.truncated"] for k in range(3))
        assert all(infos[k]["terminal_observation"].shape == (44,) for k in range(3))
        venv.seed(11)
        venv.reset()
        assert [info["day_seed"] for info in venv.reset_infos] == days  # seed + k per copy
    finally:
        venv.close()


def test_batched_training_env_weight_conditioned() -> None:
    from agents.batched import BatchedTrainingVecEnv
    from powertrip_env.config import load_scenario_config

    config = TrainConfig(
        algo="ppo", n_envs=4, train_days=2, weight_conditioned=True, env_backend="batched"
    )
    venv = BatchedTrainingVecEnv(config, load_scenario_config(None))
    try:
        venv.seed(0)
        obs = venv.reset()
        assert obs.shape == (4, 46) and venv.observation_space.contains(obs[0])
        np.testing.assert_allclose(obs[:, -2:].sum(axis=1), 1.0, rtol=1e-6)
        _, reward, _, infos = venv.step(np.zeros((4, 15), dtype=np.float32))
        for k in range(4):
            w = obs[k, -2:]
            assert reward[k] == pytest.approx(float(w @ infos[k]["vector_reward"]), rel=1e-5)
    finally:
        venv.close()


@pytest.mark.parametrize("conditioned", [False, True])
def test_both_backends_draw_the_same_episodes_and_rewards(
    tmp_path: Path, conditioned: bool
) -> None:
    """One seed, one set of actions: the OpenDSS stack and the batched env start the same
    days (and, weight-conditioned, the same weights) and pay the same rewards, across the
    autoresets of 3-step episodes. Rewards differ by the OpenDSS solve tolerance only, the
    bound of tests/test_vector_env.py's lockstep test (relatively up to about 1e-3)."""
    config = tiny_config(
        "ppo", tmp_path, n_envs=2, train_days=None, max_episode_steps=3, normalise_obs=False,
        weights=(0.25, 0.75), weight_conditioned=conditioned, action_margin=0.05 * conditioned,
    )  # fmt: skip
    venvs = [make_vec_env(replace(config, env_backend=b)) for b in ("opendss", "batched")]
    bases = [v.venv if isinstance(v, VecMonitor) else v for v in venvs]

    def days() -> list[list[int]]:
        return [[info["day_seed"] for info in base.reset_infos] for base in bases]

    try:
        for venv in venvs:
            venv.seed(3)
        opendss, batched = (np.asarray(venv.reset()) for venv in venvs)
        started = [days()[0]]
        assert days()[0] == days()[1] and len(set(started[0])) == 2
        np.testing.assert_array_equal(opendss[:, 44:], batched[:, 44:])  # w, when conditioned
        rng = np.random.default_rng(0)
        for step in range(7):
            action = rng.uniform(-1, 1, (2, 15)).astype(np.float32)
            (o_dss, r_dss, d_dss, i_dss), (o_bat, r_bat, d_bat, i_bat) = (
                venv.step(action) for venv in venvs
            )
            opendss, batched = np.asarray(o_dss), np.asarray(o_bat)
            np.testing.assert_allclose(r_bat, r_dss, rtol=2e-3, atol=1e-7)
            assert d_dss.tolist() == d_bat.tolist() == [step % 3 == 2] * 2
            for k in range(2):
                np.testing.assert_array_equal(
                    i_dss[k]["reward_weights"], i_bat[k]["reward_weights"]
                )
            np.testing.assert_array_equal(opendss[:, 44:], batched[:, 44:])
            if d_dss.any():
                assert days()[0] == days()[1]
                started.append(days()[0])
    finally:
        for venv in venvs:
            venv.close()
    assert len(started) == 3 and started[1] != started[0] and started[2] != started[1]
    assert all(0 <= d < EVAL_DAY_BASE for day in started for d in day)
    if conditioned:
        assert np.all(opendss[:, 44:] > 0) and np.allclose(opendss[:, 44:].sum(axis=1), 1.0)
    else:
        assert opendss.shape == (2, 44)


def test_batched_backend_trains_and_the_agent_runs_on_opendss(
    tmp_path: Path, env: PowerTripEnv
) -> None:
    config = tiny_config(
        "ppo", tmp_path, env_backend="batched", n_envs=4, action_margin=0.05,
        total_timesteps=256, checkpoint_every=128, train_days=2,
    )  # fmt: skip
    run = train(config)
    assert read_run_config(run) == config
    assert (run / "model.zip").is_file() and (run / "vecnormalize.pkl").is_file()
    assert (run / "monitor" / "batched.monitor.csv").is_file()
    controller = AgentController(run, env=env)
    env.reset(options={"day_seed": EVAL_DAY})
    assert env.sim is not None
    result = env.sim.run(controller, steps=4)
    assert len(result.steps) == 4
    again = train(config)  # one seed, one result
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 44)).astype(np.float32)
    np.testing.assert_array_equal(
        AgentController(again, env=env).act_batch(obs), controller.act_batch(obs)
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"env_backend": "gpu"}, "env_backend"),
        ({"action_margin": -0.1}, "action_margin"),
        ({"action_margin": 0.9}, "action_margin"),
        ({"initial_action": 3.5}, "initial_action"),
    ],
)
def test_bad_backend_config_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_batched_hyperparameters_are_the_default_on_the_batched_backend() -> None:
    from agents.config import default_hyperparams_path

    assert default_hyperparams_path("ppo", "batched").name == "ppo_batched.yaml"
    assert default_hyperparams_path("sac", "opendss").name == "sac.yaml"
    assert TrainConfig(algo="ppo", env_backend="batched").hyperparams == load_hyperparams(
        "ppo", default_hyperparams_path("ppo", "batched")
    )


def test_days_drawn_ahead_leave_every_generator_draw_in_place() -> None:
    """Prefetching draws each copy's next day one start early; the generators still draw
    day, weight, day, weight, ... so the days and weights are those drawn without it."""
    plain, early = ([np.random.default_rng(s) for s in (4, 5)] for _ in range(2))
    ahead: list[int | None] = [None, None]
    for _ in range(3):
        want = draw_episode_starts(plain, None, 2)
        got = draw_episode_starts(early, None, 2, days_ahead=ahead)
        assert got.day_seeds == want.day_seeds and want.next_day_seeds is None
        assert got.weights is not None and want.weights is not None
        np.testing.assert_array_equal(got.weights, want.weights)
        assert got.next_day_seeds is not None
        ahead = list(got.next_day_seeds)
    assert ahead == draw_episode_starts(plain, None, 2).day_seeds
    fixed = [np.random.default_rng(9)]
    first = draw_episode_starts(fixed, 7, days_ahead=[None])
    assert first.weights is None and first.next_day_seeds is not None
    assert draw_episode_starts(fixed, 7, days_ahead=first.next_day_seeds).day_seeds == (
        first.next_day_seeds
    )
    with pytest.raises(ValueError, match="days_ahead"):
        draw_episode_starts(fixed, 7, draw_days=False, days_ahead=[None])


@pytest.mark.parametrize("conditioned", [False, True])
def test_prefetched_days_give_the_same_episodes(conditioned: bool) -> None:
    """With prefetch_days the batched training env starts the same days (and weights) and
    pays the same rewards as without, through two autoresets and a re-seed; the days started
    at an autoreset are those drawn (and announced for building) one episode ahead."""
    config = TrainConfig(
        algo="ppo", n_envs=2, train_days=None, max_episode_steps=3, env_backend="batched",
        weight_conditioned=conditioned, weights=(0.25, 0.75), action_margin=0.05,
    )  # fmt: skip
    scenario = load_scenario_config(None)
    venvs: list[BatchedTrainingVecEnv] = []
    try:
        for prefetch in (False, True):
            venvs.append(BatchedTrainingVecEnv(replace(config, prefetch_days=prefetch), scenario))
        plain, ahead = venvs
        announced: list[list[int]] = []
        build_ahead = ahead.benv.prefetch

        def record(day_seeds: Sequence[int]) -> None:  # what is announced, then prefetch
            announced.append(list(day_seeds))
            build_ahead(day_seeds)

        ahead.benv.prefetch = record  # type: ignore[method-assign]

        def days(venv: BatchedTrainingVecEnv) -> list[int]:
            return [info["day_seed"] for info in venv.reset_infos]

        started = []
        rng = np.random.default_rng(0)
        for seed in (3, 3):  # the second reset re-seeds: the days drawn ahead are dropped
            for venv in venvs:
                venv.seed(seed)
            obs = [venv.reset() for venv in venvs]
            np.testing.assert_array_equal(obs[0], obs[1])
            assert days(plain) == days(ahead)
            started.append(days(ahead))
            assert announced[-1] == ahead._days_ahead  # built while the copies step
            for step in range(7):
                action = rng.uniform(-1, 1, (2, 15)).astype(np.float32)
                next_days = list(ahead._days_ahead)
                (o_p, r_p, d_p, i_p), (o_a, r_a, d_a, i_a) = (v.step(action) for v in venvs)
                np.testing.assert_array_equal(o_p, o_a)
                np.testing.assert_array_equal(r_p, r_a)
                assert d_p.tolist() == d_a.tolist() == [step % 3 == 2] * 2
                for k in range(2):
                    np.testing.assert_array_equal(
                        i_p[k]["reward_weights"], i_a[k]["reward_weights"]
                    )
                if d_a.any():
                    assert days(plain) == days(ahead) == next_days
                    assert announced[-1] == ahead._days_ahead != next_days
                    started.append(days(ahead))
        assert started[0] == started[3] and len({tuple(d) for d in started}) == 3
    finally:
        for venv in venvs:
            venv.close()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prefetch_days": "yes", "env_backend": "batched"}, "prefetch_days"),
        ({"prefetch_days": 1, "env_backend": "batched"}, "prefetch_days"),
        ({"prefetch_days": True}, "needs env_backend='batched'"),
    ],
)
def test_bad_prefetch_config_is_a_clean_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**changes)  # type: ignore[arg-type]


def test_prefetch_days_flag_reaches_the_config_and_old_configs_load() -> None:
    ns = build_parser().parse_args(["train", "--env-backend", "batched", "--prefetch-days"])
    assert ns.prefetch_days and not build_parser().parse_args(["train"]).prefetch_days
    args = TrainArgs(algo="ppo", env_backend="batched", prefetch_days=ns.prefetch_days)
    config = config_from_args(args)
    assert config.prefetch_days is True
    assert train_config_from_dict(json.loads(json.dumps(config.to_dict()))) == config
    older = config.to_dict()
    del older["prefetch_days"]  # a run saved before the field existed
    older["env_backend"] = "opendss"
    del older["params"]
    assert train_config_from_dict(older).prefetch_days is False


@pytest.mark.parametrize("algo", ["ppo", "sac", "td3"])
def test_initial_action_starts_the_policy_at_no_control(
    tmp_path: Path, env: PowerTripEnv, algo: Algo
) -> None:
    from agents.models import build_model

    config = tiny_config(
        algo, tmp_path, env_backend="batched", n_envs=2, initial_action=1.0, action_margin=0.05
    )
    venv = make_vec_env(config)
    try:
        model = build_model(config, venv)
    finally:
        venv.close()
    controller = AgentController.from_model(model, None, config, env=env)
    obs = np.random.default_rng(0).uniform(-1, 1, (8, 44)).astype(np.float32)
    np.testing.assert_array_equal(controller.act_batch(obs), 1.0)


# ------------------------------------------------------------------ the quality benchmark
def test_benchmark_nsga2_cache_returns_what_a_run_computes(tmp_path: Path) -> None:
    args = ((0.5, 0.5), EVAL_DAY, 2, 6, 2, 0)
    fresh = bench._nsga2_task(*args, str(tmp_path))
    cached = bench._nsga2_task(*args, str(tmp_path))
    assert not fresh.pop("cached") and cached.pop("cached")
    assert cached == fresh
    files = list(tmp_path.glob("nsga2-*.json"))
    assert len(files) == 1
    other = bench.nsga2_cache_path(tmp_path, (0.25, 0.75), EVAL_DAY, 2, 6, 2, 0)
    assert other != files[0]  # the key holds every input
    assert bench.nsga2_cache_path(tmp_path, *args) == files[0]


def test_benchmark_oracle_cache_returns_what_a_run_computes(tmp_path: Path) -> None:
    args = ((0.5, 0.5), EVAL_DAY, 2, 2)
    fresh = bench._oracle_task(*args, str(tmp_path))
    cached = bench._oracle_task(*args, str(tmp_path))
    assert not fresh.pop("cached") and cached.pop("cached")
    assert cached == fresh and fresh["controller"] == "oracle"
    assert fresh["oracle_gap"] >= 0.0
    (file,) = tmp_path.glob("oracle-*.json")
    assert bench.oracle_cache_path(tmp_path, *args) == file
    assert bench.oracle_cache_path(tmp_path, (0.5, 0.5), EVAL_DAY, 2, 3) != file  # iterations


def test_benchmark_optimality_gap_is_zero_at_the_oracle_and_one_at_no_control() -> None:
    assert bench.optimality_gap(0.2, 0.2, 0.6) == 0.0
    assert bench.optimality_gap(0.6, 0.2, 0.6) == 1.0
    assert bench.optimality_gap(0.3, 0.2, 0.6) == pytest.approx(0.25)
    assert np.isnan(bench.optimality_gap(0.3, 0.2, 0.2))  # no control already optimal


def test_benchmark_lookahead_agent_discounts_over_hours(tmp_path: Path) -> None:
    args = bench.BenchArgs(lookahead=bench.LOOKAHEAD_HYPERPARAMS)
    myopic = bench._train_config(args, (0.5, 0.5), tmp_path)
    ahead = bench._train_config(args, (0.5, 0.5), tmp_path, args.lookahead)
    assert myopic.params.gamma == 0.9  # type: ignore[union-attr]
    # a horizon 1 / (1 - gamma) of 100 five-minute steps: 8 h, past an evening's EV deadline
    assert ahead.params.gamma == 0.99  # type: ignore[union-attr]
    assert replace(ahead, params=myopic.params) == myopic


@pytest.mark.parametrize("text", ["0.5", "a,b", "0.7,0.7"])
def test_benchmark_bad_weights_are_a_clean_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--weights"):
        bench._parse_weights(text)


@pytest.mark.slow
def test_benchmark_smoke_runs_end_to_end(tmp_path: Path) -> None:
    import subprocess

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "benchmarks/agents_quality.py", "--smoke", "--workers", "2"]
    cmd.append("--lookahead")
    done = subprocess.run(
        [*cmd, "--out", str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = tmp_path.glob("benchmark-agents__*/results.json")
    rows = json.loads(results.read_text())["rows"]
    controllers = {"agent", "look-ahead agent", "no control", "nsga2", "oracle"}
    assert {r["controller"] for r in rows} == controllers
    assert {(r["w1"], r["w2"]) for r in rows} == set(DEFAULT_SWEEP_WEIGHTS)
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| w (f1, f2)"))
    columns = [c.strip() for c in lines[first].strip("|").split("|")]
    for name in ("agent / NSGA-II", "agent gap", "NSGA-II gap", "look-ahead agent gap"):
        assert name in columns
    for line in lines[first + 2 : first + 2 + len(DEFAULT_SWEEP_WEIGHTS)]:
        cells = dict(zip(columns, (c.strip() for c in line.strip("|").split("|")), strict=True))
        gaps = [float(cells[name]) for name in ("agent gap", "NSGA-II gap")]  # nan: undefined
        assert not np.isinf(gaps).any()
    verdicts = [line for line in lines if "per-step NSGA-II" in line]
    assert len(verdicts) == len(DEFAULT_SWEEP_WEIGHTS)  # beats it or not, per weight


def test_benchmark_trains_on_the_batched_env_and_starts_curtailment_weights_at_no_control(
    tmp_path: Path,
) -> None:
    args = bench.BenchArgs()
    configs = {w: bench._train_config(args, w, tmp_path) for w in DEFAULT_SWEEP_WEIGHTS}
    assert all(c.env_backend == "batched" and c.algo == "ppo" for c in configs.values())
    assert all(c.eval_days[0] >= EVAL_DAY_BASE + 2 for c in configs.values())  # not a test day
    for w, c in configs.items():
        starts = w[1] >= args.no_control_start_w2
        assert c.initial_action == (args.no_control_action if starts else None)
        assert c.action_margin == (args.no_control_margin if starts else args.action_margin)
    assert configs[(0.0, 1.0)].initial_action == 2.0


def test_ppo_initial_action_past_the_range_is_exactly_no_control(
    tmp_path: Path, env: PowerTripEnv
) -> None:
    from agents.models import build_model

    config = tiny_config("ppo", tmp_path, env_backend="batched", n_envs=2, initial_action=2.0)
    venv = make_vec_env(config)
    try:
        model = build_model(config, venv)
    finally:
        venv.close()
    controller = AgentController.from_model(model, None, config, env=env)
    obs = np.random.default_rng(1).uniform(-1, 1, (8, 44)).astype(np.float32)
    np.testing.assert_array_equal(controller.act_batch(obs), 1.0)


def test_training_with_prefetched_days_is_the_same_training(tmp_path: Path) -> None:
    """Checkpoints leave the background day builder out (a live process), and the policy
    trained with prefetch_days is the one trained without, to the bit."""
    configs = [
        tiny_config(
            "ppo",
            tmp_path / str(prefetch),
            env_backend="batched",
            n_envs=2,
            train_days=None,
            prefetch_days=prefetch,
            total_timesteps=128,
        )
        for prefetch in (False, True)
    ]
    runs = [train(config) for config in configs]
    plain, prefetched = (_policy_parameters(r) for r in runs)
    for key, value in plain.items():
        torch.testing.assert_close(value, prefetched[key], rtol=0, atol=0, msg=key)
    assert latest_checkpoint(runs[1] / "checkpoints") is not None  # with its training state
