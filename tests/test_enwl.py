"""Loading ENWL dataset feeders from fixture folders in the real format (and real copies)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from opendssdirect import dss

from powertrip_env.errors import FeederError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.enwl import (
    available_enwl_feeders,
    enwl_feeder_dir,
    find_enwl_feeders,
    load_enwl_feeder,
)
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.layout import feeder_lines, read_feeder_coords

DATA = Path(__file__).parent / "data" / "enwl"


def solve(feeder: Feeder) -> Any:
    """Compile ``feeder`` in an engine of its own and run a snapshot power flow."""
    ctx = dss.NewContext()
    ctx.Basic.AllowChangeDir(False)
    for command in feeder.commands:
        ctx.Text.Command(command)
    ctx.Solution.Solve()
    return ctx


def load_phases(ctx: Any) -> dict[str, str]:
    """Load name -> the bus it sits on, as ``<bus>.<phase>``."""
    out = {}
    for name in ctx.Loads.AllNames():
        ctx.Circuit.SetActiveElement(f"Load.{name}")
        out[name] = ctx.CktElement.BusNames()[0]
    return out


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A writable copy of the fixture dataset, for the tests that break a file."""
    root = tmp_path / "enwl"
    shutil.copytree(DATA, root)
    return root


# --- Parsed feeders compile and solve -------------------------------------------------------


def test_network_1_feeder_1_compiles_and_solves() -> None:
    feeder = load_enwl_feeder(DATA, 1, 1)
    assert feeder.name == "enwl_n1_f1"
    assert "network_1" in feeder.description and "Feeder_1" in feeder.description
    ctx = solve(feeder)
    assert ctx.Solution.Converged()
    # SourceBus + transformer LV bus 1 + buses 2..6
    assert ctx.Circuit.NumBuses() == 7
    assert ctx.Lines.Count() == 5
    assert load_phases(ctx) == {"load1": "4.1", "load2": "6.2", "load3": "6.1"}
    v_pu = ctx.Circuit.AllBusMagPu()
    assert min(v_pu) > 0.9 and max(v_pu) < 1.1


def test_other_folder_case_and_all_three_phases() -> None:
    feeder = load_enwl_feeder(DATA, 14, 2)
    assert feeder.name == "enwl_n14_f2"
    assert "Network_14" in feeder.description and "feeder_2" in feeder.description
    ctx = solve(feeder)
    assert ctx.Solution.Converged()
    assert ctx.Circuit.NumBuses() == 6
    phases = load_phases(ctx)
    assert len(phases) == 5
    assert {bus.split(".")[1] for bus in phases.values()} == {"1", "2", "3"}
    # the "~" continuation line carried Length=22 m onto LINE3
    ctx.Lines.Name("line3")
    assert ctx.Lines.Length() == pytest.approx(22.0)


@pytest.mark.parametrize(("network", "feeder"), [(1, 1), (14, 2)])
def test_engine_compiles_enwl_feeders(network: int, feeder: int) -> None:
    with OpenDSSEngine(load_enwl_feeder(DATA, network, feeder)) as engine:
        assert engine.run_pf() == (True, None)


def test_voltage_bases_and_source_come_from_the_dataset() -> None:
    ctx = solve(load_enwl_feeder(DATA, 1, 1))
    ctx.Circuit.SetActiveBus("sourcebus")
    assert ctx.Bus.kVBase() == pytest.approx(11 / 3**0.5, rel=1e-6)
    assert ctx.Bus.puVmagAngle()[0] == pytest.approx(1.0, abs=1e-3)  # pu=1.00 at the source
    ctx.Circuit.SetActiveBus("6")
    assert ctx.Bus.kVBase() == pytest.approx(0.416 / 3**0.5, rel=1e-6)
    assert ctx.Solution.Frequency() == 50.0


def test_loads_are_as_written_without_their_load_shapes() -> None:
    loads = [c for c in load_enwl_feeder(DATA, 1, 1).commands if c.startswith("New Load")]
    assert loads[0] == "New Load.LOAD1 Phases=1 Bus1=4.1 kV=0.23 kW=1 PF=0.95"
    for net, fdr in [(1, 1), (14, 2)]:
        for command in load_enwl_feeder(DATA, net, fdr).commands:
            assert "daily=" not in command.lower()


def test_no_command_references_load_shapes_or_windows_paths() -> None:
    for net, fdr in [(1, 1), (14, 2)]:
        for command in load_enwl_feeder(DATA, net, fdr).commands:
            lowered = command.lower()
            assert "loadshape" not in lowered
            assert "monitor" not in lowered
            assert "c:\\" not in lowered


