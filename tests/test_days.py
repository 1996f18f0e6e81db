"""Scenario-days for the batched env: built in a background process exactly as in process."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from powertrip_env.config import load_scenario_config
from powertrip_env.days import DayFactory, DayPrefetcher, DayTables
from powertrip_env.env import PowerTripEnv
from powertrip_env.vector_env import BatchedPowerTripEnv

N_ACT = 15
EPISODE = 4  # steps per episode: short days keep the lockstep runs quick
SAMPLE = Path(__file__).parent / "data" / "enwl_sample"


@pytest.fixture(scope="module")
def factory() -> Iterator[DayFactory]:
    venv = BatchedPowerTripEnv(1)
    yield venv._factory
    venv.close()


def _assert_same_day(a: DayTables, b: DayTables) -> None:
    assert a.seed == b.seed
    for field in DayTables.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_days_built_in_the_background_equal_days_built_in_process(factory: DayFactory) -> None:
    prefetcher = DayPrefetcher(factory, capacity=8)
    try:
        prefetcher.submit([11, 3])
        assert prefetcher.pending() == {3, 11}
        taken = prefetcher.take([11, 3, 5])  # 5 was never submitted: built here
        assert prefetcher.pending() == set()
    finally:
        prefetcher.close()
    expected = factory.build([11, 3, 5])
    for got, day in zip(taken, expected, strict=True):
        _assert_same_day(got, day)
    assert not prefetcher.alive
    _assert_same_day(prefetcher.take([3])[0], expected[1])  # closed: built here


def test_the_caller_builds_the_jobs_not_started_while_the_background_builds(
    factory: DayFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = list(range(100, 164))  # four jobs: the background cannot have started them all
    built_here: list[int] = []
    original = DayFactory.build

    def counting(self: DayFactory, seeds: list[int]) -> list[DayTables]:
        built_here.extend(seeds)
        return original(self, seeds)

    prefetcher = DayPrefetcher(factory, capacity=64)
    try:
        prefetcher.submit(seeds)
        first = prefetcher._jobs[0][1]
        deadline = time.monotonic() + 120
        while not (first.running() or first.done()) and time.monotonic() < deadline:
            time.sleep(0.01)  # the process starts (imports) before its first job
        monkeypatch.setattr(DayFactory, "build", counting)  # this process only
        taken = prefetcher.take(seeds)
    finally:
        prefetcher.close()
    assert 0 < len(built_here) < len(seeds)
    assert [day.seed for day in taken] == seeds
    monkeypatch.undo()
    for got, day in zip(taken, factory.build(seeds), strict=True):
        _assert_same_day(got, day)


def _run(venv: BatchedPowerTripEnv, episodes: int, settle: bool = False) -> list[np.ndarray]:
    """Observations, rewards and day seeds of ``episodes`` episodes with random actions."""
    obs, info = venv.reset(seed=21)
    return [obs, info["day_seed"], *_run_on(venv, episodes, settle)]


def _run_on(venv: BatchedPowerTripEnv, episodes: int, settle: bool = False) -> list[np.ndarray]:
    """:func:`_run` after the env's first reset; ``settle``: let the background finish its
    jobs before each new day (the episodes are too short for it to keep up on a busy machine,
    and the env would then build the days itself)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(episodes):
        for _ in range(EPISODE):
            obs, reward, _, truncated, _ = venv.step(_actions(rng, venv.num_envs))
            out += [obs, reward]
        assert truncated.all()
        if settle:
            venv.wait_prefetched(timeout=120)
        obs, _, _, _, info = venv.step(_actions(rng, venv.num_envs))  # NEXT_STEP autoreset
        out += [obs, info["day_seed"], info["f1_ref"], info["f2_ref"]]
    return out


