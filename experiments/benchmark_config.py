"""Configuration of ``powertrip benchmark``: frozen dataclasses loaded from YAML.

Like every configuration of PowerTrip (conventions.md habit 2).

A benchmark is a grid of independent **units**, one per test day x seed x controller:

* test days: a season and a day type (``summer``/``winter`` x ``weekday``/``weekend``) of the
  base scenario; the seed draws that day's profiles (and seeds NSGA-II);
* controllers: no control, the rule-based baselines (flat-rate and PV-following charging,
  volt-watt PV), NSGA-II (its compromise point applied, its Pareto front kept), the day's
  optimum with perfect foresight (the oracle, at the benchmark's weights) and any number of
  trained agents given by their training run folders.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the field,
the value received and what is allowed. Relative paths (the scenario, agent run folders) are
resolved against the current directory when the config is loaded, so the resolved config
that ``config.json`` records is self-contained.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from baselines import RULE_BASED
from baselines.lookahead import FORECASTS
from baselines.nsga2 import Evaluator, NSGA2Config, Selection, check_weights
from powertrip_env.config import (
    DAY_TYPES,
    SEASONS,
    DayType,
    ScenarioConfig,
    Season,
    dataclass_from_mapping,
    load_scenario_config,
    read_yaml,
)
from powertrip_env.errors import ConfigError

#: Controller names become file names: letters, digits, ``_``, ``.`` and ``-`` only.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: Names the built-in controllers use; an agent may not take one.
BUILTIN_CONTROLLERS = (
    "no_control",
    *RULE_BASED,
    "nsga2",
    *(f"lookahead_{f}" for f in FORECASTS),
    "oracle",
)


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def _weights(name: str, value: object) -> tuple[float, float]:
    return check_weights(value, name)


@dataclass(frozen=True)
class TestDay:
    """One test day of the base scenario.

    Attributes:
        season: ``summer`` or ``winter``.
        day_type: ``weekday`` or ``weekend``.
    """

    __test__ = False  # not a pytest test class, despite its name

    season: Season = "summer"
    day_type: DayType = "weekday"

    def __post_init__(self) -> None:
        if self.season not in SEASONS:
            raise ConfigError(f"days[].season={self.season!r} is not one of {SEASONS}")
        if self.day_type not in DAY_TYPES:
            raise ConfigError(f"days[].day_type={self.day_type!r} is not one of {DAY_TYPES}")

    @property
    def label(self) -> str:
        """``<season>-<day_type>``, e.g. ``summer-weekday``."""
        return f"{self.season}-{self.day_type}"


@dataclass(frozen=True)
class NSGA2Settings:
    """The optimiser of every NSGA-II unit; its seed is the unit's seed.

    Attributes:
        pop_size: population per timestep, at least 4.
        n_gen: generations per timestep, at least 1.
        evaluator: ``reduced`` (exact reduced model, batched) or ``opendss``.
        selection: ``pseudo_weights``, ``knee`` or ``weighted_sum`` (with the benchmark's
            ``weights``).
    """

    pop_size: int = 100
    n_gen: int = 100
    evaluator: Evaluator = "reduced"
    selection: Selection = "pseudo_weights"

    def __post_init__(self) -> None:
        self.config(0, (0.5, 0.5))  # NSGA2Config validates, naming nsga2.<field>

    def config(self, seed: int, weights: tuple[float, float]) -> NSGA2Config:
        """The :class:`NSGA2Config` of one unit."""
        return NSGA2Config(
            pop_size=self.pop_size,
            n_gen=self.n_gen,
            seed=seed,
            evaluator=self.evaluator,
            selection=self.selection,
            weights=weights,
        )


@dataclass(frozen=True)
class AgentSpec:
    """A trained agent: a ``powertrip train`` run folder (or a model zip inside one).

    Attributes:
        name: the controller's name in results and the report (letters, digits, ``_.-``).
        run_dir: the training run folder; a missing one fails only this agent's units.
        weights: for a weight-conditioned policy, the weight it pursues (default: the run's).
    """

    name: str
    run_dir: str
    weights: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"agents[].name={self.name!r} must be letters, digits, '_', '.' or '-' "
                "(it names files)"
            )
        if self.name in BUILTIN_CONTROLLERS:
            raise ConfigError(
                f"agents[].name={self.name!r} is taken by a built-in controller "
                f"{BUILTIN_CONTROLLERS}; choose another"
            )
        if not isinstance(self.run_dir, str) or not self.run_dir:
            raise ConfigError(f"agents[{self.name}].run_dir={self.run_dir!r} must be a path")
        if self.weights is not None:
            object.__setattr__(
                self, "weights", _weights(f"agents[{self.name}].weights", self.weights)
            )


@dataclass(frozen=True)
class BenchmarkConfig:
    """The benchmark grid: test days x seeds x controllers.

    Attributes:
        days: test days (season x day type) of the base scenario.
        seeds: day seeds; each draws the day's profiles and seeds NSGA-II.
        scenario: base scenario YAML (the shipped default when omitted).
        energy_guarantee: override of the scenario's ``ev.energy_guarantee`` (None: keep it).
            With it off (the seed formulation) every controller sees the same bounds at a
            step, so comparing its point with NSGA-II's front of that step is exact.
        steps: only the first N steps of each day (None: the whole day).
        weights: (unbalance, curtailment) weights of NSGA-II's compromise and of the
            normalised weighted day cost in the report.
        no_control: run the no-control baseline.
        rule_based: the rule-based baselines to run (names from ``baselines.RULE_BASED``).
        nsga2: NSGA-II settings (None: no NSGA-II units, hence no fronts and no indicators).
        lookahead: receding-horizon controllers to run at ``weights``, by forecast
            (``persistence``, ``perfect``); each is the controller ``lookahead_<forecast>``.
        lookahead_horizon_h: their horizon, hours.
        oracle: run the day's optimum (perfect foresight) at ``weights``; the report's
            optimality gaps need it and no control.
        agents: trained agents.
        out: folder under which the run folder is created.
    """

    days: tuple[TestDay, ...] = (TestDay(),)
    seeds: tuple[int, ...] = (0,)
    scenario: str | None = None
    energy_guarantee: bool | None = None
    steps: int | None = None
    weights: tuple[float, float] = (0.5, 0.5)
    no_control: bool = True
    rule_based: tuple[str, ...] = RULE_BASED
    nsga2: NSGA2Settings | None = field(default_factory=NSGA2Settings)
    lookahead: tuple[str, ...] = FORECASTS
    lookahead_horizon_h: float = 4.0
    oracle: bool = True
    agents: tuple[AgentSpec, ...] = ()
    out: str = "runs"

    def __post_init__(self) -> None:
        days = tuple(self.days)
        if not days or not all(isinstance(d, TestDay) for d in days):
            raise ConfigError(f"days={self.days!r} must be a non-empty list of test days")
        if len({d.label for d in days}) != len(days):
            raise ConfigError(f"days={[d.label for d in days]} lists a day twice")
        object.__setattr__(self, "days", days)
        seeds = tuple(self.seeds) if isinstance(self.seeds, (list, tuple)) else ()
        if not seeds:
            raise ConfigError(f"seeds={self.seeds!r} must be a non-empty list of integers")
        for seed in seeds:
            _int("seeds[]", seed, 0)
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds={list(seeds)} lists a seed twice")
        object.__setattr__(self, "seeds", seeds)
        if self.energy_guarantee is not None and not isinstance(self.energy_guarantee, bool):
            raise ConfigError(
                f"energy_guarantee={self.energy_guarantee!r} must be true, false or null"
            )
        if self.steps is not None:
            _int("steps", self.steps, 1)
        object.__setattr__(self, "weights", _weights("weights", self.weights))
        for key in ("no_control", "oracle"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}={getattr(self, key)!r} must be true or false")
        rules = tuple(self.rule_based) if isinstance(self.rule_based, (list, tuple)) else None
        if rules is None or any(r not in RULE_BASED for r in rules) or len(set(rules)) < len(rules):
            raise ConfigError(
                f"rule_based={self.rule_based!r} must list distinct names from {RULE_BASED}"
            )
        object.__setattr__(self, "rule_based", rules)
        ahead = tuple(self.lookahead) if isinstance(self.lookahead, (list, tuple)) else None
        if ahead is None or any(f not in FORECASTS for f in ahead) or len(set(ahead)) < len(ahead):
            raise ConfigError(
                f"lookahead={self.lookahead!r} must list distinct forecasts from {FORECASTS}"
            )
        object.__setattr__(self, "lookahead", ahead)
        horizon = self.lookahead_horizon_h
        if isinstance(horizon, bool) or not isinstance(horizon, (int, float)) or horizon <= 0:
            raise ConfigError(f"lookahead_horizon_h={horizon!r} must be a number of hours > 0")
        agents = tuple(self.agents)
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ConfigError(f"agents[].name must be unique; got {names}")
        object.__setattr__(self, "agents", agents)
        if not self.controllers:
            raise ConfigError("no controllers: enable no_control, nsga2 or list agents")

    @property
    def controllers(self) -> tuple[str, ...]:
        """Names in report order: no control, rule-based, NSGA-II, look-ahead, oracle, agents."""
        first = ["no_control"] if self.no_control else []
        nsga2 = ["nsga2"] if self.nsga2 is not None else []
        oracle = ["oracle"] if self.oracle else []
        ahead = [f"lookahead_{f}" for f in self.lookahead]
        return (*first, *self.rule_based, *nsga2, *ahead, *oracle, *(a.name for a in self.agents))

    def agent(self, name: str) -> AgentSpec:
        """The agent called ``name``."""
        for spec in self.agents:
            if spec.name == name:
                return spec
        raise ConfigError(f"no agent named {name!r}; agents: {[a.name for a in self.agents]}")

    def base_scenario(self) -> ScenarioConfig:
        """The base scenario with the benchmark's energy-guarantee override applied."""
        config = load_scenario_config(self.scenario)
        if self.energy_guarantee is None:
            return config
        return replace(config, ev=replace(config.ev, energy_guarantee=self.energy_guarantee))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the inverse of :func:`benchmark_config_from_dict`)."""
        return asdict(self)


def _absolute(path: str | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def benchmark_config_from_dict(data: Any, resolve_paths: bool = True) -> BenchmarkConfig:
    """Build a validated :class:`BenchmarkConfig` from plain data (parsed YAML or JSON).

    Args:
        data: the mapping.
        resolve_paths: make the scenario and agent paths absolute (relative to the current
            directory).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a benchmark config must be a mapping, got {type(data).__name__}")
    data = dict(data)
    known = {f.name for f in fields(BenchmarkConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in the benchmark config; allowed: {known}")
    days = data.pop("days", None)
    if days is not None:
        if not isinstance(days, list):
            raise ConfigError(f"days={days!r} must be a list of {{season, day_type}}")
        data["days"] = tuple(
            dataclass_from_mapping(TestDay, d, f"days[{k}]") for k, d in enumerate(days)
        )
    if "nsga2" in data and data["nsga2"] is not None:
        data["nsga2"] = dataclass_from_mapping(NSGA2Settings, data["nsga2"], "nsga2")
    agents = data.pop("agents", None) or []
    if not isinstance(agents, list):
        raise ConfigError(f"agents={agents!r} must be a list of {{name, run_dir, weights}}")
    specs = [dataclass_from_mapping(AgentSpec, a, f"agents[{k}]") for k, a in enumerate(agents)]
    if resolve_paths:
        specs = [replace(s, run_dir=str(_absolute(s.run_dir))) for s in specs]
        data["scenario"] = _absolute(data.get("scenario"))
    data["agents"] = tuple(specs)
    for key in ("seeds", "weights", "rule_based", "lookahead"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return dataclass_from_mapping(BenchmarkConfig, data, "the benchmark config")


def default_benchmark_path() -> Path:
    """The shipped ``experiments/configs/benchmark.yaml``."""
    return Path(str(resources.files("experiments") / "configs" / "benchmark.yaml"))


def load_benchmark_config(path: str | Path | None = None) -> BenchmarkConfig:
    """Load a benchmark YAML (the shipped one when ``path`` is None)."""
    source = path if path is not None else default_benchmark_path()
    return benchmark_config_from_dict(read_yaml(source, "benchmark config"))


def day_scenario(base: ScenarioConfig, day: TestDay) -> ScenarioConfig:
    """The base scenario on ``day``'s season and day type."""
    profiles = replace(base.profiles, season=day.season, day_type=day.day_type)
    return replace(base, profiles=profiles)
