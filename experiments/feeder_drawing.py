"""The feeder as a graph and as a drawing: line lengths, distances from the transformer, a map.

The lines are read from the OpenDSS text that builds the feeder (``New Line.<name> Bus1=...
Bus2=... Length=... Units=...``), either one file (``Lines.dss``, a master file that
``Redirect``s to it) or a :class:`~powertrip_env.grid.feeder.Feeder`, whose commands are
followed through ``Compile``/``Redirect`` (the embedded feeder) or read inline (ENWL feeders).
No OpenDSS engine is needed: only ``powertrip_env.grid`` may import ``opendssdirect``.
"""

from __future__ import annotations

import csv
import heapq
import shlex
from collections.abc import Iterator, Mapping
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
from powertrip_env.grid.feeder import Feeder

#: The transformer's LV bus in the embedded feeder and in every ENWL feeder.
TRANSFORMER_BUS = "1"

#: Metres per OpenDSS length unit.
_METRES_PER_UNIT = {
    "m": 1.0,
    "km": 1000.0,
    "cm": 0.01,
    "mm": 0.001,
    "ft": 0.3048,
    "kft": 304.8,
    "in": 0.0254,
    "mi": 1609.344,
}

LineSource = Path | str | Feeder


@dataclass(frozen=True)
class FeederLine:
    """One line of the feeder.

    Attributes:
        name: OpenDSS name (lower case).
        bus1: sending-end bus (lower case, no node suffix).
        bus2: receiving-end bus.
        nodes: phase nodes the line connects (``(1, 2, 3)`` for a three-phase line).
        length_m: length, metres.
    """

    name: str
    bus1: str
    bus2: str
    nodes: tuple[int, ...]
    length_m: float


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


# --- Reading lines --------------------------------------------------------------------------


def _logical_lines(path: Path) -> Iterator[str]:
    """Statements of an OpenDSS file: comments stripped, ``~``/``More`` continuations joined."""
    if not path.is_file():
        raise FeederError(f"OpenDSS file {str(path)!r} does not exist")
    pending = ""
    for raw in path.read_text(encoding="utf-8-sig").splitlines():
        text = raw.split("!", 1)[0].split("//", 1)[0].strip()
        head = text.split(" ", 1)[0].lower()
        if head in ("~", "more"):
            pending = f"{pending} {text.split(' ', 1)[-1]}"
            continue
        if pending:
            yield pending
        pending = text
    if pending:
        yield pending


def _line_statements(text: str, base: Path | None) -> Iterator[list[str]]:
    """Tokens of every ``New Line.`` statement that ``text`` holds or redirects to."""
    try:
        tokens = shlex.split(" ".join(text.replace("=", " = ").split()).replace(" = ", "="))
    except ValueError as err:
        raise FeederError(f"cannot split OpenDSS statement {text!r}: {err}") from None
    if len(tokens) < 2:
        return
    verb, target = tokens[0].lower(), tokens[1]
    if verb in ("compile", "redirect"):
        path = Path(target)
        path = path if path.is_absolute() or base is None else base / path
        for statement in _logical_lines(path):
            yield from _line_statements(statement, path.parent)
    elif verb == "new" and target.lower().startswith("line."):
        yield tokens


def _parse_line(tokens: list[str]) -> FeederLine:
    props = {k.lower(): v for k, _, v in (t.partition("=") for t in tokens[2:])}
    where = " ".join(tokens)
    if "bus1" not in props or "bus2" not in props:
        raise FeederError(f"{where!r}: a line needs Bus1= and Bus2=")
    units = props.get("units", "").lower()
    if units not in _METRES_PER_UNIT:
        raise FeederError(
            f"{where!r}: Units={units or '(none)'!r}; expected one of {sorted(_METRES_PER_UNIT)} "
            "(without Units= OpenDSS takes the line code's unit, which this reader cannot know)"
        )
    try:
        length_m = float(props.get("length", "nan")) * _METRES_PER_UNIT[units]
    except ValueError:
        length_m = float("nan")
    if not length_m >= 0.0:
        raise FeederError(f"{where!r}: Length={props.get('length')!r} must be a number >= 0")
    bus1, *nodes1 = props["bus1"].lower().split(".")
    bus2, *nodes2 = props["bus2"].lower().split(".")
    try:
        n_phases = int(props.get("phases", "3"))
        nodes = tuple(int(n) for n in nodes1 or nodes2) or tuple(range(1, n_phases + 1))
    except ValueError:
        raise FeederError(f"{where!r}: Phases= and bus nodes must be integers") from None
    return FeederLine(tokens[1].split(".", 1)[1].lower(), bus1, bus2, nodes, length_m)


