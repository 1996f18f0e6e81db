"""Devices placed by rule on any feeder's houses, and explicit lists checked against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from powertrip_env.config import (
    default_scenario_path,
    load_scenario_config,
    scenario_config_from_dict,
)
from powertrip_env.errors import ConfigError
from powertrip_env.grid.devices import DeviceRule
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.enwl import load_enwl_feeder
from powertrip_env.grid.feeder import embedded_feeder
from powertrip_env.grid.layout import feeder_layout
from powertrip_env.grid.placement import place_devices

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "enwl_sample"  # real ENWL feeders (CC BY 4.0, see NOTICE)
RF1 = DATA / "enwl_quirks" / "RF1"


def enwl_scenario(devices: dict[str, Any]) -> dict[str, Any]:
    """Scenario data on ENWL network 16 feeder 1 (38 houses, one three-phase load)."""
    feeder = {"kind": "enwl", "path": str(SAMPLE), "network": 16, "feeder": 1}
    return {"feeder": feeder, "devices": devices}


RULES = {
    "seed": 4,
    "cps": {"count": 3, "placement": "remote_end", "p_max_kw": 7},
    "pvs": {"count": 12, "placement": "random_houses", "kwp": [3, 5]},
}


# --- Layout ----------------------------------------------------------------------------------


def test_houses_of_the_embedded_feeder() -> None:
    layout = feeder_layout(embedded_feeder())
    assert len(layout.houses) == 55
    assert layout.houses_per_phase() == (21, 19, 15)
    assert len(layout.buses) == 906 and layout.root_bus == "1"
    with OpenDSSEngine(embedded_feeder()) as engine:
        assert {h.node for h in layout.houses} == set(engine.load_nodes)


def test_a_three_phase_load_is_not_a_house() -> None:
    layout = feeder_layout(load_enwl_feeder(SAMPLE, 16, 1))
    (other,) = [load for load in layout.loads if not load.is_house]
    assert (other.name, other.bus, other.phases) == ("load15", "164", (1, 2, 3))
    assert len(layout.houses) == 38


def test_cable_distances_of_a_hand_checked_feeder() -> None:
    layout = feeder_layout(load_enwl_feeder(RF1))
    distance = {h.load: h.distance_m for h in layout.houses}
    # RF1: 1 -60- 2 -45.5- 3 -30- 4 -20- 6, and 2 -12.25- 5
    assert distance == pytest.approx(
        {"load1": 105.5, "load2": 135.5, "load4": 155.5, "load5": 155.5, "load6": 72.25}
    )
    assert layout.houses_per_phase() == (1, 4, 0)
    assert layout.farthest_house_m() == pytest.approx(155.5)


# --- Rules -----------------------------------------------------------------------------------


def test_rules_put_every_device_at_a_house_on_its_phase() -> None:
    devices = scenario_config_from_dict(enwl_scenario(RULES)).devices
    assert (devices.n_cp, devices.n_pv) == (3, 12)
    houses = {h.node for h in feeder_layout(load_enwl_feeder(SAMPLE, 16, 1)).houses}
    nodes = [d.node for d in (*devices.cps, *devices.pvs)]
    assert set(nodes) <= houses and len(set(nodes)) == len(nodes)
    assert [d.name for d in devices.cps] == ["cp1", "cp2", "cp3"]
    assert all(d.p_max_kw == 7.0 for d in devices.cps)
    kwp = np.array([d.p_max_kw for d in devices.pvs])
    assert ((kwp >= 3) & (kwp <= 5) & (kwp * 2 == np.round(kwp * 2))).all()


def test_one_seed_one_placement_and_seeds_differ() -> None:
    first = scenario_config_from_dict(enwl_scenario(RULES)).devices
    assert scenario_config_from_dict(enwl_scenario(RULES)).devices == first
    other = scenario_config_from_dict(enwl_scenario({**RULES, "seed": 5})).devices
    assert [d.node for d in other.pvs] != [d.node for d in first.pvs]
    assert other.cps == first.cps  # remote_end does not draw


def test_remote_end_and_spread() -> None:
    layout = feeder_layout(load_enwl_feeder(SAMPLE, 16, 1))
    by_distance = sorted(h.distance_m for h in layout.houses)
    rule = DeviceRule(3, "remote_end", 7.0)
    cps = place_devices(rule, (), layout).cps
    distance = {h.node: h.distance_m for h in layout.houses}
    assert sorted(distance[d.node] for d in cps) == pytest.approx(by_distance[-3:])
    spread = place_devices(DeviceRule(3, "spread", 7.0), (), layout).cps
    ends = [distance[d.node] for d in spread]
    assert ends[0] == pytest.approx(by_distance[0]) and ends[-1] == pytest.approx(by_distance[-1])


def test_rule_placed_pvs_avoid_listed_cps() -> None:
    layout = feeder_layout(load_enwl_feeder(RF1))
    cps = place_devices(DeviceRule(1, "remote_end", 7.0), (), layout).cps
    placement = place_devices(cps, DeviceRule(4, "random_houses", 4.0), layout)
    assert cps[0].node not in {d.node for d in placement.pvs}
    with pytest.raises(ConfigError, match=r"count=5, but feeder 'enwl_rf1' has 4 house node"):
        place_devices(cps, DeviceRule(5, "random_houses", 4.0), layout)
    shared = place_devices(
        cps, DeviceRule(5, "random_houses", 4.0), layout, allow_shared_nodes=True
    )
    assert shared.n_pv == 5


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"count": 3, "placement": "far_end"}, r"devices\.cps: placement='far_end' is not one of"),
        ({"count": 0, "placement": "spread"}, r"devices\.cps: count=0 must be a positive"),
        ({"count": 3}, r"devices\.cps has no placement; .*remote_end, random_houses, spread"),
        ({"count": 3, "placement": "spread", "p_max_kw": -7}, r"p_max_kw=-7 must be"),
        ({"count": 3, "placement": "spread", "kw": 7}, r"unknown key\(s\) \['kw'\]"),
    ],
)
def test_bad_rules_name_the_key(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        scenario_config_from_dict(enwl_scenario({"cps": rule}))


# --- Explicit lists --------------------------------------------------------------------------


def test_default_scenario_keeps_its_listed_devices() -> None:
    data = yaml.safe_load(default_scenario_path().read_text())
    devices = load_scenario_config().devices
    listed = [(d["name"], d["bus"], d["phase"], d["p_max_kw"]) for d in data["devices"]["cps"]]
    listed += [(d["name"], d["bus"], d["phase"], d["p_max_kw"]) for d in data["devices"]["pvs"]]
    got = [(d.name, d.bus, d.phase, d.p_max_kw) for d in (*devices.cps, *devices.pvs)]
    assert got == listed
    # the resolved config reads back to the same placement
    assert scenario_config_from_dict(load_scenario_config().to_dict()).devices == devices


@pytest.mark.parametrize(
    ("cps", "message"),
    [
        ([("6", 1)], r"cps\[0\] \('d0'\): bus '6' of feeder 'enwl_n16_f1' has no house"),
        ([("sourcebus", 1)], r"bus 'sourcebus' .* is the transformer's HV side"),
        ([("164", 1)], r"bus '164' .* has no house"),  # the three-phase load
        ([("8", 1)], r"bus '8' has no house on phase 1; its house\(s\) are on phase\(s\) \[2\]"),
        ([("8", 2), ("8", 2)], r"cps\[1\] \('d1'\): node 8\.2 already holds devices\.cps\[0\]"),
    ],
)
def test_listed_devices_are_checked(cps: list[tuple[str, int]], message: str) -> None:
    listed = [
        {"name": f"d{k}", "bus": bus, "phase": phase, "p_max_kw": 7.0}
        for k, (bus, phase) in enumerate(cps)
    ]
    with pytest.raises(ConfigError, match=message):
        scenario_config_from_dict(enwl_scenario({"cps": listed}))


def test_shared_nodes_when_allowed() -> None:
    listed = [{"name": f"d{k}", "bus": "8", "phase": 2, "p_max_kw": 7.0} for k in range(2)]
    devices = {"cps": listed, "allow_shared_nodes": True}
    assert scenario_config_from_dict(enwl_scenario(devices)).devices.n_cp == 2


# --- Scenario files --------------------------------------------------------------------------


def test_relative_feeder_path_is_relative_to_the_scenario_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "feeders").symlink_to(RF1.parent)
    (tmp_path / "study").mkdir()
    scenario = tmp_path / "study" / "rf1.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "feeder": {"kind": "enwl", "path": "../feeders/RF1"},
                "devices": {"cps": {"count": 1, "placement": "remote_end"}},
            }
        )
    )
    monkeypatch.chdir(DATA)  # not the scenario's folder
    config = load_scenario_config(scenario)
    assert config.feeder.build().name == "enwl_rf1"
    assert config.devices.cps[0].node in {"6.1", "6.2", "4.2"}  # the houses 155.5 m out


def test_enwl_network_without_feeder_is_a_config_error() -> None:
    data = enwl_scenario(RULES)
    del data["feeder"]["feeder"]
    with pytest.raises(ConfigError, match=r"feeder\.feeder=None must be a positive integer"):
        scenario_config_from_dict(data)
