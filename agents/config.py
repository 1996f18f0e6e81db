"""Training configuration: frozen dataclasses, validated on construction (conventions.md habit 2).

:class:`TrainConfig` is everything one training run needs. The algorithm's hyperparameters
are a dataclass per algorithm (:class:`PPOParams`, :class:`SACParams`, :class:`TD3Params`)
whose defaults live in ``agents/hyperparams/<algo>.yaml``; YAML only loads into those
dataclasses and an unknown key raises :class:`ConfigError` naming it.

**Which days train and which evaluate.** A training episode's day seed is drawn from the
wrapper's generator (seeded by the vector-env copy's seed) in ``[0, EVAL_DAY_BASE)``, or from
``[0, train_days)`` when ``train_days`` limits training to a small pool of days (cheaper:
each env keeps its last 8 days cached). Evaluation uses fixed day seeds at or above
``EVAL_DAY_BASE`` (by default ``EVAL_DAY_BASE + 0, 1, 2``), so held-out days never appear in
training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from powertrip_env.config import check_flag, dataclass_from_mapping, read_yaml
from powertrip_env.errors import ConfigError

Algo = Literal["ppo", "sac", "td3"]
ALGOS: tuple[Algo, ...] = get_args(Algo)
EnvBackend = Literal["opendss", "batched"]
ENV_BACKENDS: tuple[EnvBackend, ...] = get_args(EnvBackend)
ACTIVATIONS = ("tanh", "relu")

#: Day seeds at or above this value are held out for evaluation; training never draws them.
EVAL_DAY_BASE = 1_000_000_000
#: The default held-out evaluation days.
DEFAULT_EVAL_DAYS = (EVAL_DAY_BASE, EVAL_DAY_BASE + 1, EVAL_DAY_BASE + 2)
#: The default weight sweep, from pure grid impact (1, 0) to pure PV curtailment (0, 1).
DEFAULT_SWEEP_WEIGHTS: tuple[tuple[float, float], ...] = (
    (1.0, 0.0),
    (0.75, 0.25),
    (0.5, 0.5),
    (0.25, 0.75),
    (0.0, 1.0),
)


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")


def _positive_float(name: str, value: object, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):  # type: ignore[operator]
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}={value!r} must be a finite number {bound}")


def _fraction(name: str, value: object) -> None:
    _positive_float(name, value, allow_zero=True)
    if value > 1:  # type: ignore[operator]
        raise ConfigError(f"{name}={value!r} must lie in [0, 1]")


def _net_arch(name: str, value: object) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{name}={value!r} must be a non-empty list of layer widths")
    for width in value:
        _positive_int(name, width)
    return tuple(value)


# --------------------------------------------------------------------------- hyperparameters
@dataclass(frozen=True)
class PPOParams:
    """PPO hyperparameters (stable-baselines3 names; defaults in ``hyperparams/ppo.yaml``)."""

    learning_rate: float = 3e-4
    """Adam step size."""
    n_steps: int = 1024
    """Steps collected per env copy before each update (rollout = n_steps x n_envs)."""
    batch_size: int = 64
    """Minibatch size of the update."""
    n_epochs: int = 10
    """Passes over each rollout."""
    gamma: float = 0.99
    """Discount factor (0.99: a horizon of about 100 steps, 8 h at 5 min)."""
    gae_lambda: float = 0.95
    """GAE bias-variance trade-off."""
    clip_range: float = 0.2
    """PPO clipping of the policy ratio."""
    ent_coef: float = 0.0
    """Entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Gradient clipping."""
    log_std_init: float = -0.5
    """Initial log standard deviation of the Gaussian policy (actions live in [-1, 1])."""
    net_arch: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and value networks."""
    activation: str = "tanh"
    """Hidden activation: ``tanh`` or ``relu``."""

    def __post_init__(self) -> None:
        _positive_float("ppo.learning_rate", self.learning_rate)
        _positive_int("ppo.n_steps", self.n_steps, 2)
        _positive_int("ppo.batch_size", self.batch_size, 2)
        _positive_int("ppo.n_epochs", self.n_epochs)
        _fraction("ppo.gamma", self.gamma)
        _fraction("ppo.gae_lambda", self.gae_lambda)
        _positive_float("ppo.clip_range", self.clip_range)
        _positive_float("ppo.ent_coef", self.ent_coef, allow_zero=True)
        _positive_float("ppo.vf_coef", self.vf_coef)
        _positive_float("ppo.max_grad_norm", self.max_grad_norm)
        if not isinstance(self.log_std_init, (int, float)) or not math.isfinite(self.log_std_init):
            raise ConfigError(f"ppo.log_std_init={self.log_std_init!r} must be a finite number")
        object.__setattr__(self, "net_arch", _net_arch("ppo.net_arch", self.net_arch))
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"ppo.activation={self.activation!r} is not one of {ACTIVATIONS}")


