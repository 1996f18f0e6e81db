"""Feeders of the ENWL Low Voltage Network Solutions dataset (docs/architecture.md).

Users download the dataset themselves; :func:`load_enwl_feeder` reads one feeder folder
(``<root>/network_N/Feeder_M/``, folder names matched case-insensitively, or any folder with
the same files, such as the ``RF1/`` folders of ENWL's representative feeders) and turns it
into a :class:`~powertrip_env.grid.feeder.Feeder` whose commands build the circuit without
touching the files again. :func:`find_enwl_feeders` lists every feeder folder under a path.

What the loader changes, and why:

* ``Master.txt`` has no ``New Circuit``: it edits the source that ``New Circuit`` creates.
  The loader does the same: ``New Circuit.enwl_nN_fM Bus1=SourceBus`` (OpenDSS's defaults),
  then each ``Edit Vsource.Source ...`` line as written, including those of a redirected file
  that holds only such lines (``Generators.txt``, which the published masters do not use).
* ``XY_Position.xls`` becomes the feeder's ``bus_coords_xls`` (read by
  :mod:`powertrip_env.grid.layout` when the feeder is drawn).
* ``LoadShapes.txt`` points at absolute Windows paths that are not distributed, and
  ``Monitors.txt`` only records results: both are skipped, and ``Daily=``/``Yearly=``/``Duty=``
  are stripped from the loads. Profiles come from the profile layer.
* A definition repeated word for word (59 of the 128 published ``LineCode.txt`` files have
  one) is read once; two different definitions of one name are refused, naming both lines.
* Run-control statements of ``Master.txt`` (``Set``, ``Solve``, ``CalcVoltageBases``, ...)
  are ignored; the loader ends with its own ``Set VoltageBases`` and ``CalcVoltageBases``.

Everything else (line codes, lines, the transformer, single- and three-phase loads) is
compiled as written, after checking that each statement is the ``New <Class>.<name>
key=value ...`` its file should hold. The loads keep their own voltage model (OpenDSS's
default band); the engine makes them constant PQ unless the feeder's ``load_model`` says
otherwise. Files may start with a UTF-8 byte-order mark and end lines with CR, LF or CRLF.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path, PureWindowsPath

from powertrip_env.errors import FeederError
from powertrip_env.grid.feeder import Feeder

MASTER_FILE = "Master.txt"
#: File name -> the OpenDSS class its statements must create, in the order they are compiled.
ELEMENT_FILES: dict[str, str] = {
    "LineCode.txt": "LineCode",
    "Transformers.txt": "Transformer",
    "Lines.txt": "Line",
    "Loads.txt": "Load",
}
#: Files of the dataset that are never read (absolute Windows paths; result monitors).
SKIPPED_FILES = ("LoadShapes.txt", "Monitors.txt")
REQUIRED_FILES = (MASTER_FILE, *ELEMENT_FILES)
#: Bus coordinates (old binary Excel: columns Node, X, Y in metres), for drawings.
COORDS_FILE = "XY_Position.xls"

#: Load properties that name a load shape (skipped: profiles come from the profile layer).
_PROFILE_KEYS = frozenset({"daily", "yearly", "duty"})
_IGNORED_MASTER_VERBS = frozenset(
    {"clear", "set", "solve", "calcvoltagebases", "calcv", "closedi", "show", "export", "plot"}
)
_IGNORED_LIST = ", ".join(sorted(_IGNORED_MASTER_VERBS))
_IGNORED_MASTER_CLASSES = frozenset({"monitor", "energymeter"})

#: One token: a run of plain characters, quoted strings and bracketed groups (``Buses=[a b]``).
_TOKEN = re.compile(r"""(?:"[^"]*"|'[^']*'|\[[^\]]*\]|\([^)]*\)|\{[^}]*\}|[^\s\[\](){}"'])+""")
_EQUALS = re.compile(r"\s*=\s*")


