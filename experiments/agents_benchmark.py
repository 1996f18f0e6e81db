"""Trained agents against NSGA-II: weighted day cost on held-out days, and decision time.

For each weight w of the sweep (1, 0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0, 1):

1. train an agent on the env scalarised with w: by default PPO on the batched backend
   (``agents/batched.py``: 32 copies of the feeder solved at once with the exact reduced
   network model, on the training days 0..63), 2,000,000 env steps, the shipped
   ``agents/hyperparams/ppo_batched.yaml`` (gamma 0.9); weights with w2 >= 0.75 start from no
   control, PPO's Gaussian mean at 2 (past the range, so that "never curtail" holds exactly
   where the reward hardly depends on it; ``--no-control-start-w2``, ``--no-control-action``);
2. run it, NSGA-II with weighted-sum selection at w (population 100, 100 generations,
   ``baselines/nsga2.py``) and no control on the same held-out days (day seeds
   ``EVAL_DAY_BASE + k``, never seen in training) in the day simulator of the OpenDSS env,
   with the EV energy guarantee;
3. run the day's optimum with perfect foresight at w (``baselines/oracle.py``, planned on the
   whole day and replayed in OpenDSS) on the same days;
4. report each controller's normalised weighted day cost (mean over the days of the mean over
   steps of ``w . [f1/F1_ref, f2/F2_ref]``, :mod:`agents.evaluation`; lower is better), the
   ratio agent / NSGA-II (target <= 1.10), each controller's optimality gap
   ``(cost - oracle) / (no control - oracle)`` (of the costs averaged over the days: 0 is the
   optimum, 1 no better than no control), and the decision time per step of each (target:
   the agent at least 1000x faster).

**Look-ahead agents** (``--lookahead``): besides the agent above, train a second agent per
weight with ``agents/hyperparams/ppo_batched_lookahead.yaml`` (gamma 0.99, gae_lambda 0.95:
a horizon of about 100 steps, 8 h, so that the discount sees the EV deadlines, hours ahead at
5-minute steps; or ``--lookahead PATH`` for another file), reported as "look-ahead agent"
with its own gap and whether it beats per-step NSGA-II at that weight. ``--weights 0.5,0.5``
(repeatable) runs chosen weights instead of the sweep.

Budget (at most 60 minutes on the 2-core development machine; the README gives the measured
time): the trainings and the NSGA-II and oracle days run in a pool of ``--workers`` processes
(default 2, one torch and BLAS thread each). Lower ``--timesteps``/``--days`` for a shorter
run; ``--smoke`` checks that everything runs (tiny budget, 24-step days). ``--backend opendss
--algo sac --timesteps 40000`` trains on the OpenDSS env instead (much slower per step).

NSGA-II is deterministic for given weight, day, population, generations, seed, steps and
code, and so is the oracle for given weight, day, steps, iterations and code, so their day
results are cached (``<out>/cache/agents-nsga2/``, keyed by all of them and a hash of
``powertrip_env`` and ``baselines``); ``--no-cache`` computes every day afresh. The printed
summary says how many NSGA-II and oracle days came from the cache. With ``--steps N`` the
oracle's whole-day plan is replayed for the first N steps only: its cost over them is no
lower bound there (it owes energy to later steps), so gaps of partial days are indicative.

NSGA-II lives in ``baselines/nsga2.py``; it is imported lazily and, when absent, only the
agent side is reported (with a note that the comparison is pending).

Usage::

    python benchmarks/agents_quality.py [--timesteps 2000000] [--days 2] [--workers 2] [--no-cache]
    python benchmarks/agents_quality.py --backend opendss --algo sac --timesteps 40000
    python benchmarks/agents_quality.py --weights 0.5,0.5 --lookahead --timesteps 500000 --days 1
    python benchmarks/agents_quality.py --smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import (
    DEFAULT_SWEEP_WEIGHTS,
    EVAL_DAY_BASE,
    Algo,
    EnvBackend,
    TrainConfig,
    check_weights,
    default_hyperparams_path,
    load_hyperparams,
)
from powertrip_env.errors import ConfigError

TARGET_COST_RATIO = 1.10
TARGET_SPEEDUP = 1000.0
LOOKAHEAD_HYPERPARAMS = str(
    default_hyperparams_path("ppo", "batched").with_name("ppo_batched_lookahead.yaml")
)
"""The shipped look-ahead PPO hyperparameters (gamma 0.99) of ``--lookahead``."""
AGENT, LOOKAHEAD_AGENT = "agent", "look-ahead agent"


@dataclass(frozen=True)
class BenchArgs:
    """Arguments of the benchmark."""

    algo: Algo = "ppo"
    """Learner for every weight."""
    backend: EnvBackend = "batched"
    """Training env: ``batched`` (reduced-model copies, ``agents/batched.py``) or ``opendss``."""
    timesteps: int = 2_000_000
    """Env steps of training per weight (the CLI's default; 40,000 suits ``opendss``)."""
    n_envs: int = 32
    """Env copies per training (rows of the batched env, or OpenDSS envs; the CLI's default
    is 1 on ``opendss``)."""
    train_days: int | None = 64
    """Train on day seeds 0..N-1 (None: a fresh day per episode, the CLI's default on
    ``opendss``)."""
    action_margin: float = 0.0
    """Policy range past the env's [0, 1] (``TrainConfig.action_margin``) of the weights that
    do not start from no control."""
    no_control_action: float = 2.0
    """Initial action (PPO's Gaussian mean, ``TrainConfig.initial_action``) of the weights
    that start from no control: past the range, so that the policy stays exactly at the
    bounds (no curtailment) where the reward hardly depends on the action (dawn, dusk) and a
    mean started at 1.0 drifts off them; about 5 % of explored actions still fall below."""
    no_control_margin: float = 0.0
    """Action margin of the weights that start from no control."""
    no_control_start_w2: float = 0.75
    """Weights whose curtailment weight w2 is at least this start training from no control
    (``TrainConfig.initial_action = 1``: PV never curtailed, EVs charged at their request),
    which is near the optimum when curtailment dominates; the others start from SB3's
    initialisation (the middle of every range), from which curtailing PV and deferring
    charging, the moves that lower unbalance, are learnt faster. 0: every weight; > 1: none."""
    hyperparams: str | None = None
    """Hyperparameter YAML (None: the shipped one for ``algo`` and ``backend``)."""
    lookahead: str | None = None
    """Hyperparameter YAML of a second, look-ahead agent trained per weight (None: none;
    ``LOOKAHEAD_HYPERPARAMS`` is the shipped one, gamma 0.99)."""
    weights: tuple[tuple[float, float], ...] = tuple(
        (float(w1), float(w2)) for w1, w2 in DEFAULT_SWEEP_WEIGHTS
    )
    """Weights (w1, w2) to train and compare at (default: the sweep)."""
    days: int = 2
    """Held-out days (EVAL_DAY_BASE + 0, 1, ...)."""
    steps: int | None = None
    """Only the first N steps of each evaluated day (None: the whole day)."""
    nsga_pop: int = 100
    """NSGA-II population."""
    nsga_gen: int = 100
    """NSGA-II generations per step."""
    oracle_iter: int = 500
    """The oracle's projected-gradient iterations at most (``OracleConfig.max_iter``)."""
    workers: int = 2
    """Processes for trainings and NSGA-II days."""
    seed: int = 0
    """Seed of every training and of NSGA-II."""
    out: str = "runs"
    """Folder for the training runs and the benchmark's results."""
    cache: str | None = None
    """Folder of cached NSGA-II day results (None: no cache; every day is computed)."""
    smoke: bool = False
    """Tiny budget: check that the benchmark runs."""


def _nsga2_available() -> bool:
    try:
        import baselines.nsga2  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------- pool tasks (top level)
def _train_task(config: TrainConfig) -> str:
    from experiments.train import train

    return str(train(config))


def _agent_task(
    run_dirs: dict[str, str], days: tuple[int, ...], steps: int | None, weights: tuple[float, float]
) -> list[dict[str, Any]]:
    """Every agent of ``run_dirs`` (label -> training run) and no control on ``days``."""
    import torch

    from agents.evaluation import evaluate_days
    from agents.policy import AgentController
    from baselines.no_control import NoControl
    from powertrip_env.env import PowerTripEnv
    from powertrip_env.simulator import Controller

    torch.set_num_threads(1)
    env = PowerTripEnv()
    try:
        controllers: dict[str, Controller] = {
            label: AgentController(run_dir, env=env) for label, run_dir in run_dirs.items()
        }
        controllers["no control"] = NoControl()
        days_frame = evaluate_days(controllers, env, days, weights, steps=steps).days
    finally:
        env.close()
    return list(days_frame.to_dict("records"))  # type: ignore[arg-type]


def code_fingerprint() -> str:
    """SHA-256 of every file of ``powertrip_env`` and ``baselines`` (NSGA-II's inputs)."""
    import hashlib

    import baselines
    import powertrip_env

    digest = hashlib.sha256()
    for package in (powertrip_env, baselines):
        root = Path(package.__file__).parent  # type: ignore[arg-type]
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root.parent)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _cache_path(cache_dir: Path, kind: str, inputs: dict[str, Any]) -> Path:
    """Where ``kind``'s day result for ``inputs`` (and the current code) is cached."""
    import hashlib

    key = json.dumps({**inputs, "code": code_fingerprint()}, sort_keys=True)
    return cache_dir / f"{kind}-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _cached(cache: Path | None, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``'s day result, read from ``cache`` when there, written there when not."""
    if cache is not None and cache.is_file():
        return {**json.loads(cache.read_text(encoding="utf-8")), "cached": True}
    row = compute()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, cache)
    return {**row, "cached": False}


