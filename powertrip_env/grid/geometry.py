"""Where a feeder's buses and lines sit on a plane, for drawing it (the env's ``render``).

The lines come from the compiled circuit (every enabled ``Line`` between two LV buses), so any
feeder an :class:`~powertrip_env.grid.engine.OpenDSSEngine` compiles can be drawn. The bus
positions come from the feeder's coordinate file (a CSV or ENWL's ``XY_Position.xls``, metres) when
it places every drawn bus; otherwise from a tree layout of the lines (a schematic: distance
from the transformer in line hops across, one row per branch end down), so a feeder without
coordinates still renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from powertrip_env.errors import FeederError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.layout import read_feeder_coords


@dataclass(frozen=True)
class FeederGeometry:
    """Buses and lines of a feeder on a plane.

    Attributes:
        bus_names: (n_bus,) LV buses, lower case, in the order of ``bus_xy``.
        bus_xy: (n_bus, 2) positions, metres east and north (or schematic units, see
            ``schematic``).
        lines: (n_line, 2) indices into ``bus_names`` of each line's two ends.
        root: index of the transformer's LV bus (or of the first bus if there is none).
        schematic: True when the positions are a tree layout, not coordinates.
    """

    bus_names: tuple[str, ...]
    bus_xy: np.ndarray
    lines: np.ndarray
    root: int
    schematic: bool


def feeder_geometry(engine: OpenDSSEngine) -> FeederGeometry:
    """The LV buses and lines of ``engine``'s circuit, placed for drawing.

    Raises:
        FeederError: the circuit has no line between two LV buses, or the feeder's coordinate
            file cannot be read.
    """
    bus_names = tuple(b.lower() for b in engine.bus_names)
    index = {b: k for k, b in enumerate(bus_names)}
    lines = [
        (index[a], index[b]) for a, b in _line_ends(engine) if a in index and b in index and a != b
    ]
    if not lines:
        raise FeederError(f"feeder {engine.feeder.name!r} has no line between two LV buses")
    root = _root_bus(engine, index)
    ends = np.array(lines, dtype=np.intp)
    coords: Mapping[str, tuple[float, float]] = read_feeder_coords(engine.feeder) or {}
    drawn = np.unique(ends)
    if all(bus_names[k] in coords for k in drawn):
        xy = np.array([coords.get(b, (np.nan, np.nan)) for b in bus_names], dtype=float)
        return FeederGeometry(bus_names, xy, ends, root, schematic=False)
    return FeederGeometry(bus_names, tree_layout(len(bus_names), ends, root), ends, root, True)


def _line_ends(engine: OpenDSSEngine) -> list[tuple[str, str]]:
    dss = engine.dss
    ends = []
    ok = dss.Lines.First()
    while ok:
        if dss.CktElement.Enabled():
            ends.append(
                (dss.Lines.Bus1().split(".")[0].lower(), dss.Lines.Bus2().split(".")[0].lower())
            )
        ok = dss.Lines.Next()
    return ends


def _root_bus(engine: OpenDSSEngine, index: Mapping[str, int]) -> int:
    """The transformer's LV bus, where the feeder starts (bus 0 if the circuit has none)."""
    if engine.secondary_index.size:
        bus = engine.node_names[int(engine.secondary_index[0])].rsplit(".", 1)[0]
        return index.get(bus, 0)
    return 0


def tree_layout(n_bus: int, lines: np.ndarray, root: int) -> np.ndarray:
    """(n_bus, 2) schematic positions in the unit square: x from the line hops from ``root``,
    y from the branch-end rank.

    Each branch end (leaf) gets its own row in depth-first order and every other bus sits at
    the mean row of its children, so branches never cross. Buses no line reaches from
    ``root`` are laid out from their own smallest-index bus, below the rest.
    """
    adjacent: list[list[int]] = [[] for _ in range(n_bus)]
    for a, b in lines:
        adjacent[a].append(int(b))
        adjacent[b].append(int(a))
    xy = np.full((n_bus, 2), np.nan)
    next_row = 0.0
    for start in [root, *range(n_bus)]:
        if not np.isnan(xy[start, 0]) or (start != root and not adjacent[start]):
            continue
        next_row = _lay_out_tree(adjacent, start, xy, next_row)
    span = np.nanmax(xy, axis=0) - np.nanmin(xy, axis=0)
    return (xy - np.nanmin(xy, axis=0)) / np.where(span > 0.0, span, 1.0)  # a unit square


def _lay_out_tree(
    adjacent: Sequence[Sequence[int]], root: int, xy: np.ndarray, first_row: float
) -> float:
    """Lay out the tree hanging from ``root`` into ``xy``; return the next free row."""
    order: list[int] = []
    parent = {root: -1}
    depth = {root: 0}
    stack = [root]
    while stack:  # iterative depth-first search: feeders are deeper than Python's recursion
        bus = stack.pop()
        order.append(bus)
        for other in reversed(adjacent[bus]):
            if other not in parent:
                parent[other] = bus
                depth[other] = depth[bus] + 1
                stack.append(other)
    children: dict[int, list[int]] = {}
    for bus in order[1:]:
        children.setdefault(parent[bus], []).append(bus)
    row = first_row
    for bus in order:  # leaves in depth-first order take consecutive rows
        if bus not in children:
            xy[bus] = (depth[bus], -row)
            row += 1.0
    for bus in reversed(order):  # parents after their children
        if bus in children:
            xy[bus] = (depth[bus], np.mean([xy[c, 1] for c in children[bus]]))
    return row + 1.0
