"""OpenDSS's voltage-dependent Model=1 loads and generators, against OpenDSS itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opendssdirect import dss as _dss

from powertrip_env.errors import FeederError
from powertrip_env.grid.devices import DevicePlacement, DeviceSpec
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.loadmodel import power_scale
from powertrip_env.grid.master import feeder_from_master
from powertrip_env.simulator import DayResult

#: A load and a generator on a stiff 400 V source whose voltage the test sets.
STIFF = """
Clear
New Circuit.stiff BasekV=0.4 pu={pu} Bus1=src phases=3 MVAsc3=1e6 MVAsc1=1e6
New Load.l1 Phases=1 Bus1=src.1 kV=0.23 kW=10 kvar=3 Model=1 Vminpu=0.95 Vmaxpu=1.05 Vlowpu=0.6
New Generator.g1 Phases=1 Bus1=src.2 kV=0.23 kW=10 kvar=0 Model=1 Vminpu=0.9 Vmaxpu=1.1
Set VoltageBases=[0.4]
CalcVoltageBases
"""


@pytest.mark.parametrize("source_pu", [0.3, 0.55, 0.7, 0.9, 0.97, 1.0, 1.07, 1.15, 1.3])
def test_power_scale_is_what_opendss_draws(source_pu: float) -> None:
    """Every branch: below Vlowpu, the interpolated current, the band, above Vmaxpu."""
    dss = _dss.NewContext()
    try:
        for line in STIFF.format(pu=source_pu).strip().splitlines():
            dss.Text.Command(line)
        dss.Solution.Convergence(1e-12)
        dss.Solution.MaxIterations(100)
        dss.Solution.Solve()
        assert dss.Solution.Converged()
        drawn = {}
        for element in ("Load.l1", "Generator.g1"):
            dss.Circuit.SetActiveElement(element)
            v = abs(complex(*dss.CktElement.Voltages()[:2]))
            drawn[element] = (v / 230.0, *dss.CktElement.Powers()[:2])
    finally:
        dss.Text.Command("Clear")
    u, p, q = drawn["Load.l1"]
    k = float(power_scale(np.array(u), np.array(0.6), np.array(0.95), np.array(1.05)))
    assert (p, q) == pytest.approx((10.0 * k, 3.0 * k), rel=1e-9)
    u, p, _ = drawn["Generator.g1"]  # no Vlowpu: an impedance all the way below Vminpu
    k = float(power_scale(np.array(u), np.array(0.0), np.array(0.9), np.array(1.1)))
    assert -p == pytest.approx(10.0 * k, rel=1e-9)


def test_power_scale_is_exactly_one_inside_the_band_and_continuous_at_its_edges() -> None:
    u = np.array([0.951, 1.0, 1.05])
    assert power_scale(u, 0.5, 0.95, 1.05).tolist() == [1.0, 1.0, 1.0]
    for edge in (0.5, 0.95, 1.05):
        below, above = power_scale(np.array([edge - 1e-9, edge + 1e-9]), 0.5, 0.95, 1.05)
        assert below == pytest.approx(above, abs=1e-7)


# ------------------------------------------------------------------ the engine's balance
ENWL_LIKE = """
Clear
New Circuit.enwl_like BasekV=11 pu=1.04 ISC3=3000 ISC1=2500 Bus1=SourceBus
New Transformer.T1 Buses=[SourceBus A] Conns=[Delta Wye] kVs=[11 0.416]
~ kVAs=[250 250] XHL=4 %Rs=[0.5 0.5]
New Linecode.lc nphases=3 R1=0.3 X1=0.08 R0=0.9 X0=0.1 Units=km
New Line.L1 Bus1=A Bus2=B Linecode=lc Length=150 Units=m
New Line.L2 Bus1=B Bus2=C Linecode=lc Length=300 Units=m
New Load.H0 Phases=1 Bus1=A.1 kV=0.23 kW=1 PF=0.95
New Load.H1 Phases=1 Bus1=C.2 kV=0.23 kW=1 PF=0.95
New Load.H2 Phases=3 Bus1=C kV=0.412 kW=3 PF=0.95
Set VoltageBases=[11 0.416]
CalcVoltageBases
"""
DEVICES = DevicePlacement(
    cps=(DeviceSpec("cp", "C", 3, 7.0),), pvs=(DeviceSpec("pv", "B", 1, 4.0),)
)


def _feeder(tmp_path: Path, load_model: str, extra: str = "") -> Feeder:
    path = tmp_path / "Master.dss"
    path.write_text(ENWL_LIKE + extra)
    return replace(feeder_from_master(path), load_model=load_model)  # type: ignore[arg-type]


@pytest.mark.parametrize("load_model", ["constant_pq", "opendss"])
@pytest.mark.parametrize("load_kw", [0.5, 8.0, 30.0])
def test_reported_losses_are_opendss_circuit_losses(
    tmp_path: Path, load_model: str, load_kw: float
) -> None:
    """Light load (H0 above its band), heavy load (H1 below it): the balance counts what each
    load really draws, so the state's losses are ``Circuit.Losses``."""
    with OpenDSSEngine(_feeder(tmp_path, load_model), DEVICES, 100, 1e-12) as engine:
        p = np.full(engine.n_loads, load_kw)
        state = engine.solve(p, 0.33 * p, np.array([7.0]), np.array([3.0]))
        assert state.converged
        assert state.losses_kw == pytest.approx(engine.losses_kw(), rel=1e-9, abs=1e-12)


def test_feeders_the_balance_cannot_model_read_circuit_losses(tmp_path: Path) -> None:
    """A constant-impedance load under ``opendss``: losses from OpenDSS, still exact."""
    extra = "New Load.Z Phases=1 Bus1=B.3 kV=0.23 kW=2 Model=2\n"
    with OpenDSSEngine(_feeder(tmp_path, "opendss", extra), DEVICES) as engine:
        n = engine.n_loads
        state = engine.solve(np.ones(n), np.zeros(n), np.array([7.0]), np.array([3.0]))
        assert state.losses_kw == pytest.approx(engine.losses_kw(), rel=1e-9)


def test_an_unknown_load_model_is_refused() -> None:
    with pytest.raises(FeederError, match=r"load_model='zip' is not one of \('constant_pq'"):
        Feeder(name="x", commands=("Clear",), load_model="zip")  # type: ignore[arg-type]


# ------------------------------------------------------------- a day outside the model's range
def _day(v_min_pu: list[float], load_model: str) -> DayResult:
    steps = pd.DataFrame({"v_min_pu": v_min_pu})
    return DayResult(steps, None, np.zeros(0), np.zeros(0), 1.0, load_model)


def test_a_day_below_its_load_models_range_says_so() -> None:
    day = _day([0.97, 0.88, 0.85, 0.95], "constant_pq")
    (warning,) = day.warnings()
    assert "2 step(s) reach 0.850 pu, below 0.9 pu" in warning
    assert "feeder.load_model: opendss" in warning
    # OpenDSS's band turns the loads impedance-like there: still a model of houses.
    assert _day([0.97, 0.88, 0.85, 0.95], "opendss").warnings() == []
    assert _day([0.97, 0.91], "constant_pq").warnings() == []
    assert "0.450 pu, below 0.5 pu" in _day([0.45], "opendss").warnings()[0]