def nsga2_cache_path(
    cache_dir: Path,
    weights: tuple[float, float],
    day: int,
    steps: int | None,
    pop: int,
    gen: int,
    seed: int,
) -> Path:
    """Where NSGA-II's result for these inputs (and the current code) is cached."""
    inputs = {"weights": [float(w) for w in weights], "day": int(day), "steps": steps}
    return _cache_path(cache_dir, "nsga2", inputs | {"pop": pop, "gen": gen, "seed": seed})


def oracle_cache_path(
    cache_dir: Path, weights: tuple[float, float], day: int, steps: int | None, max_iter: int
) -> Path:
    """Where the oracle's result for these inputs (and the current code) is cached."""
    inputs = {"weights": [float(w) for w in weights], "day": int(day), "steps": steps}
    return _cache_path(cache_dir, "oracle", inputs | {"max_iter": max_iter})


def _nsga2_task(
    weights: tuple[float, float],
    day: int,
    steps: int | None,
    pop: int,
    gen: int,
    seed: int,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """NSGA-II on one day at ``weights``; read from / written to ``cache_dir`` when given.

    NSGA-II is deterministic for given inputs, seed and code, so a cached result (keyed by
    all of them, :func:`nsga2_cache_path`) is the result a new run would compute.
    """
    cache = None
    if cache_dir is not None:
        cache = nsga2_cache_path(Path(cache_dir), weights, day, steps, pop, gen, seed)
    return _cached(cache, lambda: _nsga2_day(weights, day, steps, pop, gen, seed))


def _oracle_task(
    weights: tuple[float, float],
    day: int,
    steps: int | None,
    max_iter: int,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """The day's optimum (perfect foresight) on one day at ``weights``, cached like NSGA-II's.

    The oracle is deterministic (no random draw) for given inputs and code.
    """
    cache = None
    if cache_dir is not None:
        cache = oracle_cache_path(Path(cache_dir), weights, day, steps, max_iter)
    return _cached(cache, lambda: _oracle_day(weights, day, steps, max_iter))


def _run_day(
    day: int, steps: int | None, make: Callable[[Any, tuple[float, float]], Any]
) -> tuple[Any, np.ndarray]:
    """Run ``make(sim, refs)`` on held-out ``day`` in the OpenDSS env's day simulator.

    Returns the controller and the (n_steps, 2) normalised costs of its day.
    """
    from agents.evaluation import normalised_objectives
    from powertrip_env.env import PowerTripEnv

    env = PowerTripEnv()
    try:
        env.reset(options={"day_seed": day})
        assert env.sim is not None
        controller = make(env.sim, env.refs)
        result = env.sim.run(controller, steps=steps)
        return controller, normalised_objectives(result.steps, env.refs)
    finally:
        env.close()


def _cost_row(
    controller: str, day: int, f_norm: np.ndarray, weights: tuple[float, float]
) -> dict[str, Any]:
    """The benchmark's row of one controller's day: its weighted and per-objective costs."""
    return {
        "controller": controller,
        "day_seed": day,
        "weighted_cost": float((f_norm @ np.asarray(weights)).mean()),
        "f1_norm_mean": float(f_norm[:, 0].mean()),
        "f2_norm_mean": float(f_norm[:, 1].mean()),
    }


def _nsga2_day(
    weights: tuple[float, float], day: int, steps: int | None, pop: int, gen: int, seed: int
) -> dict[str, Any]:
    from agents.evaluation import TimedController
    from baselines.nsga2 import NSGA2Config, NSGA2Controller

    config = NSGA2Config(
        pop_size=pop, n_gen=gen, seed=seed, selection="weighted_sum", weights=weights
    )
    timed, f_norm = _run_day(
        day, steps, lambda sim, refs: TimedController(NSGA2Controller(sim, config, refs=refs))
    )
    return {
        **_cost_row("nsga2", day, f_norm, weights),
        "decision_s_per_step": timed.seconds / max(timed.calls, 1),
    }


def _oracle_day(
    weights: tuple[float, float], day: int, steps: int | None, max_iter: int
) -> dict[str, Any]:
    from baselines.oracle import OracleConfig, OracleController

    config = OracleConfig(weights=weights, max_iter=max_iter)
    oracle, f_norm = _run_day(day, steps, lambda sim, refs: OracleController(sim, config, refs))
    day_steps = oracle.plan.x_kw.shape[0]
    return {
        **_cost_row("oracle", day, f_norm, weights),
        # the plan's Frank-Wolfe gap, in the same unit as weighted_cost (mean over steps)
        "oracle_gap": float(oracle.plan.gap) / max(day_steps, 1),
        "oracle_iterations": oracle.plan.iterations,
        "decision_s_per_step": oracle.plan.seconds / max(len(f_norm), 1),
    }


# ------------------------------------------------------------------------------- the bench
def _train_config(
    args: BenchArgs, weights: tuple[float, float], out: Path, hyperparams: str | None = None
) -> TrainConfig:
    """The training at ``weights`` (``hyperparams``: a YAML instead of ``args.hyperparams``)."""
    every = max(args.timesteps // 4, 1)
    params = load_hyperparams(args.algo, hyperparams or args.hyperparams, args.backend)
    from_no_control = weights[1] >= args.no_control_start_w2
    config = TrainConfig(
        algo=args.algo,
        weights=weights,
        total_timesteps=args.timesteps,
        seed=args.seed,
        n_envs=args.n_envs,
        env_backend=args.backend,
        action_margin=args.no_control_margin if from_no_control else args.action_margin,
        initial_action=args.no_control_action if from_no_control else None,
        train_days=args.train_days,
        checkpoint_every=every,
        eval_every=every,
        eval_days=(EVAL_DAY_BASE + 100,),  # a held-out day for the learning curve only
        params=params,
        out=str(out),
        progress_bar=False,
    )
    if not args.smoke:
        return config
    tiny: dict[str, Any] = {"net_arch": (16, 16)}
    if args.algo == "ppo":
        tiny |= {"n_steps": 32, "batch_size": 32, "n_epochs": 1}
    else:
        tiny |= {"learning_starts": 64, "batch_size": 16, "buffer_size": 2000}
    return replace(
        config,
        params=replace(params, **tiny),
        eval_every=0,
        train_days=2,
        max_episode_steps=48,
        n_envs=min(args.n_envs, 4),
    )


def run(args: BenchArgs) -> dict[str, Any]:
    """Train, evaluate and compare; return the per-weight results (also written to disk)."""
    out = Path(args.out)
    bench_dir = out / f"benchmark-agents__{time.strftime('%Y%m%dT%H%M%S')}"
    bench_dir.mkdir(parents=True, exist_ok=True)
    days = tuple(EVAL_DAY_BASE + k for k in range(args.days))
    weights = [check_weights(w, "--weights") for w in args.weights]
    with_nsga2 = _nsga2_available()
    hyperparams = {AGENT: args.hyperparams}
    if args.lookahead is not None:
        hyperparams[LOOKAHEAD_AGENT] = args.lookahead
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        trainings = {
            (w, label): pool.submit(_train_task, _train_config(args, w, out, path))
            for w in weights
            for label, path in hyperparams.items()
        }
        oracles = {
            w: [
                pool.submit(_oracle_task, w, d, args.steps, args.oracle_iter, args.cache)
                for d in days
            ]
            for w in weights
        }
        nsga: dict[tuple[float, float], list[Future[dict[str, Any]]]] = {}
        if with_nsga2:
            for w in weights:
                nsga[w] = [
                    pool.submit(
                        _nsga2_task,
                        w,
                        d,
                        args.steps,
                        args.nsga_pop,
                        args.nsga_gen,
                        args.seed,
                        args.cache,
                    )
                    for d in days
                ]
        run_dirs = {key: f.result() for key, f in trainings.items()}
        t_train = time.perf_counter() - t0
        agents = {
            w: pool.submit(
                _agent_task,
                {label: run_dirs[w, label] for label in hyperparams},
                days,
                args.steps,
                w,
            )
            for w in weights
        }
        rows: list[dict[str, Any]] = []
        for w in weights:
            others = [f.result() for f in nsga.get(w, []) + oracles[w]]
            for row in agents[w].result() + others:
                rows.append({"w1": w[0], "w2": w[1], **row})
    t_total = time.perf_counter() - t0
    results = {
        "args": asdict(args),
        "days": list(days),
        "nsga2_available": with_nsga2,
        "train_wall_s": t_train,
        "total_wall_s": t_total,
        "run_dirs": {f"{w[0]:.2f},{w[1]:.2f} {label}": d for (w, label), d in run_dirs.items()},
        "rows": rows,
    }
    (bench_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = _table(rows, weights, with_nsga2)
    (bench_dir / "table.md").write_text(table + "\n")
    print(table)
    cached = {
        k: sum(1 for r in rows if r.get("cached") and r["controller"] == k)
        for k in ("nsga2", "oracle")
    }
    trained = " and ".join(
        f"{label} ({Path(path).name if path else 'shipped hyperparameters'})"
        for label, path in hyperparams.items()
    )
    print(
        f"\n{args.algo.upper()} on the {args.backend} env ({args.n_envs} copies, "
        f"train days {args.train_days or 'all'}), {args.timesteps:,} steps per weight for each "
        f"of: {trained}; held-out days {list(days)}, steps per day {args.steps or 'all'}; "
        f"training {t_train / 60:.1f} min, total {t_total / 60:.1f} min on {args.workers} "
        f"workers; days from cache: NSGA-II {cached['nsga2']}, oracle {cached['oracle']}"
        f"\nresults: {bench_dir}"
    )
    return results


def _mean(rows: list[dict[str, Any]], w: tuple[float, float], controller: str, key: str) -> float:
    values = [
        r[key] for r in rows if (r["w1"], r["w2"]) == tuple(w) and r["controller"] == controller
    ]
    return float(np.mean(values)) if values else float("nan")


def _ratio(agent: float, nsga: float) -> float:
    """agent / NSGA-II cost; where NSGA-II reaches zero, only a zero-cost agent matches it."""
    if nsga > 1e-12:
        return agent / nsga
    return 1.0 if agent <= 1e-12 else float("inf")


def optimality_gap(cost: float, oracle: float, no_control: float) -> float:
    """``(cost - oracle) / (no control - oracle)``: 0 at the optimum, 1 no better than no
    control (nan where no control is already optimal)."""
    span = no_control - oracle
    return (cost - oracle) / span if span > 1e-12 else float("nan")


def _table(rows: list[dict[str, Any]], weights: list[tuple[float, float]], with_nsga2: bool) -> str:
    lookahead = any(r["controller"] == LOOKAHEAD_AGENT for r in rows)
    head = "| w (f1, f2) | agent cost | NSGA-II cost | agent / NSGA-II | oracle cost |"
    head += " agent gap | NSGA-II gap |"
    if lookahead:
        head += " look-ahead agent cost | look-ahead agent gap | look-ahead agent < NSGA-II |"
    head += " no control cost | agent ms/step | NSGA-II s/step | speed-up |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    verdicts = []
    for w in weights:
        agent = _mean(rows, w, AGENT, "weighted_cost")
        nc = _mean(rows, w, "no control", "weighted_cost")
        best = _mean(rows, w, "oracle", "weighted_cost")
        t_agent = _mean(rows, w, AGENT, "decision_s_per_step")
        nsga = _mean(rows, w, "nsga2", "weighted_cost")
        ahead = _mean(rows, w, LOOKAHEAD_AGENT, "weighted_cost")
        gap_nsga = optimality_gap(nsga, best, nc)
        gap_ahead = optimality_gap(ahead, best, nc)
        cells = [f"{agent:.4f}"]
        if with_nsga2:
            ratio = _ratio(agent, nsga)
            verdict = "MET" if ratio <= TARGET_COST_RATIO else "MISSED"
            cells += [f"{nsga:.4f}", f"{ratio:.3f} ({verdict})"]
        else:
            cells += ["pending", "pending"]
        cells += [f"{best:.4f}", f"{optimality_gap(agent, best, nc):.3f}"]
        cells += [f"{gap_nsga:.3f}" if with_nsga2 else "pending"]
        if lookahead:
            beats = "yes" if ahead < nsga else "no"
            cells += [f"{ahead:.4f}", f"{gap_ahead:.3f}", beats if with_nsga2 else "pending"]
            if with_nsga2:
                verdicts.append(
                    f"w = ({w[0]:.2f}, {w[1]:.2f}): look-ahead agent gap {gap_ahead:.3f} vs "
                    f"per-step NSGA-II gap {gap_nsga:.3f}: the look-ahead agent "
                    f"{'beats' if ahead < nsga else 'does NOT beat'} per-step NSGA-II"
                )
        cells.append(f"{nc:.4f}")
        certificate = _mean(rows, w, "oracle", "oracle_gap")
        if np.isfinite(certificate):
            verdicts.append(
                f"w = ({w[0]:.2f}, {w[1]:.2f}): the oracle is within {certificate:.5f} of the "
                f"optimum per step (its Frank-Wolfe gap, a bound where the cost is convex): "
                f"measured from the exact optimum each optimality gap would be at most about "
                f"{optimality_gap(best + certificate, best, nc):.3f} larger"
            )
        if with_nsga2:
            t_nsga = _mean(rows, w, "nsga2", "decision_s_per_step")
            speedup = t_nsga / t_agent
            sp_verdict = "MET" if speedup >= TARGET_SPEEDUP else "MISSED"
            cells += [f"{1e3 * t_agent:.3f}", f"{t_nsga:.3f}", f"{speedup:,.0f}x ({sp_verdict})"]
        else:
            cells += [f"{1e3 * t_agent:.3f}", "pending", "-"]
        lines.append(f"| ({w[0]:.2f}, {w[1]:.2f}) | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Targets: agent / NSGA-II <= {TARGET_COST_RATIO:.2f}; speed-up >= {TARGET_SPEEDUP:,.0f}x."
        " Costs: mean over the held-out days of the mean weighted normalised step cost; gap = "
        "(cost - oracle) / (no control - oracle) of those means (oracle: the day's optimum with "
        "perfect foresight, baselines/oracle.py)."
    )
    lines += verdicts
    if not with_nsga2:
        lines.append("NSGA-II (baselines/nsga2.py) is not available yet: comparison pending.")
    return "\n".join(lines)


def _parse_weights(text: str) -> tuple[float, float]:
    """``"0.5,0.5"`` -> (0.5, 0.5).

    Raises:
        ConfigError: not two numbers in [0, 1] summing to 1 (the message names the value).
    """
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"--weights={text!r} must be two numbers, e.g. 0.5,0.5") from exc
    return check_weights(values, "--weights")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default=BenchArgs.algo, choices=["ppo", "sac", "td3"])
    parser.add_argument("--backend", default=BenchArgs.backend, choices=["batched", "opendss"])
    parser.add_argument("--timesteps", type=int, default=BenchArgs.timesteps)
    parser.add_argument(
        "--n-envs", type=int, default=None, help="env copies (default: 32 batched, 1 opendss)"
    )
    parser.add_argument(
        "--train-days",
        type=int,
        default=None,
        help="train on days 0..N-1 (default: 64 batched; 0 and opendss: a fresh day each time)",
    )
    parser.add_argument("--action-margin", type=float, default=BenchArgs.action_margin)
    parser.add_argument(
        "--no-control-action",
        type=float,
        default=BenchArgs.no_control_action,
        help="initial action of the weights that start from no control (PPO: may exceed 1)",
    )
    parser.add_argument(
        "--no-control-margin",
        type=float,
        default=BenchArgs.no_control_margin,
        help="action margin of the weights that start from no control",
    )
    parser.add_argument(
        "--no-control-start-w2",
        type=float,
        default=BenchArgs.no_control_start_w2,
        help="weights with w2 >= this start training from no control (0: all; 2: none)",
    )
    parser.add_argument("--hyperparams", default=None, help="hyperparameter YAML for the algo")
    parser.add_argument(
        "--lookahead",
        nargs="?",
        const=LOOKAHEAD_HYPERPARAMS,
        default=None,
        metavar="YAML",
        help="also train a look-ahead agent per weight (default YAML: the shipped "
        "ppo_batched_lookahead.yaml, gamma 0.99)",
    )
    parser.add_argument(
        "--weights",
        action="append",
        default=None,
        metavar="W1,W2",
        help="a weight to run (repeatable; default: the sweep of five)",
    )
    parser.add_argument("--days", type=int, default=BenchArgs.days)
    parser.add_argument("--steps", type=int, default=None, help="first N steps of each day")
    parser.add_argument("--nsga-pop", type=int, default=BenchArgs.nsga_pop)
    parser.add_argument("--nsga-gen", type=int, default=BenchArgs.nsga_gen)
    parser.add_argument(
        "--oracle-iter", type=int, default=BenchArgs.oracle_iter, help="oracle iterations at most"
    )
    parser.add_argument("--workers", type=int, default=BenchArgs.workers)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for runs (default: runs/)")
    parser.add_argument(
        "--cache",
        default=None,
        help="folder of cached NSGA-II day results (default: <out>/cache/agents-nsga2)",
    )
    parser.add_argument("--no-cache", action="store_true", help="compute every NSGA-II day")
    parser.add_argument("--smoke", action="store_true", help="tiny budget: check it runs")
    ns = parser.parse_args()
    out = ns.out or (tempfile.mkdtemp(prefix="powertrip-bench-agents-") if ns.smoke else "runs")
    cache = None if ns.no_cache else (ns.cache or str(Path(out) / "cache" / "agents-nsga2"))
    batched = ns.backend == "batched"
    if ns.n_envs is None:
        ns.n_envs = BenchArgs.n_envs if batched else 1
    if ns.train_days is None:
        ns.train_days = BenchArgs.train_days if batched else 0
    args = BenchArgs(
        algo=ns.algo,
        backend=ns.backend,
        timesteps=ns.timesteps,
        n_envs=ns.n_envs,
        train_days=ns.train_days or None,
        action_margin=ns.action_margin,
        no_control_action=ns.no_control_action,
        no_control_margin=ns.no_control_margin,
        no_control_start_w2=ns.no_control_start_w2,
        hyperparams=ns.hyperparams,
        lookahead=ns.lookahead,
        weights=tuple(_parse_weights(text) for text in ns.weights or ()) or BenchArgs.weights,
        days=ns.days,
        steps=ns.steps,
        nsga_pop=ns.nsga_pop,
        nsga_gen=ns.nsga_gen,
        oracle_iter=ns.oracle_iter,
        workers=ns.workers,
        seed=ns.seed,
        out=out,
        cache=cache,
    )
    if ns.smoke:
        args = replace(
            args,
            timesteps=256,
            days=1,
            steps=24,
            nsga_pop=8,
            nsga_gen=2,
            oracle_iter=3,
            cache=None,
            smoke=True,
        )
    run(args)


if __name__ == "__main__":
    main()
