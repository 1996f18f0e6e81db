"""EV energy bookkeeping per charging point over a day (architecture.md §6).

Sessions are aligned to the step grid: an EV arriving at ``arrival_h`` is plugged in from the
first step that starts at or after it, and one leaving at ``departure_h`` is plugged in up to
the last step that ends at or before it. Energy is capped at what the charger can deliver in
that window, so that the EV energy guarantee is always feasible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from powertrip_env.errors import ConfigError

#: How a per-step controller bounds CP power from below so that every EV is served:
#: ``flat_rate`` (at least the energy still owed over the time left, so owed energy is spread
#: over the plug-in window) or ``latest`` (only what the guarantee needs: the owed energy the
#: charger could no longer deliver after this step; deferring to it piles energy up at the
#: end of the window).
CPFloor = Literal["flat_rate", "latest"]
CP_FLOORS: tuple[CPFloor, ...] = get_args(CPFloor)


def flat_rate_kw(
    remaining_kwh: np.ndarray, time_to_departure_h: np.ndarray, upper_kw: np.ndarray
) -> np.ndarray:
    """(n_cp,) the flat charging rate: energy still owed / time left, capped at ``upper_kw``.

    0 where no EV is plugged in (no time left). Units: kWh, h, kW.
    """
    hours = np.asarray(time_to_departure_h, dtype=float)
    rate = np.divide(remaining_kwh, hours, out=np.zeros_like(hours), where=hours > 0.0)
    return np.minimum(rate, upper_kw)


def cp_floor_kw(
    floor: CPFloor,
    lower_kw: np.ndarray,
    upper_kw: np.ndarray,
    remaining_kwh: np.ndarray,
    time_to_departure_h: np.ndarray,
) -> np.ndarray:
    """(n_cp,) the lower bound of CP power a per-step controller uses, kW.

    ``lower_kw`` is the guarantee's own (latest-possible) floor, ``upper_kw`` the step's
    upper bound; the flat-rate floor is never below the latest-possible one nor above the
    upper bound.

    Raises:
        ConfigError: ``floor`` is not one of :data:`CP_FLOORS`.
    """
    if floor == "latest":
        return np.asarray(lower_kw, dtype=float).copy()
    if floor == "flat_rate":
        flat = flat_rate_kw(remaining_kwh, time_to_departure_h, upper_kw)
        return np.maximum(flat, lower_kw)
    raise ConfigError(f"cp_floor={floor!r} is not one of {CP_FLOORS}")


def guarantee_bounds_kw(
    remaining_kwh: np.ndarray, after_kwh: np.ndarray, p_max_kw: np.ndarray, dt_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) CP power bounds under the EV energy guarantee, kW, any leading axes.

    ``upper = min(P_max, E_remaining / dt)``; ``lower = max(0, (E_remaining - after) / dt)``,
    where ``after`` is the energy the charger can still deliver after this step
    (``P_max * (t_dep - t - dt)``), capped at ``upper`` (rounding can leave it a hair above).
    A CP without an EV has ``E_remaining = 0`` and so both bounds 0. The one implementation
    of the guarantee: the day simulator calls it per step, the batched env over its copies.
    """
    upper = np.minimum(p_max_kw, remaining_kwh / dt_h)
    lower = np.maximum((remaining_kwh - after_kwh) / dt_h, 0.0)
    return np.minimum(lower, upper), upper


def owed_after_kwh(remaining_kwh: np.ndarray, cp_kw: np.ndarray, dt_h: float) -> np.ndarray:
    """Energy still owed after charging at ``cp_kw`` for one step, kWh (never below 0)."""
    return np.maximum(remaining_kwh - cp_kw * dt_h, 0.0)


@dataclass(frozen=True)
class AlignedSession:
    """One charging session on the step grid.

    Attributes:
        cp: index of the charging point.
        start: first plugged-in step.
        stop: first step after departure (exclusive).
        energy_kwh: energy the EV asks for, capped at what the charger can deliver.
    """

    cp: int
    start: int
    stop: int
    energy_kwh: float


def align_sessions(
    sessions_per_cp: tuple[tuple[tuple[float, float, float], ...], ...],
    p_max_kw: np.ndarray,
    dt_h: float,
    n_steps: int,
) -> tuple[AlignedSession, ...]:
    """Align ``(arrival_h, departure_h, energy_kwh)`` sessions of each CP to the step grid.

    Raises:
        ConfigError: sessions of one CP overlap, or a departure is not after its arrival.
    """
    aligned: list[AlignedSession] = []
    for cp, sessions in enumerate(sessions_per_cp):
        last_stop = 0
        for arrival_h, departure_h, energy_kwh in sorted(sessions):
            if not departure_h > arrival_h:
                raise ConfigError(
                    f"CP {cp}: session departure_h={departure_h} is not after arrival_h={arrival_h}"
                )
            start = max(0, math.ceil(arrival_h / dt_h - 1e-9))
            stop = min(n_steps, math.floor(departure_h / dt_h + 1e-9))
            if stop <= start or energy_kwh <= 0.0:
                continue
            if start < last_stop:
                raise ConfigError(f"CP {cp}: sessions overlap at step {start}")
            capped = min(float(energy_kwh), float(p_max_kw[cp]) * (stop - start) * dt_h)
            aligned.append(AlignedSession(cp, start, stop, capped))
            last_stop = stop
    return tuple(aligned)


