"""The reduced network model against the OpenDSS engine it was built from (architecture.md §8)."""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from powertrip_env.config import load_scenario_config
from powertrip_env.errors import FeederError, UnknownBusError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import Feeder, LoadModel
from powertrip_env.grid.master import feeder_from_master
from powertrip_env.grid.reduced import ReducedNetwork

TAN_PHI = np.tan(np.arccos(0.95))
#: Reference solves: OpenDSS's default tolerance (1e-4) is only good to about 3e-5 pu.
REF_TOLERANCE = 1e-12
REF_ITERATIONS = 100
AGREEMENT_PU = 1e-6
N_DISPATCHES = 20


def _dispatches(
    rng: np.random.Generator, n: int, n_loads: int, devices: DevicePlacement
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Random dispatches: loads 0-3 kW at PF 0.95, CPs 0-7 kW, PVs 0 to their kWp."""
    kwp = np.array([d.p_max_kw for d in devices.pvs])
    for _ in range(n):
        p = rng.uniform(0.0, 3.0, n_loads)
        yield p, p * TAN_PHI, rng.uniform(0.0, 7.0, devices.n_cp), rng.uniform(0.0, 1.0) * kwp


def _assert_agrees(engine: OpenDSSEngine, net: ReducedNetwork, seed: int) -> float:
    """Max disagreement in pu over random dispatches, CP-bus phasors and all LV magnitudes."""
    worst = 0.0
    for p, q, cp, pv in _dispatches(
        np.random.default_rng(seed), N_DISPATCHES, engine.n_loads, engine.devices
    ):
        engine.set_powers(p, q, cp, pv)
        converged, error = engine.run_pf()
        assert converged, error
        solution = net.solve(p, q, cp[np.newaxis], pv[np.newaxis])
        assert solution.converged.tolist() == [True]
        cp_nodes = net.obs_nodes[: 3 * net.n_cp]
        cp_base = engine.base_v[[engine.node_names.index(n) for n in cp_nodes]]
        cp_err = np.abs(net.cp_bus_phasors(solution)[0] - engine.cp_bus_phasors()).ravel()
        node_err = np.abs(net.node_voltages_pu(solution)[0] - engine.node_voltages())
        worst = max(worst, float((cp_err / cp_base).max()), float(node_err.max()))
        vmin, vmax = net.voltage_range_pu(solution)
        assert vmin[0] == pytest.approx(engine.node_voltages().min(), abs=AGREEMENT_PU)
        assert vmax[0] == pytest.approx(engine.node_voltages().max(), abs=AGREEMENT_PU)
    assert worst < AGREEMENT_PU
    return worst


@pytest.fixture(scope="module")
def devices() -> DevicePlacement:
    return load_scenario_config().devices


@pytest.fixture(scope="module")
def reference(feeder: Feeder, devices: DevicePlacement) -> Iterator[OpenDSSEngine]:
    with OpenDSSEngine(
        feeder, devices, max_iterations=REF_ITERATIONS, tolerance=REF_TOLERANCE
    ) as engine:
        yield engine


@pytest.fixture(scope="module")
def net(reference: OpenDSSEngine) -> ReducedNetwork:
    return ReducedNetwork(reference)


def test_agrees_with_opendss_on_the_default_scenario(
    reference: OpenDSSEngine, net: ReducedNetwork
) -> None:
    assert net.n_inj == 55  # every device of the default scenario sits at a house's node
    assert len(net.obs_nodes) == 3 * net.n_cp
    _assert_agrees(reference, net, seed=0)


def test_a_batch_solves_like_its_candidates_one_by_one(net: ReducedNetwork) -> None:
    rng = np.random.default_rng(1)
    load_p = rng.uniform(0.0, 3.0, net.n_loads)
    cp = rng.uniform(0.0, 7.0, (16, net.n_cp))
    pv = rng.uniform(0.0, 4.0, (16, net.n_pv))
    batch = net.solve(load_p, load_p * TAN_PHI, cp, pv)
    assert batch.volts.shape == (16, 3 * net.n_cp)
    assert net.cp_bus_phasors(batch).shape == (16, net.n_cp, 3)
    assert batch.converged.all()
    for k in range(16):
        one = net.solve(load_p, load_p * TAN_PHI, cp[k], pv[k])
        np.testing.assert_allclose(one.volts[0], batch.volts[k], rtol=0, atol=1e-9)
    # Per-candidate loads (B, n_loads) give the same as broadcast ones.
    loads = np.broadcast_to(load_p, (16, net.n_loads))
    same = net.solve(loads, loads * TAN_PHI, cp, pv)
    np.testing.assert_allclose(same.volts, batch.volts, rtol=0, atol=1e-9)


def test_building_leaves_the_engine_as_it_was(feeder: Feeder, devices: DevicePlacement) -> None:
    with OpenDSSEngine(feeder, devices, REF_ITERATIONS, REF_TOLERANCE) as engine:
        p, q, cp, pv = next(_dispatches(np.random.default_rng(2), 1, engine.n_loads, devices))
        before = engine.solve(p, q, cp, pv)
        names = engine.node_names
        ReducedNetwork(engine)
        after = engine.solve(p, q, cp, pv)
        assert after.converged and engine.node_names == names
        np.testing.assert_allclose(after.v_pu, before.v_pu, rtol=0, atol=1e-9)
        np.testing.assert_allclose(after.cp_kw, cp, atol=1e-9)
        np.testing.assert_allclose(after.pv_kw, pv, atol=1e-9)


def test_it_pickles(net: ReducedNetwork) -> None:
    copy = pickle.loads(pickle.dumps(net))
    x = (np.ones(net.n_loads), np.zeros(net.n_loads), np.full(net.n_cp, 7.0), np.ones(net.n_pv))
    np.testing.assert_array_equal(copy.solve(*x).volts, net.solve(*x).volts)


def test_failures_are_flagged_not_raised(net: ReducedNetwork) -> None:
    """Collapse, an iteration limit and NaN inputs give converged=False and NaN voltages."""
    n = net.n_loads
    cp = np.array([[0.0] * net.n_cp, [7.0] * net.n_cp, [np.nan] * net.n_cp])
    solution = net.solve(np.full(n, 1.0), np.zeros(n), cp, np.zeros(net.n_pv))
    assert solution.converged.tolist() == [True, True, False]
    assert np.isnan(solution.volts[2]).all() and np.isfinite(solution.volts[:2]).all()
    assert not net.solve(
        np.full(n, 1.0), np.zeros(n), cp[:2], np.zeros(net.n_pv), max_iter=2
    ).converged.any()
    collapse = net.solve(np.full(n, 500.0), np.zeros(n), cp[:2], np.zeros(net.n_pv))
    assert not collapse.converged.any()
    assert np.isnan(net.voltage_range_pu(collapse)[0]).all()


@pytest.mark.parametrize(
    ("argument", "shape", "expected"),
    [
        ("load_p_kw", (54,), "(55,)"),
        ("cp_p_kw", (2, 4), "(B, 3)"),
        ("pv_p_kw", (2, 3, 12), "(B, 12)"),
    ],
)
def test_shape_errors_name_the_shape_expected(
    net: ReducedNetwork, argument: str, shape: tuple[int, ...], expected: str
) -> None:
    args = {
        "load_p_kw": np.zeros(net.n_loads),
        "load_q_kvar": np.zeros(net.n_loads),
        "cp_p_kw": np.zeros((2, net.n_cp)),
        "pv_p_kw": np.zeros((2, net.n_pv)),
    }
    args[argument] = np.zeros(shape)
    with pytest.raises(ValueError, match=rf"{argument} has shape .*expected.*{expected}"):
        net.solve(**args)  # type: ignore[arg-type]


def test_batch_sizes_must_agree(net: ReducedNetwork) -> None:
    with pytest.raises(ValueError, match="batch sizes disagree"):
        net.solve(np.zeros(net.n_loads), np.zeros(net.n_loads), np.zeros((2, 3)), np.zeros((5, 12)))


def test_unknown_observed_node_is_refused(reference: OpenDSSEngine) -> None:
    with pytest.raises(UnknownBusError, match=re.escape("no_such_bus.1")):
        ReducedNetwork(reference, observed_nodes=["no_such_bus.1"])


# ------------------------------------------------------------------------ a second feeder
TINY_MASTER = """
Clear
New Circuit.tiny BasekV=11 pu=1.02 ISC3=3000 ISC1=2500 Bus1=SourceBus
New Transformer.T1 Buses=[SourceBus A] Conns=[Delta Wye] kVs=[11 0.416]
~ kVAs=[250 250] XHL=4 %Rs=[0.5 0.5]
New Linecode.lc nphases=3 R1=0.3 X1=0.08 R0=0.9 X0=0.1 C1=300 C0=150 Units=km
New Line.L1 Bus1=A Bus2=B Linecode=lc Length=150 Units=m
New Line.L2 Bus1=B Bus2=C Linecode=lc Length=200 Units=m
New Line.L3 Bus1=B Bus2=D Linecode=lc Length=100 Units=m
New Capacitor.C1 Bus1=B kvar=5 kV=0.416
New Load.H1 Phases=1 Bus1=B.1 kV=0.24 kW=1 PF=0.95 Model=1 Vminpu=0.5 Vmaxpu=1.5
New Load.H2 Phases=1 Bus1=C.2 kV=0.24 kW=1 PF=0.95 Model=1 Vminpu=0.5 Vmaxpu=1.5
New Load.H3 Phases=1 Bus1=C.2 kV=0.24 kW=1 PF=0.95 Model=1 Vminpu=0.5 Vmaxpu=1.5
New Load.H4 Phases=3 Bus1=D kV=0.416 kW=3 PF=0.95 Model=1 Vminpu=0.5 Vmaxpu=1.5
Set VoltageBases=[11 0.416]
CalcVoltageBases
"""

#: Two houses share node C.2 with a CP and a PV system; a three-phase load sits at D.
TINY_DEVICES = DevicePlacement(
    cps=(DeviceSpec("cp1", "C", 2, 7.0), DeviceSpec("cp2", "D", 1, 7.0)),
    pvs=(DeviceSpec("pv1", "C", 2, 4.0), DeviceSpec("pv2", "B", 3, 5.0)),
)


def _tiny_feeder(
    tmp_path: Path,
    extra: str = "",
    load_model: LoadModel = "constant_pq",
    master: str = TINY_MASTER,
) -> Feeder:
    path = tmp_path / "Master.dss"
    path.write_text(master + extra)
    return replace(feeder_from_master(path), load_model=load_model)


def test_a_second_feeder_with_shared_nodes_agrees(tmp_path: Path) -> None:
    with OpenDSSEngine(
        _tiny_feeder(tmp_path), TINY_DEVICES, REF_ITERATIONS, REF_TOLERANCE
    ) as engine:
        net = ReducedNetwork(engine, observed_nodes=["A.1"])
        assert net.obs_nodes[-1] == "a.1"
        assert set(net.inj_nodes) == {"b.1", "b.3", "c.2", "d.1", "d.2", "d.3"}
        _assert_agrees(engine, net, seed=3)


#: Loads as ENWL's files write them: kV=0.23 and OpenDSS's default band (0.95-1.05 of 230 V,
#: i.e. about 0.91-1.005 pu of the 240 V node base), one with its own Vlowpu, and a
#: three-phase load; the source at 1.04 pu puts the near ones above their band.
BAND_MASTER = """
Clear
New Circuit.band BasekV=11 pu=1.04 ISC3=3000 ISC1=2500 Bus1=SourceBus
New Transformer.T1 Buses=[SourceBus A] Conns=[Delta Wye] kVs=[11 0.416]
~ kVAs=[250 250] XHL=4 %Rs=[0.5 0.5]
New Linecode.lc nphases=3 R1=0.3 X1=0.08 R0=0.9 X0=0.1 Units=km
New Line.L1 Bus1=A Bus2=B Linecode=lc Length=150 Units=m
New Line.L2 Bus1=B Bus2=C Linecode=lc Length=300 Units=m
New Line.L3 Bus1=B Bus2=D Linecode=lc Length=100 Units=m
New Load.H0 Phases=1 Bus1=A.1 kV=0.23 kW=1 PF=0.95
New Load.H1 Phases=1 Bus1=B.1 kV=0.23 kW=1 PF=0.95
New Load.H2 Phases=1 Bus1=C.2 kV=0.23 kW=1 PF=0.95
New Load.H3 Phases=1 Bus1=C.2 kV=0.23 kW=1 PF=0.95 Vlowpu=0.9
New Load.H4 Phases=3 Bus1=D kV=0.412 kW=3 PF=0.95
Set VoltageBases=[11 0.416]
CalcVoltageBases
"""


def test_loads_leaving_their_band_are_solved_as_opendss_solves_them(tmp_path: Path) -> None:
    """``load_model: opendss``: loads above Vmaxpu (constant Z), between Vlowpu and Vminpu
    (interpolated current) and below Vlowpu, all inside the fixed point."""
    feeder = _tiny_feeder(tmp_path, load_model="opendss", master=BAND_MASTER)
    with OpenDSSEngine(feeder, TINY_DEVICES, REF_ITERATIONS, REF_TOLERANCE) as engine:
        net = ReducedNetwork(engine)
        rng = np.random.default_rng(7)
        lowest, worst = np.inf, 0.0
        for _ in range(N_DISPATCHES):
            p = rng.uniform(0.0, 25.0, engine.n_loads)  # heavy enough to pull voltages low
            cp, pv = rng.uniform(0.0, 7.0, 2), rng.uniform(0.0, 1.0) * np.array([4.0, 5.0])
            engine.set_powers(p, p * TAN_PHI, cp, pv)
            converged, error = engine.run_pf()
            assert converged, error
            solution = net.solve(p, p * TAN_PHI, cp, pv)
            assert solution.converged.tolist() == [True]
            assert solution.out_of_band.tolist() == [True]  # H0 sits above its band
            v_engine = engine.node_voltages()
            worst = max(worst, float(np.abs(net.node_voltages_pu(solution)[0] - v_engine).max()))
            lowest = min(lowest, float(v_engine[engine.node_names.index("c.2")]))
        assert worst < AGREEMENT_PU
        assert lowest < 0.9 * 230.0 / 240.2  # some dispatch took H3 (at C.2) below its Vlowpu


def test_constant_pq_load_model_overrides_the_files_band(tmp_path: Path) -> None:
    """The default load model: the same loads stay at their setpoints (no band to leave)."""
    with OpenDSSEngine(_tiny_feeder(tmp_path, master=BAND_MASTER), TINY_DEVICES) as engine:
        net = ReducedNetwork(engine)
        n = engine.n_loads
        solution = net.solve(np.ones(n), np.zeros(n), np.zeros(2), np.zeros(2))
        assert solution.converged.tolist() == [True]
        assert solution.out_of_band.tolist() == [False]
        engine.dss.Loads.Name(engine.load_names[0])
        assert (engine.dss.Loads.Vminpu(), engine.dss.Loads.Vmaxpu()) == (0.5, 1.5)


@pytest.mark.parametrize(
    "extra",
    [
        "New Load.Delta Phases=1 Bus1=C.1.3 kV=0.416 kW=1 Model=1 Conn=Delta\n",
        "New Load.Z Phases=1 Bus1=C.1 kV=0.24 kW=1 Model=2\n",
        "New Generator.Own Phases=1 Bus1=C.3 kV=0.24 kW=1 Model=1\n",
        "New RegControl.R Transformer=T1 Winding=2 Vreg=120 PTratio=2\n",
    ],
)
def test_elements_the_model_cannot_represent_are_refused(tmp_path: Path, extra: str) -> None:
    with (
        OpenDSSEngine(_tiny_feeder(tmp_path, extra, "opendss"), TINY_DEVICES) as engine,
        pytest.raises(FeederError, match="reduced network model"),
    ):
        ReducedNetwork(engine)
