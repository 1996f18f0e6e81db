"""SB3 models for the config's algorithm, and the run folder's model and checkpoint files.

Run folder layout shared by training (``experiments/train.py``) and the policy adapter::

    runs/<run-id>/
        config.json                     {"config": TrainConfig.to_dict(), "seed": ..., ...}
        model.zip, vecnormalize.pkl     the final model and its observation statistics
        checkpoints/model_<N>_steps.zip, vecnormalize_<N>_steps.pkl,
                    replay_buffer_<N>_steps.pkl (off-policy; the latest only),
                    training_state_<N>_steps.pkl (for an exact resume; the latest only)
        monitor/env_<k>.monitor.csv     training episodes (SB3 Monitor)
        progress.csv, tb/               the learning curve (CSV and TensorBoard)
        eval.csv                        held-out-day evaluations during training
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import VecEnv

from agents.config import PPOParams, SACParams, TD3Params, TrainConfig, train_config_from_dict
from powertrip_env.errors import ConfigError

ALGO_CLASSES: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC, "td3": TD3}

CONFIG_FILE = "config.json"
MODEL_FILE = "model.zip"
VECNORMALIZE_FILE = "vecnormalize.pkl"
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT = re.compile(r"^model_(\d+)_steps\.zip$")


def build_model(
    config: TrainConfig, env: VecEnv, tensorboard_log: str | None = None
) -> BaseAlgorithm:
    """A fresh SB3 model of ``config.algo`` on ``env`` with ``seed=config.seed`` (CPU).

    With ``config.initial_action`` the policy starts at that action (:func:`set_initial_action`).
    """
    model = _new_model(config, env, tensorboard_log)
    if config.initial_action is not None:
        set_initial_action(model, config.initial_action)
    return model


def set_initial_action(model: BaseAlgorithm, value: float) -> None:
    """Make the fresh policy's deterministic action about ``value`` everywhere.

    The output layer's bias is set to ``value`` (PPO's Gaussian mean, which may lie past the
    action range; SB3 initialises that layer's weights with gain 0.01, so the mean is the
    bias) or to ``atanh(value)`` with its
    weights scaled down 100x (SAC's and TD3's tanh-squashed outputs; ``value`` is capped at
    +-0.995 there, which ``action_margin`` maps onto the bound). Target networks follow.
    """
    policy: Any = model.policy
    with torch.no_grad():
        if isinstance(model, PPO):
            policy.action_net.bias.fill_(value)
            return
        squashed = float(np.arctanh(np.clip(value, -0.995, 0.995)))
        if isinstance(model, SAC):
            layers = [policy.actor.mu]
        else:
            layers = [policy.actor.mu[-2], policy.actor_target.mu[-2]]
        for layer in layers:
            layer.weight.mul_(0.01)
            layer.bias.fill_(squashed)


def _new_model(config: TrainConfig, env: VecEnv, tensorboard_log: str | None) -> BaseAlgorithm:
    p = config.hyperparams
    activation = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[p.activation]
    policy_kwargs: dict[str, Any] = {"net_arch": list(p.net_arch), "activation_fn": activation}
    common: dict[str, Any] = {
        "seed": config.seed,
        "device": "cpu",
        "verbose": 0,
        "tensorboard_log": tensorboard_log,
        "learning_rate": p.learning_rate,
        "gamma": p.gamma,
    }
    if isinstance(p, PPOParams):
        policy_kwargs["log_std_init"] = p.log_std_init
        return PPO(
            "MlpPolicy",
            env,
            n_steps=p.n_steps,
            batch_size=p.batch_size,
            n_epochs=p.n_epochs,
            gae_lambda=p.gae_lambda,
            clip_range=p.clip_range,
            ent_coef=p.ent_coef,
            vf_coef=p.vf_coef,
            max_grad_norm=p.max_grad_norm,
            policy_kwargs=policy_kwargs,
            **common,
        )
    off_policy: dict[str, Any] = {
        "buffer_size": p.buffer_size,
        "learning_starts": p.learning_starts,
        "batch_size": p.batch_size,
        "tau": p.tau,
        "train_freq": p.train_freq,
        "gradient_steps": p.gradient_steps,
        "policy_kwargs": policy_kwargs,
    }
    if isinstance(p, SACParams):
        coef: str | float = p.ent_coef if p.ent_coef.startswith("auto") else float(p.ent_coef)
        return SAC("MlpPolicy", env, ent_coef=coef, **off_policy, **common)
    assert isinstance(p, TD3Params)
    n_act = int(np.prod(env.action_space.shape or (1,)))
    # The noise generator draws from numpy's global RNG, which SB3 seeds from ``seed``.
    noise = NormalActionNoise(np.zeros(n_act), p.action_noise_sigma * np.ones(n_act))
    return TD3(
        "MlpPolicy",
        env,
        action_noise=noise,
        policy_delay=p.policy_delay,
        target_policy_noise=p.target_policy_noise,
        target_noise_clip=p.target_noise_clip,
        **off_policy,
        **common,
    )


def deterministic_actor(model: BaseAlgorithm) -> Callable[[torch.Tensor], torch.Tensor]:
    """The policy's deterministic action as one torch function, for fast inference.

    Maps (B, n_obs) normalised observations to (B, n_act) actions in [-1, 1], the same as
    ``model.predict(obs, deterministic=True)`` for these algorithms (a test holds them
    together) without its per-call bookkeeping.
    """
    policy: Any = model.policy
    if isinstance(model, SAC) and not policy.actor.use_sde:
        actor = policy.actor

        def sac(obs: torch.Tensor) -> torch.Tensor:
            features = actor.extract_features(obs, actor.features_extractor)
            return torch.tanh(actor.mu(actor.latent_pi(features)))

        return sac
    if isinstance(model, TD3):
        return policy.actor  # its last layer is tanh
    if isinstance(model, PPO) and policy.share_features_extractor and not policy.use_sde:

        def ppo(obs: torch.Tensor) -> torch.Tensor:
            latent = policy.mlp_extractor.forward_actor(policy.extract_features(obs))
            return torch.clamp(policy.action_net(latent), -1.0, 1.0)  # the Gaussian's mode

        return ppo
    return lambda obs: torch.clamp(policy._predict(obs, deterministic=True), -1.0, 1.0)


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` a run folder's ``config.json`` records.

    Raises:
        ConfigError: the folder has no readable ``config.json`` from a training run.
    """
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a training run folder: no {CONFIG_FILE}")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        data = meta["config"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{str(path)!r} does not hold a training config: {exc}") from exc
    return train_config_from_dict(data)


