"""The shipped embedded feeders are exactly what the generator script makes from pandapower."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from powertrip_env.config import FeederConfig
from powertrip_env.errors import ConfigError, FeederError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import EMBEDDED_FEEDERS, embedded_feeder, embedded_feeder_dir

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate_ieee_lv.py"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_ieee_lv", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_files_equal_regenerated_ones() -> None:
    pytest.importorskip("pandapower")
    gen = _generator()
    rendered = gen.render(gen._load_network())
    assert sorted(rendered) == sorted(EMBEDDED_FEEDERS)
    for variant, files in rendered.items():
        shipped = embedded_feeder_dir(variant)
        assert sorted(files) == sorted(p.name for p in shipped.iterdir())
        for name, text in files.items():
            assert (shipped / name).read_text(encoding="utf-8") == text, f"{variant}/{name}"


def _statements(variant: str, file: str) -> list[str]:
    text = (embedded_feeder_dir(variant) / file).read_text(encoding="utf-8")
    return [x for x in text.splitlines() if x.startswith("New")]


def test_feeder_facts() -> None:
    lines = _statements("ieee_lv", "Lines.dss")
    loads = _statements("ieee_lv", "Loads.dss")
    assert len(lines) == 905
    phases = [x.split("Bus1=")[1].split()[0].split(".")[1] for x in loads]
    assert (phases.count("1"), phases.count("2"), phases.count("3")) == (21, 19, 15)
    # The IEEE test case declares its loads constant-PQ over a wide band.
    assert all("Model=1" in x and "Vmaxpu=1.5" in x for x in loads)


def test_the_enwl_variant_has_enwl_parameters_and_the_same_network() -> None:
    master = embedded_feeder_dir("enwl_n1f1") / "Master.dss"
    text = master.read_text(encoding="utf-8")
    assert "pu=1.00 ISC3=3000 ISC1=2500" in text
    assert " XHL=1 " in text
    # Same load buses and phases; loads as ENWL writes them (OpenDSS's default band).
    ieee = [x.split(" kV=")[0] for x in _statements("ieee_lv", "Loads.dss")]
    enwl = _statements("enwl_n1f1", "Loads.dss")
    assert [x.split(" kV=")[0] for x in enwl] == ieee
    assert all(x.endswith("kV=0.23 kW=1 PF=0.95") for x in enwl)
    with (
        OpenDSSEngine(embedded_feeder("ieee_lv")) as ieee_engine,
        OpenDSSEngine(embedded_feeder("enwl_n1f1")) as enwl_engine,
    ):
        assert enwl_engine.bus_names == ieee_engine.bus_names
        assert enwl_engine.load_nodes == ieee_engine.load_nodes
        # At no load every LV node sits at the source's pu (1.00 against 1.05).
        assert enwl_engine.node_voltages() == pytest.approx(1.0, abs=1e-6)
        assert ieee_engine.node_voltages() == pytest.approx(1.05, abs=1e-6)


def test_the_scenario_chooses_the_variant_by_name() -> None:
    assert FeederConfig().build().name == "enwl_n1f1"
    assert FeederConfig(kind="embedded", name="ieee_lv").build().name == "ieee_lv"
    with pytest.raises(ConfigError, match=r"feeder.name='ieee' is not one of \('ieee_lv'"):
        FeederConfig(kind="embedded", name="ieee")
    with pytest.raises(FeederError, match="embedded feeder 'x' does not exist"):
        embedded_feeder("x")
    with pytest.raises(ConfigError, match=r"feeder\.name='ieee_lv' chooses an embedded"):
        FeederConfig(kind="master", path="Master.dss", name="ieee_lv")
