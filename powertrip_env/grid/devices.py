"""Controllable devices placed on a feeder: EV charging points and PV systems.

Placement is data (architecture.md §4): a device sits at ``bus.phase`` of the feeder with a power
rating. The engine turns a CP into a single-phase ``Load`` (model 1, constant PQ) and a PV
system into a single-phase ``Generator`` (model 1, unity power factor), both of which OpenDSS
can re-dispatch without rebuilding its admittance matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from powertrip_env.errors import ConfigError

VALID_PHASES = (1, 2, 3)

#: How a rule picks the houses of its devices (see :class:`DeviceRule`).
PlacementRule = Literal["remote_end", "random_houses", "spread"]
PLACEMENT_RULES: tuple[str, ...] = get_args(PlacementRule)


@dataclass(frozen=True)
class DeviceSpec:
    """One single-phase device.

    Attributes:
        name: identifier, unique among the devices of a placement.
        bus: feeder bus name (as in OpenDSS, e.g. ``"900"``).
        phase: 1, 2 or 3 (phases a, b, c).
        p_max_kw: rating: charger power for a CP, peak power (kWp) for a PV system.
    """

    name: str
    bus: str
    phase: int
    p_max_kw: float

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("device name is empty")
        if not str(self.bus):
            raise ConfigError(f"device {self.name!r}: bus is empty")
        object.__setattr__(self, "bus", str(self.bus))
        if self.phase not in VALID_PHASES:
            raise ConfigError(
                f"device {self.name!r}: phase={self.phase!r} is not one of {VALID_PHASES}"
            )
        if not self.p_max_kw > 0.0:
            raise ConfigError(
                f"device {self.name!r}: p_max_kw={self.p_max_kw!r} must be a positive number of kW"
            )

    @property
    def node(self) -> str:
        """OpenDSS node name ``bus.phase``."""
        return f"{self.bus}.{self.phase}"


@dataclass(frozen=True)
class DevicePlacement:
    """The controllable devices of a scenario: charging points and PV systems.

    Decision vectors are ordered ``[cps..., pvs...]`` everywhere (architecture.md §6).

    Attributes:
        cps: the charging points.
        pvs: the PV systems.
        allow_shared_nodes: whether two devices may sit on one node (``bus.phase``); a
            scenario read from YAML refuses that by default
            (:func:`powertrip_env.grid.placement.check_placement`).
    """

    cps: tuple[DeviceSpec, ...] = ()
    pvs: tuple[DeviceSpec, ...] = field(default=())
    allow_shared_nodes: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "cps", tuple(self.cps))
        object.__setattr__(self, "pvs", tuple(self.pvs))
        if not isinstance(self.allow_shared_nodes, bool):
            raise ConfigError(
                f"devices.allow_shared_nodes={self.allow_shared_nodes!r} must be true or false"
            )
        names = [d.name for d in (*self.cps, *self.pvs)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"device names must be unique; repeated: {duplicates}")

    @property
    def n_cp(self) -> int:
        return len(self.cps)

    @property
    def n_pv(self) -> int:
        return len(self.pvs)

    @property
    def cp_buses(self) -> tuple[str, ...]:
        """Buses of the charging points, in CP order (the buses whose unbalance f1 counts)."""
        return tuple(d.bus for d in self.cps)


@dataclass(frozen=True)
class DeviceRule:
    """``count`` devices of one kind, placed on a feeder's houses by a rule (seeded).

    Every device sits at a house's bus, on that house's phase
    (:func:`powertrip_env.grid.placement.place_devices`).

    Attributes:
        count: how many devices, at least 1.
        placement: ``remote_end`` (the houses farthest from the transformer by cable length),
            ``random_houses`` (houses drawn at random from the placement seed) or ``spread``
            (houses evenly spaced in cable length from the nearest to the farthest).
        rating_kw: one rating for every device (kW; kWp for PV), or ``(low, high)``: each
            device draws its rating from ``low``, ``low + 0.5``, ..., ``high``.
    """

    count: int
    placement: PlacementRule
    rating_kw: float | tuple[float, float]

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"count={self.count!r} must be a positive integer")
        if self.placement not in PLACEMENT_RULES:
            raise ConfigError(f"placement={self.placement!r} is not one of {PLACEMENT_RULES}")
        rating = self.rating_kw
        if isinstance(rating, (list, tuple)):
            if len(rating) != 2 or not all(_positive_number(v) for v in rating):
                raise ConfigError(f"rating_kw={list(rating)!r} must be [low, high], both > 0")
            if rating[0] > rating[1]:
                raise ConfigError(f"rating_kw={list(rating)!r}: low must not exceed high")
            object.__setattr__(self, "rating_kw", (float(rating[0]), float(rating[1])))
        elif not _positive_number(rating):
            raise ConfigError(f"rating_kw={rating!r} must be a positive number or [low, high]")


def _positive_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0
