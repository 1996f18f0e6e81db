"""Scenario-days as the batched env steps them, built in batches, optionally ahead of time.

:class:`DayFactory` turns day seeds into :class:`DayTables`: the day's per-step inputs as
arrays (rows are steps) and its objective references, every day of a call built together
(the profiles through :func:`~powertrip_env.scenario.build_scenarios`, the references by one
batched no-control pass through the reduced model, architecture.md §6 and §8).

:class:`DayPrefetcher` runs a factory in one background process, so that the days a vector
env will need next are built while it steps the current ones: with a new day for every copy
every episode, building days would otherwise stop the stepping for as long as it takes. The
process starts with ``spawn`` (no fork of a process that may hold OpenDSS, torch or threads)
and builds exactly what the factory builds in process: a day is the same whichever built it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from powertrip_env import metrics
from powertrip_env.config import ScenarioConfig
from powertrip_env.ev import session_tables
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.scenario import build_scenarios
from powertrip_env.simulator import reduced_no_control_f1_max, refs_from_f1

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayTables:
    """The per-step inputs of one scenario-day as arrays (rows are steps), and its references.

    ``session_at`` holds the index into ``requested_kwh`` of the session plugged in at each CP
    (-1 when none), ``stop_at`` the first step after that EV leaves, ``request_kw`` the
    no-control request of the seed formulation (zeros with the energy guarantee),
    ``fixed_net_kw`` the residential load minus the PV availability per phase. ``refs`` is
    ``(F1_ref, F2_ref)`` (architecture.md §6).
    """

    seed: int
    load_p_kw: np.ndarray  # (T, n_loads)
    load_q_kvar: np.ndarray  # (T, n_loads)
    pv_available_kw: np.ndarray  # (T, n_pv)
    fixed_net_kw: np.ndarray  # (T, 3)
    session_at: np.ndarray  # (T, n_cp) int
    stop_at: np.ndarray  # (T, n_cp) float, steps
    request_kw: np.ndarray  # (T, n_cp)
    requested_kwh: np.ndarray  # (n_sessions,)
    refs: np.ndarray  # (2,)


@dataclass(frozen=True)
class DayFactory:
    """Builds the :class:`DayTables` of day seeds on one feeder (picklable: it travels to the
    prefetching process).

    ``phase_load`` (n_loads, 3) and ``phase_pv`` (n_pv, 3) split each device's power over the
    phases; ``p_max_kw`` (n_cp,) are the chargers' ratings.
    """

    config: ScenarioConfig
    feeder: Feeder
    net: ReducedNetwork
    phase_load: np.ndarray
    phase_pv: np.ndarray
    p_max_kw: np.ndarray
    dt_h: float
    n_steps: int
    unbalance_index: metrics.UnbalanceIndex
    energy_guarantee: bool

    def build(self, seeds: Sequence[int]) -> list[DayTables]:
        """The days of ``seeds`` with their references, all built at once (batch first)."""
        scenarios = build_scenarios(
            self.config, seeds, n_loads=self.net.n_loads, feeder=self.feeder
        )
        load_p = np.stack([sc.profiles.load_p_kw for sc in scenarios])  # (B, T, n_loads)
        load_q = np.stack([sc.profiles.load_q_kvar for sc in scenarios])
        pv = np.stack([sc.profiles.pv_available_kw for sc in scenarios])  # (B, T, n_pv)
        tables = session_tables(
            [sc.sessions for sc in scenarios], self.p_max_kw, self.dt_h, self.n_steps
        )
        no_control_kw = tables.no_control_kw.transpose(0, 2, 1)  # (B, T, n_cp)
        f1_max = reduced_no_control_f1_max(
            self.net, self.unbalance_index, load_p, load_q, no_control_kw, pv
        )
        refs = refs_from_f1(f1_max[:, np.newaxis], pv)
        fixed_net = load_p @ self.phase_load - pv @ self.phase_pv
        request = np.zeros_like(no_control_kw) if self.energy_guarantee else no_control_kw
        return [
            DayTables(
                seed=int(seed),
                load_p_kw=load_p[k],
                load_q_kvar=load_q[k],
                pv_available_kw=pv[k],
                fixed_net_kw=fixed_net[k],
                session_at=np.ascontiguousarray(tables.session_at[k].T),
                stop_at=np.ascontiguousarray(tables.stop_at[k].T),
                request_kw=np.ascontiguousarray(request[k]),
                requested_kwh=tables.requested_kwh[k, : len(scenarios[k].sessions)],
                refs=refs[k],
            )
            for k, seed in enumerate(seeds)
        ]


# The factory of the prefetching process, installed once when it starts.
_WORKER_FACTORY: DayFactory | None = None


def _install_factory(factory: DayFactory) -> None:
    global _WORKER_FACTORY  # one factory per worker process, set when it starts
    _WORKER_FACTORY = factory
    os.nice(5)  # the stepping process comes first when the cores are shared with others


def _ready_in_worker() -> bool:
    """A first job: starts the process (imports, factory) before any day is needed."""
    return _WORKER_FACTORY is not None


def _build_in_worker(seeds: list[int]) -> list[DayTables]:
    assert _WORKER_FACTORY is not None, "the pool's initializer installs the factory"
    return _WORKER_FACTORY.build(seeds)


#: Days per background job: a few of the factory's batches, so that the jobs not yet started
#: when the days are needed can be taken back and built by the caller meanwhile.
_JOB_DAYS = 8


class DayPrefetcher:
    """Builds days ahead of need in one background process.

    :meth:`submit` queues the days a caller will need next, in jobs of a few days each;
    :meth:`take` returns the days asked for: those built in the background, and the rest built
    by the caller's own factory while the background finishes the jobs it has started (the
    jobs it has not started are taken back), so that both processes build when the stepping
    outruns the background. At most ``capacity`` built days are held (the oldest are dropped).
    If the process dies, the prefetcher says so once in the log and from then on the caller
    builds every day itself, losing nothing.
    """

    def __init__(self, factory: DayFactory, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self._factory = factory
        self._pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_install_factory,
            initargs=(factory,),
        )
        self._jobs: list[tuple[frozenset[int], Future[list[DayTables]]]] = []
        self._ready: OrderedDict[int, DayTables] = OrderedDict()
        self._pool.submit(_ready_in_worker)  # the process starts now, not at the first job

    @property
    def alive(self) -> bool:
        """Whether the background process is (still) in use."""
        return self._pool is not None

    def pending(self) -> set[int]:
        """The seeds submitted and not yet taken."""
        return set(self._ready).union(*(seeds for seeds, _ in self._jobs))

    def submit(self, seeds: Iterable[int]) -> None:
        """Start building ``seeds`` (those not already built or being built) in the background."""
        if self._pool is None:
            return
        new = sorted(set(int(s) for s in seeds) - self.pending())
        try:
            for start in range(0, len(new), _JOB_DAYS):
                chunk = new[start : start + _JOB_DAYS]
                self._jobs.append((frozenset(chunk), self._pool.submit(_build_in_worker, chunk)))
        except (BrokenProcessPool, RuntimeError) as exc:
            self._give_up(exc)

    def take(self, seeds: Sequence[int]) -> list[DayTables]:
        """The days of ``seeds``, in order, wherever they are built (see the class).

        Raises:
            Whatever building a day raised (e.g. ``ProfileError``), in the background or here.
        """
        wanted = set(int(s) for s in seeds)
        mine = [job for job in self._jobs if job[0] & wanted]
        self._jobs = [job for job in self._jobs if not job[0] & wanted]
        queued = set().union(*(job_seeds for job_seeds, _ in mine))
        self._build_here(wanted - set(self._ready) - queued)  # never submitted
        # The background works through the jobs from the front; this process takes them back
        # from the end, one at a time, until the two meet.
        while mine and mine[-1][1].cancel():
            self._build_here(mine.pop()[0])
        for job_seeds, future in mine:  # started or done, in the background
            try:
                built = future.result()
            except BrokenProcessPool as exc:
                self._give_up(exc)
                built = self._factory.build(sorted(job_seeds))
            self._ready.update((day.seed, day) for day in built)
        days = {s: self._ready.pop(s) for s in wanted}
        while len(self._ready) > self.capacity:
            self._ready.popitem(last=False)
        return [days[int(s)] for s in seeds]

    def _build_here(self, seeds: Iterable[int]) -> None:
        if todo := sorted(seeds):
            self._ready.update((day.seed, day) for day in self._factory.build(todo))

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background has finished every job submitted (or ``timeout`` s)."""
        wait([future for _, future in self._jobs], timeout=timeout)

    def close(self) -> None:
        """Stop the background process and drop every day it built or was to build."""
        self._stop()
        self._ready.clear()

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        self._jobs.clear()

    def _give_up(self, exc: BaseException) -> None:
        if self._pool is not None:
            logger.warning("day prefetching stopped (%s); days are built here from now on", exc)
        self._stop()