@dataclass(frozen=True)
class Checkpoint:
    """One saved training state: model, observation statistics, replay buffer (if any) and the
    rest of the state an exact resume needs (:mod:`agents.snapshot`; the latest only)."""

    steps: int
    model: Path
    vecnormalize: Path | None
    replay_buffer: Path | None
    state: Path | None = None


def checkpoint_paths(folder: Path, steps: int) -> Checkpoint:
    """Where the checkpoint at ``steps`` env steps lives (the files may not exist)."""
    return Checkpoint(
        steps=steps,
        model=folder / f"model_{steps}_steps.zip",
        vecnormalize=folder / f"vecnormalize_{steps}_steps.pkl",
        replay_buffer=folder / f"replay_buffer_{steps}_steps.pkl",
        state=folder / f"training_state_{steps}_steps.pkl",
    )


def latest_checkpoint(folder: str | Path) -> Checkpoint | None:
    """The checkpoint with the most env steps in ``folder`` (None when there is none).

    Missing VecNormalize, replay-buffer or training-state files come back as None.
    """
    folder = Path(folder)
    found = [
        int(m.group(1))
        for p in folder.glob("model_*_steps.zip")
        if (m := _CHECKPOINT.match(p.name))
    ]
    if not found:
        return None
    c = checkpoint_paths(folder, max(found))
    vn = c.vecnormalize if c.vecnormalize is not None and c.vecnormalize.is_file() else None
    rb = c.replay_buffer if c.replay_buffer is not None and c.replay_buffer.is_file() else None
    state = c.state if c.state is not None and c.state.is_file() else None
    return Checkpoint(c.steps, c.model, vn, rb, state)


def atomic_save(path: Path, save: Callable[[str], object]) -> Path:
    """Call ``save(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The temporary name (``.<stem>.<random>.tmp<suffix>``) keeps ``path``'s suffix (SB3
    appends ``.zip`` to names without it). The file gets the mode a plain ``open`` would give.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    try:
        save(tmp)
        mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
