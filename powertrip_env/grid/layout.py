"""A feeder's layout as plain data: lines and their lengths, houses, distances, coordinates.

Read from the OpenDSS text that builds the feeder (``New Line.<name> Bus1=... Bus2=...
Length=... Units=...`` and ``New Load.<name> Phases=... Bus1=...``), either one file
(``Lines.dss``, a master file that ``Redirect``s to it) or a
:class:`~powertrip_env.grid.feeder.Feeder`, whose commands are followed through
``Compile``/``Redirect`` (the embedded feeder, a master file) or read inline (ENWL feeders).
No OpenDSS engine is needed, so a scenario can place and check its devices (and a listing
can measure a whole dataset) without compiling a circuit.

A *house* is a single-phase load: devices sit at a house's bus, on that house's phase
(docs/architecture.md, devices). Loads on two or three phases (a few ENWL feeders have a
three-phase one) are loads, not houses.
"""

from __future__ import annotations

import csv
import heapq
import math
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from powertrip_env.errors import FeederError
from powertrip_env.grid.feeder import Feeder

#: The transformer's LV bus in the embedded feeder and in every ENWL feeder; used when the
#: feeder's text names no transformer.
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
_BUSES = re.compile(r"buses\s*=\s*[\[(\"']([^\])\"']*)", re.IGNORECASE)

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
class FeederLoad:
    """One load of the feeder, as its text declares it.

    Attributes:
        name: OpenDSS name (lower case).
        bus: bus (lower case, no node suffix).
        phases: the phase nodes it connects to (``(2,)`` for a house on phase b).
    """

    name: str
    bus: str
    phases: tuple[int, ...]

    @property
    def is_house(self) -> bool:
        """A single-phase load (on phase 1, 2 or 3): a house."""
        return len(self.phases) == 1 and self.phases[0] in (1, 2, 3)


@dataclass(frozen=True)
class House:
    """A single-phase load: where a CP or a PV system can sit.

    Attributes:
        load: the load's OpenDSS name (lower case).
        bus: its bus (lower case).
        phase: its phase, 1..3 (a, b, c).
        distance_m: cable length from the transformer's LV bus, metres (``inf`` when no line
            path reaches it).
    """

    load: str
    bus: str
    phase: int
    distance_m: float

    @property
    def node(self) -> str:
        """``bus.phase``, as the engine names nodes."""
        return f"{self.bus}.{self.phase}"


@dataclass(frozen=True)
class FeederLayout:
    """Lines, loads and distances of one feeder.

    Attributes:
        name: the feeder's name.
        root_bus: the transformer's LV bus (lower case), where distances start.
        lines: every line.
        loads: every load, houses and others, in the order of the feeder's text.
        bus_distance_m: bus (lower case) -> cable length from ``root_bus``, metres; buses no
            line path reaches are left out.
    """

    name: str
    root_bus: str
    lines: tuple[FeederLine, ...]
    loads: tuple[FeederLoad, ...]
    bus_distance_m: dict[str, float]

    @property
    def houses(self) -> tuple[House, ...]:
        """The single-phase loads, in the feeder's order, with their distances."""
        return tuple(
            House(load.name, load.bus, load.phases[0], self.bus_distance_m.get(load.bus, math.inf))
            for load in self.loads
            if load.is_house
        )

    @property
    def buses(self) -> tuple[str, ...]:
        """Every bus a line touches (lower case), sorted by distance from the transformer."""
        names = {b for line in self.lines for b in (line.bus1, line.bus2)}
        return tuple(sorted(names, key=lambda b: (self.bus_distance_m.get(b, math.inf), b)))

    def houses_per_phase(self) -> tuple[int, int, int]:
        """Number of houses on phases a, b and c."""
        counts = [0, 0, 0]
        for house in self.houses:
            counts[house.phase - 1] += 1
        return counts[0], counts[1], counts[2]

    def farthest_house_m(self) -> float:
        """Cable length from the transformer to the farthest house, metres (0 with none)."""
        finite = [h.distance_m for h in self.houses if math.isfinite(h.distance_m)]
        return max(finite, default=0.0)


# --- Reading the text -----------------------------------------------------------------------


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


def _statements(text: str, base: Path | None, classes: tuple[str, ...]) -> Iterator[list[str]]:
    """Tokens of every ``New <class>.`` statement (of ``classes``) ``text`` holds or redirects to.

    A transformer statement is yielded whole (``["transformer", text]``): its bracketed bus
    list does not split into tokens.
    """
    joined = " ".join(text.replace("=", " = ").split()).replace(" = ", "=")
    try:  # shlex only where quotes need it: it is 20x slower than str.split
        tokens = shlex.split(joined) if '"' in joined or "'" in joined else joined.split()
    except ValueError as err:
        raise FeederError(f"cannot split OpenDSS statement {text!r}: {err}") from None
    if len(tokens) < 2:
        return
    verb, target = tokens[0].lower(), tokens[1]
    if verb in ("compile", "redirect"):
        path = Path(target)
        path = path if path.is_absolute() or base is None else base / path
        for statement in _logical_lines(path):
            yield from _statements(statement, path.parent, classes)
        return
    kind = target.split(".", 1)[0].lower()
    if verb == "new" and kind in classes:
        yield ["transformer", text] if kind == "transformer" else tokens


def _props(tokens: list[str]) -> dict[str, str]:
    return {k.lower(): v for k, _, v in (t.partition("=") for t in tokens[2:])}


def _parse_line(tokens: list[str]) -> FeederLine:
    props = _props(tokens)
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


