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
3. report each controller's normalised weighted day cost (mean over the days of the mean over
   steps of ``w . [f1/F1_ref, f2/F2_ref]``, :mod:`agents.evaluation`; lower is better), the
   ratio agent / NSGA-II (target <= 1.10), and the decision time per step of each (target:
   the agent at least 1000x faster).

Budget on the 2-core development machine (documented, at most 60 minutes): the trainings
and the NSGA-II days run in a pool of ``--workers`` processes (default 2, one torch and BLAS
thread each). A PPO training of 2,000,000 steps on the batched env takes about 5-7 minutes
(about 5,000 env steps/s with its updates), the five about 30 worker-minutes; NSGA-II costs
about 1 s per step (pymoo's own bookkeeping is 0.9 s of it), so a 288-step day takes about
5 minutes and 5 weights x 2 days about 50 worker-minutes. Total: about 45 minutes on two
workers. Lower ``--timesteps``/``--days`` for a shorter run; ``--smoke`` checks that
everything runs (tiny budget, 24-step days, about a minute). ``--backend opendss --algo sac
--timesteps 40000`` trains on the OpenDSS env instead (about 100 env steps/s).

NSGA-II is deterministic for given weight, day, population, generations, seed, steps and
code, so its day results are cached (``<out>/cache/agents-nsga2/``, keyed by all of them and
a hash of ``powertrip_env`` and ``baselines``); ``--no-cache`` computes every day afresh.
The printed summary says how many NSGA-II days came from the cache.

NSGA-II lives in ``baselines/nsga2.py``; it is imported lazily and, when absent, only the
agent side is reported (with a note that the comparison is pending).

Usage::

    python benchmarks/agents_quality.py [--timesteps 2000000] [--days 2] [--workers 2] [--no-cache]
    python benchmarks/agents_quality.py --backend opendss --algo sac --timesteps 40000
    python benchmarks/agents_quality.py --smoke
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
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
    load_hyperparams,
)

TARGET_COST_RATIO = 1.10
TARGET_SPEEDUP = 1000.0


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
    days: int = 2
    """Held-out days (EVAL_DAY_BASE + 0, 1, ...)."""
    steps: int | None = None
    """Only the first N steps of each evaluated day (None: the whole day)."""
    nsga_pop: int = 100
    """NSGA-II population."""
    nsga_gen: int = 100
    """NSGA-II generations per step."""
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
    run_dir: str, days: tuple[int, ...], steps: int | None, weights: tuple[float, float]
) -> list[dict[str, Any]]:
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
            "agent": AgentController(run_dir, env=env),
            "no control": NoControl(),
        }
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
    import hashlib

    key = json.dumps(
        {
            "weights": [float(w) for w in weights],
            "day": int(day),
            "steps": steps,
            "pop": pop,
            "gen": gen,
            "seed": seed,
            "code": code_fingerprint(),
        },
        sort_keys=True,
    )
    return cache_dir / f"nsga2-{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


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
        if cache.is_file():
            return {**json.loads(cache.read_text(encoding="utf-8")), "cached": True}
    row = _nsga2_day(weights, day, steps, pop, gen, seed)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, cache)
    return {**row, "cached": False}


def _nsga2_day(
    weights: tuple[float, float], day: int, steps: int | None, pop: int, gen: int, seed: int
) -> dict[str, Any]:
    from agents.evaluation import TimedController, normalised_objectives
    from baselines.nsga2 import NSGA2Config, NSGA2Controller
    from powertrip_env.env import PowerTripEnv

    env = PowerTripEnv()
    try:
        env.reset(options={"day_seed": day})
        assert env.sim is not None
        config = NSGA2Config(
            pop_size=pop, n_gen=gen, seed=seed, selection="weighted_sum", weights=weights
        )
        timed = TimedController(NSGA2Controller(env.sim, config, refs=env.refs))
        result = env.sim.run(timed, steps=steps)
        f_norm = normalised_objectives(result.steps, env.refs)
    finally:
        env.close()
    return {
        "controller": "nsga2",
        "day_seed": day,
        "weighted_cost": float((f_norm @ np.asarray(weights)).mean()),
        "f1_norm_mean": float(f_norm[:, 0].mean()),
        "f2_norm_mean": float(f_norm[:, 1].mean()),
        "decision_s_per_step": timed.seconds / max(timed.calls, 1),
    }


