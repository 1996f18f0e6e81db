"""MORL algorithms (morl-baselines) against NSGA-II's per-step Pareto fronts, on one day.

Each multi-policy algorithm that takes continuous actions (GPI-LS, CAPQL, MORL/D, PGMORL)
trains on ``powertrip/PowerTripSeed-v0`` (the seed formulation: a step's bounds do not depend
on the past, so every policy faces the same problem at every step as NSGA-II did) on one fixed
day for ``--steps`` environment steps, unmodified. Its policy set is then the policies for
``--weights`` evenly spaced weights (GPI-LS, CAPQL: weight-conditioned), its population
(MORL/D) or its Pareto archive (PGMORL); each policy runs the day, and at every compared step
the set's normalised costs ``(f1 / F1_ref, f2 / F2_ref)`` (the negated rewards) are a point
set A. NSGA-II's front R at that step (population 100, 100 generations, re-checked in
OpenDSS) is computed from the same state.

Indicators (pymoo's, through ``experiments/indicators.py``; reference point (1.1, 1.1)):
the hypervolume of A over that of R (1 = as good as NSGA-II) and IGD+ of A against R (0 when
A weakly dominates all of R), averaged over the compared steps whose front has more than one
point (every ``--every``-th step of the day). No control (one point per step) is reported for
reference. PCN is left out: it conditions on a desired return and horizon that it updates
along the episode, not on a weight, so it has no policy set to score per step this way
(``tests/test_morl.py`` runs it).

The budget is small on purpose (documented in the README with the figures it gave): the same
number of environment steps for each, networks of two 64-unit layers, one gradient update per
step (GPI-LS ``gradient_updates=1``, MORL/D ``update_passes=1``; CAPQL's default), otherwise
morl-baselines' defaults; a comparison of what these algorithms reach cheaply, in-sample
(trained on the day they are scored on), not a tuned result.

Usage::

    python benchmarks/morl.py [--steps 3000] [--day-seed 11] [--every 12] [--weights 5]
"""

from __future__ import annotations

import os

# Batched numpy is steadier single-threaded on small machines; set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mo_gymnasium as mo_gym
import numpy as np

import powertrip_env  # noqa: F401 - registers the ids
from baselines.nsga2 import NSGA2Config, NSGA2Controller
from experiments.indicators import hypervolume, igd_plus, normalised_costs
from powertrip_env.env import PowerTripEnv
from powertrip_env.simulator import FeederSimulator

ENV_ID = "powertrip/PowerTripSeed-v0"
REF_POINT = np.array([-300.0, -300.0])  # morl-baselines' own hypervolume logging only
Policy = Callable[[np.ndarray], np.ndarray]
#: A trained algorithm: its policy set and the environment steps it took.
Trained = tuple[list[Policy], int]


@dataclass(frozen=True)
class Args:
    """Command-line arguments."""

    steps: int = 3000
    """environment steps each algorithm trains for"""
    day_seed: int = 11
    """the day trained on and scored on"""
    every: int = 12
    """compare every n-th step of the day (12: hourly at 5-minute steps)"""
    weights: int = 5
    """weights evaluated for the weight-conditioned algorithms"""
    seed: int = 0
    """seed of every algorithm"""


def _day_env(args: Args) -> Any:
    return mo_gym.make(ENV_ID, day_seed=args.day_seed, info_metrics=False)


def _weights(n: int) -> list[np.ndarray]:
    return [np.array([w, 1.0 - w], dtype=np.float32) for w in np.linspace(0.0, 1.0, n)]


def _policy(act: Callable[[np.ndarray, np.ndarray], Any], w: np.ndarray) -> Policy:
    """``act(obs, w)`` at a fixed weight ``w``."""

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.asarray(act(obs, w))

    return policy


