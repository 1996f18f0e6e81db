"""The repository explains itself: licences, one version, no citation of files a clone lacks."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import powertrip_env

ROOT = Path(__file__).resolve().parents[1]
#: Folders of a working copy that are not the project's own text.
SKIPPED = {".git", ".venv", "runs", "build", "dist", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".toml", ".ipynb", ".txt", ".cfg", ".sh"}
#: Documents that live outside the repository and so must never be cited by it.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared|/work/shared")


def _project_text_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & SKIPPED or any(p.endswith(".egg-info") for p in parts):
            continue
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or path.name == "Makefile"):
            files.append(path)
    return files


def test_no_file_cites_a_document_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in _project_text_files()
        if path != this
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offenders, offenders


def test_cited_design_documents_exist() -> None:
    for name in ("architecture.md", "conventions.md"):
        assert (ROOT / "docs" / name).is_file()


def test_licence_and_notice_are_shipped() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    notice = (ROOT / "NOTICE").read_text(encoding="utf-8")
    assert "pandapower" in notice and "BSD" in notice  # the embedded feeder's source
    assert "CC BY 4.0" in notice  # ENWL data in the test fixtures


def test_one_version() -> None:
    assert metadata.version("powertrip") == powertrip_env.__version__


def test_every_cited_section_exists() -> None:
    """``architecture.md §n`` and ``conventions.md habit n`` point at a section that is there."""
    docs = ROOT / "docs"
    sections = set(re.findall(r"^## (\d+)\.", (docs / "architecture.md").read_text(), re.M))
    habits = set(re.findall(r"^(\d+)\. \*\*", (docs / "conventions.md").read_text(), re.M))
    missing = []
    for path in _project_text_files():
        text = path.read_text(encoding="utf-8")
        for cited in re.findall(r"architecture\.md §(\d+)", text):
            if cited not in sections:
                missing.append(f"{path.relative_to(ROOT)}: §{cited}")
        for cited in re.findall(r"conventions\.md habit (\d+)", text):
            if cited not in habits:
                missing.append(f"{path.relative_to(ROOT)}: habit {cited}")
    assert sections and habits and not missing, missing


#: The project's packages, whose modules must not import each other in a cycle.
PACKAGES = ("powertrip_env", "agents", "baselines", "experiments")
#: Imports inside a function that close a cycle on purpose: the package's lazy attribute
#: (``import powertrip_env`` stays light; the env pulls in OpenDSS on first use).
LAZY_BY_DESIGN = {("powertrip_env", "powertrip_env.env")}


def _module_imports() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Each project module's imports of project modules: (at module level, inside functions).

    ``if TYPE_CHECKING:`` blocks are left out (they never run)."""
    import ast

    paths = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def named(node: ast.AST) -> set[str]:
        found = set()
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        return found & set(paths)

    top: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top[module] = set().union(*(named(n) for n in tree.body)) if tree.body else set()
        functions = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        inner[module] = set().union(set(), *(named(n) for f in functions for n in ast.walk(f)))
    return top, inner


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = list(graph[start])
    while stack:
        module = stack.pop()
        if module not in seen:
            seen.add(module)
            stack.extend(graph[module])
    return seen


def test_no_import_cycle_and_no_import_in_a_function_to_dodge_one() -> None:
    top, inner = _module_imports()
    assert {m for m in top if m in _reachable(top, m)} == set()  # module-level cycles
    dodges = {
        (module, imported)
        for module, imports in inner.items()
        for imported in imports
        if module in _reachable(top, imported) | {imported}
    }
    assert dodges <= LAZY_BY_DESIGN, sorted(dodges - LAZY_BY_DESIGN)