def _actions(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.random((n, N_ACT)).astype(np.float32)


def test_a_prefetching_env_steps_exactly_as_one_that_builds_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Same days (each copy's draws, one episode early), same observations and rewards; after
    the first reset no day is built in the stepping process."""
    inline = BatchedPowerTripEnv(3, max_episode_steps=EPISODE)
    try:
        expected = _run(inline, episodes=3)
    finally:
        inline.close()
    built: list[list[int]] = []
    original = DayFactory.build

    def counting(self: DayFactory, seeds: list[int]) -> list[DayTables]:
        built.append(list(seeds))
        return original(self, seeds)

    monkeypatch.setattr(DayFactory, "build", counting)  # this process only, not the worker
    prefetching = BatchedPowerTripEnv(3, max_episode_steps=EPISODE, prefetch_days=True)
    try:
        got = _run(prefetching, episodes=3, settle=True)
    finally:
        prefetching.close()
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(built) == 1 and len(built[0]) == 3  # only the first reset's days


def test_a_dead_prefetching_process_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Killed at any point, the background's days are built here: the same days follow."""
    venv = BatchedPowerTripEnv(2, max_episode_steps=EPISODE, prefetch_days=True)
    try:
        venv.reset(seed=5)
        prefetcher = venv._prefetcher
        assert prefetcher is not None and prefetcher.pending()
        for pid in list(prefetcher._pool._processes):  # type: ignore[union-attr]
            os.kill(pid, signal.SIGKILL)
        with caplog.at_level(logging.WARNING, logger="powertrip_env.days"):
            got = _run_on(venv, episodes=2)
        # The death is seen by the first job that cannot finish: at the latest the one
        # submitted after it, taken at the second reset.
        assert "day prefetching stopped" in caplog.text
        assert not prefetcher.alive
    finally:
        venv.close()
    inline = BatchedPowerTripEnv(2, max_episode_steps=EPISODE)
    try:
        inline.reset(seed=5)
        expected = _run_on(inline, episodes=2)
    finally:
        inline.close()
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_prefetch_refuses_what_is_not_a_day_seed() -> None:
    venv = BatchedPowerTripEnv(1)
    try:
        with pytest.raises(ValueError, match="non-negative ints"):
            venv.prefetch([3, -1])
        venv.prefetch([3])  # without prefetch_days: accepted, nothing to do
    finally:
        venv.close()


def test_closing_the_env_stops_the_prefetching_process() -> None:
    venv = BatchedPowerTripEnv(1, prefetch_days=True)
    prefetcher = venv._prefetcher
    assert prefetcher is not None
    pids = list(prefetcher._pool._processes)  # type: ignore[union-attr]
    venv.close()
    assert not prefetcher.alive and pids
    deadline = time.monotonic() + 60
    while any(_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_exists(pid) for pid in pids)


def _exists(pid: int) -> bool:
    """Whether process ``pid`` exists (the pool reaps its workers itself: no join here)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_days_references_do_not_depend_on_the_days_built_with_it(tmp_path: Path) -> None:
    """On ENWL network 13 feeder 4 (a slowly converging real feeder) a day's screen, solved
    beside other days', picked other steps and its F1_ref moved in the last bit: each day is
    solved alone, so it is the same built alone, in a batch, or by the day simulator."""
    feeder = {"kind": "enwl", "path": str(SAMPLE), "network": 13, "feeder": 4}
    devices = {
        "cps": {"count": 3, "placement": "remote_end", "p_max_kw": 7.0},
        "pvs": {"count": 12, "placement": "random_houses", "kwp": [3.0, 5.0]},
    }
    path = tmp_path / "n13.yaml"
    path.write_text(yaml.safe_dump({"feeder": feeder, "devices": devices}))
    config = load_scenario_config(str(path))
    venv = BatchedPowerTripEnv(1, config)
    try:
        seeds = [1742692731, 1560023974, 1440510675]  # the days a reset with seed 3 draws
        together = [day.refs for day in venv._factory.build(seeds)]
        alone = [venv._factory.build([seed])[0].refs for seed in seeds]
    finally:
        venv.close()
    np.testing.assert_array_equal(together, alone)
    env = PowerTripEnv(config)
    try:
        _, info = env.reset(options={"day_seed": seeds[0]})
    finally:
        env.close()
    assert info["f1_ref"] == together[0][0]
