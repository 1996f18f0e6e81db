"""Controllable devices placed on a feeder: EV charging points and PV systems.

Placement is data (DESIGN.md §4): a device sits at ``bus.phase`` of the feeder with a power
rating. The engine turns a CP into a single-phase ``Load`` (model 1, constant PQ) and a PV
system into a single-phase ``Generator`` (model 1, unity power factor), both of which OpenDSS
can re-dispatch without rebuilding its admittance matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from powertrip_env.errors import ConfigError

VALID_PHASES = (1, 2, 3)


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

    Decision vectors are ordered ``[cps..., pvs...]`` everywhere (DESIGN.md §6).
    """

    cps: tuple[DeviceSpec, ...] = ()
    pvs: tuple[DeviceSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "cps", tuple(self.cps))
        object.__setattr__(self, "pvs", tuple(self.pvs))
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
