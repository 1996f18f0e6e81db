"""Reading the ENWL low-carbon-technology profile files and assigning them to devices.

Electricity North West's "Low Voltage Network Solutions" project (2014) published, beside its
128 LV feeders, day profiles of household load and low-carbon technologies
(``Summer_Load_Profiles.csv``, ``Winter_Load_Profiles.csv``, ``Summer_PV_Profiles.csv``,
``Winter_EV_Profiles.csv``, ...). Format (DESIGN.md §3): 288 rows (5-minute steps from 00:00)
by 100 columns (one profile each), no header, UTF-8 byte-order mark, values in kW (mean power
over the 5 minutes). Users download the files themselves; nothing here fetches them.

The device-specific readers (:func:`powertrip_env.profiles.load.load_enwl_load_profiles`, the
PV and EV ones) build on :func:`read_enwl_profile_csv`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from powertrip_env.errors import ConfigError, ProfileError
from powertrip_env.profiles.timegrid import DayGrid, resample_mean

#: Rows of an ENWL profile file: 5-minute steps of one day.
ENWL_N_STEPS = 288
#: Minutes per row of an ENWL profile file.
ENWL_RESOLUTION_MIN = 5
#: Columns (profiles) in each published ENWL file. Files with fewer columns are accepted.
ENWL_N_PROFILES = 100


def read_enwl_profile_csv(path: str | Path) -> NDArray[np.float64]:
    """Read one ENWL profile file as an array of profiles.

    Accepts the published format: no header, comma separated, UTF-8 with or without a
    byte-order mark, exactly 288 rows. Any number of columns (the published files have 100)
    is accepted; columns that are empty in every row (a trailing comma) are dropped.

    Args:
        path: the CSV file.

    Returns:
        Array of shape ``(n_profiles, 288)``: one row per file column, kW, 5-minute means
        from 00:00.

    Raises:
        ProfileError: the file is missing or unreadable, has another number of rows, holds a
            non-numeric or non-finite value, or has no columns. The message names the file.
    """
    file = Path(path)
    if not file.is_file():
        raise ProfileError(f"ENWL profile file {str(file)!r} does not exist or is not a file")
    try:
        frame = pd.read_csv(file, header=None, encoding="utf-8-sig", skip_blank_lines=True)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ProfileError(
            f"ENWL profile file {str(file)!r} could not be read as CSV: {err}"
        ) from err
    frame = frame.dropna(axis=1, how="all")
    if frame.shape[0] != ENWL_N_STEPS or frame.shape[1] == 0:
        raise ProfileError(
            f"ENWL profile file {str(file)!r} has {frame.shape[0]} rows x {frame.shape[1]} "
            f"columns; expected {ENWL_N_STEPS} rows (5-minute steps) x up to "
            f"{ENWL_N_PROFILES} columns, no header"
        )
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise ProfileError(
            f"ENWL profile file {str(file)!r}: value {frame.iat[row, col]!r} at row {row + 1}, "
            f"column {col + 1} is not a finite number (kW); {len(bad)} such value(s) in all"
        )
    return np.ascontiguousarray(values.T)


def choose_columns(rng: np.random.Generator, n_profiles: int, n: int) -> NDArray[np.int64]:
    """Pick ``n`` profile indices out of ``n_profiles`` with the caller's generator.

    Distinct profiles while ``n <= n_profiles``; otherwise drawn with replacement (each
    device still gets a uniformly random profile, some shared).

    Returns:
        Integer array of shape ``(n,)``.
    """
    if n < 0:
        raise ConfigError(f"number of devices n={n} must be >= 0")
    if n_profiles <= 0:
        raise ConfigError(f"n_profiles={n_profiles} must be > 0 to choose from")
    return rng.choice(n_profiles, size=n, replace=n > n_profiles).astype(np.int64)


def assign_enwl_profiles(
    rng: np.random.Generator, profiles: NDArray[np.float64], n: int, grid: DayGrid
) -> NDArray[np.float64]:
    """Give each of ``n`` devices a random ENWL profile, on the requested grid.

    Args:
        rng: source of the column choice (:func:`choose_columns`).
        profiles: profiles as read, shape ``(n_profiles, 288)``, kW at 5 minutes.
        n: number of devices (houses, PV systems, CPs).
        grid: target grid; 1-minute steps hold the 5-minute value, 15-minute steps average
            three of them (energy is kept either way).

    Returns:
        Array of shape ``(n, grid.n_steps)``, kW.
    """
    arr = np.asarray(profiles, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != ENWL_N_STEPS:
        raise ConfigError(f"profiles have shape {arr.shape}; expected (n_profiles, {ENWL_N_STEPS})")
    columns = choose_columns(rng, arr.shape[0], n)
    return resample_mean(arr[columns], ENWL_RESOLUTION_MIN, grid.resolution_min)