def test_feeder_does_not_depend_on_the_files_afterwards(dataset: Path) -> None:
    feeder = load_enwl_feeder(dataset, 1, 1)
    shutil.rmtree(dataset)
    assert solve(feeder).Solution.Converged()


def test_available_feeders_and_folder_lookup() -> None:
    assert available_enwl_feeders(DATA) == {1: (1,), 14: (2,)}
    assert enwl_feeder_dir(DATA, 14, 2).name == "feeder_2"


# --- Folder errors --------------------------------------------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FeederError, match="does not exist"):
        load_enwl_feeder(tmp_path / "nowhere", 1, 1)


def test_missing_network_lists_the_networks_there() -> None:
    with pytest.raises(FeederError, match=r"network_7 .*network folders there: 1, 14"):
        load_enwl_feeder(DATA, 7, 1)


def test_missing_feeder_lists_the_feeders_there() -> None:
    with pytest.raises(FeederError, match=r"feeder_3 .*Network_14.*feeder folders there: 2"):
        load_enwl_feeder(DATA, 14, 3)


@pytest.mark.parametrize("bad", [0, -1, True])
def test_bad_numbers(bad: int) -> None:
    with pytest.raises(FeederError, match="positive integer"):
        load_enwl_feeder(DATA, bad, 1)


def test_missing_required_file(dataset: Path) -> None:
    (dataset / "network_1" / "Feeder_1" / "Lines.txt").unlink()
    with pytest.raises(FeederError, match=r"Feeder_1 lacks Lines\.txt"):
        load_enwl_feeder(dataset, 1, 1)


def test_load_shapes_and_monitors_are_not_required(dataset: Path) -> None:
    folder = dataset / "network_1" / "Feeder_1"
    (folder / "LoadShapes.txt").unlink()
    (folder / "Monitors.txt").unlink()
    assert solve(load_enwl_feeder(dataset, 1, 1)).Solution.Converged()


# --- Parse errors name the file, the line and the text --------------------------------------


def write_line(dataset: Path, file: str, line: str) -> None:
    """Append ``line`` to ``file`` of network 1, feeder 1."""
    path = dataset / "network_1" / "Feeder_1" / file
    path.write_text(path.read_text() + line + "\n")


def test_load_without_bus(dataset: Path) -> None:
    write_line(dataset, "Loads.txt", "New Load.X Phases=1")
    with pytest.raises(FeederError, match=r"Loads\.txt, line 4: 'New Load\.X Phases=1': no Bus1="):
        load_enwl_feeder(dataset, 1, 1)


@pytest.mark.parametrize("bus", ["6.4", "6.0", "6", "6.1.2"])
def test_load_phase_outside_1_to_3(dataset: Path, bus: str) -> None:
    write_line(dataset, "Loads.txt", f"New Load.X Phases=1 Bus1={bus} kV=0.23 kW=1")
    expected = rf"Loads\.txt, line 4: .*Bus1='{re.escape(bus)}'.*(<1\|2\|3>|in 1\.\.3)"
    with pytest.raises(FeederError, match=expected):
        load_enwl_feeder(dataset, 1, 1)


def test_unknown_statement_in_element_file(dataset: Path) -> None:
    write_line(dataset, "Lines.txt", "New Capacitor.C1 Bus1=3 kvar=10")
    with pytest.raises(FeederError, match=r"Lines\.txt, line 6: .*expected 'New Line\.<name>"):
        load_enwl_feeder(dataset, 1, 1)


def test_unknown_statement_in_master(dataset: Path) -> None:
    write_line(dataset, "Master.txt", "Frobnicate everything")
    with pytest.raises(FeederError, match=r"Master\.txt, line 9: 'Frobnicate everything'"):
        load_enwl_feeder(dataset, 1, 1)


def test_property_without_value(dataset: Path) -> None:
    write_line(dataset, "Lines.txt", "New Line.LINE6 Bus1=6 Bus2=7 Linecode=4c_70 Length")
    with pytest.raises(FeederError, match=r"line 6: .*expected key=value .* got 'Length'"):
        load_enwl_feeder(dataset, 1, 1)


def test_undefined_line_code(dataset: Path) -> None:
    write_line(dataset, "Lines.txt", "New Line.LINE6 Bus1=6 Bus2=7 Linecode=nope Length=5")
    with pytest.raises(FeederError, match=r"Linecode='nope' is not defined in LineCode\.txt"):
        load_enwl_feeder(dataset, 1, 1)


