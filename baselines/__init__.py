"""Baselines layer of PowerTrip: no control, rule-based controllers, NSGA-II, the oracle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from powertrip_env.errors import ConfigError

if TYPE_CHECKING:
    from powertrip_env.simulator import Controller, FeederSimulator

#: The rule-based controllers by name (:mod:`baselines.heuristics`).
RULE_BASED = ("flat_rate", "pv_following", "volt_watt")


def rule_based(name: str, sim: FeederSimulator) -> Controller:
    """The rule-based controller ``name`` (one of :data:`RULE_BASED`) for ``sim``'s day.

    Raises:
        ConfigError: ``name`` is not one of :data:`RULE_BASED`.
    """
    from baselines.heuristics import FlatRateCharging, PVFollowingCharging, VoltWattPV

    if name == "flat_rate":
        return FlatRateCharging()
    if name == "pv_following":
        return PVFollowingCharging()
    if name == "volt_watt":
        return VoltWattPV(sim)
    raise ConfigError(f"controller {name!r} is not one of the rule-based {RULE_BASED}")