@dataclass(frozen=True)
class SACParams:
    """SAC hyperparameters (stable-baselines3 names; defaults in ``hyperparams/sac.yaml``)."""

    learning_rate: float = 3e-4
    """Adam step size of actor, critics and entropy coefficient."""
    buffer_size: int = 100_000
    """Replay buffer capacity, transitions."""
    learning_starts: int = 1_000
    """Random-action steps before the first update."""
    batch_size: int = 128
    """Minibatch size."""
    tau: float = 0.005
    """Polyak coefficient of the target critics."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Env steps between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    ent_coef: str = "auto"
    """Entropy coefficient: ``auto`` (learned, SB3's ``auto``) or a number as text, e.g. ``0.1``."""
    net_arch: tuple[int, ...] = (128, 128)
    """Hidden layer widths of actor and critics."""
    activation: str = "relu"
    """Hidden activation: ``tanh`` or ``relu``."""

    def __post_init__(self) -> None:
        _off_policy_checks("sac", self)
        coef = str(self.ent_coef)
        if not coef.startswith("auto"):
            try:
                _positive_float("sac.ent_coef", float(coef))
            except ValueError as exc:
                raise ConfigError(
                    f"sac.ent_coef={self.ent_coef!r} must be 'auto', 'auto_<init>' or a number"
                ) from exc
        object.__setattr__(self, "ent_coef", coef)


@dataclass(frozen=True)
class TD3Params:
    """TD3 hyperparameters (stable-baselines3 names; defaults in ``hyperparams/td3.yaml``)."""

    learning_rate: float = 1e-3
    """Adam step size of actor and critics."""
    buffer_size: int = 100_000
    """Replay buffer capacity, transitions."""
    learning_starts: int = 1_000
    """Random-action steps before the first update."""
    batch_size: int = 128
    """Minibatch size."""
    tau: float = 0.005
    """Polyak coefficient of the target networks."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Env steps between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    policy_delay: int = 2
    """Critic updates per actor update."""
    target_policy_noise: float = 0.2
    """Std of the smoothing noise on target actions (actions in [-1, 1])."""
    target_noise_clip: float = 0.5
    """Clip of the target smoothing noise."""
    action_noise_sigma: float = 0.1
    """Std of the Gaussian exploration noise (actions in [-1, 1])."""
    net_arch: tuple[int, ...] = (128, 128)
    """Hidden layer widths of actor and critics."""
    activation: str = "relu"
    """Hidden activation: ``tanh`` or ``relu``."""

    def __post_init__(self) -> None:
        _off_policy_checks("td3", self)
        _positive_int("td3.policy_delay", self.policy_delay)
        _positive_float("td3.target_policy_noise", self.target_policy_noise, allow_zero=True)
        _positive_float("td3.target_noise_clip", self.target_noise_clip, allow_zero=True)
        _positive_float("td3.action_noise_sigma", self.action_noise_sigma, allow_zero=True)


def _off_policy_checks(algo: str, p: SACParams | TD3Params) -> None:
    _positive_float(f"{algo}.learning_rate", p.learning_rate)
    _positive_int(f"{algo}.buffer_size", p.buffer_size)
    _positive_int(f"{algo}.learning_starts", p.learning_starts, 0)
    _positive_int(f"{algo}.batch_size", p.batch_size)
    _fraction(f"{algo}.tau", p.tau)
    _fraction(f"{algo}.gamma", p.gamma)
    _positive_int(f"{algo}.train_freq", p.train_freq)
    _positive_int(f"{algo}.gradient_steps", p.gradient_steps)
    object.__setattr__(p, "net_arch", _net_arch(f"{algo}.net_arch", p.net_arch))
    if p.activation not in ACTIVATIONS:
        raise ConfigError(f"{algo}.activation={p.activation!r} is not one of {ACTIVATIONS}")


HyperParams = PPOParams | SACParams | TD3Params
PARAMS: dict[str, type[PPOParams] | type[SACParams] | type[TD3Params]] = {
    "ppo": PPOParams,
    "sac": SACParams,
    "td3": TD3Params,
}


def hyperparams_from_dict(algo: str, data: dict[str, Any] | None) -> HyperParams:
    """Build the ``algo``'s hyperparameter dataclass from plain data (missing keys: defaults)."""
    _check_algo(algo)
    return dataclass_from_mapping(PARAMS[algo], data, f"{algo} hyperparameters")


def default_hyperparams_path(algo: str, env_backend: str = "opendss") -> Path:
    """The shipped ``agents/hyperparams/<algo>.yaml``, or ``<algo>_batched.yaml`` where one is
    shipped for ``env_backend="batched"`` (many env copies, many more samples)."""
    _check_algo(algo)
    folder = resources.files("agents") / "hyperparams"
    if env_backend == "batched" and (folder / f"{algo}_batched.yaml").is_file():
        return Path(str(folder / f"{algo}_batched.yaml"))
    return Path(str(folder / f"{algo}.yaml"))


def load_hyperparams(
    algo: str, path: str | Path | None = None, env_backend: str = "opendss"
) -> HyperParams:
    """Load ``algo``'s hyperparameters from a YAML file (the shipped one when ``path`` is None).

    Raises:
        ConfigError: unknown algorithm, missing file, invalid YAML, unknown key or bad value.
    """
    source = path if path is not None else default_hyperparams_path(algo, env_backend)
    return hyperparams_from_dict(algo, read_yaml(source, "hyperparameter file"))


def _check_algo(algo: object) -> None:
    if algo not in ALGOS:
        raise ConfigError(f"algo={algo!r} is not one of {ALGOS}")


def check_weights(weights: object, name: str = "weights") -> tuple[float, float]:
    """Validate a weight vector: two finite floats in [0, 1] summing to 1 (to within 1e-6).

    Raises:
        ConfigError: naming ``name``, the value received and what is allowed.
    """
    try:
        w = tuple(float(x) for x in weights)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={weights!r} must be two numbers, e.g. (0.5, 0.5)") from exc
    if len(w) != 2 or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in w):
        raise ConfigError(f"{name}={weights!r} must be two numbers in [0, 1], e.g. (0.5, 0.5)")
    if abs(sum(w) - 1.0) > 1e-6:
        raise ConfigError(f"{name}={weights!r} must sum to 1 (they sum to {sum(w):.6g})")
    return w[0], w[1]


