"""``powertrip buses`` and ``powertrip feeders``: what a feeder, or a folder of them, holds.

``buses`` lists one feeder's LV buses with their cable length from the transformer, their
phases and the houses on them. ``feeders`` lists every ENWL feeder folder found under a path
with its size, its houses per phase, the cable length to its farthest house, and whether it
loads (the reader takes it, OpenDSS compiles it and a power flow at the files' nominal loads
converges) or why not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, get_args

import pandas as pd

from powertrip_env.errors import PowerTripError
from powertrip_env.grid.enwl import FoundFeeder, find_enwl_feeders, load_enwl_feeder
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.layout import FeederLayout, feeder_layout

BusSort = Literal["bus", "distance", "phase"]
BUS_SORTS: tuple[str, ...] = get_args(BusSort)
_PHASE = {1: "a", 2: "b", 3: "c"}


def _bus_key(name: str) -> tuple[int, float | str]:
    """Sort buses numerically where they are numbers (ENWL's and the embedded feeder's are)."""
    try:
        return 0, float(name)
    except ValueError:
        return 1, name


def bus_table(
    layout: FeederLayout, sort: BusSort = "bus", houses_only: bool = False
) -> pd.DataFrame:
    """One row per LV bus: ``bus``, ``distance_m``, ``phases`` (``abc`` ...), ``houses``.

    ``houses`` lists the loads at the bus as ``LOADk (b)``; ``distance_m`` is the cable length
    from the transformer's LV bus (NaN where no line path reaches). Sorted by bus name
    (numerically), by distance, or by the phase of the bus's first house (then distance).
    """
    phases: dict[str, set[int]] = {}
    for line in layout.lines:
        for bus in (line.bus1, line.bus2):
            phases.setdefault(bus, set()).update(line.nodes)
    houses: dict[str, list[str]] = {}
    first_phase: dict[str, int] = {}
    for load in layout.loads:
        label = "".join(_PHASE.get(p, str(p)) for p in load.phases)
        houses.setdefault(load.bus, []).append(f"{load.name.upper()} ({label})")
        if load.is_house:
            first_phase.setdefault(load.bus, load.phases[0])
    buses = [b for b in layout.buses if not houses_only or b in first_phase]
    distance = {b: layout.bus_distance_m.get(b, float("nan")) for b in buses}
    if sort == "distance":
        buses.sort(key=lambda b: (distance[b], _bus_key(b)))
    elif sort == "phase":
        buses.sort(key=lambda b: (first_phase.get(b, 4), distance[b]))
    else:
        buses.sort(key=_bus_key)
    return pd.DataFrame(
        {
            "bus": buses,
            "distance_m": [distance[b] for b in buses],
            "phases": [
                "".join(_PHASE.get(p, str(p)) for p in sorted(phases.get(b, ()))) for b in buses
            ],
            "houses": [", ".join(houses.get(b, [])) for b in buses],
        }
    )


def bus_heading(feeder: Feeder, layout: FeederLayout) -> str:
    """One line naming the feeder, its size and its houses per phase."""
    a, b, c = layout.houses_per_phase()
    return (
        f"{feeder.name}: {len(layout.buses)} LV buses, {len(layout.houses)} houses "
        f"(a {a}, b {b}, c {c}); distance_m is the cable length from the transformer "
        f"(bus {layout.root_bus})"
    )


def _loads(feeder: Feeder) -> str:
    """``"yes"`` if OpenDSS compiles ``feeder`` and solves it at its nominal loads, else why."""
    from powertrip_env.grid.engine import OpenDSSEngine

    with OpenDSSEngine(feeder) as engine:
        converged, error = engine.run_pf()
    return "yes" if converged else f"no: power flow did not converge ({error})"


def feeder_row(found: FoundFeeder, solve: bool = True) -> dict[str, object]:
    """The ``feeders`` listing's row for one feeder folder (never raises a PowerTripError)."""
    start = time.perf_counter()
    row: dict[str, object] = {"feeder": found.name, "folder": str(found.folder)}
    try:
        feeder = load_enwl_feeder(found.folder)
        layout = feeder_layout(feeder)
        a, b, c = layout.houses_per_phase()
        row |= {
            "buses": len(layout.buses),
            "houses": len(layout.houses),
            "houses_a": a,
            "houses_b": b,
            "houses_c": c,
            "other_loads": len(layout.loads) - len(layout.houses),
            "farthest_house_m": round(layout.farthest_house_m(), 1),
            "loads": _loads(feeder) if solve else "read (not solved)",
        }
    except PowerTripError as exc:
        row["loads"] = f"no: {exc}"
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def feeder_table(path: str | Path, solve: bool = True) -> pd.DataFrame:
    """One :func:`feeder_row` per feeder folder found at or under ``path``.

    Raises:
        FeederError: ``path`` does not exist or holds no feeder folder.
    """
    rows = [feeder_row(found, solve) for found in find_enwl_feeders(path)]
    columns = [
        "feeder",
        "buses",
        "houses",
        "houses_a",
        "houses_b",
        "houses_c",
        "other_loads",
        "farthest_house_m",
        "loads",
        "seconds",
        "folder",
    ]
    table = pd.DataFrame(rows).reindex(columns=columns)
    for column in ("buses", "houses", "houses_a", "houses_b", "houses_c", "other_loads"):
        table[column] = table[column].astype("Int64")
    return table
