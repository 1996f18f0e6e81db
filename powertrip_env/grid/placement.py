"""Devices on a feeder's houses: placed by rule, or listed bus by bus and checked.

A house is a single-phase load (:class:`~powertrip_env.grid.layout.House`); a CP or a PV
system sits at a house's bus, on that house's phase. :func:`place_devices` turns
:class:`~powertrip_env.grid.devices.DeviceRule` s into a
:class:`~powertrip_env.grid.devices.DevicePlacement` from one seed, on any feeder;
:func:`check_placement` refuses an explicit list that puts a device anywhere else, or two
devices on one node unless the placement allows it.
"""

from __future__ import annotations

import numpy as np

from powertrip_env.errors import ConfigError
from powertrip_env.grid.devices import DevicePlacement, DeviceRule, DeviceSpec
from powertrip_env.grid.layout import FeederLayout, House

#: Ratings drawn from a ``[low, high]`` range are multiples of this step (kW or kWp).
RATING_STEP_KW = 0.5


def _candidates(layout: FeederLayout, taken: set[str], shared: bool) -> list[House]:
    """Houses a device may still go to, one per node unless nodes may be shared."""
    out: dict[str, House] = {}
    for house in layout.houses:
        if house.distance_m == np.inf or (not shared and house.node in taken):
            continue
        out.setdefault(house.node, house)
    return list(out.values())


def _pick(rule: DeviceRule, houses: list[House], rng: np.random.Generator) -> list[House]:
    """``rule.count`` of ``houses`` (at least that many), chosen by ``rule.placement``."""
    by_distance = sorted(houses, key=lambda h: (h.distance_m, h.bus, h.phase))
    if rule.placement == "remote_end":
        return by_distance[::-1][: rule.count]
    if rule.placement == "spread":
        index = np.round(np.linspace(0, len(by_distance) - 1, rule.count)).astype(int)
        return [by_distance[k] for k in index]
    chosen = rng.choice(len(houses), size=rule.count, replace=False)
    return [houses[k] for k in sorted(chosen)]


def _ratings(rule: DeviceRule, rng: np.random.Generator) -> list[float]:
    if not isinstance(rule.rating_kw, tuple):
        return [float(rule.rating_kw)] * rule.count
    low, high = rule.rating_kw
    steps = np.arange(low, high + 1e-9, RATING_STEP_KW)
    return [float(v) for v in rng.choice(steps, size=rule.count)]


def _place(
    kind: str,
    rule: DeviceRule,
    layout: FeederLayout,
    taken: set[str],
    shared: bool,
    rng: np.random.Generator,
) -> tuple[DeviceSpec, ...]:
    houses = _candidates(layout, taken, shared)
    if rule.count > len(houses):
        free = "" if shared else " without a device"
        raise ConfigError(
            f"devices.{kind}: count={rule.count}, but feeder {layout.name!r} has "
            f"{len(houses)} house node(s){free} ({len(layout.houses)} houses in all); lower "
            "the count or set devices.allow_shared_nodes: true"
        )
    prefix = kind[:-1]  # cps -> cp, pvs -> pv
    specs = tuple(
        DeviceSpec(f"{prefix}{k + 1}", house.bus, house.phase, rating)
        for k, (house, rating) in enumerate(
            zip(_pick(rule, houses, rng), _ratings(rule, rng), strict=True)
        )
    )
    taken.update(d.node.lower() for d in specs)
    return specs


def place_devices(
    cps: DeviceRule | tuple[DeviceSpec, ...],
    pvs: DeviceRule | tuple[DeviceSpec, ...],
    layout: FeederLayout,
    *,
    seed: int = 0,
    allow_shared_nodes: bool = False,
) -> DevicePlacement:
    """CPs and PV systems on ``layout``'s houses, each given by a rule or listed.

    CPs are placed first; PV systems then avoid their nodes (unless ``allow_shared_nodes``).
    Rule-placed devices are named ``cp1``, ``cp2``, ... and ``pv1``, ... One ``seed`` gives
    one placement: the CPs and the PV systems draw from independent streams of it.

    Raises:
        ConfigError: a rule asks for more devices than the feeder has free house nodes, or
            the result fails :func:`check_placement`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"devices.seed={seed!r} must be a non-negative integer")
    cp_rng, pv_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    taken = {d.node.lower() for d in (*_listed(cps), *_listed(pvs))}
    if isinstance(cps, DeviceRule):
        cps = _place("cps", cps, layout, taken, allow_shared_nodes, cp_rng)
    if isinstance(pvs, DeviceRule):
        pvs = _place("pvs", pvs, layout, taken, allow_shared_nodes, pv_rng)
    placement = DevicePlacement(cps=cps, pvs=pvs, allow_shared_nodes=allow_shared_nodes)
    check_placement(placement, layout)
    return placement


def _listed(devices: DeviceRule | tuple[DeviceSpec, ...]) -> tuple[DeviceSpec, ...]:
    return () if isinstance(devices, DeviceRule) else devices


def check_placement(placement: DevicePlacement, layout: FeederLayout) -> None:
    """Refuse a device that is not at a house's bus on its phase, or two on one node.

    Raises:
        ConfigError: naming the device (``devices.cps[k]`` or ``devices.pvs[k]``), where it
            is, and the houses at that bus if there are any.
    """
    houses: dict[str, list[House]] = {}
    for house in layout.houses:
        houses.setdefault(house.bus, []).append(house)
    seen: dict[str, str] = {}
    for kind, specs in (("cps", placement.cps), ("pvs", placement.pvs)):
        for k, spec in enumerate(specs):
            where = f"devices.{kind}[{k}] ({spec.name!r})"
            bus, node = spec.bus.lower(), spec.node.lower()
            at_bus = houses.get(bus, [])
            if not at_bus:
                what = "is the transformer's HV side" if bus == "sourcebus" else "has no house"
                raise ConfigError(
                    f"{where}: bus {spec.bus!r} of feeder {layout.name!r} {what}; devices sit "
                    "at a house's bus on its phase (`powertrip buses` lists the houses)"
                )
            if node not in {h.node for h in at_bus}:
                phases = sorted({h.phase for h in at_bus})
                raise ConfigError(
                    f"{where}: bus {spec.bus!r} has no house on phase {spec.phase}; its "
                    f"house(s) are on phase(s) {phases}"
                )
            if node in seen and not placement.allow_shared_nodes:
                raise ConfigError(
                    f"{where}: node {node} already holds {seen[node]}; two devices on one "
                    "node need devices.allow_shared_nodes: true"
                )
            seen.setdefault(node, where)
