"""The envs as Gymnasium, MO-Gymnasium and SB3 users meet them: misuse after close, keywords."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import powertrip_env  # noqa: F401 - registers the ids
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import EnvClosedError, PowerFlowError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.vector_env import BatchedPowerTripEnv


def test_engine_refuses_every_call_after_close(feeder, small_placement) -> None:
    """The batch setters hold raw pointers into the freed context: never used after close."""
    engine = OpenDSSEngine(feeder, small_placement)
    engine.close()
    zeros = np.zeros
    with pytest.raises(PowerFlowError, match="closed"):
        engine.set_powers(zeros(engine.n_loads), zeros(engine.n_loads), zeros(2), zeros(2))
    with pytest.raises(PowerFlowError, match="closed"):
        engine.node_voltages()
    with pytest.raises(PowerFlowError, match="closed"):
        engine.run_pf()


def test_single_env_step_and_reset_after_close_raise() -> None:
    env = PowerTripEnv(day_seed=1)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
    env.close()  # idempotent
    with pytest.raises(EnvClosedError, match=r"step\(\) after close"):
        env.step(env.action_space.sample())
    with pytest.raises(gym.error.ClosedEnvironmentError):  # Gymnasium's own type too
        env.reset(seed=0)


def test_made_env_step_after_close_raises() -> None:
    env = gym.make("powertrip/PowerTrip-v0", day_seed=1)
    env.reset(seed=0)
    env.close()
    with pytest.raises(EnvClosedError):
        env.step(env.action_space.sample())


def test_batched_env_step_and_reset_after_close_raise() -> None:
    venv = BatchedPowerTripEnv(2, day_seed=1)
    venv.reset(seed=0)
    venv.close()
    with pytest.raises(EnvClosedError, match=r"step\(\) after close"):
        venv.step(venv.action_space.sample())
    with pytest.raises(EnvClosedError):
        venv.reset(seed=0)
