"""The feeder as a drawing: its lines on a map, the transformer, the CPs and the PV systems.

Lines, distances and coordinates come from :mod:`powertrip_env.grid.layout` (the feeder's
OpenDSS text and its coordinate file: a ``bus,x_m,y_m`` CSV or ENWL's ``XY_Position.xls``);
no OpenDSS engine is needed. The names re-exported here keep older imports working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from experiments.figures import DPI, PHASE_COLOURS, PHASE_LETTERS, save_figure
from powertrip_env.errors import FeederError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.layout import (
    TRANSFORMER_BUS,
    FeederLine,
    LineSource,
    bus_distances_m,
    feeder_lines,
    node_distances_m,
    read_bus_coords,
)

__all__ = [
    "TRANSFORMER_BUS",
    "FeederDrawing",
    "FeederLine",
    "bus_distances_m",
    "draw_feeder",
    "feeder_lines",
    "node_distances_m",
    "read_bus_coords",
]


@dataclass(frozen=True)
class FeederDrawing:
    """What :func:`draw_feeder` drew.

    Attributes:
        path: the PNG written.
        n_lines: line segments drawn (lines whose two buses have coordinates).
        n_cps: charging points marked.
        n_pvs: PV systems marked.
    """

    path: Path
    n_lines: int
    n_cps: int
    n_pvs: int


# --- Drawing --------------------------------------------------------------------------------


#: Label positions tried around a marker, in order: (x, y) direction of the offset.
_LABEL_SIDES = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_HA = {1: "left", 0: "center", -1: "right"}
_VA = {1: "bottom", 0: "center", -1: "top"}


def _overlap_px2(box: Bbox, others: list[Bbox]) -> float:
    """Total area (pixels²) that ``box`` shares with ``others``."""
    total = 0.0
    for other in others:
        common = Bbox.intersection(box, other)
        total += 0.0 if common is None else common.width * common.height
    return total


def _place_labels(fig: Figure, ax: Axes, texts: list[str], xy: npt.NDArray[np.float64]) -> None:
    """Label each point at the first side (of :data:`_LABEL_SIDES`) that covers nothing.

    Devices sit metres apart at the feeder's end, so fixed offsets make labels collide;
    this greedy search keeps each label off every marker and every label already placed
    (or, if every side collides, takes the side that collides least).
    """
    fig.draw_without_rendering()
    renderer = FigureCanvasAgg(fig).get_renderer()
    half = 8.0  # half a marker, pixels
    taken = [
        Bbox.from_bounds(x - half, y - half, 2 * half, 2 * half)
        for x, y in ax.transData.transform(xy)
    ]
    for text, point in zip(texts, xy, strict=True):
        best: tuple[float, Annotation, Bbox] | None = None
        for sx, sy in _LABEL_SIDES:
            label = ax.annotate(
                text,
                tuple(point),
                xytext=(6 * sx, 5 * sy),
                textcoords="offset points",
                ha=_HA[sx],
                va=_VA[sy],
                fontsize=7,
                bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8},
                zorder=4,
            )
            box = label.get_window_extent(renderer)
            cost = _overlap_px2(box, taken)
            if best is not None and cost >= best[0]:
                label.remove()
                continue
            if best is not None:
                best[1].remove()
            best = (cost, label, box)
            if cost == 0.0:
                break
        if best is not None:
            taken.append(best[2])


def _mark_devices(
    ax: Axes,
    devices: tuple[DeviceSpec, ...],
    coords: Mapping[str, tuple[float, float]],
    marker: str,
) -> int:
    """Scatter ``devices`` at their buses (colour = phase); return how many were drawn."""
    if not devices:
        return 0
    xy = np.array([coords[d.bus.lower()] for d in devices])
    colours = [PHASE_COLOURS[d.phase] for d in devices]
    points = ax.scatter(
        xy[:, 0], xy[:, 1], s=90, marker=marker, c=colours, edgecolors="black", zorder=3
    )
    return int(np.asarray(points.get_offsets()).shape[0])


def _legend_handles() -> list[Line2D]:
    def proxy(marker: str, colour: str, label: str, size: float = 9) -> Line2D:
        return Line2D([], [], ls="", marker=marker, ms=size, mfc=colour, mec="black", label=label)

    handles = [
        proxy("s", "white", "transformer (LV bus)", 11),
        proxy("^", "white", "EV charging point"),
        proxy("*", "white", "rooftop PV", 12),
    ]
    return handles + [
        proxy("o", colour, f"phase {PHASE_LETTERS[p]}", 7) for p, colour in PHASE_COLOURS.items()
    ]


def draw_feeder(
    bus_coords: Path | str,
    lines_dss: LineSource,
    devices: DevicePlacement,
    out_path: Path | str,
    *,
    root_bus: str = TRANSFORMER_BUS,
    title: str = "LV feeder and controllable devices",
) -> FeederDrawing:
    """Draw the feeder's lines from bus coordinates and mark the transformer, CPs and PV.

    Args:
        bus_coords: ``bus,x_m,y_m`` CSV or ENWL ``XY_Position.xls`` (metres), e.g.
            :func:`powertrip_env.grid.layout.feeder_coords_file` of the feeder.
        lines_dss: an OpenDSS file holding (or redirecting to) the lines, or a ``Feeder``.
        devices: the CPs (triangles) and PV systems (stars), coloured by phase and labelled
            ``name (phase)``.
        out_path: the PNG to write (parent folders are created).
        root_bus: the transformer's LV bus (a square).
        title: figure title.

    Raises:
        FeederError: a file cannot be read, no line has coordinates at both ends, or a
            device or the root bus has no coordinates.
    """
    coords = read_bus_coords(bus_coords)
    segments = [
        (coords[line.bus1], coords[line.bus2])
        for line in feeder_lines(lines_dss)
        if line.bus1 in coords and line.bus2 in coords
    ]
    if not segments:
        raise FeederError(f"no line of {lines_dss!r} has coordinates in {bus_coords}")
    needed = {d.bus.lower() for d in (*devices.cps, *devices.pvs)} | {root_bus.lower()}
    unknown = sorted(needed - coords.keys())
    if unknown:
        raise FeederError(f"bus(es) {unknown} have no coordinates in {bus_coords}")

    fig = Figure(figsize=(9, 8), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.add_collection(LineCollection(segments, colors="0.55", linewidths=1.0, zorder=1))
    x0, y0 = coords[root_bus.lower()]
    ax.scatter([x0], [y0], s=160, marker="s", c="white", edgecolors="black", zorder=3)
    ax.annotate("transformer", (x0, y0), xytext=(8, -12), textcoords="offset points", fontsize=8)
    n_cps = _mark_devices(ax, devices.cps, coords, "^")
    n_pvs = _mark_devices(ax, devices.pvs, coords, "*")
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.set_title(title)
    ax.legend(handles=_legend_handles(), loc="best", fontsize=8)
    placed = (*devices.cps, *devices.pvs)
    labels = [f"{d.name} ({PHASE_LETTERS[d.phase]})" for d in placed]
    _place_labels(fig, ax, labels, np.array([coords[d.bus.lower()] for d in placed]).reshape(-1, 2))
    path = save_figure(fig, Path(out_path))
    return FeederDrawing(path=path, n_lines=len(segments), n_cps=n_cps, n_pvs=n_pvs)