def _parse_load(tokens: list[str]) -> FeederLoad:
    props = _props(tokens)
    where = " ".join(tokens)
    if "bus1" not in props:
        raise FeederError(f"{where!r}: a load needs Bus1=")
    bus, *nodes = props["bus1"].lower().split(".")
    try:
        n_phases = int(props.get("phases", "3"))
        phases = tuple(int(n) for n in nodes if n != "0")[:n_phases]
    except ValueError:
        raise FeederError(f"{where!r}: Phases= and bus nodes must be integers") from None
    # OpenDSS connects the nodes a load does not name to 1, 2, 3 in order.
    phases = phases or tuple(range(1, n_phases + 1))
    return FeederLoad(tokens[1].split(".", 1)[1].lower(), bus, phases)


def _commands(source: LineSource, classes: tuple[str, ...]) -> Iterator[list[str]]:
    if isinstance(source, Feeder):
        for command in source.commands:
            yield from _statements(command, None, classes)
        return
    path = Path(source).expanduser().resolve()
    for statement in _logical_lines(path):
        yield from _statements(statement, path.parent, classes)


def feeder_lines(source: LineSource) -> tuple[FeederLine, ...]:
    """Every line of a feeder, read from an OpenDSS file or a :class:`Feeder`'s commands.

    Raises:
        FeederError: a file does not exist, a line lacks its buses, or its length or unit
            cannot be read (``Units=`` is required).
    """
    lines = tuple(_parse_line(tokens) for tokens in _commands(source, ("line",)))
    if not lines:
        what = f"feeder {source.name!r}" if isinstance(source, Feeder) else repr(str(source))
        raise FeederError(f"no 'New Line.' statements found in {what}")
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
            if d + length_m < distance.get(other, math.inf):
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


def _transformer_lv_bus(transformers: list[str]) -> str:
    """LV bus of the first transformer (its last winding), or :data:`TRANSFORMER_BUS`."""
    for text in transformers:
        match = _BUSES.search(text)
        if match:
            buses = match.group(1).replace(",", " ").split()
            if len(buses) >= 2:
                return buses[-1].split(".")[0].lower()
    return TRANSFORMER_BUS


def feeder_layout(feeder: Feeder) -> FeederLayout:
    """Lines, loads and cable distances of ``feeder``, read from its text.

    Raises:
        FeederError: a file cannot be read, a line or load lacks its buses, a line's length
            cannot be read, or no line touches the transformer's LV bus.
    """
    statements = list(_commands(feeder, ("line", "load", "transformer")))
    lines = tuple(_parse_line(t) for t in statements if t[1].lower().startswith("line."))
    if not lines:
        raise FeederError(f"feeder {feeder.name!r}: no 'New Line.' statements found")
    loads = tuple(_parse_load(t) for t in statements if t[1].lower().startswith("load."))
    root = _transformer_lv_bus([t[1] for t in statements if t[0] == "transformer"])
    return FeederLayout(feeder.name, root, lines, loads, _shortest_paths_m(lines, root))


# --- Coordinates ----------------------------------------------------------------------------


def _read_csv_coords(path: Path) -> dict[str, tuple[float, float]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"bus", "x_m", "y_m"} - set(reader.fieldnames or ())
        if missing:
            raise FeederError(f"{path}: missing column(s) {sorted(missing)}; need bus,x_m,y_m")
        return {row["bus"].lower(): (float(row["x_m"]), float(row["y_m"])) for row in reader}


def _cell_name(value: object) -> str:
    """A bus name from a spreadsheet cell (Excel stores bus 12 as the number 12.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _read_xls_coords(path: Path) -> dict[str, tuple[float, float]]:
    import xlrd  # old binary Excel (ENWL's XY_Position.xls)
    from xlrd.biffh import XLRDError

    try:
        sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
    except XLRDError as err:
        raise FeederError(f"{path} is not a readable .xls workbook ({err})") from None
    header = [str(v).strip().lower() for v in sheet.row_values(0)] if sheet.nrows else []
    if header[:3] != ["node", "x", "y"]:
        raise FeederError(
            f"{path}, sheet {sheet.name!r}, row 1: columns {header[:3]}; expected Node, X, Y "
            "(ENWL's XY_Position.xls)"
        )
    coords = {}
    for row in range(1, sheet.nrows):
        node, x, y = sheet.row_values(row)[:3]
        if node == "":
            continue
        try:
            coords[_cell_name(node)] = (float(x), float(y))
        except (TypeError, ValueError):
            raise FeederError(
                f"{path}, sheet {sheet.name!r}, row {row + 1}: X={x!r}, Y={y!r}; expected "
                "numbers (metres)"
            ) from None
    return coords


def read_bus_coords(path: Path | str) -> dict[str, tuple[float, float]]:
    """Bus (lower case) -> ``(x_m, y_m)`` from a ``bus,x_m,y_m`` CSV or ENWL's ``.xls``.

    Raises:
        FeederError: the file does not exist, or lacks the columns its format needs.
    """
    source = Path(path)
    if not source.is_file():
        raise FeederError(f"bus coordinate file {str(source)!r} does not exist")
    if source.suffix.lower() == ".xls":
        return _read_xls_coords(source)
    return _read_csv_coords(source)


def feeder_coords_file(feeder: Feeder) -> Path | None:
    """The feeder's bus coordinate file (CSV or ENWL ``.xls``), or None if it has none."""
    return feeder.bus_coords_csv or feeder.bus_coords_xls


def read_feeder_coords(feeder: Feeder) -> dict[str, tuple[float, float]] | None:
    """Bus coordinates of ``feeder`` (metres), or None if it has no coordinate file."""
    path = feeder_coords_file(feeder)
    return None if path is None else read_bus_coords(path)