def feeder_lines(source: LineSource) -> tuple[FeederLine, ...]:
    """Every line of a feeder, read from an OpenDSS file or a :class:`Feeder`'s commands.

    Raises:
        FeederError: a file does not exist, a line lacks its buses, or its length or unit
            cannot be read (``Units=`` is required).
    """
    if isinstance(source, Feeder):
        statements = (t for c in source.commands for t in _line_statements(c, None))
    else:
        path = Path(source).expanduser().resolve()
        statements = (t for s in _logical_lines(path) for t in _line_statements(s, path.parent))
    lines = tuple(_parse_line(tokens) for tokens in statements)
    if not lines:
        raise FeederError(f"no 'New Line.' statements found in {source!r}")
    return lines


# --- Distances ------------------------------------------------------------------------------


def _shortest_paths_m(lines: tuple[FeederLine, ...], root: str) -> dict[str, float]:
    adjacent: dict[str, list[tuple[str, float]]] = {}
    for line in lines:
        adjacent.setdefault(line.bus1, []).append((line.bus2, line.length_m))
        adjacent.setdefault(line.bus2, []).append((line.bus1, line.length_m))
    if root not in adjacent:
        raise FeederError(f"root bus {root!r} is on no line; a few buses: {sorted(adjacent)[:5]}")
    distance = {root: 0.0}
    queue = [(0.0, root)]
    while queue:
        d, bus = heapq.heappop(queue)
        if d > distance[bus]:
            continue
        for other, length_m in adjacent[bus]:
            if d + length_m < distance.get(other, np.inf):
                distance[other] = d + length_m
                heapq.heappush(queue, (d + length_m, other))
    return distance


def bus_distances_m(source: LineSource, root_bus: str = TRANSFORMER_BUS) -> dict[str, float]:
    """Bus (lower case) -> length of the shortest line path from ``root_bus``, metres.

    On a radial feeder this is the cable length from the transformer. Buses that no line
    path reaches from ``root_bus`` are left out.

    Raises:
        FeederError: the lines cannot be read, or no line touches ``root_bus``.
    """
    return _shortest_paths_m(feeder_lines(source), root_bus.lower())


def node_distances_m(source: LineSource, root_bus: str = TRANSFORMER_BUS) -> dict[str, float]:
    """Node (``"<bus>.<phase>"``, lower case, as ``OpenDSSEngine.node_names``) -> metres.

    Every phase node a line connects at a bus gets that bus's distance from ``root_bus``
    (see :func:`bus_distances_m`).
    """
    lines = feeder_lines(source)
    distance = _shortest_paths_m(lines, root_bus.lower())
    nodes: dict[str, set[int]] = {}
    for line in lines:
        for bus in (line.bus1, line.bus2):
            nodes.setdefault(bus, set()).update(line.nodes)
    return {
        f"{bus}.{n}": d for bus, d in sorted(distance.items()) for n in sorted(nodes.get(bus, ()))
    }


# --- Drawing --------------------------------------------------------------------------------


def read_bus_coords(csv_path: Path | str) -> dict[str, tuple[float, float]]:
    """Bus (lower case) -> ``(x_m, y_m)`` from a ``bus,x_m,y_m`` CSV.

    Raises:
        FeederError: the file does not exist or lacks one of the three columns.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FeederError(f"bus coordinate file {str(path)!r} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"bus", "x_m", "y_m"} - set(reader.fieldnames or ())
        if missing:
            raise FeederError(f"{path}: missing column(s) {sorted(missing)}; need bus,x_m,y_m")
        return {row["bus"].lower(): (float(row["x_m"]), float(row["y_m"])) for row in reader}


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
    bus_coords_csv: Path | str,
    lines_dss: LineSource,
    devices: DevicePlacement,
    out_path: Path | str,
    *,
    root_bus: str = TRANSFORMER_BUS,
    title: str = "LV feeder and controllable devices",
) -> FeederDrawing:
    """Draw the feeder's lines from bus coordinates and mark the transformer, CPs and PV.

    Args:
        bus_coords_csv: ``bus,x_m,y_m`` CSV (``Feeder.bus_coords_csv``), metres.
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
    coords = read_bus_coords(bus_coords_csv)
    segments = [
        (coords[line.bus1], coords[line.bus2])
        for line in feeder_lines(lines_dss)
        if line.bus1 in coords and line.bus2 in coords
    ]
    if not segments:
        raise FeederError(f"no line of {lines_dss!r} has coordinates in {bus_coords_csv}")
    needed = {d.bus.lower() for d in (*devices.cps, *devices.pvs)} | {root_bus.lower()}
    unknown = sorted(needed - coords.keys())
    if unknown:
        raise FeederError(f"bus(es) {unknown} have no coordinates in {bus_coords_csv}")

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
