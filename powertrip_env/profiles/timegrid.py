"""The time grid of one simulated day: resolution, step times, season and day type.

Every profile of a day lives on a :class:`DayGrid`: ``n_steps`` equal steps from local midnight
(UK clock time, ``Europe/London``) to the next midnight. Values on the grid are the *mean*
power over each step (kW), so the energy of step ``k`` is ``p[k] * dt_h`` (kWh).

The synthetic profiles are generated on a one-minute base grid and averaged into the requested
steps (:meth:`DayGrid.from_base`), so one seed gives the same day at every resolution: a
15-minute profile is exactly the 15-minute mean of the 1-minute one, and day energies agree to
rounding error.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from powertrip_env.errors import ConfigError

#: Resolutions (minutes per step) the profiles support (architecture.md §5).
SUPPORTED_RESOLUTIONS_MIN: tuple[int, ...] = (1, 5, 15)
#: Default resolution: 5 minutes, 288 steps a day (architecture.md §5).
DEFAULT_RESOLUTION_MIN = 5
#: Resolution the synthetic profiles are generated at before averaging into steps.
BASE_RESOLUTION_MIN = 1
MINUTES_PER_DAY = 1440
#: Civil time zone of the grid: loads and EV sessions follow UK clock time.
TIMEZONE = "Europe/London"
#: Year of the representative dates (any non-leap year works; 2023 has no odd calendar quirks
#: in mid-January or mid-July).
DEFAULT_YEAR = 2023

Season = Literal["summer", "winter"]
DayType = Literal["weekday", "weekend"]
SEASONS: tuple[str, ...] = get_args(Season)
DAY_TYPES: tuple[str, ...] = get_args(DayType)

#: Months counted as summer by :func:`season_of` (April to September, roughly British Summer
#: Time); the rest of the year is winter.
SUMMER_MONTHS = frozenset(range(4, 10))


@dataclass(frozen=True)
class DayGrid:
    """Equal steps covering one day from local midnight.

    Attributes:
        resolution_min: minutes per step, one of :data:`SUPPORTED_RESOLUTIONS_MIN`
            (1, 5 or 15).
    """

    resolution_min: int = DEFAULT_RESOLUTION_MIN

    def __post_init__(self) -> None:
        if (
            isinstance(self.resolution_min, bool)
            or not isinstance(self.resolution_min, (int, np.integer))
            or int(self.resolution_min) not in SUPPORTED_RESOLUTIONS_MIN
        ):
            raise ConfigError(
                f"resolution_min={self.resolution_min!r} is not supported; "
                f"allowed: {', '.join(map(str, SUPPORTED_RESOLUTIONS_MIN))} minutes"
            )

    @property
    def n_steps(self) -> int:
        """Steps per day: 1440, 288 or 96."""
        return MINUTES_PER_DAY // self.resolution_min

    @property
    def dt_h(self) -> float:
        """Length of one step in hours."""
        return self.resolution_min / 60.0

    @property
    def base_steps_per_step(self) -> int:
        """One-minute base steps in one step of this grid."""
        return self.resolution_min // BASE_RESOLUTION_MIN

    def hours(self) -> NDArray[np.float64]:
        """Start of each step in hours after local midnight, shape ``(n_steps,)``."""
        return np.arange(self.n_steps, dtype=float) * self.dt_h

    def index(self, date: dt.date, *, utc: bool = False) -> pd.DatetimeIndex:
        """Start time of each step of ``date``, shape ``(n_steps,)``.

        The steps start at local UK midnight (``Europe/London``, so 23:00 UTC of the day before
        in British Summer Time) and are ``dt_h`` apart. The index is timezone-aware, in
        ``Europe/London`` by default or converted to UTC with ``utc=True`` (same instants).

        Raises:
            ConfigError: ``date`` is a UK clock-change day (23 or 25 hours long), which does
                not fit a fixed number of steps.
        """
        day = check_date(date)
        start = pd.Timestamp(day).tz_localize(TIMEZONE)
        index = pd.date_range(start, periods=self.n_steps, freq=f"{self.resolution_min}min")
        return index.tz_convert("UTC") if utc else index

    def from_base(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Average one-minute values into the steps of this grid (last axis).

        Args:
            values: mean power per minute, shape ``(..., 1440)``.

        Returns:
            Mean power per step, shape ``(..., n_steps)``; energy is preserved exactly.
        """
        return resample_mean(values, BASE_RESOLUTION_MIN, self.resolution_min)


