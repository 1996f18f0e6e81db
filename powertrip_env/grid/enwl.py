"""Feeders of the ENWL Low Voltage Network Solutions dataset (DESIGN.md §3).

Users download the dataset themselves; :func:`load_enwl_feeder` reads one feeder folder
(``<root>/network_N/Feeder_M/``, folder names matched case-insensitively) and turns it into a
:class:`~powertrip_env.grid.feeder.Feeder` whose commands build the circuit without touching
the files again.

What the loader changes, and why:

* ``Master.txt`` has no ``New Circuit``: its ``Edit Vsource.Source ...`` line becomes
  ``New Circuit.enwl_nN_fM Bus1=SourceBus ...`` with the same properties.
* ``LoadShapes.txt`` points at absolute Windows paths that are not distributed, and
  ``Monitors.txt`` only records results: both are skipped, and ``Daily=``/``Yearly=``/``Duty=``
  are stripped from the loads. Profiles come from the profile layer.
* Loads become constant-PQ over a wide band (``Model=1 Vminpu=0.5 Vmaxpu=1.5``): with
  OpenDSS's default ``Vmaxpu=1.05`` loads near the transformer would silently turn
  constant-impedance.
* Run-control statements of ``Master.txt`` (``Set``, ``Solve``, ``CalcVoltageBases``, ...)
  are ignored; the loader ends with its own ``Set VoltageBases`` and ``CalcVoltageBases``.

Everything else (line codes, lines, the transformer) is compiled as written, after checking
that each statement is the ``New <Class>.<name> key=value ...`` its file should hold.
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

#: Load properties that keep a load constant-PQ over any voltage met in practice.
CONSTANT_PQ = (("Model", "1"), ("Vminpu", "0.5"), ("Vmaxpu", "1.5"))
_PROFILE_KEYS = frozenset({"daily", "yearly", "duty"})
_LOAD_DROPPED_KEYS = _PROFILE_KEYS | {key.lower() for key, _ in CONSTANT_PQ}
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


def enwl_feeder_dir(root: str | Path, network: int, feeder: int) -> Path:
    """The folder ``<root>/network_<network>/Feeder_<feeder>`` (names matched in any case).

    Raises:
        FeederError: ``root`` does not exist, or the network or feeder folder is missing (the
            message lists the ones that exist).
    """
    _check_number(network, "network")
    _check_number(feeder, "feeder")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise FeederError(f"ENWL dataset folder {str(base)!r} does not exist")
    return _pick_dir(_pick_dir(base, "network", network), "feeder", feeder)


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
    source: _Statement
    files: dict[str, Path]  # element file name (canonical) -> path


def _redirect_target(stmt: _Statement, files: dict[str, Path]) -> tuple[str, Path] | None:
    """Canonical name and path of a redirected element file; ``None`` for a skipped file."""
    name = PureWindowsPath(stmt.target.strip("\"'")).name
    if name.lower() in {f.lower() for f in SKIPPED_FILES}:
        return None
    canonical = {f.lower(): f for f in ELEMENT_FILES}.get(name.lower())
    if canonical is None:
        raise FeederError(
            f"{stmt.where()}: cannot follow a redirect to {name!r}; expected one of "
            f"{', '.join(ELEMENT_FILES)} (skipped: {', '.join(SKIPPED_FILES)})"
        )
    return canonical, files[canonical.lower()]


def _read_master(files: dict[str, Path]) -> _Master:
    source: _Statement | None = None
    redirected: dict[str, Path] = {}
    for stmt in _statements(files[MASTER_FILE.lower()], props_required=False):
        verb = stmt.verb.lower()
        if verb == "edit" and stmt.target.lower() == "vsource.source":
            source = _parse(stmt.file, stmt.line_no, stmt.text, props_required=True)
        elif verb in ("redirect", "compile") and stmt.target:
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
    if source is None:
        raise FeederError(f"{master}: no 'Edit Vsource.Source BasekV=... pu=...' line")
    missing = [name for name in ELEMENT_FILES if name not in redirected]
    if missing:
        raise FeederError(f"{master} never redirects {', '.join(missing)}; each is required")
    return _Master(source, redirected)


def _positive_float(stmt: _Statement, key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise FeederError(f"{stmt.where()}: {key}={text!r} must be a positive number")
    return value


def _circuit_command(name: str, source: _Statement) -> tuple[str, float]:
    """``New Circuit`` command built from the ``Edit Vsource.Source`` line, and its BasekV."""
    basekv = source.get("basekv")
    if basekv is None:
        raise FeederError(f"{source.where()}: no BasekV=; expected e.g. BasekV=11")
    kv = _positive_float(source, "BasekV", basekv)
    props = " ".join(f"{k}={v}" for k, v in source.props)
    return f"New Circuit.{name} Bus1=SourceBus {props}", kv


# --- Element files --------------------------------------------------------------------------


def _render(cls: str, name: str, props: tuple[tuple[str, str], ...]) -> str:
    return " ".join([f"New {cls}.{name}", *(f"{k}={v}" for k, v in props)])


def _read_elements(path: Path, expected: str) -> list[_Statement]:
    stmts: list[_Statement] = []
    seen: dict[str, int] = {}
    for stmt in _statements(path):
        cls, name = stmt.element() if stmt.verb.lower() == "new" else ("", "")
        if cls.lower() != expected.lower():
            raise FeederError(
                f"{stmt.where()}: expected 'New {expected}.<name> key=value ...' in this file"
            )
        if name.lower() in seen:
            raise FeederError(
                f"{stmt.where()}: {expected}.{name} is already defined on line "
                f"{seen[name.lower()]}; element names must be unique"
            )
        seen[name.lower()] = stmt.line_no
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
    kept = tuple((k, v) for k, v in stmt.props if k.lower() not in _LOAD_DROPPED_KEYS)
    return _render(*stmt.element(), kept + CONSTANT_PQ)


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


def load_enwl_feeder(root: str | Path, network: int, feeder: int) -> Feeder:
    """Feeder ``feeder`` of network ``network`` of the ENWL dataset downloaded to ``root``.

    Args:
        root: the dataset folder that holds the ``network_N`` folders.
        network: network number (1..25 in the published dataset).
        feeder: feeder number within the network (1-based).

    Returns:
        A :class:`Feeder` named ``enwl_n<network>_f<feeder>`` whose commands build the circuit
        (11 kV source, transformer, lines, constant-PQ single-phase loads at 1 kW nominal).

    Raises:
        FeederError: a folder or required file is missing, or a statement cannot be parsed
            (the message names the file, the line and the text, and what was expected).
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
    name = f"enwl_n{int(network)}_f{int(feeder)}"
    circuit, source_kv = _circuit_command(name, master.source)
    elements, kvs = _element_commands(master)
    bases = " ".join(f"{kv:g}" for kv in sorted({source_kv, *kvs}, reverse=True))
    return Feeder(
        name=name,
        commands=(
            "Clear",
            "Set DefaultBaseFrequency=50",
            circuit,
            *elements,
            f"Set VoltageBases=[{bases}]",
            "CalcVoltageBases",
        ),
        description=f"ENWL LV Network Solutions network {network}, feeder {feeder} ({folder})",
    )
