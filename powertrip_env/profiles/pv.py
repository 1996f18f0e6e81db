"""PV availability: pvlib clear-sky physics times a seeded cloud model, or the ENWL PV file.

Synthetic model (:func:`pv_available_kw`), at one-minute mid-points, averaged into the grid:

1. Sun and clear sky at the feeder (pvlib, BSD-3): solar position (NREL SPA), Ineichen-Perez
   clear sky with the Linke turbidity of the month from pvlib's shipped climatology
   (``pvlib.clearsky.lookup_linke_turbidity``, offline) and the site altitude from pvlib's
   shipped map (``pvlib.location.lookup_altitude``).
2. Plane of array per system (Hay-Davies transposition, albedo 0.2), tilt and azimuth given
   or drawn around 35 degrees / south (:func:`sample_pv_orientations`).
3. Clouds: a clear-sky index ``k(t)`` common to the feeder (:func:`clear_sky_index`; a
   two-state sun/cloud Markov chain whose cloud fraction follows a drawn sky class), seen by
   each system with a lag of up to a few minutes (clouds drift across the feeder) and a small
   per-system perturbation. The index scales the plane-of-array irradiance; the change of the
   diffuse fraction under cloud is neglected.
4. PVWatts (``pvlib.pvsystem.pvwatts_dc`` with the Faiman cell temperature at a fixed ambient,
   ``pvwatts_losses`` default 14.08 % system losses, ``pvlib.inverter.pvwatts``): AC power,
   clipped at the inverter rating ``kWp / dc_ac_ratio``.

So: zero while the sun is down, never above the system's kWp, a clear July day in Manchester
peaks at about 0.75 kWp for a south-facing 35-degree roof.

The day's steps are UK clock time (:mod:`~powertrip_env.profiles.timegrid`); the physics uses
the true instants, so a site elsewhere gets the right sun at UK clock times.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
import pvlib
from numpy.typing import ArrayLike, NDArray

from powertrip_env.errors import ConfigError
from powertrip_env.grid.feeder import ENWL_LATITUDE_DEG, ENWL_LONGITUDE_DEG
from powertrip_env.profiles.enwl import read_enwl_profile_csv
from powertrip_env.profiles.noise import ar1_filter, lognormal_of
from powertrip_env.profiles.timegrid import MINUTES_PER_DAY, TIMEZONE, DayGrid, check_date

Sky = Literal["sampled", "clear", "mixed", "overcast"]
SKY_CLASSES: tuple[str, ...] = ("clear", "mixed", "overcast")


@dataclass(frozen=True)
class SkyClass:
    """Cloudiness of one day for the sun/cloud Markov chain.

    Attributes:
        cloud_fraction: long-run share of minutes under cloud, in [0, 1).
        cloud_index: mean clear-sky index under cloud, in (0, 1].
    """

    cloud_fraction: float
    cloud_index: float


#: Assumed sky classes (not fitted to Manchester data): a clear day with a few passing clouds,
#: a broken-cloud day, an overcast day with rare breaks.
SKY_CLASS_PARAMETERS: dict[str, SkyClass] = {
    "clear": SkyClass(cloud_fraction=0.05, cloud_index=0.6),
    "mixed": SkyClass(cloud_fraction=0.5, cloud_index=0.45),
    "overcast": SkyClass(cloud_fraction=0.92, cloud_index=0.3),
}


@dataclass(frozen=True)
class PVModel:
    """Parameters of the synthetic PV availability (module docstring gives the sources).

    Attributes:
        tilt_mean_deg, tilt_sd_deg: drawn tilts, normal, clipped to [10, 60] degrees.
        azimuth_mean_deg, azimuth_sd_deg: drawn azimuths (180 = south, clockwise from north),
            normal, clipped to [90, 270].
        gamma_pdc_per_c: PVWatts temperature coefficient of DC power, 1/degC.
        losses_percent: DC system losses (soiling, wiring, mismatch, ...), percent.
        inverter_efficiency: nominal inverter efficiency, in (0, 1].
        dc_ac_ratio: kWp / inverter AC rating, >= 1; AC output never exceeds kWp / ratio.
        ambient_c: fixed ambient temperature for the cell temperature, degC; ``None`` keeps
            the cells at 25 degC (no temperature effect).
        albedo: ground reflectance for the transposition.
        sky: sky class of the day, or ``"sampled"`` to draw one with ``sky_probabilities``.
        sky_probabilities: probabilities of ``("clear", "mixed", "overcast")``.
        cloud_cycle_min: mean length of one sun + cloud cycle of the Markov chain, minutes.
        cloud_noise_sigma: log-normal spread of the index within a cloud.
        system_lag_max_min: largest lag of a system behind the feeder's cloud series, minutes.
        system_noise_sigma: log-normal spread of each system's own perturbation.
    """

    tilt_mean_deg: float = 35.0
    tilt_sd_deg: float = 7.0
    azimuth_mean_deg: float = 180.0
    azimuth_sd_deg: float = 30.0
    gamma_pdc_per_c: float = -0.004
    losses_percent: float = 14.08
    inverter_efficiency: float = 0.96
    dc_ac_ratio: float = 1.0
    ambient_c: float | None = 15.0
    albedo: float = 0.2
    sky: Sky = "sampled"
    sky_probabilities: tuple[float, float, float] = (0.3, 0.45, 0.25)
    cloud_cycle_min: float = 30.0
    cloud_noise_sigma: float = 0.3
    system_lag_max_min: int = 3
    system_noise_sigma: float = 0.03

    def __post_init__(self) -> None:
        if self.sky not in get_args(Sky):
            raise ConfigError(f"sky={self.sky!r} is not one of {', '.join(get_args(Sky))}")
        probs = np.asarray(self.sky_probabilities, dtype=float)
        if probs.shape != (3,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
            raise ConfigError(
                f"sky_probabilities={self.sky_probabilities} must be 3 non-negative numbers "
                "(clear, mixed, overcast) summing to 1"
            )
        checks = (
            ("tilt_sd_deg", self.tilt_sd_deg >= 0, ">= 0"),
            ("azimuth_sd_deg", self.azimuth_sd_deg >= 0, ">= 0"),
            ("gamma_pdc_per_c", -0.02 <= self.gamma_pdc_per_c <= 0, "in [-0.02, 0] per degC"),
            ("losses_percent", 0 <= self.losses_percent < 100, "in [0, 100)"),
            ("inverter_efficiency", 0 < self.inverter_efficiency <= 1, "in (0, 1]"),
            ("dc_ac_ratio", 1 <= self.dc_ac_ratio <= 3, "in [1, 3]"),
            ("albedo", 0 <= self.albedo <= 1, "in [0, 1]"),
            ("cloud_cycle_min", self.cloud_cycle_min >= 2, ">= 2 minutes"),
            ("cloud_noise_sigma", self.cloud_noise_sigma >= 0, ">= 0"),
            ("system_lag_max_min", 0 <= self.system_lag_max_min <= 60, "in [0, 60] minutes"),
            ("system_noise_sigma", self.system_noise_sigma >= 0, ">= 0"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name}={getattr(self, name)} must be {allowed}")


def _as_kwp(kwp: ArrayLike) -> NDArray[np.float64]:
    arr = np.atleast_1d(np.asarray(kwp, dtype=float))
    if arr.ndim != 1:
        raise ConfigError(f"kwp must be one number per PV system, got shape {arr.shape}")
    bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
    if bad.size:
        raise ConfigError(
            f"kwp[{bad[0]}]={arr[bad[0]]} is not allowed: every PV system needs a finite "
            "rating > 0 kWp"
        )
    return arr


def sample_pv_orientations(
    rng: np.random.Generator, n_pv: int, model: PVModel | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Draw roof tilt and azimuth per system: ``(tilt_deg, azimuth_deg)``, each ``(n_pv,)``.

    Normal around ``model.tilt_mean_deg`` / ``model.azimuth_mean_deg`` (35 degrees, south),
    clipped to tilts in [10, 60] and azimuths in [90, 270] (east to west through south).
    """
    model = model or PVModel()
    tilt = np.clip(model.tilt_mean_deg + model.tilt_sd_deg * rng.standard_normal(n_pv), 10, 60)
    azimuth = np.clip(
        model.azimuth_mean_deg + model.azimuth_sd_deg * rng.standard_normal(n_pv), 90, 270
    )
    return tilt, azimuth


