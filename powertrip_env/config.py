"""Scenario configuration: frozen dataclasses, loadable from YAML, validated on construction.

YAML only loads into these dataclasses (conventions.md habit 2): unknown keys, wrong types and
values outside their range raise :class:`~powertrip_env.errors.ConfigError` naming the field,
the value received and what is allowed.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_type_hints

import numpy as np
import yaml

from powertrip_env.errors import ConfigError
from powertrip_env.grid.devices import PLACEMENT_RULES, DevicePlacement, DeviceRule, DeviceSpec
from powertrip_env.grid.enwl import load_enwl_feeder
from powertrip_env.grid.feeder import (
    EMBEDDED_FEEDER_NAME,
    EMBEDDED_FEEDERS,
    LOAD_MODELS,
    Feeder,
    LoadModel,
    embedded_feeder,
)
from powertrip_env.grid.layout import feeder_layout
from powertrip_env.grid.master import feeder_from_master
from powertrip_env.grid.placement import place_devices
from powertrip_env.metrics import UNBALANCE_INDICES, UnbalanceIndex
from powertrip_env.profiles.enwl import check_file_season

# Every option is a Literal type (mypy checks each use) and its tuple of values (checked where
# a config is read, naming the field).
FeederKind = Literal["embedded", "master", "enwl"]
FEEDER_KINDS: tuple[FeederKind, ...] = get_args(FeederKind)
Season = Literal["summer", "winter"]
SEASONS: tuple[Season, ...] = get_args(Season)
DayType = Literal["weekday", "weekend"]
DAY_TYPES: tuple[DayType, ...] = get_args(DayType)
RESOLUTIONS_MIN = (1, 5, 15)
LoadSource = Literal["demandlib", "enwl"]
LOAD_SOURCES: tuple[LoadSource, ...] = get_args(LoadSource)
PVSource = Literal["pvlib", "enwl"]
PV_SOURCES: tuple[PVSource, ...] = get_args(PVSource)
EVSessionKind = Literal["mixed", "home", "fleet", "enwl"]
EV_SESSION_KINDS: tuple[EVSessionKind, ...] = get_args(EVSessionKind)


#: Largest day seed: day seeds travel as int64 (numpy arrays, parquet columns).
MAX_DAY_SEED = 2**63 - 1


def check_day_seed(value: object, name: str = "day_seed") -> int:
    """``value`` as a day seed: an integer (not a bool, float or text) in [0, 2**63).

    Raises:
        ConfigError: naming ``name``, the value and what is allowed.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        kind = type(value).__name__
        raise ConfigError(f"{name}={value!r} must be an integer day seed (not {kind})")
    if not 0 <= value <= MAX_DAY_SEED:
        raise ConfigError(f"{name}={value!r} must be in [0, 2**63 - 1]")
    return int(value)


def check_flag(value: object, name: str) -> bool:
    """``value`` if it is a real boolean (``"no"``, ``"false"`` and 0 are refused, not coerced).

    Raises:
        ConfigError: naming ``name`` and the value.
    """
    if not isinstance(value, (bool, np.bool_)):
        kind = type(value).__name__
        raise ConfigError(f"{name}={value!r} must be True or False (a bool, not {kind})")
    return bool(value)


