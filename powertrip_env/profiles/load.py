"""Residential load profiles: BDEW H0 shape scaled per house, or the ENWL load files.

Synthetic model (:func:`household_load_kw`), per house ``h``:

1. Annual consumption ``A_h`` (kWh/yr) drawn lognormal around the UK typical domestic value,
   clipped to ``[annual_kwh_min, annual_kwh_max]``. Default median 3,100 kWh/yr: Ofgem's
   Typical Domestic Consumption Value for a medium electricity user (profile class 1, the
   2017 revision); the spread (``sigma = 0.35``) and the clip (1,500 to 7,000 kWh/yr) are
   assumptions that keep every house an ordinary home.
2. Day energy ``E_h = A_h * s(date)``, where ``s`` is the share of the year's energy that the
   dynamic BDEW H0 household profile (``h0_dyn`` of ``demandlib.bdew.ElecSlp``, MIT; BDEW
   standard load profiles, VDEW 1999) puts on that date. ``s`` ranges from 0.00221 (late
   July) to 0.00364 (late December) over the year.
3. Shape: the H0 15-minute values of that date (held constant within each quarter hour, as
   the standard defines them), shifted in time by a whole number of minutes drawn uniformly
   in ``[-max_shift_min, +max_shift_min]`` (wrapping at midnight, where the profile is flat),
   times correlated lognormal noise (AR(1) in log space, ``noise_sigma``,
   ``noise_correlation_min``) so that houses differ minute by minute.
4. Rescaled so the day holds exactly ``E_h``, generated at 1 minute and averaged into the
   grid's steps: the day energy is the same at 1, 5 and 15 minutes.

Documented range (defaults): ``E_h`` lies in ``[1500 * s, 7000 * s]`` kWh, i.e. 1,500-7,000
kWh/yr spread over the H0 year; over every date of a year that is 3.3 to 25.5 kWh/day
(:func:`day_energy_bounds_kwh` gives the bounds of one date). Means (median 3,100, sigma 0.35,
so a mean annual consumption of about 3,290 kWh): winter weekday (11 Jan 2023) about
10.6 kWh, summer weekday (12 July 2023) about 7.3 kWh, summer Saturday about 7.9 kWh. ENWL
reports 10.5 (winter) and 9.0 (summer) kWh/day for its measured households (architecture.md §3):
the winter mean agrees; the German H0 seasonal swing makes UK summer days about 20 % lighter
than ENWL's. Raise ``annual_kwh_median`` or use the ENWL files where that matters.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from powertrip_env.errors import ConfigError
from powertrip_env.profiles.enwl import read_enwl_profile_csv
from powertrip_env.profiles.noise import ar1_filter, lognormal_of
from powertrip_env.profiles.timegrid import MINUTES_PER_DAY, DayGrid, check_date

#: Power factor of the households (lagging), as in the ENWL ``Loads.txt`` (architecture.md §3).
DEFAULT_POWER_FACTOR = 0.95
_H0_STEPS_PER_DAY = 96


@dataclass(frozen=True)
class HouseholdLoadModel:
    """Parameters of the synthetic household load (see the module docstring for sources).

    Attributes:
        annual_kwh_median: median annual consumption, kWh/yr (Ofgem TDCV medium, 3,100).
        annual_kwh_sigma: standard deviation of ``ln(annual kWh)``.
        annual_kwh_min: smallest annual consumption (draws below are clipped), kWh/yr.
        annual_kwh_max: largest annual consumption (draws above are clipped), kWh/yr.
        noise_sigma: standard deviation of the log of the minute-by-minute noise factor.
        noise_correlation_min: e-folding time of the noise autocorrelation, minutes.
        max_shift_min: largest time shift of a house's profile, minutes (either way).
    """

    annual_kwh_median: float = 3100.0
    annual_kwh_sigma: float = 0.35
    annual_kwh_min: float = 1500.0
    annual_kwh_max: float = 7000.0
    noise_sigma: float = 0.4
    noise_correlation_min: float = 20.0
    max_shift_min: int = 30

    def __post_init__(self) -> None:
        if not 0.0 < self.annual_kwh_min <= self.annual_kwh_median <= self.annual_kwh_max:
            raise ConfigError(
                "household annual consumption must satisfy 0 < annual_kwh_min <= "
                f"annual_kwh_median <= annual_kwh_max; got annual_kwh_min={self.annual_kwh_min}, "
                f"annual_kwh_median={self.annual_kwh_median}, "
                f"annual_kwh_max={self.annual_kwh_max}"
            )
        if not np.isfinite(self.annual_kwh_max):
            raise ConfigError(f"annual_kwh_max={self.annual_kwh_max} must be finite")
        for name in ("annual_kwh_sigma", "noise_sigma", "noise_correlation_min"):
            value = getattr(self, name)
            if not 0.0 <= value < np.inf:
                raise ConfigError(f"{name}={value} must be a finite number >= 0")
        if not 0 <= self.max_shift_min <= 180:
            raise ConfigError(f"max_shift_min={self.max_shift_min} must be in [0, 180] minutes")


@functools.lru_cache(maxsize=8)
def _h0_year(year: int) -> tuple[NDArray[np.float64], int]:
    """BDEW dynamic H0 of ``year`` as ``(days, 96)`` energies per quarter hour (year sums to 1).

    Returns the array (read-only) and the ordinal of 1 January, to index days.
    """
    from demandlib import bdew  # imported here: demandlib is heavy and only this needs it

    # demandlib 0.2.2's ElecSlp calls warnings.simplefilter("error") while building its
    # tables, which would turn every later warning of the process into an exception;
    # catch_warnings restores the caller's filters afterwards.
    with warnings.catch_warnings():
        h0 = bdew.ElecSlp(year).get_profiles("h0_dyn")["h0_dyn"].to_numpy(dtype=float)
    days = h0.reshape(-1, _H0_STEPS_PER_DAY) / h0.sum()
    days.setflags(write=False)
    return days, dt.date(year, 1, 1).toordinal()


def h0_day(date: dt.date) -> tuple[float, NDArray[np.float64]]:
    """The BDEW dynamic H0 household profile on ``date``.

    Returns:
        ``(share, shape_kw_per_kwh)``: the share of the year's energy on that date, and the
        96 quarter-hour mean powers of a day holding 1 kWh (kW per kWh/day, shape ``(96,)``).
        Weekdays, Saturdays and Sundays and the BDEW seasons (winter, transition, summer)
        each have their own shape; holidays are not applied.
    """
    day = check_date(date)
    table, first = _h0_year(day.year)
    energy = table[day.toordinal() - first]
    share = float(energy.sum())
    return share, energy / share * _H0_STEPS_PER_DAY / 24.0


def day_energy_bounds_kwh(
    date: dt.date, model: HouseholdLoadModel | None = None
) -> tuple[float, float]:
    """Smallest and largest day energy a synthetic house can have on ``date``, kWh."""
    model = model or HouseholdLoadModel()
    share, _ = h0_day(date)
    return model.annual_kwh_min * share, model.annual_kwh_max * share


def sample_annual_kwh(
    rng: np.random.Generator, n_houses: int, model: HouseholdLoadModel | None = None
) -> NDArray[np.float64]:
    """Annual consumption of each house, kWh/yr, shape ``(n_houses,)`` (lognormal, clipped)."""
    model = model or HouseholdLoadModel()
    draws = model.annual_kwh_median * np.exp(model.annual_kwh_sigma * rng.standard_normal(n_houses))
    return np.clip(draws, model.annual_kwh_min, model.annual_kwh_max)


def household_load_kw(
    rng: np.random.Generator,
    grid: DayGrid,
    date: dt.date,
    n_houses: int,
    model: HouseholdLoadModel | None = None,
) -> NDArray[np.float64]:
    """Active power of each house over the day, kW (positive = consumption).

    The draws, in order: annual consumptions (``n_houses`` normals), time shifts
    (``n_houses`` integers), minute noise (``n_houses * 1440`` normals). They do not depend
    on the grid, so one seed gives the same houses at every resolution.

    Args:
        rng: source of every random draw.
        grid: resolution of the result.
        date: the day (BDEW season and weekday/Saturday/Sunday shape follow from it).
        n_houses: number of houses, >= 0.
        model: parameters; defaults as documented in the module docstring.

    Returns:
        Mean power per step, shape ``(n_houses, grid.n_steps)``, kW, all > 0. Each row's
        energy ``sum(row) * grid.dt_h`` lies in :func:`day_energy_bounds_kwh`.
    """
    return household_loads_kw([rng], grid, date, n_houses, model)[0]


def household_loads_kw(
    rngs: Sequence[np.random.Generator],
    grid: DayGrid,
    date: dt.date,
    n_houses: int,
    model: HouseholdLoadModel | None = None,
) -> NDArray[np.float64]:
    """:func:`household_load_kw` of B days at once, one generator a day: ``(B, n_houses,
    grid.n_steps)`` kW.

    Each generator makes exactly the draws of :func:`household_load_kw`, in its order; the
    arithmetic on them runs over all days together, so day ``b`` equals
    ``household_load_kw(rngs[b], ...)`` bit for bit.
    """
    model = model or HouseholdLoadModel()
    if isinstance(n_houses, bool) or not isinstance(n_houses, (int, np.integer)) or n_houses < 0:
        raise ConfigError(f"n_houses={n_houses!r} must be an integer >= 0")
    share, shape_15 = h0_day(date)
    n_days = len(rngs)
    day_kwh = np.empty((n_days, n_houses))
    shifts = np.empty((n_days, n_houses), dtype=np.int64)
    eps = np.empty((n_days, n_houses, MINUTES_PER_DAY))
    for b, rng in enumerate(rngs):  # the draws, in household_load_kw's order
        day_kwh[b] = sample_annual_kwh(rng, n_houses, model) * share
        shifts[b] = rng.integers(-model.max_shift_min, model.max_shift_min + 1, size=n_houses)
        rng.standard_normal(out=eps[b])  # (n_houses, 1440) normals, in place
    noise = lognormal_of(
        ar1_filter(eps, model.noise_correlation_min), model.noise_sigma, in_place=True
    )
    shape_1min = np.repeat(shape_15, MINUTES_PER_DAY // _H0_STEPS_PER_DAY)
    # A house shifted by s minutes reads the day from minute -s on, wrapping at midnight:
    # the window of the day repeated twice that starts at (-s mod 1440), a row copy.
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([shape_1min, shape_1min]), MINUTES_PER_DAY
    )
    raw = np.multiply(windows[-shifts % MINUTES_PER_DAY], noise, out=noise)
    raw *= (day_kwh / (raw.sum(axis=-1) / 60.0))[..., np.newaxis]  # the day's energy
    return grid.from_base(raw)


def reactive_power_kvar(
    p_kw: NDArray[np.float64], power_factor: float = DEFAULT_POWER_FACTOR
) -> NDArray[np.float64]:
    """Reactive power of a load at a fixed lagging power factor, kvar (same shape as ``p_kw``).

    ``q = p * tan(acos(pf))``; positive = consumed (inductive), like ``p``.
    """
    if not 0.0 < power_factor <= 1.0:
        raise ConfigError(f"power_factor={power_factor} must be in (0, 1]")
    return np.asarray(p_kw, dtype=float) * float(np.tan(np.arccos(power_factor)))


def load_enwl_load_profiles(path: str | Path) -> NDArray[np.float64]:
    """Read an ENWL household load file (``Summer_Load_Profiles.csv``, ``Winter_...``).

    Returns:
        Array of shape ``(n_profiles, 288)`` (100 profiles in the published files), kW,
        5-minute means from 00:00. Give them to houses with
        :func:`powertrip_env.profiles.enwl.assign_enwl_profiles`.

    Raises:
        ProfileError: see :func:`powertrip_env.profiles.enwl.read_enwl_profile_csv`.
    """
    return read_enwl_profile_csv(path)