def clear_sky_index(
    rng: np.random.Generator, n_minutes: int, model: PVModel | None = None
) -> tuple[str, NDArray[np.float64]]:
    """Feeder-wide clear-sky index, one value a minute: ``(sky_class, k)``, ``k`` ``(n,)``.

    A two-state Markov chain (sun, cloud) with stationary cloud fraction ``f`` of the sky
    class and mean cycle ``L = cloud_cycle_min``: mean dwell ``f L`` under cloud and
    ``(1 - f) L`` in sun (each at least 1 minute). In sun ``k = 1``; under cloud ``k`` is the
    class's ``cloud_index`` times lognormal noise correlated over 5 minutes, clipped to
    [0.05, 1]. Draws, in order: the sky class (one uniform, always drawn), the initial state
    and the transitions (``n`` uniforms), the cloud noise (``n`` normals).
    """
    model = model or PVModel()
    u_class, uniforms, eps = _sky_draws(rng, n_minutes)
    noise = lognormal_of(ar1_filter(eps, _CLOUD_CORRELATION_MIN), model.cloud_noise_sigma)
    return _sky_index(model, u_class, uniforms, noise)


#: Correlation time of the noise on the clear-sky index under a cloud, minutes.
_CLOUD_CORRELATION_MIN = 5.0
#: Correlation time of each PV system's own perturbation, minutes.
_SYSTEM_CORRELATION_MIN = 10.0


