"""The shipped embedded feeder is exactly what the generator script makes from pandapower."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from powertrip_env.grid.feeder import embedded_feeder_dir

pytest.importorskip("pandapower")

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate_ieee_lv.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_ieee_lv", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_files_equal_regenerated_ones() -> None:
    gen = _generator()
    rendered = gen.render(gen._load_network())
    shipped = embedded_feeder_dir()
    assert sorted(rendered) == sorted(p.name for p in shipped.iterdir())
    for name, text in rendered.items():
        assert (shipped / name).read_text(encoding="utf-8") == text, f"{name} differs"


def test_feeder_facts() -> None:
    folder = embedded_feeder_dir()
    lines = [x for x in (folder / "Lines.dss").read_text().splitlines() if x.startswith("New")]
    loads = [x for x in (folder / "Loads.dss").read_text().splitlines() if x.startswith("New")]
    assert len(lines) == 905
    phases = [x.split("Bus1=")[1].split()[0].split(".")[1] for x in loads]
    assert (phases.count("1"), phases.count("2"), phases.count("3")) == (21, 19, 15)
    # Constant-PQ over a wide band (DESIGN.md §3 trap).
    assert all("Model=1" in x and "Vmaxpu=1.5" in x for x in loads)
