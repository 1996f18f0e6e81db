"""Run folders (architecture.md §9): ``runs/<run-id>/`` with config, results, figures and a report.

Every file is written atomically (a temporary file in the same folder, then ``os.replace``),
so an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from powertrip_env.errors import ConfigError

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


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM after keeping its finished work.

    Its message says what was kept and the command that resumes the run. A
    ``KeyboardInterrupt``, so callers that stop on Ctrl-C still do.
    """

    def __init__(self, run_dir: Path, resume_command: str | None) -> None:
        self.run_dir = run_dir
        self.resume_command = resume_command
        if resume_command is None:
            message = f"the partial run is in {run_dir}"
        else:
            message = f"finished work is kept in {run_dir}; continue with: {resume_command}"
        super().__init__(message)


_current: list[Path] = []


def use_run_dir(run_dir: Path) -> Path:
    """Note ``run_dir`` as the run this process works on (an unexpected error's traceback is
    written there); return it."""
    _current[:] = [Path(run_dir)]
    return Path(run_dir)


def current_run_dir() -> Path | None:
    """The run folder this process last created or resumed, if any."""
    return _current[0] if _current else None


def new_run_dir(out: str | Path, kind: str, scenario: str, seed: int) -> Path:
    """Create and return a fresh run folder ``<out>/<run id>``, never one another run holds.

    The folder is created with an exclusive ``mkdir``: when a run started in the same second
    already took the name, ``-1``, ``-2``, ... is appended, so runs started together (even
    from several processes) each get a folder of their own.

    Raises:
        OSError: ``out`` cannot hold a new folder (not a directory, no permission, ...).
    """
    parent = Path(out)
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a directory (a file is in the way)", str(out))
    parent.mkdir(parents=True, exist_ok=True)
    base = make_run_id(kind, scenario, seed)
    for k in range(1000):
        run_dir = parent / (base if k == 0 else f"{base}-{k}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return use_run_dir(run_dir)
    # A thousand runs in one second: fall back to a random suffix.
    run_dir = parent / f"{base}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    return use_run_dir(run_dir)


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files an interrupted run left in ``run_dir`` (and below).

    Every file here is written as a hidden temporary (``.<name>.<random>.tmp...``) and then
    renamed, so one that is still there was never finished. Call only when no process is
    writing the run (when resuming it).
    """
    use_run_dir(run_dir)
    removed = []
    for path in Path(run_dir).rglob(".*.tmp*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file: 0o666 less the process's umask."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file beside ``path``, then rename it.

    An interrupted write leaves ``path`` as it was (and at worst a ``.<name>.*.tmp`` file
    that :func:`remove_stale_temporaries` clears); the file gets the mode a plain ``open``
    would give it (``mkstemp`` makes 0600, but results are meant to be read and served).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    return atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def read_json(path: Path, what: str) -> Any:
    """Parsed JSON of ``path``; :class:`ConfigError` naming ``what`` and the file when it is
    missing or damaged (e.g. truncated by a full disk)."""
    if not path.is_file():
        raise ConfigError(f"{what}: no {path.name} in {str(path.parent)!r}; is it a run folder?")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{what}: {str(path)!r} is damaged (not JSON: {exc})") from exc


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
