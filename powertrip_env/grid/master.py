"""A feeder from any OpenDSS master file, an ENWL feeder's ``Master.txt`` included.

Its own module because it dispatches between :mod:`powertrip_env.grid.feeder` (a plain
master) and :mod:`powertrip_env.grid.enwl` (an ENWL master, read as its folder), and the ENWL
reader builds on the :class:`~powertrip_env.grid.feeder.Feeder` type.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from powertrip_env.errors import FeederError
from powertrip_env.grid.enwl import load_enwl_feeder
from powertrip_env.grid.feeder import ENWL_LATITUDE_DEG, ENWL_LONGITUDE_DEG, Feeder


def feeder_from_master(
    master: str | Path,
    *,
    name: str | None = None,
    latitude_deg: float = ENWL_LATITUDE_DEG,
    longitude_deg: float = ENWL_LONGITUDE_DEG,
) -> Feeder:
    """A feeder from any OpenDSS master file.

    The master creates its circuit with ``New Circuit``; or it is an ENWL feeder's
    ``Master.txt``, which only edits the default source, and the feeder is then read as
    :func:`~powertrip_env.grid.enwl.load_enwl_feeder` reads the master's folder.

    Raises:
        FeederError: the file does not exist, or (an ENWL master) its folder cannot be read.
    """
    path = Path(master).expanduser().resolve()
    if not path.is_file():
        found = "is a directory; give the master file in it" if path.is_dir() else "does not exist"
        raise FeederError(f"OpenDSS master file {str(path)!r} {found}")
    if _is_enwl_master(path):
        feeder = load_enwl_feeder(path.parent)
        return replace(
            feeder,
            name=name or feeder.name,
            latitude_deg=latitude_deg,
            longitude_deg=longitude_deg,
        )
    return Feeder(
        name=name or path.stem,
        commands=(f'Compile "{path}"',),
        description=f"OpenDSS model {path}",
        latitude_deg=latitude_deg,
        longitude_deg=longitude_deg,
    )


def _is_enwl_master(path: Path) -> bool:
    """An ENWL ``Master.txt``: no ``New Circuit``, and an ``Edit Vsource.Source`` line."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace").lower()
    except OSError:
        return False
    words = [" ".join(line.split()[:2]) for line in text.splitlines()]
    has_circuit = any(w.startswith("new circuit.") or w == "new circuit" for w in words)
    return not has_circuit and any(w.startswith("edit vsource.source") for w in words)
