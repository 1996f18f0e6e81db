"""The policy adapter: a trained agent as a controller of the day simulator.

``AgentController(run_dir)`` implements the controller interface every baseline shares
(``act(state: SimState) -> kW setpoints``), so an agent runs in
``FeederSimulator.run(controller)`` and in every benchmark exactly like no control or NSGA-II.
It builds the observation with the env's own :meth:`PowerTripEnv.observation` (one code path
for training and deployment), applies the saved VecNormalize statistics, runs the policy
deterministically and maps its action back to kW through :meth:`PowerTripEnv.action_to_setpoints`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

from agents.actions import fraction_from_action
from agents.config import TrainConfig, check_weights
from agents.episodes import with_weights
from agents.models import (
    ALGO_CLASSES,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MODEL_FILE,
    VECNORMALIZE_FILE,
    checkpoint_paths,
    deterministic_actor,
    read_run_config,
)
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import ConfigError
from powertrip_env.simulator import SimState


class ObsNormaliser:
    """VecNormalize's observation transform as plain numpy (no env, no deep copies).

    ``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)``, float32.
    """

    def __init__(self, mean: np.ndarray, var: np.ndarray, clip_obs: float, epsilon: float) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).copy()
        self.scale = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + epsilon)
        self.clip_obs = float(clip_obs)

    @classmethod
    def from_vecnormalize(cls, vn: VecNormalize) -> ObsNormaliser | None:
        """A snapshot of ``vn``'s observation statistics (None if it does not normalise them)."""
        if not vn.norm_obs:
            return None
        rms = vn.obs_rms
        if not isinstance(rms, RunningMeanStd):
            raise ConfigError("dictionary observations are not supported by the policy adapter")
        return cls(rms.mean, rms.var, vn.clip_obs, vn.epsilon)

    @classmethod
    def load(cls, path: str | Path) -> ObsNormaliser | None:
        """From a ``VecNormalize.save`` pickle."""
        with open(path, "rb") as fh:
            vn = pickle.load(fh)  # our own run folder's statistics (trusted input)
        if not isinstance(vn, VecNormalize):
            raise ConfigError(f"{str(path)!r} does not hold VecNormalize statistics")
        return cls.from_vecnormalize(vn)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        out = np.clip((obs - self.mean) * self.scale, -self.clip_obs, self.clip_obs)
        return out.astype(np.float32)


def _locate(model_path: str | Path) -> tuple[Path, Path, Path]:
    """(run folder, model zip, VecNormalize pickle) of a run folder or a model zip in one."""
    path = Path(model_path)
    if path.is_dir():
        return path, path / MODEL_FILE, path / VECNORMALIZE_FILE
    if not path.is_file():
        raise ConfigError(f"model {str(path)!r} does not exist (give a run folder or a .zip)")
    if path.parent.name == CHECKPOINT_DIR:
        run_dir = path.parent.parent
        steps = path.stem.removeprefix("model_").removesuffix("_steps")
        if not steps.isdigit():
            raise ConfigError(f"{path.name!r} is not a checkpoint name (model_<N>_steps.zip)")
        vn = checkpoint_paths(path.parent, int(steps)).vecnormalize
        assert vn is not None
        return run_dir, path, vn
    return path.parent, path, path.parent / VECNORMALIZE_FILE


class AgentController:
    """A trained SB3 agent behind the ``act(state) -> kW setpoints`` controller interface.

    Args:
        model_path: a training run folder (uses its ``model.zip``), the final ``model.zip``
            or a checkpoint ``checkpoints/model_<N>_steps.zip`` inside one; the run's
            ``config.json`` says which algorithm and scenario it was trained on.
        env: an env of the scenario the controller will act on, used to build observations
            and map actions to kW (one is built from the run's config when omitted).
        weights: for a weight-conditioned policy, the weight it should pursue (default: the
            run's ``weights``); ignored by a single-weight policy.
    """

    name = "agent"

    def __init__(
        self,
        model_path: str | Path,
        env: PowerTripEnv | None = None,
        weights: tuple[float, float] | None = None,
    ) -> None:
        run_dir, model_file, vn_file = _locate(model_path)
        if not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"{str(run_dir)!r} has no {CONFIG_FILE}: not a training run folder")
        config = read_run_config(run_dir)
        if not model_file.is_file():
            raise ConfigError(f"{str(model_file)!r} does not exist; has the run finished?")
        model = ALGO_CLASSES[config.algo].load(str(model_file), device="cpu")
        normaliser = None
        if config.normalise_obs:
            if not vn_file.is_file():
                raise ConfigError(f"{str(vn_file)!r} is missing: the model needs its statistics")
            normaliser = ObsNormaliser.load(vn_file)
        self._setup(model, normaliser, config, env, weights)

    @classmethod
    def from_model(
        cls,
        model: BaseAlgorithm,
        normaliser: ObsNormaliser | None,
        config: TrainConfig,
        env: PowerTripEnv | None = None,
        weights: tuple[float, float] | None = None,
    ) -> AgentController:
        """A controller around a model in memory (evaluation during training)."""
        self = cls.__new__(cls)
        self._setup(model, normaliser, config, env, weights)
        return self

    def _setup(
        self,
        model: BaseAlgorithm,
        normaliser: ObsNormaliser | None,
        config: TrainConfig,
        env: PowerTripEnv | None,
        weights: tuple[float, float] | None,
    ) -> None:
        from agents.envs import make_eval_env

        self.model = model
        self._actor = deterministic_actor(model)
        self.normaliser = normaliser
        self.config = config
        self.env = env if env is not None else make_eval_env(config)
        self.weights = np.array(
            check_weights(weights if weights is not None else config.weights), np.float32
        )
        n_obs = self.env.observation_space.shape[0]  # type: ignore[index]
        expected = n_obs + (self.weights.size if config.weight_conditioned else 0)
        got = model.observation_space.shape[0]  # type: ignore[index]
        if got != expected:
            raise ConfigError(
                f"the model takes {got} observations but this env gives {expected}: "
                "it was trained on another device placement"
            )

    def act_batch(self, observations: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Deterministic actions for a batch of env observations.

        Args:
            observations: (B, n_obs) raw ``PowerTripEnv`` observations (not normalised,
                without the weight columns).
            weights: (B, 2) or (2,) weights for a weight-conditioned policy (default: the
                controller's ``weights``); ignored by a single-weight policy.

        Returns:
            (B, n_cp + n_pv) fractions in [0, 1]: the env's action space.
        """
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim != 2:
            raise ValueError(f"observations must have shape (B, n_obs), got {obs.shape}")
        if self.config.weight_conditioned:
            w = self.weights if weights is None else np.asarray(weights, np.float32)
            obs = with_weights(obs, np.broadcast_to(w, (obs.shape[0], w.shape[-1])))
        if self.normaliser is not None:
            obs = self.normaliser(obs)
        with torch.inference_mode():
            action = self._actor(torch.from_numpy(obs)).numpy()
        return fraction_from_action(action.astype(float), self.config.action_margin)

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW for the step ``state`` describes."""
        obs = self.env.observation(state)
        fraction = self.act_batch(obs[None, :])[0]
        return self.env.action_to_setpoints(fraction, state)