def _sky_draws(
    rng: np.random.Generator, n_minutes: int
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """The draws of :func:`clear_sky_index`, in its order: sky class, chain, cloud noise."""
    return rng.random(), rng.random(n_minutes), rng.standard_normal(n_minutes)


def _sky_index(
    model: PVModel, u_class: float, uniforms: NDArray[np.float64], noise: NDArray[np.float64]
) -> tuple[str, NDArray[np.float64]]:
    """:func:`clear_sky_index` from its draws (``noise`` already the lognormal factor)."""
    if model.sky == "sampled":
        cumulative = np.cumsum(model.sky_probabilities)
        pick = min(int(np.searchsorted(cumulative, u_class, side="right")), len(SKY_CLASSES) - 1)
        sky = SKY_CLASSES[pick]
    else:
        sky = model.sky
    params = SKY_CLASS_PARAMETERS[sky]
    f = params.cloud_fraction
    p_to_sun = min(1.0, 1.0 / max(f * model.cloud_cycle_min, 1.0))
    p_to_cloud = min(1.0, 1.0 / max((1.0 - f) * model.cloud_cycle_min, 1.0))
    cloudy = _markov_states(uniforms, f, p_to_sun, p_to_cloud)
    k = np.where(cloudy, np.clip(params.cloud_index * noise, 0.05, 1.0), 1.0)
    return sky, k


def _markov_states(
    uniforms: NDArray[np.float64], f: float, p_to_sun: float, p_to_cloud: float
) -> NDArray[np.bool_]:
    """(n,) the sun/cloud chain: cloudy at minute 0 if ``u < f``; then a cloudy minute stays
    cloudy if ``u >= p_to_sun`` and a sunny one turns cloudy if ``u < p_to_cloud``.

    Without a loop: each minute's uniform either sets the state whatever it was (both rules
    agree), keeps it or flips it, so a state is the last set value flipped once per flip
    since then.
    """
    n = uniforms.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    if_cloudy = uniforms >= p_to_sun  # the next state after a cloudy minute
    if_sunny = uniforms < p_to_cloud  # ... after a sunny one
    sets = if_cloudy == if_sunny
    flips = if_sunny & ~if_cloudy
    value = if_cloudy.copy()
    sets[0], flips[0], value[0] = True, False, uniforms[0] < f
    last_set = np.maximum.accumulate(np.where(sets, np.arange(n), 0))
    n_flips = np.cumsum(flips)
    return value[last_set] ^ ((n_flips - n_flips[last_set]) % 2 == 1)


@functools.lru_cache(maxsize=32)
def _sun_and_clear_sky(
    day: dt.date, latitude_deg: float, longitude_deg: float
) -> dict[str, NDArray[np.float64]]:
    """Sun position and Ineichen clear sky at the day's one-minute mid-points, as arrays.

    A pure function of the day and the site, and the costly part of a PV day (NREL SPA over
    1,440 instants): cached, so that many days drawn on one date (training) pay it once.
    """
    times = DayGrid(1).index(day) + pd.Timedelta(seconds=30)
    altitude = float(pvlib.location.lookup_altitude(latitude_deg, longitude_deg))
    site = pvlib.location.Location(latitude_deg, longitude_deg, tz=TIMEZONE, altitude=altitude)
    sun = site.get_solarposition(times)
    sky = site.get_clearsky(times, model="ineichen", solar_position=sun)
    columns = {
        "apparent_zenith": sun["apparent_zenith"],
        "azimuth": sun["azimuth"],
        "elevation": sun["elevation"],
        "dni": sky["dni"],
        "ghi": sky["ghi"],
        "dhi": sky["dhi"],
        "dni_extra": pvlib.irradiance.get_extra_radiation(times),
    }
    out = {name: np.asarray(values, dtype=float) for name, values in columns.items()}
    for array in out.values():
        array.flags.writeable = False  # shared by every caller through the cache
    return out


def _clear_sky_poa(
    day: dt.date,
    latitude_deg: float,
    longitude_deg: float,
    tilt_deg: NDArray[np.float64],
    azimuth_deg: NDArray[np.float64],
    albedo: float,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Clear-sky plane-of-array irradiance per system while the sun is up, W/m2.

    Returns ``(poa, up)``: ``up`` (1440,) marks the minutes with the sun above the horizon
    and ``poa`` (n_pv, up.sum()) holds their irradiance (below the horizon it is zero, and
    nothing after it depends on anything else, so those minutes are not computed at all).
    One Hay-Davies transposition for every system at once: the orientations are a column,
    the sun a row, and pvlib's numpy path broadcasts them (no pandas per system).
    """
    sun = _sun_and_clear_sky(day, float(latitude_deg), float(longitude_deg))
    up = sun["elevation"] > 0.0
    tilt, azimuth = tilt_deg[:, None], azimuth_deg[:, None]
    zenith, dni, ghi = sun["apparent_zenith"][up], sun["dni"][up], sun["ghi"][up]
    # pvlib.irradiance.get_total_irradiance(model="haydavies") step by step, with the
    # projection of the sun on each roof computed once (pvlib computes it for the angle of
    # incidence and again for Hay-Davies' beam ratio); the same operations, so the same bits.
    projection = pvlib.irradiance.aoi_projection(tilt, azimuth, zenith, sun["azimuth"][up])
    beam_ratio = np.maximum(projection, 0) / np.maximum(pvlib.tools.cosd(zenith), 0.01745)
    sky = pvlib.irradiance.haydavies(
        tilt, azimuth, sun["dhi"][up], dni, sun["dni_extra"][up], projection_ratio=beam_ratio
    )
    ground = pvlib.irradiance.get_ground_diffuse(tilt, ghi, albedo)
    aoi = np.rad2deg(np.arccos(projection))  # pvlib.irradiance.aoi
    irr = pvlib.irradiance.poa_components(aoi, dni, sky, ground)
    shape = (tilt_deg.size, int(up.sum()))
    poa = np.nan_to_num(np.broadcast_to(np.asarray(irr["poa_global"], dtype=float), shape))
    # Guard against tiny negative round-off.
    return np.clip(poa, 0.0, None), up


def pv_available_kw(
    rng: np.random.Generator,
    grid: DayGrid,
    date: dt.date,
    kwp: ArrayLike,
    *,
    latitude_deg: float = ENWL_LATITUDE_DEG,
    longitude_deg: float = ENWL_LONGITUDE_DEG,
    tilt_deg: ArrayLike | None = None,
    azimuth_deg: ArrayLike | None = None,
    model: PVModel | None = None,
) -> NDArray[np.float64]:
    """Available AC power of each PV system over the day, kW (positive = generation).

    Args:
        rng: source of every random draw. In order: orientations (only when ``tilt_deg`` and
            ``azimuth_deg`` are not given), the feeder cloud series (:func:`clear_sky_index`),
            each system's lag, each system's perturbation. None depends on the grid, so one
            seed gives the same day at every resolution.
        grid: resolution of the result.
        date: the day, local UK time.
        kwp: DC rating of each system, kWp, shape ``(n_pv,)``, each > 0.
        latitude_deg: site latitude, degrees north (default Manchester, 53.48).
        longitude_deg: site longitude, degrees east (default Manchester, -2.24).
        tilt_deg: roof tilt per system, degrees from horizontal; drawn when ``None``.
        azimuth_deg: roof azimuth per system, degrees clockwise from north; drawn when ``None``.
        model: parameters; defaults as documented.

    Returns:
        Mean available power per step, shape ``(n_pv, grid.n_steps)``, kW, in
        ``[0, kwp / dc_ac_ratio]``, zero while the sun is below the horizon.
    """
    return pv_available_days_kw(
        [rng],
        grid,
        date,
        kwp,
        latitude_deg=latitude_deg,
        longitude_deg=longitude_deg,
        tilt_deg=tilt_deg,
        azimuth_deg=azimuth_deg,
        model=model,
    )[0]


def pv_available_days_kw(
    rngs: Sequence[np.random.Generator],
    grid: DayGrid,
    date: dt.date,
    kwp: ArrayLike,
    *,
    latitude_deg: float = ENWL_LATITUDE_DEG,
    longitude_deg: float = ENWL_LONGITUDE_DEG,
    tilt_deg: ArrayLike | None = None,
    azimuth_deg: ArrayLike | None = None,
    model: PVModel | None = None,
) -> NDArray[np.float64]:
    """:func:`pv_available_kw` of B days at once, one generator a day: ``(B, n_pv,
    grid.n_steps)`` kW.

    Each generator makes exactly the draws of :func:`pv_available_kw`, in its order; the
    physics runs over all days' systems together, element by element, so day ``b`` equals
    ``pv_available_kw(rngs[b], ...)``.
    """
    model = model or PVModel()
    day = check_date(date)
    ratings = _as_kwp(kwp)
    n_pv, n_days = ratings.size, len(rngs)
    if not -90.0 <= latitude_deg <= 90.0 or not -180.0 <= longitude_deg <= 180.0:
        raise ConfigError(
            f"latitude_deg={latitude_deg}, longitude_deg={longitude_deg}: latitude must be in "
            "[-90, 90] and longitude in [-180, 180]"
        )
    if (tilt_deg is None) != (azimuth_deg is None):
        raise ConfigError("give both tilt_deg and azimuth_deg, or neither (both are then drawn)")
    given = None
    if tilt_deg is not None and azimuth_deg is not None:
        tilt = np.broadcast_to(np.asarray(tilt_deg, dtype=float), (n_pv,)).copy()
        azimuth = np.broadcast_to(np.asarray(azimuth_deg, dtype=float), (n_pv,)).copy()
        if np.any(~np.isfinite(tilt) | (tilt < 0) | (tilt > 90)):
            raise ConfigError(f"tilt_deg={tilt.tolist()} must be in [0, 90] degrees")
        if np.any(~np.isfinite(azimuth) | (azimuth < 0) | (azimuth > 360)):
            raise ConfigError(f"azimuth_deg={azimuth.tolist()} must be in [0, 360] degrees")
        given = (tilt, azimuth)

    lag_max = model.system_lag_max_min
    n_minutes = MINUTES_PER_DAY + lag_max
    tilts, azimuths = np.empty((n_days, n_pv)), np.empty((n_days, n_pv))
    u_class = np.empty(n_days)
    chain, cloud_eps = np.empty((n_days, n_minutes)), np.empty((n_days, n_minutes))
    lags = np.empty((n_days, n_pv), dtype=np.int64)
    own_eps = np.empty((n_days, n_pv, MINUTES_PER_DAY))
    for b, rng in enumerate(rngs):  # the draws, in pv_available_kw's order
        tilts[b], azimuths[b] = given or sample_pv_orientations(rng, n_pv, model)
        u_class[b], chain[b], cloud_eps[b] = _sky_draws(rng, n_minutes)
        lags[b] = rng.integers(0, lag_max + 1, size=n_pv)
        own_eps[b] = rng.standard_normal((n_pv, MINUTES_PER_DAY))
    cloud = lognormal_of(ar1_filter(cloud_eps, _CLOUD_CORRELATION_MIN), model.cloud_noise_sigma)
    k_feeder = np.stack(
        [_sky_index(model, u_class[b], chain[b], cloud[b])[1] for b in range(n_days)]
    ).reshape(n_days, n_minutes)
    poa, up = _clear_sky_poa(
        day, latitude_deg, longitude_deg, tilts.ravel(), azimuths.ravel(), model.albedo
    )
    # From here on the sun's minutes only: with no irradiance every later step gives
    # exactly 0 kW. Each system sees the feeder's clouds ``lag`` minutes late.
    own_x = ar1_filter(own_eps, _SYSTEM_CORRELATION_MIN)[..., up]
    own = lognormal_of(own_x, model.system_noise_sigma)
    window = (lag_max - lags)[..., np.newaxis] + np.flatnonzero(up)
    k = k_feeder[np.arange(n_days)[:, np.newaxis, np.newaxis], window] * own
    poa = poa.reshape(n_days, n_pv, -1) * k
    if model.ambient_c is None:
        temp_cell: NDArray[np.float64] | float = 25.0
    else:
        temp_cell = np.asarray(pvlib.temperature.faiman(poa, model.ambient_c), dtype=float)
    pdc = np.asarray(
        pvlib.pvsystem.pvwatts_dc(poa, temp_cell, ratings[:, None], model.gamma_pdc_per_c),
        dtype=float,
    ) * (1.0 - model.losses_percent / 100.0)
    pac_rating = ratings[:, None] / model.dc_ac_ratio
    pac = np.asarray(
        pvlib.inverter.pvwatts(
            pdc, pac_rating / model.inverter_efficiency, model.inverter_efficiency
        ),
        dtype=float,
    )
    pac_1min = np.zeros((n_days, n_pv, MINUTES_PER_DAY))
    pac_1min[..., up] = np.where(pdc > 0.0, np.clip(pac, 0.0, pac_rating), 0.0)
    return grid.from_base(pac_1min)


def load_enwl_pv_profiles(path: str | Path) -> NDArray[np.float64]:
    """Read ENWL's PV file (``Summer_PV_Profiles.csv``) as generation profiles.

    The file holds the AC output of 100 monitored domestic systems in absolute kW (not per
    kWp); their ratings are not in the file. Negative values (inverter standby draw at night,
    if any) are set to zero: availability is never negative.

    Returns:
        Array of shape ``(n_profiles, 288)``, kW >= 0, 5-minute means from 00:00. Rescale to
        each system's kWp with :func:`scale_enwl_pv` after
        :func:`powertrip_env.profiles.enwl.assign_enwl_profiles`.
    """
    return np.clip(read_enwl_profile_csv(path), 0.0, None)


def scale_enwl_pv(
    profiles_kw: NDArray[np.float64],
    kwp: ArrayLike,
    *,
    peak_per_kwp: float = 0.75,
    reference_kwp: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Rescale ENWL PV profiles to the ratings of the systems that receive them.

    As the file gives no ratings, each profile's rating is estimated from its own peak:
    ``rating = peak / peak_per_kwp``, i.e. the profile is scaled by
    ``kwp * peak_per_kwp / peak``. The default 0.75 is what this module's clear-sky model
    gives at the summer peak for a south-facing 35-degree roof in Manchester; a profile of a
    cloudy day therefore comes out brighter than it was (its shape is kept). When the
    ratings are known, pass ``reference_kwp`` to scale by ``kwp / reference_kwp`` instead.

    Args:
        profiles_kw: assigned profiles, shape ``(n_pv, n_steps)``, kW.
        kwp: rating of each receiving system, shape ``(n_pv,)``, kWp > 0.
        peak_per_kwp: assumed peak output per kWp of the source systems, in (0, 1].
        reference_kwp: rating of each source profile's system, shape ``(n_pv,)``, or ``None``.

    Returns:
        Array of shape ``(n_pv, n_steps)``, kW in ``[0, kwp]`` (clipped at kWp). A profile that
        is zero all day stays zero.
    """
    arr = np.clip(np.asarray(profiles_kw, dtype=float), 0.0, None)
    ratings = _as_kwp(kwp)
    if arr.ndim != 2 or arr.shape[0] != ratings.size:
        raise ConfigError(
            f"profiles_kw has shape {arr.shape}; expected ({ratings.size}, n_steps) to match kwp"
        )
    if reference_kwp is not None:
        scale = ratings / _as_kwp(reference_kwp)
    else:
        if not 0.0 < peak_per_kwp <= 1.0:
            raise ConfigError(f"peak_per_kwp={peak_per_kwp} must be in (0, 1]")
        peak = arr.max(axis=1) if arr.shape[1] else np.zeros(ratings.size)
        scale = np.divide(ratings * peak_per_kwp, peak, out=np.zeros_like(ratings), where=peak > 0)
    return np.minimum(arr * scale[:, None], ratings[:, None])