# ------------------------------------------------------------------------------- the bench
def _train_config(args: BenchArgs, weights: tuple[float, float], out: Path) -> TrainConfig:
    every = max(args.timesteps // 4, 1)
    params = load_hyperparams(args.algo, args.hyperparams, args.backend)
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
    weights = [(float(w1), float(w2)) for w1, w2 in DEFAULT_SWEEP_WEIGHTS]
    with_nsga2 = _nsga2_available()
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        trainings = {w: pool.submit(_train_task, _train_config(args, w, out)) for w in weights}
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
        run_dirs = {w: f.result() for w, f in trainings.items()}
        t_train = time.perf_counter() - t0
        agents = {w: pool.submit(_agent_task, run_dirs[w], days, args.steps, w) for w in weights}
        rows: list[dict[str, Any]] = []
        for w in weights:
            for row in agents[w].result() + [f.result() for f in nsga.get(w, [])]:
                rows.append({"w1": w[0], "w2": w[1], **row})
    t_total = time.perf_counter() - t0
    results = {
        "args": asdict(args),
        "days": list(days),
        "nsga2_available": with_nsga2,
        "train_wall_s": t_train,
        "total_wall_s": t_total,
        "run_dirs": {f"{w[0]:.2f},{w[1]:.2f}": d for w, d in run_dirs.items()},
        "rows": rows,
    }
    (bench_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = _table(rows, weights, with_nsga2)
    (bench_dir / "table.md").write_text(table + "\n")
    print(table)
    cached = sum(1 for r in rows if r.get("cached"))
    print(
        f"\n{args.algo.upper()} on the {args.backend} env ({args.n_envs} copies, "
        f"train days {args.train_days or 'all'}), {args.timesteps:,} steps per weight, "
        f"held-out days {list(days)}, steps per day {args.steps or 'all'}; "
        f"training {t_train / 60:.1f} min, total {t_total / 60:.1f} min on {args.workers} "
        f"workers; NSGA-II days from cache: {cached}\nresults: {bench_dir}"
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


def _table(rows: list[dict[str, Any]], weights: list[tuple[float, float]], with_nsga2: bool) -> str:
    head = "| w (f1, f2) | agent cost | NSGA-II cost | agent / NSGA-II | no control cost |"
    head += " agent ms/step | NSGA-II s/step | speed-up |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for w in weights:
        agent = _mean(rows, w, "agent", "weighted_cost")
        nc = _mean(rows, w, "no control", "weighted_cost")
        t_agent = _mean(rows, w, "agent", "decision_s_per_step")
        if with_nsga2:
            nsga = _mean(rows, w, "nsga2", "weighted_cost")
            t_nsga = _mean(rows, w, "nsga2", "decision_s_per_step")
            ratio = _ratio(agent, nsga)
            verdict = "MET" if ratio <= TARGET_COST_RATIO else "MISSED"
            speedup = t_nsga / t_agent
            sp_verdict = "MET" if speedup >= TARGET_SPEEDUP else "MISSED"
            cells = [
                f"{nsga:.4f}",
                f"{ratio:.3f} ({verdict})",
                f"{nc:.4f}",
                f"{1e3 * t_agent:.3f}",
                f"{t_nsga:.3f}",
                f"{speedup:,.0f}x ({sp_verdict})",
            ]
        else:
            cells = ["pending", "pending", f"{nc:.4f}", f"{1e3 * t_agent:.3f}", "pending", "-"]
        lines.append(f"| ({w[0]:.2f}, {w[1]:.2f}) | {agent:.4f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Targets: agent / NSGA-II <= {TARGET_COST_RATIO:.2f}; speed-up >= {TARGET_SPEEDUP:,.0f}x."
    )
    if not with_nsga2:
        lines.append("NSGA-II (baselines/nsga2.py) is not available yet: comparison pending.")
    return "\n".join(lines)


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
    parser.add_argument("--days", type=int, default=BenchArgs.days)
    parser.add_argument("--steps", type=int, default=None, help="first N steps of each day")
    parser.add_argument("--nsga-pop", type=int, default=BenchArgs.nsga_pop)
    parser.add_argument("--nsga-gen", type=int, default=BenchArgs.nsga_gen)
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
        days=ns.days,
        steps=ns.steps,
        nsga_pop=ns.nsga_pop,
        nsga_gen=ns.nsga_gen,
        workers=ns.workers,
        seed=ns.seed,
        out=out,
        cache=cache,
    )
    if ns.smoke:
        args = replace(
            args, timesteps=256, days=1, steps=24, nsga_pop=8, nsga_gen=2, cache=None, smoke=True
        )
    run(args)


if __name__ == "__main__":
    main()
