"""A scenario-day: feeder + devices + seeded day profiles (architecture.md §2, §5).

``build_scenario(config, seed)`` is the one place where a seed becomes profiles. The seed is
split with :class:`numpy.random.SeedSequence` into independent streams for the loads, the PV
systems and the EVs, so changing one source (say ENWL loads instead of demandlib) leaves the
others' draws unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from powertrip_env import profiles as prof
from powertrip_env.config import ScenarioConfig
from powertrip_env.errors import ConfigError, ProfileError
from powertrip_env.ev import AlignedSession, align_sessions
from powertrip_env.grid.devices import DevicePlacement
from powertrip_env.grid.feeder import Feeder

#: Session mixes of ``ev.sessions``: fleet (midday) and home (evening) sessions, or one kind.
_SESSION_MIX = {
    "mixed": prof.EVSessionModel(),
    "home": prof.EVSessionModel(fleet_probability_weekday=0.0, fleet_probability_weekend=0.0),
    "fleet": prof.EVSessionModel(home_probability_weekday=0.0, home_probability_weekend=0.0),
}


@dataclass(frozen=True)
class DayProfiles:
    """Per-step inputs of one day (rows are steps).

    Attributes:
        dt_h: step length, hours.
        load_p_kw: (n_steps, n_loads) residential active power, kW (positive = consumption),
            in the engine's load order.
        load_q_kvar: (n_steps, n_loads) residential reactive power, kvar.
        pv_available_kw: (n_steps, n_pv) AC power each PV system could feed in, kW.
    """

    dt_h: float
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    pv_available_kw: np.ndarray

    @property
    def n_steps(self) -> int:
        return int(self.load_p_kw.shape[0])

    @property
    def hours(self) -> np.ndarray:
        """(n_steps,) start of each step, hours after midnight."""
        return np.arange(self.n_steps) * self.dt_h


@dataclass(frozen=True)
class Scenario:
    """Everything one simulated day needs (no OpenDSS state)."""

    config: ScenarioConfig
    seed: int
    feeder: Feeder
    profiles: DayProfiles
    sessions: tuple[AlignedSession, ...]

    @property
    def devices(self) -> DevicePlacement:
        return self.config.devices


def _count_loads(feeder: Feeder) -> int:
    from powertrip_env.grid.engine import OpenDSSEngine

    with OpenDSSEngine(feeder) as engine:
        return engine.n_loads


#: Days whose one-minute profiles are computed together: enough to spread numpy's per-call
#: cost, few enough for the (days, houses, 1440) arrays to stay in cache.
_DAYS_PER_BATCH = 8


def build_scenario(
    config: ScenarioConfig, seed: int, *, n_loads: int | None = None, feeder: Feeder | None = None
) -> Scenario:
    """Draw the day profiles of ``config`` from ``seed``.

    Args:
        config: the scenario.
        seed: one integer; every random draw of the day descends from it.
        n_loads: number of residential loads of the feeder (compiled to count when omitted).
        feeder: the built feeder (built from ``config.feeder`` when omitted).
    """
    return build_scenarios(config, [seed], n_loads=n_loads, feeder=feeder)[0]


def build_scenarios(
    config: ScenarioConfig,
    seeds: Sequence[int],
    *,
    n_loads: int | None = None,
    feeder: Feeder | None = None,
) -> list[Scenario]:
    """:func:`build_scenario` of each of ``seeds``, built together (the batched env's days).

    Every day draws from its own generators, exactly as when built alone, so day ``k`` equals
    ``build_scenario(config, seeds[k])``; the synthetic profiles' arithmetic runs over all
    days at once (conventions.md habit 4).
    """
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed={seed!r} must be a non-negative integer")
    feeder = feeder or config.feeder.build()
    n_loads = _count_loads(feeder) if n_loads is None else n_loads
    return [
        scenario
        for start in range(0, len(seeds), _DAYS_PER_BATCH)
        for scenario in _build_batch(
            config, seeds[start : start + _DAYS_PER_BATCH], n_loads, feeder
        )
    ]


def _build_batch(
    config: ScenarioConfig, seeds: Sequence[int], n_loads: int, feeder: Feeder
) -> list[Scenario]:
    pc = config.profiles
    grid = prof.DayGrid(pc.resolution_min)
    date = prof.representative_date(pc.season, pc.day_type)
    streams = [
        [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(3)]
        for seed in seeds
    ]
    load_rngs, pv_rngs, ev_rngs = ([day[k] for day in streams] for k in range(3))
    devices = config.devices

    if pc.load_source == "demandlib":
        load_p = prof.household_loads_kw(load_rngs, grid, date, n_loads)
    elif pc.enwl_load_folder:  # each house its own file: the same for every seed, read once
        load_p = np.repeat(_house_profiles(config, n_loads, grid)[np.newaxis], len(seeds), axis=0)
    else:
        table = prof.load_enwl_load_profiles(str(pc.enwl_load_file))
        load_p = np.stack([prof.assign_enwl_profiles(r, table, n_loads, grid) for r in load_rngs])
    load_q = prof.reactive_power_kvar(load_p, pc.load_power_factor)

    kwp = np.array([d.p_max_kw for d in devices.pvs])
    if devices.n_pv == 0:
        pv = np.zeros((len(seeds), 0, grid.n_steps))
    elif pc.pv_source == "pvlib":
        pv = prof.pv_available_days_kw(
            pv_rngs,
            grid,
            date,
            kwp,
            latitude_deg=feeder.latitude_deg,
            longitude_deg=feeder.longitude_deg,
        )
    else:
        table = prof.load_enwl_pv_profiles(str(pc.enwl_pv_file))
        pv = np.stack(
            [
                prof.scale_enwl_pv(prof.assign_enwl_profiles(r, table, devices.n_pv, grid), kwp)
                for r in pv_rngs
            ]
        )

    cp_kw = np.array([d.p_max_kw for d in devices.cps])
    scenarios = []
    for k, seed in enumerate(seeds):
        raw_sessions = _ev_sessions(config, ev_rngs[k], grid, date, cp_kw)
        profiles = DayProfiles(
            dt_h=grid.dt_h,
            load_p_kw=np.ascontiguousarray(load_p[k].T),
            load_q_kvar=np.ascontiguousarray(load_q[k].T),
            pv_available_kw=np.ascontiguousarray(pv[k].T),
        )
        scenarios.append(
            Scenario(
                config=config,
                seed=int(seed),
                feeder=feeder,
                profiles=profiles,
                sessions=align_sessions(raw_sessions, cp_kw, grid.dt_h, grid.n_steps),
            )
        )
    return scenarios


def _ev_sessions(
    config: ScenarioConfig,
    rng: np.random.Generator,
    grid: prof.DayGrid,
    date: object,
    cp_kw: np.ndarray,
) -> tuple[tuple[tuple[float, float, float], ...], ...]:
    """``(arrival_h, departure_h, energy_kwh)`` sessions of each CP."""
    kind = config.ev.sessions
    if kind == "enwl":
        table = prof.load_enwl_ev_profiles(str(config.ev.enwl_ev_file))
        requests = prof.assign_enwl_profiles(rng, table, len(cp_kw), grid)
        return tuple(prof.enwl_sessions(row, grid.dt_h) for row in requests)
    model = _SESSION_MIX[kind]
    per_cp = prof.sample_sessions(
        rng, n_cps=len(cp_kw), charger_kw=cp_kw, day_type=config.profiles.day_type, model=model
    )
    return tuple(
        tuple((s.arrival_h, s.departure_h, s.energy_kwh) for s in sessions) for sessions in per_cp
    )


def _house_profiles(config: ScenarioConfig, n_loads: int, grid: prof.DayGrid) -> np.ndarray:
    """(n_loads, n_steps) each house's own ENWL profile, as the feeder's LoadShapes.txt assigns."""
    from powertrip_env.grid.enwl import enwl_feeder_dir

    fc = config.feeder
    if fc.kind == "master":  # an ENWL Master.txt: its folder holds Loads.txt, LoadShapes.txt
        feeder_dir = Path(str(fc.path)).expanduser().resolve().parent
    else:
        feeder_dir = enwl_feeder_dir(str(fc.path), fc.network, fc.feeder)
    names, table = prof.cached_enwl_house_profiles(
        str(feeder_dir), str(config.profiles.enwl_load_folder)
    )
    if len(names) != n_loads:
        raise ProfileError(
            f"{feeder_dir} assigns profiles to {len(names)} loads in Loads.txt but the feeder "
            f"has {n_loads}; per-house profiles need the loads exactly as Loads.txt defines them"
        )
    return prof.resample_mean(table, prof.ENWL_RESOLUTION_MIN, grid.resolution_min)
