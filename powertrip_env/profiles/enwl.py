"""Reading the ENWL low-carbon-technology profile files and assigning them to devices.

Electricity North West's "Low Voltage Network Solutions" project (2014) published, beside its
128 LV feeders, day profiles of household load and low-carbon technologies
(``Summer_Load_Profiles.csv``, ``Winter_Load_Profiles.csv``, ``Summer_PV_Profiles.csv``,
``Winter_EV_Profiles.csv``, ...). Format (architecture.md §3): 288 rows (5-minute steps from 00:00)
by 100 columns (one profile each), no header, UTF-8 byte-order mark, values in kW (mean power
over the 5 minutes). Users download the files themselves; nothing here fetches them.

The device-specific readers (:func:`powertrip_env.profiles.load.load_enwl_load_profiles`, the
PV and EV ones) build on :func:`read_enwl_profile_csv`.
"""

from __future__ import annotations

import functools
from pathlib import Path, PureWindowsPath

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from powertrip_env.errors import ConfigError, ProfileError

# The feeder reader's statement parser (BOM, CR-only lines, comments, continuations).
from powertrip_env.grid.enwl import _file_map, _Statement, _statements
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


# --- Seasons --------------------------------------------------------------------------------


def season_in_name(path: str | Path) -> str | None:
    """``summer`` or ``winter`` when the file's name says so (ENWL names its seasonal files
    ``Summer_Load_Profiles.csv``, ``Winter_EV_Profiles.csv``, ...), else ``None``."""
    name = Path(path).name.lower()
    found = [season for season in ("summer", "winter") if season in name]
    return found[0] if len(found) == 1 else None


def check_file_season(path: str | Path, season: str, key: str) -> None:
    """Refuse an ENWL file whose name gives another season than the scenario's ``season``.

    Raises:
        ConfigError: naming ``key``, the file and both seasons.
    """
    named = season_in_name(path)
    if named is not None and named != season:
        raise ConfigError(
            f"{key}={str(path)!r} is a {named} file but profiles.season={season!r}; give the "
            f"{season.capitalize()} file of that kind or set profiles.season: {named}"
        )


# --- Per-house load files -------------------------------------------------------------------


def _shape_file(stmt: _Statement) -> str:
    """The profile file name a ``New Loadshape`` statement points at (``mult=(file=...)``)."""
    mult = stmt.get("mult") or stmt.get("pmult") or ""
    _, found, path = mult.strip("()[]{}\"' ").partition("file=")
    if not found or not path:
        raise ProfileError(
            f"{stmt.where()}: expected mult=(file=...\\Load<k>_5min.csv), the form ENWL's "
            "LoadShapes.txt uses"
        )
    # The path is an absolute Windows path that is not distributed: only its name is used.
    return PureWindowsPath(path.strip("\"' ")).name


def enwl_house_shape_files(feeder_dir: str | Path) -> dict[str, str]:
    """Load name (lower case) -> profile file name, as the feeder's files assign them.

    ``Loads.txt`` gives each load ``Daily=Shape_k`` and ``LoadShapes.txt`` points ``Shape_k``
    at ``...\\Load_profiles\\Load<k>_5min.csv``; only the file name is kept (the absolute
    Windows path is never followed). Loads in ``Loads.txt`` order (an exact repeat of a
    definition counts once, as the feeder reader reads it).

    Raises:
        ProfileError: a file is missing, a load has no ``Daily=`` shape, or a shape is not
            defined (the message names the file and line).
    """
    folder = Path(feeder_dir)
    files = _file_map(folder) if folder.is_dir() else {}
    missing = [n for n in ("loads.txt", "loadshapes.txt") if n not in files]
    if missing:
        raise ProfileError(
            f"ENWL feeder folder {str(folder)!r} lacks {missing}; per-house load profiles "
            "need its Loads.txt and LoadShapes.txt"
        )
    shapes: dict[str, str] = {}
    for stmt in _statements(files["loadshapes.txt"]):
        cls, _, name = stmt.target.partition(".")
        if stmt.verb.lower() == "new" and cls.lower() == "loadshape":
            shapes[name.lower()] = _shape_file(stmt)
    out: dict[str, str] = {}
    for stmt in _statements(files["loads.txt"]):
        cls, _, name = stmt.target.partition(".")
        if stmt.verb.lower() != "new" or cls.lower() != "load" or name.lower() in out:
            continue
        shape = (stmt.get("daily") or "").lower()
        if not shape:
            raise ProfileError(f"{stmt.where()}: the load has no Daily= load shape")
        if shape not in shapes:
            raise ProfileError(
                f"{stmt.where()}: load shape {shape!r} is not defined in {files['loadshapes.txt']}"
            )
        out[name.lower()] = shapes[shape]
    return out


def read_enwl_house_profiles(
    feeder_dir: str | Path, profile_dir: str | Path
) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    """Each house's own ENWL profile (``Load<k>_5min.csv`` in ``profile_dir``).

    Returns:
        ``(load names, profiles)``: names in ``Loads.txt`` order (lower case) and an array of
        shape ``(n_loads, 288)``, kW, 5-minute means from 00:00.

    Raises:
        ProfileError: a profile file is missing from ``profile_dir`` or holds more than one
            column, or see :func:`enwl_house_shape_files` and :func:`read_enwl_profile_csv`.
    """
    folder = Path(profile_dir)
    if not folder.is_dir():
        raise ProfileError(f"ENWL profile folder {str(folder)!r} does not exist")
    assignment = enwl_house_shape_files(feeder_dir)
    available = {p.name.lower(): p for p in folder.iterdir() if p.is_file()}
    rows = []
    for load, file_name in assignment.items():
        path = available.get(file_name.lower())
        if path is None:
            raise ProfileError(
                f"load {load!r} uses {file_name!r} (LoadShapes.txt), which is not in the "
                f"profile folder {str(folder)!r}"
            )
        profile = read_enwl_profile_csv(path)
        if profile.shape[0] != 1:
            raise ProfileError(
                f"{str(path)!r} holds {profile.shape[0]} columns; a house's ENWL profile "
                "file holds one (288 rows of kW)"
            )
        rows.append(profile[0])
    return tuple(assignment), np.array(rows).reshape(len(rows), ENWL_N_STEPS)


@functools.lru_cache(maxsize=8)
def cached_enwl_house_profiles(
    feeder_dir: str, profile_dir: str
) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    """:func:`read_enwl_house_profiles`, read once per process (the array is read-only):
    every scenario-day of one feeder uses the same files."""
    names, table = read_enwl_house_profiles(feeder_dir, profile_dir)
    table.flags.writeable = False
    return names, table
