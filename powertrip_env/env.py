"""The PowerTrip Gymnasium environment with a vector reward (MO-Gymnasium convention)."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from powertrip_env import metrics
from powertrip_env.config import (
    ScenarioConfig,
    check_day_seed,
    check_flag,
    load_scenario_config,
)
from powertrip_env.episode import FAILURE_COST, check_max_episode_steps
from powertrip_env.errors import EnvClosedError
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.geometry import feeder_geometry
from powertrip_env.grid.state import CPBusReading, GridState
from powertrip_env.observation import ObservationLayout, observation_bounds, phase_map
from powertrip_env.render import (
    FeederRenderer,
    FrameWindow,
    RenderColour,
    RenderSnapshot,
    check_render_args,
)
from powertrip_env.scenario import Scenario, build_scenario
from powertrip_env.simulator import FeederSimulator, SimState, unbalance_at_cp_buses
from powertrip_env.vectorize import refuse_scalar_callers

#: Built days (scenario, simulator, references) kept for later episodes.
_DAY_CACHE = 8


class PowerTripEnv(gym.Env[np.ndarray, np.ndarray]):
    """Smart control of EV charging points and PV inverters on a real LV feeder.

    ## Description
    Each episode is one day on an OpenDSS model of an LV feeder (default: ENWL network 1,
    feeder 1 with ENWL's own source and transformer parameters) with EV charging points (CPs)
    and rooftop PV. At every step the agent sets each CP's charging power and each PV system's
    output; the residential loads are fixed by the day's profiles. Two costs conflict: phase
    unbalance at the CP buses (f1) and PV curtailment (f2) (architecture.md §6).

    ## Action Space
    ``Box(0, 1, (n_cp + n_pv,), float32)``: for each CP, the fraction of its range between the
    guaranteed minimum (EV energy guarantee) and its request; for each PV system, the fraction
    of its availability. Values outside [0, 1] are clipped; NaN or infinite values raise
    ``ValueError``; a wrong shape raises ``ValueError``.

    ## Observation Space
    ``Box(float32)``, every entry clipped into its bounds:

    | index | meaning | unit | bounds |
    |---|---|---|---|
    | 0, 1 | time of day as sin, cos | - | [-1, 1] |
    | per CP, 1st | plugged-in flag | - | [0, 1] |
    | per CP, 2nd | energy still owed to the EV | kWh | [0, 100] |
    | per CP, 3rd | time to departure | h | [0, 24] |
    | per CP, 4th | request (upper bound) | kW | [0, 50] |
    | per CP, 5th | guaranteed minimum (lower bound) | kW | [0, 50] |
    | per PV | availability | kW | [0, 50] |
    | per CP bus (3 each) | phase-to-neutral voltage a, b, c at the last step | pu | [0, 2] |
    | 3 | net load per phase (loads + CP requests - PV), before control | kW | [-1e4, 1e4] |
    | per CP bus | unbalance index at the last step | % | [0, 100] |

    ## Rewards
    A float32 vector of 2: ``-[f1 / F1_ref, f2 / F2_ref]`` (negated normalised costs; RL
    maximises). F1_ref is the day's largest no-control f1, F2_ref its largest full-curtailment
    f2. Raw f1 (%^2) and f2 (kW^2) and every architecture.md §7 metric are in ``info``. A step whose
    power flow fails earns ``-[10, 10]``. Scalarise with ``mo_gymnasium.wrappers.LinearReward``.

    ## Starting State
    Midnight of a day drawn from ``self.np_random`` (or ``options["day_seed"]``), EVs owing
    their full session energy.

    ## Episode End
    Truncated after the day's last step (or after ``max_episode_steps``); terminated when a
    power flow does not converge (``info["termination_reason"]`` says why). The registered
    ids carry ``max_episode_steps=288`` (one day at 5-minute steps) for ``TimeLimit`` and
    ``TimeAwareObservation``.

    ## Rendering
    ``render_mode="rgb_array"``: ``render()`` returns a (480, 720, 3) uint8 frame of the
    feeder after the last step: lines and buses at their coordinates coloured by the lowest
    phase voltage (``render_colour="voltage"``) or the phase voltage unbalance
    (``"unbalance"``) at each bus, every CP and PV system with a bar of its setpoint over its
    upper bound, and a panel with the time, the normalised costs and the setpoints.
    ``"human"`` shows it in a matplotlib window after every ``reset`` and ``step``.

    ## Arguments
    ``config``: a :class:`ScenarioConfig`, a YAML path, or ``None`` for the default scenario;
    ``energy_guarantee``: override of ``config.ev.energy_guarantee`` (``False`` is the seed
    formulation); ``day_seed``: fix every episode to one day (else drawn per reset);
    ``info_metrics``: put every architecture.md §7 metric in each step's ``info`` and keep the
    simulator's day log (default; costlier, ``benchmarks/env_step.py``), or only ``f1``, ``f2``,
    ``f_norm`` and the setpoints, reading just the CP buses (for training; the same
    observations and rewards); ``max_episode_steps``: truncate after this many steps
    (default: the whole day); ``render_mode``, ``render_colour``: see Rendering.
    ``reset(options={"day_seed": int})`` chooses the day of one episode.

    ## Version History
    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 12}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        config: ScenarioConfig | str | None = None,
        energy_guarantee: bool | None = None,
        day_seed: int | None = None,
        info_metrics: bool = True,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        render_colour: RenderColour = "voltage",
    ) -> None:
        self._init_args = (
            config,
            energy_guarantee,
            day_seed,
            info_metrics,
            max_episode_steps,
            render_mode,
            render_colour,
        )
        check_render_args(render_mode, render_colour, self.metadata["render_modes"])
        self.max_episode_steps = check_max_episode_steps(max_episode_steps)
        self.render_mode = render_mode
        self.render_colour = render_colour
        self._renderer: FeederRenderer | None = None
        self._window: FrameWindow | None = None
        self._snapshot: RenderSnapshot | None = None
        self._horizon = 0
        self._closed = False
        self.info_metrics = check_flag(info_metrics, "info_metrics")
        self._terminated = False  # the episode ended on a failed power flow
        cfg = config if isinstance(config, ScenarioConfig) else load_scenario_config(config)
        if energy_guarantee is not None:
            guarantee = check_flag(energy_guarantee, "energy_guarantee")
            cfg = replace(cfg, ev=replace(cfg.ev, energy_guarantee=guarantee))
        if day_seed is not None:
            day_seed = check_day_seed(day_seed)
        self.config = cfg
        self.day_seed = day_seed
        self.feeder = cfg.feeder.build()
        self.engine = OpenDSSEngine(self.feeder, cfg.devices)
        self.n_cp, self.n_pv = cfg.devices.n_cp, cfg.devices.n_pv
        # Loads, CP requests (+1) and PV availability (-1) to their phases: the net load.
        self._net_phase_map = np.concatenate(
            [
                self.engine.load_phase_shares,
                phase_map([d.phase - 1 for d in cfg.devices.cps]),
                -phase_map([d.phase - 1 for d in cfg.devices.pvs]),
            ]
        )
        self._days: OrderedDict[int, tuple[Scenario, tuple[float, float]]] = OrderedDict()
        self._v_base = float(self.engine.base_v[0])
        self._unbalance_index = cfg.objective.unbalance_index

        n_act = self.n_cp + self.n_pv
        self.action_space = spaces.Box(0.0, 1.0, shape=(n_act,), dtype=np.float32)
        self._obs_low, self._obs_high = observation_bounds(self.n_cp, self.n_pv)
        self.observation_space = spaces.Box(self._obs_low, self._obs_high, dtype=np.float32)
        self.reward_dim = 2
        self.reward_space = spaces.Box(low=-FAILURE_COST, high=0.0, shape=(2,), dtype=np.float32)
        self.sim: FeederSimulator | None = None
        self.refs = (1.0, 1.0)
        self._state: SimState | None = None  # what the last observation showed
        self._obs_layout = ObservationLayout(self.n_cp, self.n_pv, self._obs_low, self._obs_high)
        self._obs_buf = np.zeros(self._obs_low.size)

    # ------------------------------------------------------------------------ spaces
    def observation(self, state: SimState) -> np.ndarray:
        """The observation of ``state`` exactly as ``reset`` and ``step`` return it.

        Public so that a policy adapter running in :meth:`FeederSimulator.run` (which hands
        controllers a :class:`SimState`) builds the same float32 input the agent trained on.
        """
        return self._observation(state)

    def _observation(
        self, state: SimState, unbalance_pct: Sequence[float] | None = None
    ) -> np.ndarray:
        """``state``'s observation (from ``state`` alone: any simulator's state will do);
        ``unbalance_pct`` is the previous step's unbalance at the CP buses when the caller
        has it already (else it is computed from ``state.previous``)."""
        previous = state.previous
        if previous is not None and previous.converged:
            v_cp = np.abs(previous.v_cp_bus).ravel() / self._v_base
            if unbalance_pct is None:
                unbalance_pct = unbalance_at_cp_buses(previous, self._unbalance_index)
        else:
            v_cp = None
            unbalance_pct = None
        angle = 2.0 * math.pi * state.hour / 24.0
        request = state.upper_kw[: self.n_cp]
        # Net load per phase before control: loads + CP requests - PV availability.
        devices_kw = np.concatenate((state.load_p_kw, request, state.pv_available_kw))
        return self._obs_layout.write(
            self._obs_buf,
            time_sin_cos=(math.sin(angle), math.cos(angle)),
            plugged=state.plugged,
            remaining_kwh=state.remaining_kwh,
            time_to_departure_h=state.time_to_departure_h,
            request_kw=request,
            minimum_kw=state.lower_kw[: self.n_cp],
            pv_available_kw=state.pv_available_kw,
            v_cp_pu=v_cp,
            net_load_kw=devices_kw @ self._net_phase_map,
            unbalance_pct=unbalance_pct,
        )

    # ------------------------------------------------------------------------- days
    def _day(self, seed: int) -> tuple[Scenario, tuple[float, float]]:
        if seed in self._days:
            self._days.move_to_end(seed)
            return self._days[seed]
        scenario = build_scenario(
            self.config, seed, n_loads=self.engine.n_loads, feeder=self.feeder
        )
        sim = FeederSimulator(scenario, engine=self.engine)
        self._days[seed] = (scenario, sim.objective_refs())
        if len(self._days) > _DAY_CACHE:
            self._days.popitem(last=False)
        return self._days[seed]

    # ----------------------------------------------------------------------- gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if self._closed:
            raise EnvClosedError("reset() after close(): the engine is freed; make a new env")
        if self._horizon == 0:  # the first reset: is the caller able to take a vector reward?
            refuse_scalar_callers()
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"day_seed"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; allowed: ['day_seed']")
        if "day_seed" in options:
            day_seed = check_day_seed(options["day_seed"], "options['day_seed']")
        elif self.day_seed is not None:
            day_seed = self.day_seed
        else:
            day_seed = int(self.np_random.integers(0, 2**31 - 1))
        scenario, self.refs = self._day(day_seed)
        self.sim = FeederSimulator(scenario, engine=self.engine)
        self._terminated = False
        state = self._state = self.sim.reset()
        self._horizon = min(self.sim.n_steps, self.max_episode_steps or self.sim.n_steps)
        info = {"day_seed": day_seed, "f1_ref": self.refs[0], "f2_ref": self.refs[1]}
        if self.render_mode is not None:
            self._snapshot = RenderSnapshot(
                None, None, None, 0, self._horizon, state.dt_h, None, day_seed, "start of the day"
            )
            if self.render_mode == "human":
                self.render()
        return self._observation(state), info

    def action_to_setpoints(self, action: np.ndarray, state: SimState) -> np.ndarray:
        """Map fractions in [0, 1] (clipped) to setpoints in kW within the step's bounds."""
        a = np.asarray(action, dtype=float)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"action must be finite fractions in [0, 1], got {a.tolist()}")
        a = np.minimum(np.maximum(a, 0.0), 1.0)  # np.clip, without its wrapper cost
        return state.lower_kw + a * (state.upper_kw - state.lower_kw)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        if self._closed:
            raise EnvClosedError("step() after close(): the engine is freed; make a new env")
        sim, state = self.sim, self._state
        if sim is None or state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self._terminated:
            raise gym.error.ResetNeeded("the episode terminated (power flow failed); call reset()")
        if sim.t >= self._horizon:
            raise gym.error.ResetNeeded("the episode is over; call reset()")
        x = self.action_to_setpoints(action, state)
        # x is finite and inside the step's bounds by construction: no second check.
        if self.info_metrics:
            result = sim.step(x, with_metrics=True, checked=True)
            out = self._transition(x, result.grid, result.metrics)
        else:  # training: only the CP buses are read, and the day log is not kept
            out = self._transition(x, sim.advance(x, checked=True), {})
        if self.render_mode is not None:
            self._remember_frame(state, x, out[4])
        return out

    def _transition(
        self, x: np.ndarray, grid: GridState | CPBusReading, info: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        sim = self.sim
        assert sim is not None
        info["setpoints_kw"] = x
        state = self._state = sim.observe()
        if not grid.converged:
            info["termination_reason"] = grid.error
            self._terminated = True
            reward = np.full(2, -FAILURE_COST, dtype=np.float32)
            return self._observation(state), reward, True, False, info
        # The step's unbalance drives f1 and is the next observation's "previous unbalance".
        unbalance = unbalance_at_cp_buses(grid, self._unbalance_index)
        if "f1" not in info:
            x_pv = x[self.n_cp :]
            info["f1"] = float(metrics.f_unbalance(unbalance))
            info["f2"] = float(metrics.f_curtailment(sim.profiles.pv_available_kw[sim.t - 1], x_pv))
        f1_norm, f2_norm = info["f1"] / self.refs[0], info["f2"] / self.refs[1]  # refs > 0
        info["f_norm"] = np.array((f1_norm, f2_norm))
        reward = metrics.objectives_to_reward(
            (min(f1_norm, FAILURE_COST), min(f2_norm, FAILURE_COST))
        )
        obs = self._observation(state, unbalance)
        return obs, reward, False, sim.t >= self._horizon, info

    # ---------------------------------------------------------------------------- render
    def _remember_frame(self, before: SimState, x: np.ndarray, info: dict[str, Any]) -> None:
        """Keep what :meth:`render` draws of the step just taken (the engine holds its solve)."""
        assert self.sim is not None and self._snapshot is not None
        failed = "termination_reason" in info
        self._snapshot = RenderSnapshot(
            v_pu=None if failed else self.engine.node_voltages(),
            setpoints_kw=x,
            upper_kw=before.upper_kw,
            step=self.sim.t,
            n_steps=self._horizon,
            dt_h=before.dt_h,
            f_norm=info.get("f_norm"),
            day_seed=self._snapshot.day_seed,
            note=f"power flow failed: {info['termination_reason']}" if failed else "",
        )
        if self.render_mode == "human":
            self.render()

    def render(self) -> np.ndarray | None:
        """The feeder after the last step (see :mod:`powertrip_env.render`).

        ``render_mode="rgb_array"``: a (480, 720, 3) uint8 frame; ``"human"``: shows it in a
        matplotlib window (also after every ``reset`` and ``step``) and returns ``None``.
        Without a render mode it warns and returns ``None``, as Gymnasium's envs do.
        """
        if self.render_mode is None:
            gym.logger.warn(
                "render() without a render mode: make the env with "
                "render_mode='rgb_array' or 'human'"
            )
            return None
        if self._snapshot is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        if self._renderer is None:
            self._renderer = FeederRenderer(
                feeder_geometry(self.engine),
                self.engine.node_names,
                self.config.devices,
                self.render_colour,
            )
        frame = self._renderer.frame(self._snapshot)
        if self.render_mode == "human":
            if self._window is None:
                self._window = FrameWindow(self.metadata["render_fps"])
            self._window.show(frame)
            return None
        return frame

    def close(self) -> None:
        """Free the OpenDSS engine; ``reset`` and ``step`` raise :class:`EnvClosedError` after."""
        self._closed = True
        window = getattr(self, "_window", None)
        if window is not None:
            window.close()
        if getattr(self, "engine", None) is not None and self.engine._dss is not None:
            self.engine.close()
        super().close()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by rebuilding from the constructor arguments (no OpenDSS state travels)."""
        return (type(self), self._init_args)
