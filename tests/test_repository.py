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