# ------------------------------------------------------------------------------ training
def train_gpi_ls(args: Args) -> Trained:
    from morl_baselines.multi_policy.gpi_pd.gpi_pd_continuous_action import GPILSContinuousAction

    env, eval_env = _day_env(args), _day_env(args)
    agent = GPILSContinuousAction(
        env,
        net_arch=[64, 64],
        learning_starts=200,
        gradient_updates=1,
        log=False,
        seed=args.seed,
        device="cpu",
    )
    agent.train(
        total_timesteps=args.steps,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_weights_for_front=args.weights,
        num_eval_episodes_for_front=1,
        timesteps_per_iter=max(args.steps // 4, 1),
        checkpoints=False,
    )
    return [_policy(agent.eval, w) for w in _weights(args.weights)], agent.global_step


def train_capql(args: Args) -> Trained:
    from morl_baselines.multi_policy.capql.capql import CAPQL

    env, eval_env = _day_env(args), _day_env(args)
    agent = CAPQL(
        env, net_arch=[64, 64], learning_starts=200, log=False, seed=args.seed, device="cpu"
    )
    agent.train(
        total_timesteps=args.steps,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_weights_for_front=args.weights,
        num_eval_episodes_for_front=1,
        eval_freq=10 * args.steps,  # no evaluation during training: scored below
    )
    return [_policy(agent.eval, w) for w in _weights(args.weights)], agent.global_step


def train_morld(args: Args) -> Trained:
    from morl_baselines.multi_policy.morld.morld import MORLD

    env, eval_env = _day_env(args), _day_env(args)
    agent = MORLD(
        env,
        policy_name="MOSAC",
        policy_args={"net_arch": [64, 64], "learning_starts": 200},
        pop_size=args.weights,
        exchange_every=max(args.steps // 4, 1),
        update_passes=1,
        log=False,
        seed=args.seed,
        device="cpu",
    )
    agent.train(
        total_timesteps=args.steps,
        eval_env=eval_env,
        ref_point=REF_POINT,
        num_eval_episodes_for_front=1,
        checkpoints=False,
    )
    policies = [_policy(p.wrapped.eval, p.weights.astype(np.float32)) for p in agent.population]
    return policies, agent.global_step


def train_pgmorl(args: Args) -> Trained:
    from morl_baselines.multi_policy.pgmorl.pgmorl import PGMORL

    # PGMORL makes its own envs from an id: one that fixes the day.
    day_id = f"powertrip/PowerTripSeedDay{args.day_seed}-v0"
    if day_id not in gym.registry:
        spec = gym.spec(ENV_ID)
        gym.register(
            day_id,
            entry_point=spec.entry_point,
            kwargs={**spec.kwargs, "day_seed": args.day_seed, "info_metrics": False},
            max_episode_steps=spec.max_episode_steps,
            disable_env_checker=True,
        )
    agent = PGMORL(
        env_id=day_id,
        origin=REF_POINT,
        num_envs=2,
        pop_size=max(args.weights, 4),
        warmup_iterations=2,
        steps_per_iteration=64,
        evolutionary_iterations=2,
        num_weight_candidates=args.weights,
        net_arch=[64, 64],
        log=False,
        seed=args.seed,
        device="cpu",
    )
    agent.train(total_timesteps=args.steps, eval_env=_day_env(args), ref_point=REF_POINT)
    # It runs at least (warm-up + evolutionary) iterations of every policy, whatever the budget.
    return [_policy(a.eval, a.np_weights) for a in agent.archive.individuals], agent.global_step


ALGORITHMS: dict[str, Callable[[Args], Trained]] = {
    "GPI-LS": train_gpi_ls,
    "CAPQL": train_capql,
    "MORL/D": train_morld,
    "PGMORL": train_pgmorl,
}


# ------------------------------------------------------------------------------ scoring
def day_costs(policy: Policy, args: Args) -> np.ndarray:
    """(n_steps, 2) normalised costs of ``policy``'s day (the negated rewards)."""
    env = PowerTripEnv(energy_guarantee=False, day_seed=args.day_seed, info_metrics=False)
    obs, _ = env.reset(seed=args.seed)
    costs = []
    done = False
    while not done:
        action = np.clip(np.asarray(policy(obs), dtype=np.float32).reshape(-1), 0.0, 1.0)
        obs, reward, terminated, truncated, _ = env.step(action)
        costs.append(-np.asarray(reward, dtype=float))
        done = terminated or truncated
    env.close()
    return np.array(costs)


def nsga2_fronts(args: Args) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray], float]:
    """NSGA-II's normalised front and no control's point at every compared step; seconds."""
    env = PowerTripEnv(energy_guarantee=False, day_seed=args.day_seed)
    env.reset(seed=args.seed)
    assert env.sim is not None
    sim = FeederSimulator(env.sim.scenario)
    refs = env.refs
    controller = NSGA2Controller(sim, NSGA2Config(seed=args.seed), refs)
    fronts, no_control = {}, {}
    start = time.perf_counter()
    state = sim.reset()
    while not sim.done:
        if state.t % args.every == 0:
            front = controller.front(state)
            fronts[state.t] = normalised_costs(front.f_opendss, refs)
            no_control[state.t] = normalised_costs(front.f_no_control, refs)
        sim.engine.reset_solution()
        sim.step(state.upper_kw)  # the seed formulation: the next step's bounds do not care
        state = sim.observe()
    env.close()
    return fronts, no_control, time.perf_counter() - start