def resample_mean(values: NDArray[np.float64], from_min: int, to_min: int) -> NDArray[np.float64]:
    """Change the step length of per-step mean powers along the last axis, keeping energy.

    Coarser steps take the mean of the finer steps they contain; finer steps repeat the value
    of the coarse step they fall in (the coarse value is a mean, so holding it is the only
    choice that keeps each step's energy without inventing detail).

    Args:
        values: mean powers, shape ``(..., n)`` with ``n * from_min`` a whole number of minutes.
        from_min: minutes per step of ``values``.
        to_min: minutes per step wanted; one of ``from_min``/``to_min`` must divide the other.

    Returns:
        Mean powers, shape ``(..., n * from_min // to_min)``.
    """
    arr = np.asarray(values, dtype=float)
    if from_min <= 0 or to_min <= 0:
        raise ConfigError(
            f"step lengths must be positive; got from_min={from_min}, to_min={to_min}"
        )
    if from_min == to_min:
        return arr.copy()
    if to_min % from_min == 0:
        factor = to_min // from_min
        if arr.shape[-1] % factor:
            raise ConfigError(
                f"{arr.shape[-1]} steps of {from_min} min do not fill whole {to_min}-min steps"
            )
        blocks = arr.reshape(*arr.shape[:-1], arr.shape[-1] // factor, factor)
        if factor >= 8 or not arr.flags.c_contiguous:
            return blocks.mean(axis=-1)
        # numpy sums fewer than 8 contiguous values one after the other, first to last: the
        # same additions over whole columns at once are the same mean, without the cost of a
        # reduction over a short axis (tests/test_profiles_batch.py holds the two equal).
        total = blocks[..., 0].copy()
        for k in range(1, factor):
            total += blocks[..., k]
        total /= factor
        return total
    if from_min % to_min == 0:
        return np.repeat(arr, from_min // to_min, axis=-1)
    raise ConfigError(
        f"cannot resample {from_min}-min steps to {to_min}-min steps: neither divides the other"
    )


def check_date(date: dt.date) -> dt.date:
    """Return ``date`` as a plain :class:`datetime.date`, rejecting UK clock-change days.

    Raises:
        ConfigError: ``date`` is not a date, or the UK clocks change on it (the last Sunday of
            March and of October), so the day is not 24 hours long.
    """
    if isinstance(date, dt.datetime):
        date = date.date()
    if not isinstance(date, dt.date):
        raise ConfigError(f"date={date!r} is not a datetime.date")
    return _checked_day(date)


@functools.lru_cache(maxsize=64)
def _checked_day(date: dt.date) -> dt.date:
    # Cached: the time-zone arithmetic costs as much as a day's load noise, and every day
    # built on one date asks again.
    start = pd.Timestamp(date).tz_localize(TIMEZONE)
    end = pd.Timestamp(date + dt.timedelta(days=1)).tz_localize(TIMEZONE)
    if end - start != pd.Timedelta(hours=24):
        raise ConfigError(
            f"date={date.isoformat()} is a UK clock-change day ({end - start} long); "
            "choose a day that is 24 hours long"
        )
    return date


def check_season(season: str) -> Season:
    """Return ``season`` if it is ``"summer"`` or ``"winter"``, else raise ConfigError."""
    if season not in SEASONS:
        raise ConfigError(f"season={season!r} is not one of {', '.join(SEASONS)}")
    return season  # type: ignore[return-value]


def check_day_type(day_type: str) -> DayType:
    """Return ``day_type`` if it is ``"weekday"`` or ``"weekend"``, else raise ConfigError."""
    if day_type not in DAY_TYPES:
        raise ConfigError(f"day_type={day_type!r} is not one of {', '.join(DAY_TYPES)}")
    return day_type  # type: ignore[return-value]


def representative_date(season: str, day_type: str, year: int = DEFAULT_YEAR) -> dt.date:
    """A typical date for a season and day type.

    Summer is the ISO week holding 15 July, winter the one holding 15 January; the weekday is
    that week's Wednesday and the weekend day its Saturday. For 2023: 12 July, 15 July,
    11 January and 14 January. None of these is a clock-change day or (in England) a bank
    holiday.

    Args:
        season: ``"summer"`` or ``"winter"``.
        day_type: ``"weekday"`` or ``"weekend"``.
        year: calendar year, 1900 to 2100.
    """
    season = check_season(season)
    day_type = check_day_type(day_type)
    if (
        isinstance(year, bool)
        or not isinstance(year, (int, np.integer))
        or not 1900 <= year <= 2100
    ):
        raise ConfigError(f"year={year!r} is not an integer in [1900, 2100]")
    anchor = dt.date(int(year), 7 if season == "summer" else 1, 15)
    monday = anchor - dt.timedelta(days=anchor.weekday())
    return monday + dt.timedelta(days=2 if day_type == "weekday" else 5)


def season_of(date: dt.date) -> Season:
    """``"summer"`` for April to September (:data:`SUMMER_MONTHS`), else ``"winter"``."""
    return "summer" if date.month in SUMMER_MONTHS else "winter"


def day_type_of(date: dt.date) -> DayType:
    """``"weekend"`` for Saturday and Sunday, else ``"weekday"`` (bank holidays not handled)."""
    return "weekend" if date.weekday() >= 5 else "weekday"
