"""EV charging sessions per charging point (CP), their per-step arrays, and ENWL's EV file.

Sources for the defaults of :class:`EVSessionModel`:

* DfT, *Electric Chargepoint Analysis 2017: Domestics* (published 2018): the median domestic
  charging event delivers 7.5 kWh, and event starts peak at 17:00.
* Electric Nation (WPD / EA Technology, 2019): cars stay plugged in at home for more than
  12 hours on average, the battery is more than half full at plug-in, about 3 charges a week,
  home chargers of 3.5 or 7 kW.
* PowerTrip serves an EV fleet (architecture.md §5): besides evening home charging a CP hosts
  daytime fleet sessions, vehicles back between trips and plugged in for 1 to 4 hours
  between 10:00 and 15:00, so that charging overlaps PV.

Default mix: on a weekday every CP gets one midday fleet session and one evening home
session. On a weekend a CP gets a fleet session with probability 0.5 (an assumption: fewer
fleet trips) and home arrivals spread wider (an assumption). Electric Nation's 3 charges a
week would be ``home_probability = 3/7`` for private cars.

One-day horizon (24 h from local midnight): a home session's real departure is the next
morning (Electric Nation's 12 h+), beyond the horizon, so its departure is capped at 24:00
and its energy at what the charger can deliver by then. Every session's energy is capped at
``charger_kw * (departure_h - arrival_h)``, so it is always deliverable.

Documented ranges (defaults): a session's energy is lognormal with median 7.5 kWh clipped to
[1, 40] kWh, then capped at the charger power times its plug-in time; fleet sessions lie in
[10:00, 15:00] and last 1 to 4 h; home sessions arrive in [15:00, 23:00] and leave at 24:00.
Session times are multiples of 15 minutes, so they fall on step boundaries at 1, 5 and
15 minutes and the per-step arrays hold the same energy at every resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from powertrip_env.errors import ConfigError
from powertrip_env.profiles.enwl import read_enwl_profile_csv
from powertrip_env.profiles.timegrid import DayGrid, check_day_type

#: Length of the horizon the sessions live in, hours (one day from local midnight).
HORIZON_H = 24.0
SessionKind = Literal["fleet", "home"]


@dataclass(frozen=True)
class EVSession:
    """One EV plugged into one CP.

    Attributes:
        arrival_h: plug-in time, hours after local midnight, in [0, 24).
        departure_h: plug-out time, hours after local midnight, in (arrival_h, 24].
        energy_kwh: energy the EV asks for before it leaves, kWh, >= 0.
        kind: ``"fleet"`` (midday, between trips) or ``"home"`` (evening), for reports.
    """

    arrival_h: float
    departure_h: float
    energy_kwh: float
    kind: SessionKind = "home"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.arrival_h) and 0.0 <= self.arrival_h < HORIZON_H):
            raise ConfigError(
                f"EVSession.arrival_h={self.arrival_h} must be in [0, {HORIZON_H}) hours"
            )
        if not (math.isfinite(self.departure_h) and self.departure_h <= HORIZON_H):
            raise ConfigError(
                f"EVSession.departure_h={self.departure_h} must be at most {HORIZON_H} hours "
                "(the end of the day)"
            )
        if self.departure_h <= self.arrival_h:
            raise ConfigError(
                f"EVSession.departure_h={self.departure_h} must be after arrival_h={self.arrival_h}"
            )
        if not (math.isfinite(self.energy_kwh) and self.energy_kwh >= 0.0):
            raise ConfigError(
                f"EVSession.energy_kwh={self.energy_kwh} must be a finite number >= 0"
            )
        if self.kind not in get_args(SessionKind):
            raise ConfigError(
                f"EVSession.kind={self.kind!r} is not one of {', '.join(get_args(SessionKind))}"
            )

    @property
    def duration_h(self) -> float:
        """Plug-in time, hours."""
        return self.departure_h - self.arrival_h


def _check_window(name: str, window: tuple[float, float]) -> None:
    lo, hi = window
    if not 0.0 <= lo < hi <= HORIZON_H:
        raise ConfigError(f"{name}={window} must satisfy 0 <= start < end <= {HORIZON_H} hours")


@dataclass(frozen=True)
class EVSessionModel:
    """Parameters of the session sampler (sources in the module docstring).

    Attributes:
        fleet_probability_weekday, fleet_probability_weekend: chance that a CP hosts a midday
            fleet session.
        home_probability_weekday, home_probability_weekend: chance of an evening home
            session.
        fleet_window_h: hours within which fleet sessions start and end.
        fleet_duration_h: shortest and longest fleet plug-in time, hours (uniform).
        home_arrival_mean_h: mean home arrival, hours (DfT: starts peak at 17:00).
        home_arrival_sd_weekday_h, home_arrival_sd_weekend_h: spread of home arrivals.
        home_arrival_window_h: home arrivals are drawn from the normal truncated to this
            window; it starts no earlier than the fleet window ends, so a CP's sessions never
            overlap.
        energy_median_kwh: median energy per session (DfT: 7.5 kWh).
        energy_sigma: standard deviation of ``ln(energy)``.
        energy_min_kwh, energy_max_kwh: clip of the drawn energy, before the deliverability
            cap.
        time_step_h: session times are rounded to multiples of this (15 minutes).
    """

    fleet_probability_weekday: float = 1.0
    fleet_probability_weekend: float = 0.5
    home_probability_weekday: float = 1.0
    home_probability_weekend: float = 1.0
    fleet_window_h: tuple[float, float] = (10.0, 15.0)
    fleet_duration_h: tuple[float, float] = (1.0, 4.0)
    home_arrival_mean_h: float = 17.0
    home_arrival_sd_weekday_h: float = 1.5
    home_arrival_sd_weekend_h: float = 2.5
    home_arrival_window_h: tuple[float, float] = (15.0, 23.0)
    energy_median_kwh: float = 7.5
    energy_sigma: float = 0.6
    energy_min_kwh: float = 1.0
    energy_max_kwh: float = 40.0
    time_step_h: float = 0.25

    def __post_init__(self) -> None:
        for name in (
            "fleet_probability_weekday",
            "fleet_probability_weekend",
            "home_probability_weekday",
            "home_probability_weekend",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value} must be a probability in [0, 1]")
        _check_window("fleet_window_h", self.fleet_window_h)
        _check_window("home_arrival_window_h", self.home_arrival_window_h)
        lo, hi = self.fleet_duration_h
        if not 0.0 < lo <= hi <= self.fleet_window_h[1] - self.fleet_window_h[0]:
            raise ConfigError(
                f"fleet_duration_h={self.fleet_duration_h} must satisfy 0 < shortest <= longest "
                f"<= the fleet window's length ({self.fleet_window_h})"
            )
        if self.home_arrival_window_h[0] < self.fleet_window_h[1]:
            raise ConfigError(
                f"home_arrival_window_h={self.home_arrival_window_h} starts before the fleet "
                f"window {self.fleet_window_h} ends; the sessions of one CP would overlap"
            )
        if self.home_arrival_window_h[1] >= HORIZON_H:
            raise ConfigError(
                f"home_arrival_window_h={self.home_arrival_window_h} must end before {HORIZON_H}"
            )
        if not 0.0 < self.energy_min_kwh <= self.energy_median_kwh <= self.energy_max_kwh:
            raise ConfigError(
                "EV energies must satisfy 0 < energy_min_kwh <= energy_median_kwh <= "
                f"energy_max_kwh; got {self.energy_min_kwh}, {self.energy_median_kwh}, "
                f"{self.energy_max_kwh}"
            )
        for name in ("energy_sigma", "home_arrival_sd_weekday_h", "home_arrival_sd_weekend_h"):
            if not getattr(self, name) >= 0.0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0.0 < self.time_step_h <= 1.0:
            raise ConfigError(f"time_step_h={self.time_step_h} must be in (0, 1] hours")


def _as_charger_kw(charger_kw: float | ArrayLike, n_cps: int) -> NDArray[np.float64]:
    arr = np.broadcast_to(np.asarray(charger_kw, dtype=float), (n_cps,)).copy()
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        raise ConfigError(f"charger_kw[{bad[0]}]={arr[bad[0]]} must be a finite power > 0 kW")
    return arr


def _truncated_normal(
    u: NDArray[np.float64], mean: float, sd: float, window: tuple[float, float]
) -> NDArray[np.float64]:
    """Map uniforms ``u`` to a normal(mean, sd) truncated to ``window`` (inverse CDF)."""
    lo, hi = window
    if sd == 0.0:
        return np.full_like(u, min(max(mean, lo), hi))
    # scipy.special's ndtr and ndtri are what scipy.stats.norm's cdf and ppf evaluate, without
    # the distribution machinery around them (which costs more than the rest of a day's EVs).
    cdf_lo, cdf_hi = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    return np.clip(mean + sd * ndtri(cdf_lo + u * (cdf_hi - cdf_lo)), lo, hi)


def sample_sessions(
    rng: np.random.Generator,
    n_cps: int,
    charger_kw: float | ArrayLike,
    day_type: str,
    model: EVSessionModel | None = None,
) -> tuple[tuple[EVSession, ...], ...]:
    """Draw the day's EV sessions of each CP.

    Each CP gets at most one fleet session (inside ``fleet_window_h``, duration uniform in
    ``fleet_duration_h``, start uniform in what is left of the window) and at most one home
    session (arrival normal around 17:00 truncated to ``home_arrival_window_h``, leaving at
    24:00), never overlapping.
    Energies are drawn lognormal (median 7.5 kWh), clipped to ``[energy_min_kwh,
    energy_max_kwh]`` and then capped at ``charger_kw * duration``.

    Every draw happens whatever the probabilities (seven arrays of ``n_cps``, in a fixed order),
    so changing the mix does not reshuffle the other sessions.

    Args:
        rng: source of every random draw.
        n_cps: number of CPs, >= 0.
        charger_kw: maximum charging power of each CP, kW (one number, or one per CP).
        day_type: ``"weekday"`` or ``"weekend"``.
        model: parameters; defaults as documented in the module docstring.

    Returns:
        One tuple of sessions per CP, sorted by arrival.
    """
    model = model or EVSessionModel()
    day_type = check_day_type(day_type)
    if isinstance(n_cps, bool) or not isinstance(n_cps, (int, np.integer)) or n_cps < 0:
        raise ConfigError(f"n_cps={n_cps!r} must be an integer >= 0")
    power = _as_charger_kw(charger_kw, n_cps)
    weekend = day_type == "weekend"
    p_fleet = model.fleet_probability_weekend if weekend else model.fleet_probability_weekday
    p_home = model.home_probability_weekend if weekend else model.home_probability_weekday
    sd_home = model.home_arrival_sd_weekend_h if weekend else model.home_arrival_sd_weekday_h
    q = model.time_step_h

    has_fleet = rng.random(n_cps) < p_fleet
    fleet_duration = rng.uniform(*model.fleet_duration_h, size=n_cps)
    fleet_start = rng.random(n_cps)
    has_home = rng.random(n_cps) < p_home
    home_arrival = _truncated_normal(
        rng.random(n_cps), model.home_arrival_mean_h, sd_home, model.home_arrival_window_h
    )
    energy = model.energy_median_kwh * np.exp(model.energy_sigma * rng.standard_normal((2, n_cps)))
    energy = np.clip(energy, model.energy_min_kwh, model.energy_max_kwh)

    def on_grid(hours: float) -> float:
        return round(hours / q) * q

    lo, hi = model.fleet_window_h
    sessions: list[tuple[EVSession, ...]] = []
    for i in range(n_cps):
        cp: list[EVSession] = []
        if has_fleet[i]:
            duration = min(max(on_grid(float(fleet_duration[i])), q), hi - lo)
            start = on_grid(lo + float(fleet_start[i]) * (hi - lo - duration))
            arrival = min(max(start, lo), hi - duration)
            cap = power[i] * duration
            cp.append(
                EVSession(arrival, arrival + duration, float(min(energy[0, i], cap)), "fleet")
            )
        if has_home[i]:
            arrival = float(np.clip(on_grid(float(home_arrival[i])), *model.home_arrival_window_h))
            cap = power[i] * (HORIZON_H - arrival)
            cp.append(EVSession(arrival, HORIZON_H, float(min(energy[1, i], cap)), "home"))
        sessions.append(tuple(cp))
    return tuple(sessions)


@dataclass(frozen=True, eq=False)
class SessionArrays:
    """EV sessions laid on a :class:`DayGrid`, one row per CP.

    A session occupies the whole steps inside ``[arrival_h, departure_h)``: arrival rounded
    up and departure rounded down to step boundaries (sampled sessions lie on 15-minute
    boundaries, so nothing is lost at 1, 5 or 15 minutes). Its energy is capped at what the
    charger can deliver in those steps.

    Attributes:
        plugged: whether an EV is plugged in during the step, bool ``(n_cp, n_steps)``.
        arrival_energy_kwh: energy requested by the session that starts at that step, kWh,
            ``(n_cp, n_steps)``; zero elsewhere. Add it to the CP's remaining energy there.
        departure_step: index of the first step after the current session (its plug-out
            step, up to ``n_steps``), int ``(n_cp, n_steps)``; -1 where nothing is plugged.
        charger_kw: maximum charging power per CP, kW ``(n_cp,)``.
    """

    plugged: NDArray[np.bool_]
    arrival_energy_kwh: NDArray[np.float64]
    departure_step: NDArray[np.int64]
    charger_kw: NDArray[np.float64]


def session_arrays(
    sessions: Sequence[Sequence[EVSession]], grid: DayGrid, charger_kw: float | ArrayLike
) -> SessionArrays:
    """Turn each CP's sessions into per-step arrays on ``grid`` (see :class:`SessionArrays`).

    Args:
        sessions: one sequence of sessions per CP, as from :func:`sample_sessions`.
        grid: the day's steps.
        charger_kw: maximum charging power of each CP, kW (one number, or one per CP).

    Raises:
        ConfigError: two sessions of one CP overlap, or a charger power is not > 0.
    """
    n_cp, n_steps = len(sessions), grid.n_steps
    power = _as_charger_kw(charger_kw, n_cp)
    plugged = np.zeros((n_cp, n_steps), dtype=bool)
    energy = np.zeros((n_cp, n_steps))
    departure = np.full((n_cp, n_steps), -1, dtype=np.int64)
    for i, cp_sessions in enumerate(sessions):
        for session in cp_sessions:
            first = math.ceil(session.arrival_h / grid.dt_h - 1e-9)
            end = min(math.floor(session.departure_h / grid.dt_h + 1e-9), n_steps)
            if end <= first:
                continue  # shorter than one whole step: nothing can be delivered
            if plugged[i, first:end].any():
                raise ConfigError(f"CP {i}: session {session} overlaps another session of that CP")
            plugged[i, first:end] = True
            departure[i, first:end] = end
            energy[i, first] = min(session.energy_kwh, power[i] * (end - first) * grid.dt_h)
    return SessionArrays(plugged, energy, departure, power)


def load_enwl_ev_profiles(path: str | Path) -> NDArray[np.float64]:
    """Read ENWL's EV file (``Winter_EV_Profiles.csv``) as charging-power requests.

    Each column is taken as the power a CP asks for in each 5-minute step (the request
    ``request_i(t)`` of architecture.md §6, with no session or energy guarantee behind it).
    Negative values, if any, are set to zero.

    Returns:
        Array of shape ``(n_profiles, 288)``, kW >= 0. Give them to CPs (and resample) with
        :func:`powertrip_env.profiles.enwl.assign_enwl_profiles`.
    """
    return np.clip(read_enwl_profile_csv(path), 0.0, None)


def enwl_sessions(
    request_kw: NDArray[np.float64], dt_h: float
) -> tuple[tuple[float, float, float], ...]:
    """ENWL charging-power profile -> ``(arrival_h, departure_h, energy_kwh)`` sessions.

    ENWL's EV files give the power a vehicle charges at in each step (0 or 3 kW: a 3 kW
    charger), not plug-in windows. Each step with power is one session over that step owing
    that step's energy, so the CP's request (``min(charger, energy owed / dt)``) is the
    file's power, whatever the CP's rating above it: under no control the EV charges at
    exactly the file's power, and with the energy guarantee that power is owed step by step.
    """
    steps = np.flatnonzero(np.asarray(request_kw) > 1e-9)
    return tuple(
        (float(t * dt_h), float((t + 1) * dt_h), float(request_kw[t] * dt_h)) for t in steps
    )