def test_duplicate_element(dataset: Path) -> None:
    write_line(dataset, "Lines.txt", "New Line.line1 Bus1=6 Bus2=7 Linecode=4c_70 Length=5")
    with pytest.raises(
        FeederError, match=r"Lines\.txt, line 6: .*already defined differently on line 1"
    ):
        load_enwl_feeder(dataset, 1, 1)


def test_master_without_source(dataset: Path) -> None:
    master = dataset / "network_1" / "Feeder_1" / "Master.txt"
    master.write_text(master.read_text().replace("Edit Vsource", "! Edit Vsource"))
    with pytest.raises(FeederError, match=r"no 'Edit Vsource\.Source"):
        load_enwl_feeder(dataset, 1, 1)


def test_source_without_base_kv(dataset: Path) -> None:
    master = dataset / "network_1" / "Feeder_1" / "Master.txt"
    master.write_text(master.read_text().replace("BasekV=11 ", ""))
    with pytest.raises(FeederError, match=r"Master\.txt, line 1: 'Edit Vsource.*no BasekV="):
        load_enwl_feeder(dataset, 1, 1)


def test_master_not_redirecting_loads(dataset: Path) -> None:
    master = dataset / "network_1" / "Feeder_1" / "Master.txt"
    master.write_text(master.read_text().replace("Redirect Loads.txt", ""))
    with pytest.raises(FeederError, match=r"never redirects Loads\.txt"):
        load_enwl_feeder(dataset, 1, 1)


def test_master_redirect_to_unknown_file(dataset: Path) -> None:
    write_line(dataset, "Master.txt", "Redirect Extra.txt")
    with pytest.raises(FeederError, match=r"line 9: 'Redirect Extra\.txt'.*LineCode\.txt"):
        load_enwl_feeder(dataset, 1, 1)


# --- The dataset as published -----------------------------------------------------------------

#: Copies of two real feeders (CC BY 4.0, see NOTICE): network 5 feeder 4 repeats a line code
#: word for word; network 16 feeder 1 has a three-phase load.
SAMPLE = Path(__file__).parent / "data" / "enwl_sample"
#: An ENWL-format feeder in an ``RF1/`` folder: UTF-8 byte-order marks, CR and CRLF line ends,
#: a repeated line code, a three-phase load, four of five houses on phase b.
RF1 = Path(__file__).parent / "data" / "enwl_quirks" / "RF1"


def test_a_line_code_repeated_word_for_word_is_read_once() -> None:
    feeder = load_enwl_feeder(SAMPLE, 5, 4)
    defined = [c for c in feeder.commands if c.lower().startswith("new linecode.4_xc ")]
    assert len(defined) == 1
    with OpenDSSEngine(feeder) as engine:
        assert engine.run_pf() == (True, None)
        assert len(engine.bus_names) == 457


def test_a_line_code_defined_twice_differently_names_both_lines(tmp_path: Path) -> None:
    folder = tmp_path / "RF1"
    shutil.copytree(RF1, folder)
    codes = folder / "LineCode.txt"
    codes.write_bytes(codes.read_bytes().replace(b"R1=4.61", b"R1=4.7", 1))
    expected = r"LineCode\.txt, line 3: .*4_XC is already defined differently on line 2"
    with pytest.raises(FeederError, match=expected):
        load_enwl_feeder(folder)


def test_three_phase_load_is_read_as_written() -> None:
    feeder = load_enwl_feeder(SAMPLE, 16, 1)
    assert "New Load.LOAD15 Phases=3 Bus1=164 kV=0.412 kW=3 PF=0.95" in feeder.commands
    ctx = solve(feeder)
    assert ctx.Solution.Converged()
    ctx.Circuit.SetActiveElement("Load.load15")
    assert ctx.CktElement.NumPhases() == 3
    ctx.Loads.Name("load15")
    assert (ctx.Loads.kW(), ctx.Loads.kV()) == pytest.approx((3.0, 0.412))


def test_a_feeder_folder_pointed_at_directly() -> None:
    feeder = load_enwl_feeder(RF1)
    assert feeder.name == "enwl_rf1"
    assert "feeder RF1" in feeder.description
    ctx = solve(feeder)  # byte-order marks and CR-only line ends read
    assert ctx.Solution.Converged()
    assert ctx.Lines.Count() == 5 and ctx.Loads.Count() == 6
    # inside network_N/Feeder_M the folder keeps the dataset's name
    direct = load_enwl_feeder(SAMPLE / "network_16" / "Feeder_1")
    assert direct.name == "enwl_n16_f1"
    assert direct.commands == load_enwl_feeder(SAMPLE, 16, 1).commands