def _at_step(costs: np.ndarray, t: int) -> np.ndarray:
    """(K, 2) the policies' costs at step ``t`` from (K, n_steps, 2)."""
    return costs[:, t]


def score(
    points_at: Callable[[int], np.ndarray], fronts: dict[int, np.ndarray]
) -> tuple[float, float]:
    """Mean hypervolume ratio and mean IGD+ over the compared steps with a non-trivial front."""
    ratios, igds = [], []
    for t, front in fronts.items():
        if len(front) < 2 or hypervolume(front) <= 0.0:
            continue
        ratios.append(hypervolume(points_at(t)) / hypervolume(front))
        igds.append(igd_plus(points_at(t), front))
    return float(np.mean(ratios)), float(np.mean(igds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for name, default in vars(Args()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated")
    ns = parser.parse_args()
    algorithms = ns.algorithms.split(",")
    unknown = sorted(set(algorithms) - set(ALGORITHMS))
    if unknown:
        parser.error(f"unknown algorithms {unknown}; choose from {list(ALGORITHMS)}")
    args = Args(**{k: v for k, v in vars(ns).items() if k != "algorithms"})

    fronts, no_control, nsga_s = nsga2_fronts(args)
    print(f"NSGA-II fronts at {len(fronts)} steps: {nsga_s:.0f} s", flush=True)
    kept = sum(1 for f in fronts.values() if len(f) > 1)
    rows = [("NSGA-II (per-step fronts)", "-", "-", f"{nsga_s:.0f}", 1.0, 0.0)]
    hv, igd = score(no_control.__getitem__, fronts)
    rows.append(("no control", "1", "-", "-", hv, igd))
    for name in algorithms:
        start = time.perf_counter()
        policies, steps = ALGORITHMS[name](args)
        train_s = time.perf_counter() - start
        print(f"{name}: trained in {train_s:.0f} s; scoring {len(policies)} policies", flush=True)
        costs = np.stack([day_costs(p, args) for p in policies])  # (K, n_steps, 2)
        hv, igd = score(functools.partial(_at_step, costs), fronts)
        rows.append((name, str(len(policies)), str(steps), f"{train_s:.0f}", hv, igd))

    print(
        f"\nday {args.day_seed} (seed formulation), {kept} compared steps (every {args.every}th "
        f"with a front of more than one point); indicators on normalised costs, ref (1.1, 1.1)"
    )
    header = ("controller", "policies", "train steps", "time s", "HV / HV(NSGA-II)", "IGD+")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, n, taken, seconds, hv, igd in rows:
        print(f"| {label} | {n} | {taken} | {seconds} | {hv:.3f} | {igd:.4f} |")


if __name__ == "__main__":
    main()
