"""A broken feeder is refused when the engine is built, never simulated as a quiet one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from powertrip_env.config import FeederConfig, ScenarioConfig, load_scenario_config
from powertrip_env.errors import FeederError, UnknownBusError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import Feeder, embedded_feeder_dir
from powertrip_env.grid.master import feeder_from_master
from powertrip_env.grid.topology import circuit_topology

#: The line feeding bus 898 (CP cp1 of the default scenario and of ``small_placement``).
CP_LINE = "New Line.LINE897 "


def _edited_master(tmp_path: Path, drop: str | None = None, extra: str = "") -> Path:
    """A copy of the embedded feeder with the line starting ``drop`` removed, ``extra`` added.

    The ``ieee_lv`` folder: it holds the lines (``enwl_n1f1`` redirects to them)."""
    folder = tmp_path / "feeder"
    shutil.copytree(embedded_feeder_dir("ieee_lv"), folder)
    lines = folder / "Lines.dss"
    kept = [x for x in lines.read_text().splitlines() if drop is None or not x.startswith(drop)]
    lines.write_text("\n".join(kept) + "\n" + extra)
    return folder / "Master.dss"


def test_the_embedded_feeder_is_energised_everywhere(feeder: Feeder) -> None:
    with OpenDSSEngine(feeder) as engine:
        topology = circuit_topology(engine.dss)
    assert topology.ok
    assert topology.isolated_buses == () and topology.isolated_elements == ()


def test_an_islanded_section_is_refused_naming_buses_and_devices(
    tmp_path: Path, small_placement: DevicePlacement
) -> None:
    master = _edited_master(tmp_path, drop=CP_LINE)
    with pytest.raises(FeederError) as info:
        OpenDSSEngine(feeder_from_master(master), small_placement)
    message = str(info.value)
    assert "not connected to the source: 898" in message
    assert "CP 'cp2'" in message  # cp2 sits at bus 898
    assert "CP 'cp1'" not in message
    assert "line missing" in message


def test_an_orphan_load_is_refused(tmp_path: Path) -> None:
    orphan = "New Load.orphan Phases=1 Bus1=nowhere.1 kV=0.23 kW=1 PF=0.95\n"
    master = _edited_master(tmp_path, extra=orphan)
    with pytest.raises(FeederError, match=r"nowhere; cut-off elements: Load\.orphan"):
        OpenDSSEngine(feeder_from_master(master))


def test_a_cut_transformer_line_names_the_line_that_reconnects(
    feeder: Feeder, small_placement: DevicePlacement
) -> None:
    cut = Feeder(name="cut", commands=(*feeder.commands, "Line.LINE1.enabled=no"))
    with pytest.raises(FeederError) as info:
        OpenDSSEngine(cut, small_placement)
    message = str(info.value)
    assert "905 bus(es) are not connected" in message
    assert "Load.load1" in message and "PV 'pv1'" in message
    assert "Enabling or closing Line.line1 would reconnect them" in message


def test_an_opened_line_counts_as_cut(feeder: Feeder) -> None:
    opened = Feeder(name="opened", commands=(*feeder.commands, "Open Line.LINE500 1"))
    with pytest.raises(FeederError, match=r"501, 510.*Load\.load30.*closing Line\.line500"):
        OpenDSSEngine(opened)


def test_a_scenario_on_a_broken_feeder_fails_before_any_step(tmp_path: Path) -> None:
    from powertrip_env.scenario import build_scenario
    from powertrip_env.simulator import FeederSimulator

    master = _edited_master(tmp_path, drop=CP_LINE)
    base = load_scenario_config()
    config = ScenarioConfig(
        feeder=FeederConfig(kind="master", path=str(master)),
        profiles=base.profiles,
        ev=base.ev,
        objective=base.objective,
        devices=base.devices,
    )
    with pytest.raises(FeederError, match=r"source: 898; cut-off elements: Load\.load52"):
        FeederSimulator(build_scenario(config, 0))


def test_a_solve_with_a_dead_device_bus_is_not_converged(
    feeder: Feeder, small_placement: DevicePlacement
) -> None:
    with OpenDSSEngine(feeder, small_placement) as engine:
        n = engine.n_loads
        loads = np.full(n, 0.5)
        assert engine.solve(loads, 0.2 * loads, np.full(2, 3.0), np.ones(2)).converged
        engine.dss.Text.Command("Open Line.LINE1 1")  # the feeder loses its supply mid-run
        state = engine.solve(loads, 0.2 * loads, np.full(2, 3.0), np.ones(2))
        assert not state.converged
        assert state.error is not None and "~0 V" in state.error
        assert np.isnan(state.v_pu).all()
        engine.set_powers(loads, 0.2 * loads, np.full(2, 3.0), np.ones(2))
        reading = engine.read_cp_buses(*engine.run_pf())
        assert not reading.converged


def test_a_device_on_the_source_bus_is_refused(feeder: Feeder) -> None:
    placement = DevicePlacement(
        cps=(DeviceSpec("cp1", "900", 1, 7.0),), pvs=(DeviceSpec("pv1", "sourcebus", 1, 4.0),)
    )
    with pytest.raises(UnknownBusError, match=r"'sourcebus'.*11 kV.*LV buses"):
        OpenDSSEngine(feeder, placement)