def test_network_without_feeder_is_refused() -> None:
    with pytest.raises(FeederError, match="give both"):
        load_enwl_feeder(SAMPLE, 16, None)


def test_master_edits_the_default_source_line_by_line(tmp_path: Path) -> None:
    folder = tmp_path / "RF1"
    shutil.copytree(RF1, folder)
    master = folder / "Master.txt"
    master.write_bytes(master.read_bytes() + b"Edit Vsource.Source pu=1.02\r\n")
    feeder = load_enwl_feeder(folder)
    assert feeder.commands[2:5] == (
        "New Circuit.enwl_rf1 Bus1=SourceBus",
        "Edit Vsource.Source BasekV=11 pu=1.00 ISC3=3000 ISC1=2500",
        "Edit Vsource.Source pu=1.02",
    )
    ctx = solve(feeder)
    ctx.Circuit.SetActiveBus("sourcebus")
    assert ctx.Bus.puVmagAngle()[0] == pytest.approx(1.02, abs=1e-3)


def test_find_feeders_in_any_layout() -> None:
    data = Path(__file__).parent / "data"
    names = [f.name for f in find_enwl_feeders(data)]
    assert names == [
        "enwl_n1_f1",
        "enwl_n5_f4",
        "enwl_n13_f4",
        "enwl_n14_f2",
        "enwl_n16_f1",
        "enwl_rf1",
    ]
    (found,) = find_enwl_feeders(RF1)
    assert (found.network, found.feeder, found.folder) == (None, None, RF1.resolve())


def test_a_tree_without_feeders_says_what_a_feeder_folder_holds(tmp_path: Path) -> None:
    (tmp_path / "network_1" / "Feeder_1").mkdir(parents=True)
    with pytest.raises(FeederError, match=r"no feeder folder .*holds Master\.txt"):
        find_enwl_feeders(tmp_path)


def test_bus_coordinates_from_xy_position_xls() -> None:
    feeder = load_enwl_feeder(SAMPLE, 5, 4)
    assert feeder.bus_coords_xls is not None and feeder.bus_coords_xls.name == "XY_Position.xls"
    coords = read_feeder_coords(feeder)
    assert coords is not None and len(coords) == 457
    assert coords["1"] == pytest.approx((223.227, 275.568), abs=1e-3)
    assert {b for line in feeder_lines(feeder) for b in (line.bus1, line.bus2)} <= set(coords)
    assert load_enwl_feeder(RF1).bus_coords_xls is None


def test_kind_master_on_an_enwl_master_reads_its_folder() -> None:
    from powertrip_env.config import FeederConfig

    master = FeederConfig(
        kind="master", path=str(SAMPLE / "network_16" / "Feeder_1" / "Master.txt")
    )
    enwl = FeederConfig(kind="enwl", path=str(SAMPLE), network=16, feeder=1)
    assert master.build().commands == enwl.build().commands
    with OpenDSSEngine(master.build()) as engine:
        assert engine.run_pf() == (True, None)


def test_master_redirecting_generators_txt_edits_the_source_again(tmp_path: Path) -> None:
    folder = tmp_path / "RF1"
    shutil.copytree(RF1, folder)
    # ENWL's Generators.txt holds one more edit of the source (never redirected as published)
    (folder / "Generators.txt").write_text(
        "Edit Vsource.Source BasekV=11 pu=1 ISC3=3000 ISC1=1500\n"
    )
    master = folder / "Master.txt"
    master.write_bytes(master.read_bytes() + b"Redirect Generators.txt\r\n")
    commands = load_enwl_feeder(folder).commands
    assert commands[4] == "Edit Vsource.Source BasekV=11 pu=1 ISC3=3000 ISC1=1500"
    (folder / "Generators.txt").write_text("New Generator.G1 Bus1=3.1 kW=3\n")
    with pytest.raises(FeederError, match=r"cannot follow a redirect to 'Generators\.txt'"):
        load_enwl_feeder(folder)


def test_find_feeders_follows_links_but_not_loops(tmp_path: Path) -> None:
    for network in (1, 2):
        (tmp_path / f"network_{network}").mkdir()
        (tmp_path / f"network_{network}" / "Feeder_1").symlink_to(RF1)
    (tmp_path / "network_1" / "back").symlink_to(tmp_path)  # a loop
    assert [f.name for f in find_enwl_feeders(tmp_path)] == ["enwl_n1_f1", "enwl_n2_f1"]