@dataclass(frozen=True, eq=False)
class SessionTables:
    """A batch of B days' aligned sessions laid on the step grid (architecture.md §6).

    Attributes:
        session_at: (B, n_cp, n_steps) index into that day's sessions of the EV plugged in at
            each CP and step, -1 when none.
        stop_at: (B, n_cp, n_steps) first step after the plugged-in EV leaves (the step
            itself when none), float.
        no_control_kw: (B, n_cp, n_steps) power each CP draws under no control: every EV
            takes ``min(P_max, E_remaining / dt)`` from its arrival until it is full.
        requested_kwh: (B, n_sessions) energy each session asks for, kWh, zero-padded on the
            right to the day with the most sessions (at least one column).
    """

    session_at: np.ndarray
    stop_at: np.ndarray
    no_control_kw: np.ndarray
    requested_kwh: np.ndarray


def no_control_session_kw(
    energy_kwh: np.ndarray, p_max_kw: np.ndarray, n_plugged: np.ndarray, dt_h: float
) -> np.ndarray:
    """(S, longest) power each of S sessions draws in each of its plugged-in steps, kW.

    Under no control an EV charges at its upper bound ``min(P_max, E_remaining / dt)`` and
    the energy still owed is booked with :func:`owed_after_kwh`: the same float operations,
    in the same order, as :meth:`EVFleetState.bounds` and :meth:`EVFleetState.deliver` at
    the upper bound, so a no-control pass of either env draws exactly these powers.
    ``n_plugged`` (S,) is each session's number of steps; beyond it a row is 0.
    """
    remaining = np.asarray(energy_kwh, dtype=float).copy()
    p_max = np.asarray(p_max_kw, dtype=float)
    n_plugged = np.asarray(n_plugged)
    longest = int(n_plugged.max(initial=0))
    out = np.zeros((remaining.size, longest))
    for k in range(longest):  # one step of every session at once; stops once all are full
        active = n_plugged > k
        if not (active & (remaining > 0.0)).any():
            break
        p = np.where(active, np.minimum(p_max, remaining / dt_h), 0.0)
        out[:, k] = p
        remaining = np.where(active, owed_after_kwh(remaining, p, dt_h), remaining)
    return out


def session_tables(
    days: Sequence[Sequence[AlignedSession]], p_max_kw: np.ndarray, dt_h: float, n_steps: int
) -> SessionTables:
    """The step tables of the aligned sessions of each of B days, all days at once."""
    p_max = np.asarray(p_max_kw, dtype=float)
    n_days, n_cp = len(days), p_max.size
    flat = [(d, k, s) for d, sessions in enumerate(days) for k, s in enumerate(sessions)]
    day = np.array([d for d, _, _ in flat], dtype=np.intp)
    index = np.array([k for _, k, _ in flat], dtype=np.intp)
    cp = np.array([s.cp for _, _, s in flat], dtype=np.intp)
    start = np.array([s.start for _, _, s in flat], dtype=np.intp)
    stop = np.array([s.stop for _, _, s in flat], dtype=np.intp)
    energy = np.array([s.energy_kwh for _, _, s in flat], dtype=float)

    session_at = np.full((n_days, n_cp, n_steps), -1, dtype=np.intp)
    stop_at = np.empty((n_days, n_cp, n_steps))
    stop_at[:] = np.arange(n_steps, dtype=float)
    no_control = np.zeros((n_days, n_cp, n_steps))
    steps = np.arange(n_steps)
    row, t = np.nonzero((steps >= start[:, np.newaxis]) & (steps < stop[:, np.newaxis]))
    where = (day[row], cp[row], t)
    session_at[where] = index[row]
    stop_at[where] = stop[row]
    session_kw = no_control_session_kw(energy, p_max[cp], stop - start, dt_h)
    no_control[where] = session_kw[row, t - start[row]]
    requested = np.zeros((n_days, max([1, *(len(s) for s in days)])))
    requested[day, index] = energy
    return SessionTables(session_at, stop_at, no_control, requested)