# ------------------------------------------------------------------------------ the run
@dataclass(frozen=True)
class TrainConfig:
    """One training run: algorithm, objective weights, budget, seeds and outputs."""

    algo: Algo = "sac"
    """Learner: ``ppo``, ``sac`` or ``td3`` (stable-baselines3)."""
    weights: tuple[float, float] = (0.5, 0.5)
    """Scalarising weights (grid impact f1, PV curtailment f2): in [0, 1], summing to 1. For a
    weight-conditioned policy, the weight that evaluation and the policy adapter use."""
    weight_conditioned: bool = False
    """Train one policy for every weight: w is appended to the observation and drawn per
    episode uniformly on the simplex (w1 ~ U(0, 1), w2 = 1 - w1)."""
    total_timesteps: int = 20_000
    """Env steps to train for in all (a resumed run continues to this count). PPO collects
    whole rollouts (n_steps x n_envs), so it may end a little past it."""
    seed: int = 0
    """The run's one seed: SB3 (torch, action noise), vector-env copy k gets ``seed + k``."""
    n_envs: int = 1
    """Env copies stepped in process (each with its own OpenDSS engine, or rows of one
    batched env with ``env_backend: batched``)."""
    env_backend: EnvBackend = "opendss"
    """Training env: ``opendss`` (``PowerTripEnv`` copies, one OpenDSS solve per step) or
    ``batched`` (``BatchedPowerTripEnv``: all copies solved at once with the exact reduced
    network model, about 1000x the samples per second). Held-out evaluation always runs
    on the OpenDSS env."""
    prefetch_days: bool = False
    """With ``env_backend: batched``, build each copy's next day (profiles and references) in a
    background process while the copies step, one episode ahead (the same days and weights).
    Worth it when the days are not a small cached pool (``train_days`` None or large). The
    process is spawned, so a script that trains needs the ``if __name__ == "__main__":``
    guard."""
    initial_action: float | None = None
    """Start the policy's deterministic action at this value for every action (the output
    layer's bias), in [-3, 3]: 1.0 starts from no control (PV never curtailed, EVs charged at
    their request). PPO's Gaussian mean may start past the range, whose bound then holds
    most of the explored actions (2.0: no control, about 5 % of actions explored below it);
    SAC and TD3 cap it at +-0.995. None: SB3's initialisation (about 0, mid-range)."""
    action_margin: float = 0.0
    """Widen the policy's action range past the env's: [-1, 1] maps to fractions
    [-margin, 1 + margin], which the env clips to [0, 1]. A tanh-squashed policy (SAC, TD3)
    then reaches the bounds (no curtailment, full charging) exactly."""
    checkpoint_every: int = 5_000
    """Save a checkpoint (model, VecNormalize, replay buffer) every this many env steps."""
    eval_every: int = 5_000
    """Evaluate on the held-out days every this many env steps (0: only at the end)."""
    eval_days: tuple[int, ...] = DEFAULT_EVAL_DAYS
    """Held-out day seeds for evaluation; each must be >= EVAL_DAY_BASE (1e9)."""
    train_days: int | None = None
    """Train on the day seeds 0..train_days-1 only (None: a fresh day per episode)."""
    max_episode_steps: int | None = None
    """Cut training episodes after this many steps (None: the whole day, 288 at 5 min)."""
    normalise_obs: bool = True
    """Normalise observations with SB3's VecNormalize (statistics saved with the model)."""
    energy_guarantee: bool = True
    """EV energy guarantee on (False: the seed formulation, architecture.md §6)."""
    scenario: str | None = None
    """Scenario YAML (None: the shipped default)."""
    params: HyperParams | None = None
    """The algorithm's hyperparameters (None: ``agents/hyperparams/<algo>.yaml``, or
    ``<algo>_batched.yaml`` on the batched backend where one is shipped)."""
    out: str = "runs"
    """Folder under which the run folder is created."""
    progress_bar: bool = True
    """Show a progress bar while training."""
    torch_threads: int = 1
    """Torch intra-op threads (1 is fastest for these small networks on 2 cores)."""

    def __post_init__(self) -> None:
        _check_algo(self.algo)
        object.__setattr__(self, "weights", check_weights(self.weights))
        _positive_int("total_timesteps", self.total_timesteps)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        _positive_int("n_envs", self.n_envs)
        if self.env_backend not in ENV_BACKENDS:
            raise ConfigError(f"env_backend={self.env_backend!r} is not one of {ENV_BACKENDS}")
        object.__setattr__(self, "prefetch_days", check_flag(self.prefetch_days, "prefetch_days"))
        if self.prefetch_days and self.env_backend != "batched":
            raise ConfigError(
                f"prefetch_days=True needs env_backend='batched' (got "
                f"env_backend={self.env_backend!r})"
            )
        _positive_float("action_margin", self.action_margin, allow_zero=True)
        if self.initial_action is not None and not (
            isinstance(self.initial_action, (int, float))
            and not isinstance(self.initial_action, bool)
            and -3.0 <= self.initial_action <= 3.0
        ):
            raise ConfigError(
                f"initial_action={self.initial_action!r} must be a number in [-3, 3] or None"
            )
        if self.action_margin > 0.5:
            raise ConfigError(f"action_margin={self.action_margin!r} must lie in [0, 0.5]")
        _positive_int("checkpoint_every", self.checkpoint_every)
        _positive_int("eval_every", self.eval_every, 0)
        _positive_int("torch_threads", self.torch_threads)
        days = tuple(self.eval_days)
        if not days:
            raise ConfigError("eval_days is empty; give at least one held-out day seed")
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or day < EVAL_DAY_BASE:
                raise ConfigError(
                    f"eval_days contains {day!r}; held-out days are integers >= {EVAL_DAY_BASE} "
                    "(training draws day seeds below it)"
                )
        object.__setattr__(self, "eval_days", days)
        if self.train_days is not None:
            _positive_int("train_days", self.train_days)
        if self.max_episode_steps is not None:
            _positive_int("max_episode_steps", self.max_episode_steps)
        params = self.params
        if params is None:
            params = load_hyperparams(self.algo, env_backend=self.env_backend)
        if not isinstance(params, PARAMS[self.algo]):
            raise ConfigError(
                f"params is a {type(params).__name__} but algo={self.algo!r} needs "
                f"{PARAMS[self.algo].__name__}"
            )
        object.__setattr__(self, "params", params)

    @property
    def hyperparams(self) -> HyperParams:
        """The resolved hyperparameters (never None after construction)."""
        assert self.params is not None  # filled in __post_init__
        return self.params

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the inverse of :func:`train_config_from_dict`)."""
        return asdict(self)


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Build a validated :class:`TrainConfig` from plain data (parsed JSON/YAML).

    Raises:
        ConfigError: an unknown key (named), or any invalid value.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a training config must be a mapping, got {type(data).__name__}")
    data = dict(data)
    algo = data.get("algo", TrainConfig.algo)
    _check_algo(algo)
    raw_params = data.pop("params", None)
    config = dataclass_from_mapping(TrainConfig, data, "training config")
    if raw_params is None:
        return config
    return replace(config, params=hyperparams_from_dict(algo, raw_params))


__all__ = [
    "ALGOS",
    "DEFAULT_EVAL_DAYS",
    "DEFAULT_SWEEP_WEIGHTS",
    "ENV_BACKENDS",
    "EVAL_DAY_BASE",
    "HyperParams",
    "PPOParams",
    "SACParams",
    "TD3Params",
    "TrainConfig",
    "check_weights",
    "hyperparams_from_dict",
    "load_hyperparams",
    "train_config_from_dict",
]