@dataclass(frozen=True)
class _Statement:
    """One OpenDSS statement of a dataset file, with where it came from."""

    file: Path
    line_no: int
    text: str
    verb: str
    target: str
    props: tuple[tuple[str, str], ...]

    def where(self) -> str:
        return f"{self.file}, line {self.line_no}: {self.text!r}"

    def get(self, key: str) -> str | None:
        """Value of the last ``key=`` (OpenDSS: the last assignment wins), case-insensitive."""
        values = [v for k, v in self.props if k.lower() == key.lower()]
        return values[-1] if values else None

    def element(self) -> tuple[str, str]:
        """``(class, name)`` of the ``Class.name`` target."""
        cls, _, name = self.target.partition(".")
        if not name:
            raise FeederError(f"{self.where()}: expected 'Class.name' after {self.verb!r}")
        return cls, name


# --- Folders --------------------------------------------------------------------------------


def _numbered_dirs(folder: Path, prefix: str) -> dict[int, list[Path]]:
    pattern = re.compile(rf"{prefix}_(\d+)", re.IGNORECASE)
    found: dict[int, list[Path]] = {}
    for child in folder.iterdir():
        match = pattern.fullmatch(child.name)
        if match and child.is_dir():
            found.setdefault(int(match.group(1)), []).append(child)
    return found


def _pick_dir(folder: Path, prefix: str, number: int) -> Path:
    found = _numbered_dirs(folder, prefix)
    if number not in found:
        have = ", ".join(str(n) for n in sorted(found)) or "none"
        raise FeederError(
            f"no folder {prefix}_{number} (any case) in {str(folder)!r}; "
            f"{prefix} folders there: {have}"
        )
    if len(found[number]) > 1:
        names = sorted(p.name for p in found[number])
        raise FeederError(f"ambiguous {prefix} folders in {str(folder)!r}: {names}")
    return found[number][0]


