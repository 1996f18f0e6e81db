"""Run folders (DESIGN.md §9): ``runs/<run-id>/`` with config, results, figures and a report.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``),
so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = (
    "powertrip",
    "opendssdirect.py",
    "dss-python",
    "numpy",
    "pandas",
    "pymoo",
    "gymnasium",
    "mo-gymnasium",
    "pvlib",
    "demandlib",
    "stable-baselines3",
    "torch",
)


def make_run_id(kind: str, scenario: str, seed: int) -> str:
    """``<kind>__<scenario>__<seed>__<UTC time>``, in the CleanRL manner."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}__{scenario}__{seed}__{stamp}"


def _atomic(path: Path, write: Callable[[Path], object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read and served
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return _atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return _atomic(path, lambda p: frame.to_parquet(p, index=False))


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    """The repository's HEAD commit, or ``unknown`` outside a git checkout."""
    try:
        here = Path(__file__).resolve().parent
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_metadata(config: dict[str, Any], seed: int, **extra: Any) -> dict[str, Any]:
    """What ``config.json`` holds: resolved config, seed, versions, commit."""
    return {
        "config": config,
        "seed": seed,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
        **extra,
    }