class EVFleetState:
    """Energy still owed to the EVs plugged into each CP, advanced step by step.

    Args:
        sessions: aligned sessions of every CP.
        p_max_kw: (n_cp,) charger ratings, kW.
        dt_h: step length, hours.
        n_steps: steps in the horizon.
        energy_guarantee: whether CP power is bounded below so every EV can still be charged
            fully before it leaves (architecture.md §6). Off is the seed formulation: each step's
            bound is the EV's own request at that step (what it would draw under no
            control), deferred energy is not owed, and so the steps do not depend on each
            other (the optimiser can spread them over a process pool).
    """

    def __init__(
        self,
        sessions: tuple[AlignedSession, ...],
        p_max_kw: np.ndarray,
        dt_h: float,
        n_steps: int,
        energy_guarantee: bool,
    ) -> None:
        self.sessions = sessions
        self.p_max_kw = np.asarray(p_max_kw, dtype=float)
        self.dt_h = dt_h
        self.n_steps = n_steps
        self.energy_guarantee = energy_guarantee
        tables = session_tables([sessions], self.p_max_kw, dt_h, n_steps)
        #: (n_cp, n_steps) index of the session plugged in at each step, -1 when none.
        self.session_at = tables.session_at[0]
        #: (n_cp, n_steps) first step after the plugged-in EV leaves (the step itself if none).
        self.stop_at = tables.stop_at[0]
        self.requested_kwh = tables.requested_kwh[0, : len(sessions)]
        #: (n_cp, n_steps) each EV's request when it takes all it asks for (no control).
        self.request_profile_kw = tables.no_control_kw[0]
        # Per-step rows for the hot path (step-major, contiguous). The energy vector has one
        # extra slot that stays 0: index -1 ("no EV plugged in") reads it, so no masking.
        steps = np.arange(n_steps)
        self._idx_t = np.ascontiguousarray(self.session_at.T)
        self._plugged_t = self._idx_t >= 0
        self._any_plugged_t: np.ndarray = np.asarray(self._plugged_t.any(axis=1))
        # Energy the charger can still deliver after each step, kWh (the guarantee's slack).
        self._after_kwh_t = self.p_max_kw * np.ascontiguousarray(
            np.maximum(self.stop_at.T - steps[:, None] - 1, 0.0) * dt_h
        )
        self._to_departure_h_t = np.ascontiguousarray((self.stop_at.T - steps[:, None]) * dt_h)
        self._request_t = np.ascontiguousarray(self.request_profile_kw.T)
        for table in (self._plugged_t, self._to_departure_h_t):
            table.flags.writeable = False  # rows are handed out as views
        self._energy = np.zeros(len(sessions) + 1)
        self.reset()

    def reset(self) -> None:
        self._energy[:-1] = self.requested_kwh
        self._energy[-1] = 0.0

    @property
    def remaining_kwh(self) -> np.ndarray:
        """(n_sessions,) energy still owed to each session, kWh (a view)."""
        return self._energy[:-1]

    def plugged(self, t: int) -> np.ndarray:
        """(n_cp,) whether an EV is plugged in at step ``t``."""
        return self._plugged_t[t]

    def bounds(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) CP power bounds at step ``t``, kW.

        With the guarantee: upper = min(charger max, energy still needed / dt) while plugged
        in, else 0; lower = max(0, (E_remaining - P_max * (t_dep - t - dt)) / dt).
        Seed formulation: upper = the EV's no-control request at ``t``, lower = 0.
        """
        if not self.energy_guarantee:
            return np.zeros(self.p_max_kw.size), self._request_t[t].copy()
        if not self._any_plugged_t[t]:
            return np.zeros(self.p_max_kw.size), np.zeros(self.p_max_kw.size)
        remaining = self._energy[self._idx_t[t]]  # 0 where no EV is plugged in
        return guarantee_bounds_kw(remaining, self._after_kwh_t[t], self.p_max_kw, self.dt_h)

    def time_to_departure_h(self, t: int) -> np.ndarray:
        """(n_cp,) hours until the plugged-in EV leaves (0 when none is plugged in)."""
        return self._to_departure_h_t[t]

    def remaining_at(self, t: int) -> np.ndarray:
        """(n_cp,) energy still owed to the plugged-in EV, kWh (0 when none)."""
        return self._energy[self._idx_t[t]]

    def deliver(self, t: int, cp_kw: np.ndarray) -> None:
        """Book the energy delivered during step ``t`` at powers ``cp_kw``."""
        if not self._any_plugged_t[t]:
            return
        idx = self._idx_t[t]
        # A CP without an EV writes into the spare slot, which is zeroed again below; each
        # session belongs to one CP, so no index repeats otherwise.
        self._energy[idx] = owed_after_kwh(self._energy[idx], cp_kw, self.dt_h)
        self._energy[-1] = 0.0

    def unserved_kwh(self) -> np.ndarray:
        """(n_cp,) energy requested but not delivered, summed over each CP's sessions, kWh."""
        out = np.zeros(self.p_max_kw.size)
        for s, rem in zip(self.sessions, self.remaining_kwh, strict=True):
            out[s.cp] += rem
        return out

    def requested_per_cp_kwh(self) -> np.ndarray:
        """(n_cp,) energy requested over the day per CP, kWh."""
        out = np.zeros(self.p_max_kw.size)
        for s in self.sessions:
            out[s.cp] += s.energy_kwh
        return out