def _check_number(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise FeederError(f"{what}={value!r} must be a positive integer (folders are 1-based)")


def available_enwl_feeders(root: str | Path) -> dict[int, tuple[int, ...]]:
    """Network number -> feeder numbers found under the dataset folder ``root``."""
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise FeederError(f"ENWL dataset folder {str(base)!r} does not exist")
    return {
        net: tuple(sorted(_numbered_dirs(dirs[0], "feeder")))
        for net, dirs in sorted(_numbered_dirs(base, "network").items())
    }


def enwl_feeder_dir(
    root: str | Path, network: int | None = None, feeder: int | None = None
) -> Path:
    """The folder of one ENWL feeder.

    With ``network`` and ``feeder``: ``<root>/network_<network>/Feeder_<feeder>`` (names
    matched in any case). With neither: ``root`` itself is the feeder folder (e.g. the
    ``RF1/`` folders of ENWL's representative feeders, which hold the same files).

    Raises:
        FeederError: ``root`` does not exist, only one of ``network``/``feeder`` is given, or
            the network or feeder folder is missing (the message lists the ones that exist).
    """
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise FeederError(f"ENWL dataset folder {str(base)!r} does not exist")
    if network is None and feeder is None:
        return base
    if network is None or feeder is None:
        raise FeederError(
            f"network={network!r}, feeder={feeder!r}: give both (a feeder of the dataset at "
            f"{str(base)!r}) or neither (that folder is itself one feeder)"
        )
    _check_number(network, "network")
    _check_number(feeder, "feeder")
    return _pick_dir(_pick_dir(base, "network", network), "feeder", feeder)


@dataclass(frozen=True)
class FoundFeeder:
    """A feeder folder found under a path (see :func:`find_enwl_feeders`).

    Attributes:
        folder: the folder holding ``Master.txt``.
        network: network number when the folder sits in ``network_N/Feeder_M``, else None.
        feeder: feeder number likewise.
        name: ``enwl_n<N>_f<M>``, or ``enwl_<folder name>`` for any other folder.
    """

    folder: Path
    network: int | None
    feeder: int | None
    name: str


def _numbers(folder: Path) -> tuple[int, int] | None:
    """``(network, feeder)`` when ``folder`` is ``.../network_N/Feeder_M`` (any case)."""
    feeder = re.fullmatch(r"feeder_(\d+)", folder.name, re.IGNORECASE)
    network = re.fullmatch(r"network_(\d+)", folder.parent.name, re.IGNORECASE)
    if feeder and network:
        return int(network.group(1)), int(feeder.group(1))
    return None


def _feeder_name(folder: Path) -> str:
    numbers = _numbers(folder)
    if numbers is not None:
        return f"enwl_n{numbers[0]}_f{numbers[1]}"
    return "enwl_" + (re.sub(r"[^0-9a-z]+", "_", folder.name.lower()).strip("_") or "feeder")


def _master_folders(base: Path) -> Iterator[Path]:
    """Folders at or under ``base`` that hold ``Master.txt``. Symbolic links are followed (a
    dataset assembled from links is common), except back into a folder being walked."""
    stack: list[tuple[Path, frozenset[Path]]] = [(base, frozenset())]
    while stack:
        folder, above = stack.pop()
        real = folder.resolve()
        if real in above:  # a link back up the tree
            continue
        try:
            children = list(folder.iterdir())
        except OSError:  # unreadable: nothing to list there
            continue
        if any(c.name.lower() == MASTER_FILE.lower() and c.is_file() for c in children):
            yield folder
        stack += [(c, above | {real}) for c in children if c.is_dir()]


def find_enwl_feeders(path: str | Path) -> tuple[FoundFeeder, ...]:
    """Every feeder folder (one holding ``Master.txt``, any case) at or under ``path``.

    Sorted by network and feeder number, then by folder: a dataset root, one ``network_N``
    folder, one feeder folder or a collection of ``RF1/``-style folders all work.

    Raises:
        FeederError: ``path`` does not exist or holds no feeder folder.
    """
    base = Path(path).expanduser().resolve()
    if not base.is_dir():
        raise FeederError(f"ENWL folder {str(base)!r} does not exist")
    found = []
    for folder in _master_folders(base):
        numbers = _numbers(folder)
        network, feeder = numbers if numbers is not None else (None, None)
        found.append(FoundFeeder(folder, network, feeder, _feeder_name(folder)))
    if not found:
        raise FeederError(
            f"no feeder folder under {str(base)!r}: a feeder folder holds {MASTER_FILE} "
            f"(and {', '.join(ELEMENT_FILES)}), e.g. network_1/Feeder_1/{MASTER_FILE}"
        )
    return tuple(
        sorted(found, key=lambda f: (f.network or 10**9, f.feeder or 0, str(f.folder).lower()))
    )


def _file_map(folder: Path) -> dict[str, Path]:
    """Lower-cased file name -> path of the files in ``folder``."""
    return {p.name.lower(): p for p in folder.iterdir() if p.is_file()}


# --- Statements -----------------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "!" or line.startswith("//", i):
            return line[:i]
    return line


def _logical_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each statement, with ``~``/``More`` continuations joined."""
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise FeederError(f"{path} is not UTF-8 text ({err}); expected OpenDSS commands") from None
    pending: tuple[int, str] | None = None
    for line_no, line in enumerate(raw.splitlines(), start=1):
        text = _strip_comment(line).strip()
        if not text:
            continue
        head, _, rest = text.partition(" ")
        if head == "~" or head.lower() == "more":
            if pending is None:
                raise FeederError(f"{path}, line {line_no}: {line.strip()!r} continues nothing")
            pending = (pending[0], f"{pending[1]} {rest.strip()}")
            continue
        if pending is not None:
            yield pending
        pending = (line_no, text)
    if pending is not None:
        yield pending


def _parse(path: Path, line_no: int, text: str, *, props_required: bool) -> _Statement:
    tokens = _TOKEN.findall(_EQUALS.sub("=", text))
    if not tokens:
        raise FeederError(f"{path}, line {line_no}: {text!r}: expected an OpenDSS command")
    verb = tokens[0]
    target = tokens[1] if len(tokens) > 1 else ""
    props: list[tuple[str, str]] = []
    for token in tokens[2:] if target else []:
        key, eq, value = token.partition("=")
        if props_required and not (eq and key and value):
            raise FeederError(
                f"{path}, line {line_no}: {text!r}: expected key=value after {target!r}, "
                f"got {token!r}"
            )
        props.append((key, value))
    return _Statement(path, line_no, text, verb, target, tuple(props))


def _statements(path: Path, *, props_required: bool = True) -> Iterator[_Statement]:
    for line_no, text in _logical_lines(path):
        yield _parse(path, line_no, text, props_required=props_required)


# --- Master.txt -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Master:
    source_edits: tuple[_Statement, ...]  # the Edit Vsource.Source lines, in order
    files: dict[str, Path]  # element file name (canonical) -> path


def _source_edits(path: Path) -> list[_Statement] | None:
    """The statements of ``path`` if every one is an ``Edit Vsource.Source`` (else None).

    ENWL folders hold such a file (``Generators.txt``); a master that redirects it edits the
    source once more, as OpenDSS would.
    """
    stmts = list(_statements(path, props_required=False))
    if stmts and all(
        s.verb.lower() == "edit" and s.target.lower() == "vsource.source" for s in stmts
    ):
        return [_parse(s.file, s.line_no, s.text, props_required=True) for s in stmts]
    return None


def _redirect_target(stmt: _Statement, files: dict[str, Path]) -> tuple[str, Path] | None:
    """Canonical name and path of a redirected element file; ``None`` for a skipped file."""
    name = PureWindowsPath(stmt.target.strip("\"'")).name
    if name.lower() in {f.lower() for f in SKIPPED_FILES}:
        return None
    canonical = {f.lower(): f for f in ELEMENT_FILES}.get(name.lower())
    if canonical is None:
        raise FeederError(
            f"{stmt.where()}: cannot follow a redirect to {name!r}; expected one of "
            f"{', '.join(ELEMENT_FILES)}, a file of 'Edit Vsource.Source' lines (such as "
            f"Generators.txt), or a skipped file ({', '.join(SKIPPED_FILES)})"
        )
    if canonical.lower() not in files:
        raise FeederError(f"{stmt.where()}: {canonical} is not in {stmt.file.parent}")
    return canonical, files[canonical.lower()]


def _read_master(files: dict[str, Path]) -> _Master:
    edits: list[_Statement] = []
    redirected: dict[str, Path] = {}
    for stmt in _statements(files[MASTER_FILE.lower()], props_required=False):
        verb = stmt.verb.lower()
        if verb == "edit" and stmt.target.lower() == "vsource.source":
            edits.append(_parse(stmt.file, stmt.line_no, stmt.text, props_required=True))
        elif verb in ("redirect", "compile") and stmt.target:
            name = PureWindowsPath(stmt.target.strip("\"'")).name.lower()
            known = {f.lower() for f in (*ELEMENT_FILES, *SKIPPED_FILES)}
            more = _source_edits(files[name]) if name in files and name not in known else None
            if more is not None:
                edits += more
                continue
            found = _redirect_target(stmt, files)
            if found is not None:
                redirected[found[0]] = found[1]
        elif verb == "new" and stmt.target.partition(".")[0].lower() in _IGNORED_MASTER_CLASSES:
            continue
        elif verb not in _IGNORED_MASTER_VERBS:
            raise FeederError(
                f"{stmt.where()}: unknown statement; expected 'Edit Vsource.Source ...', "
                f"'Redirect <file>' or a run-control command ({_IGNORED_LIST})"
            )
    master = files[MASTER_FILE.lower()]
    if not edits:
        raise FeederError(f"{master}: no 'Edit Vsource.Source BasekV=... pu=...' line")
    missing = [name for name in ELEMENT_FILES if name not in redirected]
    if missing:
        raise FeederError(f"{master} never redirects {', '.join(missing)}; each is required")
    return _Master(tuple(edits), redirected)


def _positive_float(stmt: _Statement, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise FeederError(f"{stmt.where()}: {key}={text!r} must be a positive number")
    return value


def _circuit_commands(name: str, edits: tuple[_Statement, ...]) -> tuple[list[str], float]:
    """Commands that build the source as ENWL's ``Master.txt`` means it, and its BasekV.

    ENWL's masters edit the source that ``New Circuit`` creates (OpenDSS's defaults on bus
    ``SourceBus``) instead of creating one: so does this, one ``Edit`` per line, in order.
    """
    with_kv = [stmt for stmt in edits if stmt.get("basekv") is not None]
    if not with_kv:
        raise FeederError(f"{edits[0].where()}: no BasekV=; expected e.g. BasekV=11")
    kv = _positive_float(with_kv[-1], "BasekV", str(with_kv[-1].get("basekv")))
    commands = [f"New Circuit.{name} Bus1=SourceBus"]
    commands += [
        " ".join(["Edit Vsource.Source", *(f"{k}={v}" for k, v in s.props)]) for s in edits
    ]
    return commands, kv


# --- Element files --------------------------------------------------------------------------


def _render(cls: str, name: str, props: tuple[tuple[str, str], ...]) -> str:
    return " ".join([f"New {cls}.{name}", *(f"{k}={v}" for k, v in props)])


def _same_definition(a: _Statement, b: _Statement) -> bool:
    """Whether two statements define the same element with the same properties (any case)."""
    return [(k.lower(), v.lower()) for k, v in a.props] == [
        (k.lower(), v.lower()) for k, v in b.props
    ]


def _read_elements(path: Path, expected: str) -> list[_Statement]:
    """The ``New <expected>.<name>`` statements of ``path``, each element once.

    A definition repeated word for word is dropped (59 of the 128 published ``LineCode.txt``
    files repeat one; OpenDSS takes the last, which is the same); two different definitions of
    one name are refused, naming both lines.
    """
    stmts: list[_Statement] = []
    seen: dict[str, _Statement] = {}
    for stmt in _statements(path):
        cls, name = stmt.element() if stmt.verb.lower() == "new" else ("", "")
        if cls.lower() != expected.lower():
            raise FeederError(
                f"{stmt.where()}: expected 'New {expected}.<name> key=value ...' in this file"
            )
        first = seen.get(name.lower())
        if first is not None and _same_definition(first, stmt):
            continue
        if first is not None:
            raise FeederError(
                f"{stmt.where()}: {expected}.{name} is already defined differently on line "
                f"{first.line_no} ({first.text!r}); a name may be repeated only with the same "
                "properties"
            )
        seen[name.lower()] = stmt
        stmts.append(stmt)
    return stmts


def _require(stmt: _Statement, key: str, example: str) -> str:
    value = stmt.get(key)
    if not value:
        raise FeederError(f"{stmt.where()}: no {key}=; expected e.g. {key}={example}")
    return value


def _line_command(stmt: _Statement, linecodes: set[str]) -> str:
    _require(stmt, "Bus1", "1")
    _require(stmt, "Bus2", "2")
    code = stmt.get("linecode")
    if code is not None and code.lower() not in linecodes:
        raise FeederError(
            f"{stmt.where()}: Linecode={code!r} is not defined in LineCode.txt "
            f"(defined: {', '.join(sorted(linecodes)) or 'none'})"
        )
    return _render(*stmt.element(), stmt.props)


def _transformer_kvs(stmt: _Statement) -> list[float]:
    text = _require(stmt, "kVs", "[11 0.416]")
    return [_positive_float(stmt, "kVs", kv) for kv in re.split(r"[\s,]+", text.strip("[]()\"' "))]


def _check_load_phase(stmt: _Statement) -> None:
    bus = _require(stmt, "Bus1", "34.1")
    phases_text = stmt.get("phases") or "3"
    if not phases_text.isdigit() or int(phases_text) not in (1, 2, 3):
        raise FeederError(f"{stmt.where()}: Phases={phases_text!r}; expected 1, 2 or 3")
    phases = int(phases_text)
    nodes = bus.split(".")[1:]
    if phases < 3 and not nodes:
        raise FeederError(
            f"{stmt.where()}: Bus1={bus!r} names no phase for a {phases}-phase load; "
            f"expected <bus>.<1|2|3>"
        )
    if nodes and (
        len(nodes) != phases
        or any(n not in ("1", "2", "3") for n in nodes)
        or len(set(nodes)) != len(nodes)
    ):
        raise FeederError(
            f"{stmt.where()}: Bus1={bus!r}: a {phases}-phase load needs {phases} distinct "
            f"phase(s) in 1..3, e.g. Bus1=34.{'.'.join('123'[:phases])}"
        )


def _load_command(stmt: _Statement) -> str:
    _check_load_phase(stmt)
    kept = tuple((k, v) for k, v in stmt.props if k.lower() not in _PROFILE_KEYS)
    return _render(*stmt.element(), kept)


def _element_commands(master: _Master) -> tuple[list[str], list[float]]:
    """Commands of every element file, in :data:`ELEMENT_FILES` order, and transformer kVs."""
    read = {name: _read_elements(master.files[name], cls) for name, cls in ELEMENT_FILES.items()}
    linecodes = {stmt.element()[1].lower() for stmt in read["LineCode.txt"]}
    if not read["Transformers.txt"]:
        raise FeederError(f"{master.files['Transformers.txt']} defines no transformer")
    kvs = [kv for stmt in read["Transformers.txt"] for kv in _transformer_kvs(stmt)]
    commands = [_render(*s.element(), s.props) for s in read["LineCode.txt"]]
    commands += [_render(*s.element(), s.props) for s in read["Transformers.txt"]]
    commands += [_line_command(s, linecodes) for s in read["Lines.txt"]]
    commands += [_load_command(s) for s in read["Loads.txt"]]
    return commands, kvs


# --- Entry point ----------------------------------------------------------------------------


def load_enwl_feeder(
    root: str | Path, network: int | None = None, feeder: int | None = None
) -> Feeder:
    """One feeder of the ENWL dataset, as published.

    Args:
        root: the dataset folder that holds the ``network_N`` folders; or, with ``network``
            and ``feeder`` omitted, one feeder folder (``network_5/Feeder_4``, ``RF1``, ...).
        network: network number (1..25 in the published dataset).
        feeder: feeder number within the network (1-based).

    Returns:
        A :class:`Feeder` named ``enwl_n<network>_f<feeder>`` (``enwl_<folder>`` for a folder
        outside that layout) whose commands build the circuit (11 kV source, transformer,
        lines, loads as written without their load shapes) and whose ``bus_coords_xls`` is
        the folder's ``XY_Position.xls`` when it has one.

    Raises:
        FeederError: a folder or required file is missing, or a statement cannot be parsed
            (the message names the file, the line and the text, and what was expected).
            Everything is read and checked before the feeder is returned.
    """
    folder = enwl_feeder_dir(root, network, feeder)
    files = _file_map(folder)
    missing = [name for name in REQUIRED_FILES if name.lower() not in files]
    if missing:
        raise FeederError(
            f"{folder} lacks {', '.join(missing)}; an ENWL feeder folder holds "
            f"{', '.join(REQUIRED_FILES)} (found: {', '.join(sorted(files)) or 'nothing'})"
        )
    master = _read_master(files)
    if network is not None and feeder is not None:
        name = f"enwl_n{int(network)}_f{int(feeder)}"
        what = f"network {network}, feeder {feeder}"
    else:
        name = _feeder_name(folder)
        numbers = _numbers(folder)
        what = f"network {numbers[0]}, feeder {numbers[1]}" if numbers else f"feeder {folder.name}"
    circuit, source_kv = _circuit_commands(name, master.source_edits)
    elements, kvs = _element_commands(master)
    bases = " ".join(f"{kv:g}" for kv in sorted({source_kv, *kvs}, reverse=True))
    return Feeder(
        name=name,
        commands=(
            "Clear",
            "Set DefaultBaseFrequency=50",
            *circuit,
            *elements,
            f"Set VoltageBases=[{bases}]",
            "CalcVoltageBases",
        ),
        description=f"ENWL LV Network Solutions {what} ({folder})",
        bus_coords_xls=files.get(COORDS_FILE.lower()),
    )