def _one_of(field_name: str, value: object, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{field_name}={value!r} is not one of {allowed}")


@dataclass(frozen=True)
class FeederConfig:
    """Which feeder to simulate.

    Attributes:
        kind: ``embedded`` (ENWL network 1 feeder 1), ``master`` (any OpenDSS
            master file at ``path``) or ``enwl`` (``network``/``feeder`` of the ENWL dataset
            downloaded to ``path``).
        path: master file (kind ``master``); for kind ``enwl``, the dataset folder that holds
            the ``network_N`` folders, or one feeder's folder (``.../network_5/Feeder_4``,
            ``RF1``) with ``network`` and ``feeder`` left out. A relative path in a scenario
            file is relative to that file's folder.
        network: ENWL network number (kind ``enwl`` with the dataset folder).
        feeder: ENWL feeder number (kind ``enwl`` with the dataset folder).
        name: which embedded variant of ENWL network 1 feeder 1 (kind ``embedded``):
            ``enwl_n1f1`` (default: ENWL's own parameters: source 1.00 pu, ISC1 2500 A, XHL 1 %)
            or ``ieee_lv`` (the IEEE European LV Test Feeder: source 1.05 pu, XHL 4 %).
        load_model: how the residential loads respond to voltage: ``constant_pq`` (every load
            draws its setpoint at any voltage met in practice) or ``opendss`` (the loads as
            the feeder's files declare them: OpenDSS's own band, constant PQ inside
            ``Vminpu``-``Vmaxpu`` of the load's kV, 0.95-1.05 by default, and an impedance-like
            model outside). Every evaluator (OpenDSS, the reduced model, both envs) follows it.
    """

    kind: FeederKind = "embedded"
    path: str | None = None
    network: int | None = None
    feeder: int | None = None
    name: str = EMBEDDED_FEEDER_NAME
    load_model: LoadModel = "constant_pq"

    def __post_init__(self) -> None:
        _one_of("feeder.kind", self.kind, FEEDER_KINDS)
        _one_of("feeder.name", self.name, tuple(EMBEDDED_FEEDERS))
        _one_of("feeder.load_model", self.load_model, LOAD_MODELS)
        if self.kind in ("master", "enwl") and not self.path:
            raise ConfigError(f"feeder.path is required when feeder.kind={self.kind!r}")
        if self.kind != "embedded" and self.name != EMBEDDED_FEEDER_NAME:
            raise ConfigError(
                f"feeder.name={self.name!r} chooses an embedded feeder; it needs feeder.kind: "
                f"embedded (got {self.kind!r})"
            )
        if self.kind == "enwl" and (self.network, self.feeder) != (None, None):
            for name in ("network", "feeder"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ConfigError(
                        f"feeder.{name}={value!r} must be a positive integer for an ENWL feeder "
                        "(or leave out both network and feeder when path is one feeder's folder)"
                    )

    def build(self) -> Feeder:
        """The :class:`Feeder` this config names, with its ``load_model``."""
        return replace(self._build(), load_model=self.load_model)

    def _build(self) -> Feeder:
        if self.kind == "embedded":
            return embedded_feeder(self.name)
        if self.kind == "master":
            return feeder_from_master(str(self.path))
        return load_enwl_feeder(str(self.path), self.network, self.feeder)


@dataclass(frozen=True)
class ProfileConfig:
    """Which day and which profile sources (architecture.md §5).

    Attributes:
        season: ``summer`` or ``winter``.
        day_type: ``weekday`` or ``weekend``.
        resolution_min: minutes per step: 1, 5 or 15.
        load_source: ``demandlib`` (BDEW household shape, seeded per house) or ``enwl``
            (ENWL's profiles: ``enwl_load_file`` or ``enwl_load_folder``).
        pv_source: ``pvlib`` (clear sky x seeded clouds) or ``enwl``.
        enwl_load_file: ENWL seasonal load file (``Summer_Load_Profiles.csv`` or
            ``Winter_...``, 100 household columns); each house gets a seeded random column. A
            file named for the other season than ``season`` is refused.
        enwl_load_folder: ENWL's per-house profile folder (``Load_profiles/``, files
            ``Load<k>_5min.csv``); each house of an ENWL feeder (``feeder.kind: enwl``, or
            ``master`` with its ``Master.txt``) gets the file its ``LoadShapes.txt`` assigns
            it (by name; the Windows path written there is never followed). Give this or
            ``enwl_load_file``, not both.
        enwl_pv_file: ENWL PV file (``Summer_PV_Profiles.csv``, with ``pv_source: enwl``);
            refused when named for the other season.
        load_power_factor: power factor of the residential loads (lagging).

    ENWL's profile files hold one day per season and do not separate weekdays from weekends:
    with ENWL loads ``day_type`` changes only the PV date and the EV sessions.
    """

    season: Season = "summer"
    day_type: DayType = "weekday"
    resolution_min: int = 5
    load_source: LoadSource = "demandlib"
    pv_source: PVSource = "pvlib"
    enwl_load_file: str | None = None
    enwl_pv_file: str | None = None
    load_power_factor: float = 0.95
    enwl_load_folder: str | None = None

    def __post_init__(self) -> None:
        _one_of("profiles.season", self.season, SEASONS)
        _one_of("profiles.day_type", self.day_type, DAY_TYPES)
        if self.resolution_min not in RESOLUTIONS_MIN or 1440 % self.resolution_min:
            raise ConfigError(
                f"profiles.resolution_min={self.resolution_min!r} must divide a day; "
                f"allowed: {RESOLUTIONS_MIN}"
            )
        _one_of("profiles.load_source", self.load_source, LOAD_SOURCES)
        _one_of("profiles.pv_source", self.pv_source, PV_SOURCES)
        if self.load_source == "enwl" and not (self.enwl_load_file or self.enwl_load_folder):
            raise ConfigError(
                "load_source: enwl needs profiles.enwl_load_file (a seasonal file) or "
                "profiles.enwl_load_folder (the per-house Load_profiles folder)"
            )
        if self.enwl_load_file and self.enwl_load_folder:
            raise ConfigError(
                f"profiles.enwl_load_file={self.enwl_load_file!r} and enwl_load_folder="
                f"{self.enwl_load_folder!r}: give one of them"
            )
        if self.pv_source == "enwl" and not self.enwl_pv_file:
            raise ConfigError("profiles.enwl_pv_file is required with pv_source: enwl")
        for key in ("enwl_load_file", "enwl_pv_file"):
            path = getattr(self, key)
            if path:
                check_file_season(path, self.season, f"profiles.{key}")
        if not 0.0 < self.load_power_factor <= 1.0:
            raise ConfigError(
                f"profiles.load_power_factor={self.load_power_factor!r} must be in (0, 1]"
            )

    @property
    def steps_per_day(self) -> int:
        return 1440 // self.resolution_min

    @property
    def dt_h(self) -> float:
        return self.resolution_min / 60.0


@dataclass(frozen=True)
class EVConfig:
    """EV sessions and the EV energy guarantee (architecture.md §5, §6).

    Attributes:
        sessions: ``mixed`` (midday fleet + evening home sessions), ``home``, ``fleet``, or
            ``enwl`` (ENWL's EV file, ``enwl_ev_file``: each CP gets a seeded random column,
            charged at the power the file gives each step, e.g. 3 kW, never above the CP's
            ``p_max_kw``; with the energy guarantee that power is owed step by step).
        energy_guarantee: if true (default), each CP's power is bounded below so every EV can
            still be charged fully before it leaves; if false (the seed formulation), CP power
            is bounded only by the per-step request and deferred energy is not owed.
        enwl_ev_file: ENWL EV file (``Winter_EV_Profiles.csv`` or ``Summer_...``, with
            ``sessions: enwl``); refused when named for another season than
            ``profiles.season``.
    """

    sessions: EVSessionKind = "mixed"
    energy_guarantee: bool = True
    enwl_ev_file: str | None = None

    def __post_init__(self) -> None:
        _one_of("ev.sessions", self.sessions, EV_SESSION_KINDS)
        if self.sessions == "enwl" and not self.enwl_ev_file:
            raise ConfigError("ev.enwl_ev_file is required with sessions: enwl")
        if not isinstance(self.energy_guarantee, bool):
            raise ConfigError(f"ev.energy_guarantee={self.energy_guarantee!r} must be true/false")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Which unbalance index drives f1 (architecture.md §6): ``pui``, ``vuf`` or ``power``."""

    unbalance_index: UnbalanceIndex = "pui"

    def __post_init__(self) -> None:
        _one_of("objective.unbalance_index", self.unbalance_index, UNBALANCE_INDICES)


@dataclass(frozen=True)
class VoltWattConfig:
    """The PV inverters' volt-watt droop, P(U), of the ``volt_watt`` baseline.

    EN 50549-1 lets a generating unit reduce its active power as its terminal voltage rises;
    the thresholds are the network operator's. The curve here: full available power up to
    ``u_start_pu``, falling linearly to ``p_end_fraction`` of the available power at
    ``u_end_pu`` and held there above it. Voltages in pu of ``u_nominal_v`` (the phase-to-
    neutral nominal, 230 V in the UK). The defaults start the droop at the UK statutory
    maximum (230 V + 10 % = 253 V) and end it 2 % of Un higher.

    Attributes:
        u_start_pu: voltage where the reduction starts, pu of ``u_nominal_v``.
        u_end_pu: voltage of full reduction, pu; above ``u_start_pu``.
        p_end_fraction: share of the available power left at ``u_end_pu`` and above, [0, 1).
        u_nominal_v: nominal phase-to-neutral voltage, volts.
    """

    u_start_pu: float = 1.10
    u_end_pu: float = 1.12
    p_end_fraction: float = 0.0
    u_nominal_v: float = 230.0

    def __post_init__(self) -> None:
        for name in ("u_start_pu", "u_end_pu", "p_end_fraction", "u_nominal_v"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"volt_watt.{name}={value!r} must be a number")
        if not 0.9 <= self.u_start_pu < self.u_end_pu <= 1.3:
            raise ConfigError(
                f"volt_watt.u_start_pu={self.u_start_pu!r} and u_end_pu={self.u_end_pu!r} "
                "must satisfy 0.9 <= u_start_pu < u_end_pu <= 1.3"
            )
        if not 0.0 <= self.p_end_fraction < 1.0:
            raise ConfigError(f"volt_watt.p_end_fraction={self.p_end_fraction!r} must be in [0, 1)")
        if not self.u_nominal_v > 0.0:
            raise ConfigError(f"volt_watt.u_nominal_v={self.u_nominal_v!r} must be > 0 volts")


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything that defines a scenario-day, except the seed."""

    feeder: FeederConfig = field(default_factory=FeederConfig)
    profiles: ProfileConfig = field(default_factory=ProfileConfig)
    ev: EVConfig = field(default_factory=EVConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    devices: DevicePlacement = field(default_factory=DevicePlacement)
    volt_watt: VoltWattConfig = field(default_factory=VoltWattConfig)

    def __post_init__(self) -> None:
        if self.devices.n_cp == 0:
            raise ConfigError("devices.cps is empty; a scenario needs at least one CP")
        if self.ev.enwl_ev_file:
            check_file_season(self.ev.enwl_ev_file, self.profiles.season, "ev.enwl_ev_file")
        if self.profiles.enwl_load_folder and self.feeder.kind == "embedded":
            raise ConfigError(
                f"profiles.enwl_load_folder={self.profiles.enwl_load_folder!r} assigns each house "
                "its file through an ENWL feeder's LoadShapes.txt, so it needs feeder.kind: enwl "
                "(or master, with the master in an ENWL feeder folder); the embedded feeder has "
                "none: use profiles.enwl_load_file"
            )

    def with_devices(self, devices: DevicePlacement) -> ScenarioConfig:
        return replace(self, devices=devices)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the inverse of :func:`scenario_config_from_dict`)."""
        from dataclasses import asdict

        return asdict(self)


T = TypeVar("T")


def dataclass_from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, naming ``where`` and any unknown key in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}: {data!r}")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; allowed: {sorted(known)}")
    _check_types(cls, data, where)
    try:
        return cls(**data)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _type_error(where: str, key: str, value: Any, wanted: str) -> ConfigError:
    hint = ""
    if isinstance(value, str):
        try:
            float(value)
            hint = " (it is text; write the number without quotes, and 3.0e-4 rather than 3e-4)"
        except ValueError:
            pass
    return ConfigError(f"{where}.{key}={value!r} must be {wanted}{hint}")


def _check_types(cls: type, data: dict[str, Any], where: str) -> None:
    """Refuse values of the wrong type for the fields annotated ``bool``, ``int``, ``float`` or
    ``str`` (optionally ``| None``): YAML's ``true`` is no 1 kW rating, 3.9 no day seed, and
    ``"no"`` no boolean. An integer is taken where a float is (or a name, such as a bus)."""
    try:
        hints = get_type_hints(cls)
    except (NameError, TypeError):  # an annotation this module cannot resolve: no check
        return
    for key, value in data.items():
        hint = hints.get(key)
        allowed = get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if value is None and type(None) in allowed:
            continue
        if bool in allowed:
            if not isinstance(value, bool):
                raise _type_error(where, key, value, "true or false")
        elif isinstance(value, bool) and ({int, float, str} & set(allowed)):
            raise _type_error(where, key, value, f"{_wanted(allowed)}, not a boolean")
        elif int in allowed and float not in allowed and not isinstance(value, int):
            raise _type_error(where, key, value, "an integer")
        elif float in allowed and not isinstance(value, (int, float)):
            raise _type_error(where, key, value, "a number")
        elif str in allowed and not isinstance(value, (str, int)):
            raise _type_error(where, key, value, "text")


def _wanted(allowed: tuple[Any, ...]) -> str:
    return "a number" if float in allowed else "an integer" if int in allowed else "text"


#: Keys of the ``devices`` section.
DEVICE_KEYS = ("cps", "pvs", "seed", "allow_shared_nodes")
#: The rating key of a placement rule, and its default (architecture.md, devices).
_RULE_RATING: dict[str, tuple[str, float | tuple[float, float]]] = {
    "cps": ("p_max_kw", 7.0),
    "pvs": ("kwp", (3.0, 5.0)),
}


def _device_rule(kind: str, item: dict[str, Any]) -> DeviceRule:
    rating_key, default = _RULE_RATING[kind]
    allowed = ["count", "placement", rating_key]
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in devices.{kind}; allowed: {allowed}")
    for key in ("count", "placement"):
        if key not in item:
            raise ConfigError(
                f"devices.{kind} has no {key}; a placement rule reads e.g. "
                f"{{count: 3, placement: remote_end, {rating_key}: {default}}} "
                f"(placements: {', '.join(PLACEMENT_RULES)})"
            )
    rating = item.get(rating_key, default)
    try:
        return DeviceRule(item["count"], item["placement"], rating)
    except ConfigError as exc:
        raise ConfigError(f"devices.{kind}: {exc}".replace("rating_kw", rating_key, 1)) from exc


def _device_list(kind: str, items: Any) -> DeviceRule | tuple[DeviceSpec, ...]:
    """``devices.cps``/``devices.pvs``: a list of devices, or one placement rule."""
    if isinstance(items, dict):
        return _device_rule(kind, items)
    items = items or []
    if not isinstance(items, (list, tuple)):
        raise ConfigError(
            f"devices.{kind} must be a list of devices or a placement rule mapping, got {items!r}"
        )
    specs = []
    for k, item in enumerate(items):
        where = f"devices.{kind}[{k}]"
        try:
            specs.append(dataclass_from_mapping(DeviceSpec, item, where))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return tuple(specs)


def _devices(data: Any, feeder: FeederConfig) -> DevicePlacement:
    """The ``devices`` section, placed (rules) and checked (lists) on ``feeder``'s houses."""
    if not isinstance(data, dict):
        raise ConfigError(f"devices must be a mapping with 'cps' and 'pvs', got {data!r}")
    unknown = sorted(set(data) - set(DEVICE_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in devices; allowed: {list(DEVICE_KEYS)}")
    cps, pvs = (_device_list(kind, data.get(kind)) for kind in ("cps", "pvs"))
    return place_devices(
        cps,
        pvs,
        feeder_layout(feeder.build()),
        seed=data.get("seed", 0),
        allow_shared_nodes=data.get("allow_shared_nodes", False),
    )


def scenario_config_from_dict(data: dict[str, Any]) -> ScenarioConfig:
    """Build a validated :class:`ScenarioConfig` from plain data (parsed YAML/JSON)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a scenario config must be a mapping, got {type(data).__name__}")
    sections = {"feeder", "profiles", "ev", "objective", "devices", "volt_watt"}
    unknown = sorted(set(data) - sections)
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown}; allowed: {sorted(sections)}")
    feeder = dataclass_from_mapping(FeederConfig, data.get("feeder"), "feeder")
    return ScenarioConfig(
        feeder=feeder,
        profiles=dataclass_from_mapping(ProfileConfig, data.get("profiles"), "profiles"),
        ev=dataclass_from_mapping(EVConfig, data.get("ev"), "ev"),
        objective=dataclass_from_mapping(ObjectiveConfig, data.get("objective"), "objective"),
        devices=_devices(data.get("devices", {}), feeder),
        volt_watt=dataclass_from_mapping(VoltWattConfig, data.get("volt_watt"), "volt_watt"),
    )


def default_scenario_path() -> Path:
    """The shipped default scenario YAML."""
    return Path(str(resources.files("powertrip_env") / "scenarios" / "default.yaml"))


def read_yaml(path: str | Path, what: str) -> Any:
    """Parsed YAML of ``path``; ``what`` names the file in errors (e.g. "scenario file").

    Strict: a key repeated in one mapping is refused (YAML would silently keep the last).

    Raises:
        ConfigError: the file does not exist, is a directory, is not UTF-8 text, or is not
            valid YAML.
    """
    source = Path(path)
    if source.is_dir():
        raise ConfigError(f"{what} {str(source)!r} is a directory; give the YAML file in it")
    if not source.is_file():
        raise ConfigError(f"{what} {str(source)!r} does not exist")
    try:
        return yaml.load(source.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {str(source)!r} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {str(source)!r} is not valid YAML: {exc}") from exc


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a key repeated within one mapping."""


def _unique_keys_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> Any:
    loader.flatten_mapping(node)
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} appears twice in one mapping (lines {first_line[key]} and "
                    f"{line}); keep one",
                    key_node.start_mark,
                )
            first_line[key] = line
        except TypeError:  # an unhashable key: the base constructor reports it
            break
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _unique_keys_mapping,
)


def load_scenario_config(path: str | Path | None = None) -> ScenarioConfig:
    """Load a scenario YAML (the shipped default when ``path`` is None).

    A relative path (``feeder.path``, the ENWL profile files) is taken relative to the YAML
    file's folder and made absolute, so the scenario (and a run's ``config.json``) means the
    same files from any working directory.
    """
    source = Path(path) if path is not None else default_scenario_path()
    data = read_yaml(source, "scenario file")
    for section, key in PATH_FIELDS:
        part = data.get(section) if isinstance(data, dict) else None
        if isinstance(part, dict) and isinstance(part.get(key), str):
            part[key] = str((source.parent / Path(part[key]).expanduser()).resolve())
    return scenario_config_from_dict(data)


#: (section, key) of the scenario fields that name files.
PATH_FIELDS = (
    ("feeder", "path"),
    ("profiles", "enwl_load_file"),
    ("profiles", "enwl_load_folder"),
    ("profiles", "enwl_pv_file"),
    ("ev", "enwl_ev_file"),
)
