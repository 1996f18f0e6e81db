"""MORL as a first-class user: morl-baselines' continuous-action algorithms run unmodified.

Each algorithm gets the registered env as it is (``mo_gymnasium.make``, or the id for PGMORL,
which builds its own envs, one of them with ``render_mode="rgb_array"``) and a tiny budget;
the test holds that training runs and that the learnt policies return vector returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mo_gymnasium as mo_gym
import numpy as np
import pytest

import powertrip_env  # noqa: F401 - registers the ids

pytest.importorskip(
    "morl_baselines", reason="morl-baselines is not installed (pip install powertrip[morl])"
)

ENV_ID = "powertrip/PowerTrip-v0"
#: Below any day's return: every step's reward is at least -10 per objective, and a day's sum
#: of normalised costs stays far above -300 without failed power flows.
REF_POINT = np.array([-300.0, -300.0])
SMALL_NET = [16, 16]


@pytest.fixture
def envs() -> Iterator[tuple[Any, Any]]:
    env = mo_gym.make(ENV_ID, day_seed=1, info_metrics=False)
    eval_env = mo_gym.make(ENV_ID, day_seed=2, info_metrics=False)
    yield env, eval_env
    env.close()
    eval_env.close()


def _gpi_ls(env: Any, eval_env: Any) -> Any:
    from morl_baselines.multi_policy.gpi_pd.gpi_pd_continuous_action import GPILSContinuousAction

    agent = GPILSContinuousAction(
        env,
        net_arch=SMALL_NET,
        batch_size=16,
        buffer_size=500,
        learning_starts=32,
        gradient_updates=1,
        log=False,
        seed=0,
        device="cpu",
    )
    agent.train(
        total_timesteps=128,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_weights_for_front=2,
        num_eval_episodes_for_front=1,
        timesteps_per_iter=64,
        checkpoints=False,
    )
    return agent


def _capql(env: Any, eval_env: Any) -> Any:
    from morl_baselines.multi_policy.capql.capql import CAPQL

    agent = CAPQL(
        env,
        net_arch=SMALL_NET,
        batch_size=16,
        buffer_size=500,
        learning_starts=32,
        log=False,
        seed=0,
        device="cpu",
    )
    agent.train(
        total_timesteps=96,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_weights_for_front=2,
        num_eval_episodes_for_front=1,
        num_eval_weights_for_eval=2,
        eval_freq=10_000,
    )
    return agent


def _morld(env: Any, eval_env: Any) -> Any:
    from morl_baselines.multi_policy.morld.morld import MORLD

    agent = MORLD(
        env,
        policy_name="MOSAC",
        policy_args={"net_arch": SMALL_NET, "batch_size": 16, "learning_starts": 16},
        pop_size=2,
        exchange_every=32,
        update_passes=1,
        log=False,
        seed=0,
        device="cpu",
    )
    agent.train(
        total_timesteps=96,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_episodes_for_front=1,
        num_eval_weights_for_eval=2,
        checkpoints=False,
    )
    return agent


def _pcn(env: Any, eval_env: Any) -> Any:
    from morl_baselines.multi_policy.pcn.pcn import PCN

    agent = PCN(
        env,
        scaling_factor=np.array([0.1, 0.1, 0.01]),  # the two returns, then the horizon
        hidden_dim=16,
        batch_size=16,
        log=False,
        seed=0,
        device="cpu",
    )
    agent.train(
        total_timesteps=288 * 3,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_weights_for_eval=2,
        num_er_episodes=2,
        num_step_episodes=1,
        num_model_updates=2,
        max_return=np.array([0.0, 0.0]),
        max_buffer_size=10,
        num_points_pf=2,
    )
    return agent


def _pgmorl(env: Any, eval_env: Any) -> Any:
    from morl_baselines.multi_policy.pgmorl.pgmorl import PGMORL

    agent = PGMORL(
        env_id=ENV_ID,  # builds its own copies: mo_gym.make(ENV_ID, render_mode="rgb_array")
        origin=REF_POINT,
        num_envs=2,
        pop_size=4,  # its performance predictor needs 4 points (one per policy) to evolve
        warmup_iterations=1,
        steps_per_iteration=16,
        evolutionary_iterations=1,
        num_weight_candidates=2,
        num_minibatches=2,
        update_epochs=1,
        net_arch=SMALL_NET,
        log=False,
        seed=0,
        device="cpu",
    )
    agent.train(total_timesteps=128, eval_env=eval_env, ref_point=REF_POINT)
    return agent


ALGORITHMS: dict[str, Callable[[Any, Any], Any]] = {
    "GPI-LS": _gpi_ls,
    "CAPQL": _capql,
    "MORL/D": _morld,
    "PCN": _pcn,
    "PGMORL": _pgmorl,
}


@pytest.mark.slow
def test_gpi_ls_learns_a_weight_support_with_vector_returns(envs: tuple[Any, Any]) -> None:
    """GPI-LS keeps at least two weights and its policy returns a day's vector of costs."""
    from morl_baselines.common.evaluation import policy_evaluation_mo

    env, eval_env = envs
    agent = _gpi_ls(env, eval_env)
    assert len(agent.weight_support) >= 2
    for w in ([1.0, 0.0], [0.0, 1.0]):
        vector_return = policy_evaluation_mo(agent, eval_env, np.array(w), rep=1)[2]
        assert vector_return.shape == (2,) and np.all(vector_return <= 0)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_continuous_action_morl_algorithm_runs_unmodified(
    name: str, envs: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # some algorithms save their models under ./weights/
    agent = ALGORITHMS[name](*envs)  # MORL/D closes both envs when it is done
    check = mo_gym.make(ENV_ID, day_seed=3, info_metrics=False)
    obs, _ = check.reset(seed=0)
    action = np.asarray(_act(agent, obs), dtype=np.float32).reshape(-1)
    assert check.action_space.contains(np.clip(action, 0.0, 1.0))  # the env clips the rest
    _, reward, *_ = check.step(action)
    assert np.asarray(reward).shape == (2,)
    check.close()


def _act(agent: Any, obs: np.ndarray) -> np.ndarray:
    """One action of a trained agent at weight (0.5, 0.5), through the policy it learnt."""
    w = np.array([0.5, 0.5], dtype=np.float32)
    kind = type(agent).__name__
    if kind == "MORLD":
        return np.asarray(agent.population[0].wrapped.eval(obs, w))
    if kind == "PGMORL":
        policies = agent.archive.individuals or agent.agents
        return np.asarray(policies[0].eval(obs, w))
    if kind == "PCN":
        agent.set_desired_return_and_horizon(np.array([-1.0, -1.0]), 288)
    return np.asarray(agent.eval(obs, w))
