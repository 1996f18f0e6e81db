"""A batched vector env: N copies of the feeder stepped in one call (architecture.md §8).

:class:`BatchedPowerTripEnv` is the vectorised twin of :class:`~powertrip_env.env.PowerTripEnv`:
same observation layout, action mapping, vector reward and episode end, so that a policy
trained on one runs on the other. Instead of one OpenDSS solve per copy, every step solves all
N copies at once with the exact reduced network model
(:class:`~powertrip_env.grid.reduced.ReducedNetwork`, about 1e-12 pu from a tightly converged
OpenDSS solve). One OpenDSS engine builds the model and is then closed; the step is pure numpy.

The EV bookkeeping is :mod:`powertrip_env.ev`'s (:func:`~powertrip_env.ev.guarantee_bounds_kw`,
:func:`~powertrip_env.ev.owed_after_kwh`), applied here over a leading copy axis by
:func:`_cp_bounds` and :func:`_deliver`; ``tests/test_vector_env.py`` holds the two envs in
lockstep.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from gymnasium import logger, spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from powertrip_env import metrics
from powertrip_env.config import (
    MAX_DAY_SEED,
    ScenarioConfig,
    check_day_seed,
    check_flag,
    load_scenario_config,
)
from powertrip_env.days import DayFactory, DayPrefetcher, DayTables
from powertrip_env.episode import FAILURE_COST, check_max_episode_steps
from powertrip_env.errors import ConfigError, EnvClosedError
from powertrip_env.ev import guarantee_bounds_kw, owed_after_kwh
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.geometry import FeederGeometry, feeder_geometry
from powertrip_env.grid.reduced import ReducedNetwork, ReducedSolution
from powertrip_env.observation import assemble_observations, observation_bounds, phase_map
from powertrip_env.profiles import DayGrid
from powertrip_env.render import (
    FeederRenderer,
    FrameWindow,
    RenderColour,
    RenderSnapshot,
    check_render_args,
)

#: Days kept built (profiles and references) at least; at least ``num_envs`` are kept.
_DAY_CACHE = 8
_MAX_DAY_SEED = 2**31 - 1


@dataclass(frozen=True)
class _LastStep:
    """The results of the last :meth:`BatchedPowerTripEnv.step` of copies ``ids`` (rows)."""

    ids: np.ndarray
    solution: ReducedSolution
    setpoints_kw: np.ndarray
    upper_kw: np.ndarray
    f_norm: np.ndarray
    step: np.ndarray  # steps taken in the day after it


# ------------------------------------------------------------------ batched EV bookkeeping
def _remaining_at(remaining_kwh: np.ndarray, rows: np.ndarray, session: np.ndarray) -> np.ndarray:
    """(m, n_cp) energy owed to the EV plugged into each CP of copies ``rows`` (0 if none).

    ``remaining_kwh`` is (B, n_sessions) per copy; ``session`` (m, n_cp) the plugged-in
    session of each CP of each copy in ``rows`` (-1 when none).
    """
    owed = remaining_kwh[rows[:, np.newaxis], np.maximum(session, 0)]
    return np.where(session >= 0, owed, 0.0)


def _cp_bounds(
    remaining_kwh: np.ndarray,
    plugged: np.ndarray,
    stop_step: np.ndarray,
    t: np.ndarray,
    request_kw: np.ndarray,
    p_max_kw: np.ndarray,
    dt_h: float,
    energy_guarantee: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """(m, n_cp) lower and upper CP bounds, kW: :meth:`EVFleetState.bounds` over copies.

    The same float operations in the same order, so the bounds are bit-identical to the
    single env's. ``t`` is (m,) the step of each copy.
    """
    if not energy_guarantee:  # seed formulation: the EV's no-control request
        return np.zeros_like(request_kw), request_kw
    after_kwh = p_max_kw * (np.maximum(stop_step - t[:, np.newaxis] - 1, 0.0) * dt_h)
    lower, upper = guarantee_bounds_kw(remaining_kwh, after_kwh, p_max_kw, dt_h)
    return np.where(plugged, lower, 0.0), np.where(plugged, upper, 0.0)


def _deliver(
    remaining_kwh: np.ndarray, rows: np.ndarray, session: np.ndarray, cp_kw: np.ndarray, dt_h: float
) -> None:
    """Book the energy each plugged-in EV of copies ``rows`` received at ``cp_kw`` (in place)."""
    r, c = np.nonzero(session >= 0)  # one session per CP: no index repeats within a copy
    copy, s = rows[r], session[r, c]
    remaining_kwh[copy, s] = owed_after_kwh(remaining_kwh[copy, s], cp_kw[r, c], dt_h)


class BatchedPowerTripEnv(VectorEnv):
    """N copies of :class:`~powertrip_env.env.PowerTripEnv` stepped in one numpy call.

    ## Description
    Each copy simulates its own day of the scenario (its own load, PV and EV profiles and EV
    state); all copies share the feeder and device placement. Every :meth:`step` solves the N
    power flows together with the exact reduced network model (architecture.md §8) instead of N
    OpenDSS solves; the two agree to about 1e-12 pu when OpenDSS is tightly converged
    (``tests/test_vector_env.py`` holds them within 1e-6 pu).

    ## Action Space
    ``single_action_space`` is ``PowerTripEnv``'s ``Box(0, 1, (n_cp + n_pv,), float32)``;
    ``action_space`` batches it to ``(num_envs, n_cp + n_pv)``. Each value is the fraction of
    its step's range (CP: guaranteed minimum to request; PV: 0 to availability), clipped into
    [0, 1]. NaN or infinite values (in any row) or a wrong shape raise ``ValueError``.

    ## Observation Space
    ``single_observation_space`` is ``PowerTripEnv``'s (same table, same bounds, float32);
    ``observation_space`` batches it to ``(num_envs, obs_dim)``.

    ## Rewards
    ``(num_envs, 2)`` float32: per copy ``-[f1 / F1_ref, f2 / F2_ref]`` as in ``PowerTripEnv``
    (vector reward, MO-Gymnasium's vector-env convention). ``reward_space`` is the per-copy
    ``Box(-10, 0, (2,), float32)`` and ``reward_dim = 2``, as in ``MOSyncVectorEnv``. The
    references of each day come from a no-control pass through the reduced model, the same
    computation as ``PowerTripEnv``'s
    (:meth:`~powertrip_env.simulator.FeederSimulator.objective_refs`), for every day
    missing from the cache, each day solved on its own so that its references equal
    ``PowerTripEnv``'s to the last bit. A copy whose power flow fails earns ``-[10, 10]``.

    ## Starting State
    Each copy starts at midnight of a day drawn from its own generator (see Arguments).

    ## Episode End
    A copy is truncated after its day's last step and terminated when its power flow does not
    converge (``infos["termination_reason"]``); other copies carry on.

    Autoreset (``autoreset_mode``, also in ``metadata["autoreset_mode"]``), as Gymnasium's
    ``SyncVectorEnv``:

    * ``NEXT_STEP`` (default, as ``MOSyncVectorEnv``): the step after a copy ended resets it,
      ignoring its action, and returns its first observation of the new day with reward
      ``[0, 0]``, ``terminated = truncated = False`` and the reset's info (``day_seed``,
      ``f1_ref``, ``f2_ref``).
    * ``SAME_STEP``: the step that ends a copy also resets it: it returns the new day's first
      observation with the last step's reward and flags; ``infos["final_obs"]`` (an object
      array, ``None`` for the other copies) and ``infos["final_info"]`` hold that copy's last
      observation and step info, and the top level its reset info.
    * ``DISABLED``: ended copies must be reset with ``reset(options={"reset_mask": mask})``;
      stepping before that raises ``ResetNeeded``.

    ## Info
    Dicts of arrays with a boolean mask ``_key`` per key (Gymnasium's vector convention).
    Step: ``f1`` (%^2) and ``f2`` (kW^2) raw, ``f_norm`` (N, 2), ``setpoints_kw`` (N, n_cp +
    n_pv), ``v_cp_pu`` (N, n_cp, 3) CP-bus phase voltages in pu of :attr:`v_base`,
    ``unbalance_pct`` (N, n_cp), and ``termination_reason`` where a copy failed. Reset:
    ``day_seed``, ``f1_ref``, ``f2_ref``.

    ## Arguments
    ``num_envs``: number of copies. ``config``, ``energy_guarantee``, ``day_seed``: as for
    ``PowerTripEnv`` (``day_seed`` fixes every copy's every episode to one day). ``day_cache``:
    keep at least this many built days (default: ``max(8, num_envs)``; training on a fixed
    pool of days sets it to the pool's size, so that no day is built twice).
    ``info_metrics``: the step info above (default) or, like
    ``PowerTripEnv(info_metrics=False)``, only ``f1``, ``f2``, ``f_norm`` and
    ``setpoints_kw``. ``max_episode_steps``: truncate each copy's episode after this many
    steps (default: the day's; the registered ids pass 288, one day at 5-minute steps).
    ``autoreset_mode``: see Episode End. ``render_mode`` (``"rgb_array"`` or ``"human"``) and
    ``render_colour`` (``"voltage"`` or ``"unbalance"``): as ``PowerTripEnv``;
    ``render_copy``: the copy drawn (settable later). ``prefetch_days``: build the copies'
    next days in a background process while they step (:mod:`powertrip_env.days`): each copy
    draws its next day when it starts one (the same draws, in the same order, so the same
    days), and the background builds them; for training on a new day every episode. The
    process starts with ``spawn``, so a script that uses it needs the usual
    ``if __name__ == "__main__":`` guard (as SB3's ``SubprocVecEnv``); :meth:`prefetch`
    announces days chosen by the caller (``options["day_seed"]``).
    ``reset(seed=s)`` seeds copy k's generator with ``s + k`` (SB3, Gymnasium), so copy k
    draws the same days as a ``PowerTripEnv`` reset with ``s + k``; a sequence (list, tuple
    or numpy array) gives one seed per copy. ``reset(options=...)`` takes ``day_seed`` (one
    int for every copy, or one per copy) and ``reset_mask`` (a (N,) bool array: reset only
    those copies). The scenario's ``objective.unbalance_index`` must be ``pui`` or ``vuf``
    (the reduced model gives no branch powers for ``power``).

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012 - Gymnasium's convention
        "render_modes": ["rgb_array", "human"],
        "render_fps": 12,
        "autoreset_mode": AutoresetMode.NEXT_STEP,  # the default; each instance says its own
    }
    _autoreset: np.ndarray  # (num_envs,) copies that ended last step and reset on the next
    _remaining: np.ndarray  # (num_envs, n_sessions) energy owed to each session, kWh

    def __init__(
        self,
        num_envs: int,
        config: ScenarioConfig | str | None = None,
        energy_guarantee: bool | None = None,
        day_seed: int | None = None,
        day_cache: int | None = None,
        info_metrics: bool = True,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        render_colour: RenderColour = "voltage",
        render_copy: int = 0,
        prefetch_days: bool = False,
    ) -> None:
        self._init_args = (
            num_envs,
            config,
            energy_guarantee,
            day_seed,
            day_cache,
            info_metrics,
            max_episode_steps,
            autoreset_mode,
            render_mode,
            render_colour,
            render_copy,
            prefetch_days,
        )
        check_render_args(render_mode, render_colour, self.metadata["render_modes"])
        self.render_mode = render_mode
        self.render_colour = render_colour
        self.info_metrics = check_flag(info_metrics, "info_metrics")
        self.max_episode_steps = check_max_episode_steps(max_episode_steps)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ConfigError(f"num_envs={num_envs!r} must be a positive integer")
        cfg = config if isinstance(config, ScenarioConfig) else load_scenario_config(config)
        if energy_guarantee is not None:
            guarantee = check_flag(energy_guarantee, "energy_guarantee")
            cfg = replace(cfg, ev=replace(cfg.ev, energy_guarantee=guarantee))
        if day_seed is not None:
            day_seed = check_day_seed(day_seed)
        if day_cache is not None and (
            isinstance(day_cache, bool) or not isinstance(day_cache, int) or day_cache < 1
        ):
            raise ConfigError(f"day_cache={day_cache!r} must be a positive integer or None")
        self.unbalance_index = cfg.objective.unbalance_index
        if self.unbalance_index not in metrics.VOLTAGE_INDICES:
            raise ConfigError(
                f"objective.unbalance_index={self.unbalance_index!r} is not supported by "
                "BatchedPowerTripEnv, whose reduced network model gives voltages only; use "
                "'pui' or 'vuf', or PowerTripEnv for 'power'"
            )
        self.config = cfg
        self.day_seed = day_seed
        self.num_envs = num_envs
        self.feeder = cfg.feeder.build()
        devices = cfg.devices
        self.n_cp, self.n_pv = devices.n_cp, devices.n_pv
        with OpenDSSEngine(self.feeder, devices) as engine:
            self.net = ReducedNetwork(engine)
            # The engine closes here: what render() draws is taken now, if it will be needed.
            geometry = feeder_geometry(engine) if render_mode is not None else None
            phase_load = engine.load_phase_shares  # three-phase loads split over a, b, c
        self.n_loads = self.net.n_loads
        #: Voltage base of the observation's CP-bus voltages (``PowerTripEnv``'s), volts.
        self.v_base = float(self.net.base_v[0])
        self.energy_guarantee = cfg.ev.energy_guarantee
        grid = DayGrid(cfg.profiles.resolution_min)
        self.n_steps, self.dt_h = grid.n_steps, grid.dt_h
        self.p_max_kw = np.array([d.p_max_kw for d in devices.cps])
        self._phase_load = phase_load
        self._phase_cp = phase_map([d.phase - 1 for d in devices.cps])
        self._phase_pv = phase_map([d.phase - 1 for d in devices.pvs])

        n_act = self.n_cp + self.n_pv
        self.single_action_space = spaces.Box(0.0, 1.0, shape=(n_act,), dtype=np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._obs_low, self._obs_high = observation_bounds(self.n_cp, self.n_pv)
        self.single_observation_space = spaces.Box(self._obs_low, self._obs_high, dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.reward_dim = 2
        self.reward_space = spaces.Box(low=-FAILURE_COST, high=0.0, shape=(2,), dtype=np.float32)

        self._factory = DayFactory(
            config=cfg,
            feeder=self.feeder,
            net=self.net,
            phase_load=phase_load,
            phase_pv=self._phase_pv,
            p_max_kw=self.p_max_kw,
            dt_h=self.dt_h,
            n_steps=self.n_steps,
            unbalance_index=self.unbalance_index,
            energy_guarantee=self.energy_guarantee,
        )
        self._days: OrderedDict[int, DayTables] = OrderedDict()
        self._day_cache = max(_DAY_CACHE, num_envs, day_cache or 0)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        #: Each copy's next day, drawn from its generator one episode ahead (prefetching).
        self._next_day: list[int | None] = [None] * num_envs
        self._prefetcher = (
            DayPrefetcher(self._factory, capacity=2 * self._day_cache)
            if check_flag(prefetch_days, "prefetch_days")
            else None
        )
        self._started = False
        self._allocate()
        self._horizon = min(self.n_steps, self.max_episode_steps or self.n_steps)
        self.render_copy = render_copy
        self._geometry: FeederGeometry | None = geometry
        self._renderer: FeederRenderer | None = None
        self._window: FrameWindow | None = None
        self._last_step: _LastStep | None = None  # the last step's results, for render()
        self._fresh = np.ones(num_envs, dtype=bool)  # copies not stepped since their reset

    # ------------------------------------------------------------------------------ days
    def _get_days(self, seeds: Sequence[int]) -> list[DayTables]:
        """The days of ``seeds`` (taken from the prefetcher, or built, on a cache miss)."""
        missing = sorted({s for s in seeds if s not in self._days})
        if missing:
            build = self._factory.build if self._prefetcher is None else self._prefetcher.take
            for day in build(missing):
                self._days[day.seed] = day
        days = []
        for s in seeds:
            self._days.move_to_end(s)
            days.append(self._days[s])
        while len(self._days) > self._day_cache:
            self._days.popitem(last=False)
        return days

    def prefetch(self, day_seeds: Sequence[int]) -> None:
        """Start building the days ``day_seeds`` in the background (``prefetch_days=True``).

        For callers that choose each copy's next day themselves (``options["day_seed"]``):
        announce the days of the next resets now, and they are built while the copies step.
        Days already built are skipped; without ``prefetch_days`` this does nothing.
        """
        seeds = list(day_seeds)
        if not all(_is_day_seed(s) for s in seeds):
            raise ValueError(f"day_seeds={day_seeds!r} must be non-negative ints (day seeds)")
        if self._prefetcher is not None:
            self._prefetcher.submit(int(s) for s in seeds if int(s) not in self._days)

    def wait_prefetched(self, timeout: float | None = None) -> None:
        """Block until every day announced for building in the background is built (or
        ``timeout`` seconds pass); returns at once without ``prefetch_days``."""
        if self._prefetcher is not None:
            self._prefetcher.wait(timeout)

    # ---------------------------------------------------------------------- gym vector API
    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | np.ndarray | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy (or those of ``options["reset_mask"]``) to the start of a day.

        Args:
            seed: ``None``, an int ``s`` (copy k gets ``s + k``) or any sequence (list,
                tuple, numpy array) of one seed (or ``None``) per copy; a seed re-seeds that
                copy's generator, from which its days are drawn.
            options: ``day_seed`` (int for every copy, or one per copy) chooses the day;
                ``reset_mask`` ((num_envs,) bool) resets only the copies marked True.

        Returns:
            ``(observations, infos)``; ``infos`` has ``day_seed``, ``f1_ref`` and ``f2_ref``.
        """
        if self.closed:
            raise EnvClosedError("reset() after close(): make a new vector env")
        if isinstance(seed, (int, np.integer)) and _is_int(seed):
            super().reset(seed=int(seed))
        seeds = self._seed_list(seed)
        options = dict(options or {})
        unknown = set(options) - {"day_seed", "reset_mask"}
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; allowed: ['day_seed', 'reset_mask']"
            )
        ids = self._reset_ids(options.get("reset_mask"))
        day_seeds = self._day_seed_list(options.get("day_seed"))
        info = self._reset_copies(ids, [seeds[k] for k in ids], [day_seeds[k] for k in ids])
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), info

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy with its row of ``actions``; ended copies reset per the autoreset mode.

        Returns:
            ``(observations (N, obs_dim) float32, rewards (N, 2) float32, terminations (N,),
            truncations (N,), infos)``.

        Raises:
            ValueError: ``actions`` is not (num_envs, n_cp + n_pv) or holds NaN/inf values.
            gymnasium.error.ResetNeeded: called before :meth:`reset`, or (``DISABLED``
                autoreset) a copy that ended was not reset with ``options["reset_mask"]``.
        """
        if self.closed:
            raise EnvClosedError("step() after close(): make a new vector env")
        if not self._started:
            raise ResetNeeded("call reset() before step()")
        a = self._validate(actions)
        n = self.num_envs
        rewards = np.zeros((n, 2), dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        info: dict[str, Any] = {}
        resetting = self._autoreset.copy()
        if resetting.any() and self.autoreset_mode == AutoresetMode.DISABLED:
            raise ResetNeeded(
                f"copies {np.flatnonzero(resetting).tolist()} ended and autoreset_mode is "
                "DISABLED: reset them with reset(options={'reset_mask': mask}) first"
            )
        if resetting.any():  # NEXT_STEP autoreset: these copies' actions are ignored
            reset_ids = np.flatnonzero(resetting)
            info = self._reset_copies(reset_ids, [None] * reset_ids.size, [None] * reset_ids.size)
            ids = np.flatnonzero(~resetting)
            a = a[ids]
        else:
            ids = self._all
        if ids.size:
            rewards[ids], terminated[ids], truncated[ids], values = self._step_copies(ids, a)
            ended = terminated | truncated
            if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
                info = self._reset_same_step(ids, values, ended)
            else:
                info |= self._scatter(ids, values)
        self._autoreset = terminated | truncated
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            self._autoreset[:] = False
        if self.render_mode == "human":
            self.render()
        return self._obs.copy(), rewards, terminated, truncated, info

    def _reset_same_step(
        self, ids: np.ndarray, values: dict[str, np.ndarray], ended: np.ndarray
    ) -> dict[str, Any]:
        """SAME_STEP autoreset, as Gymnasium's ``SyncVectorEnv``: the ended copies start their
        next day now; their last observation and step info go to ``final_obs`` (an object
        array, ``None`` for the others) and ``final_info``, their reset info to the top level.
        """
        done = np.flatnonzero(ended)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for k in done:
            final_obs[k] = self._obs[k].copy()
        final_info = self._scatter(done, {key: v[ended[ids]] for key, v in values.items()})
        going = ids[~ended[ids]]
        info = self._scatter(going, {key: v[~ended[ids]] for key, v in values.items()})
        info |= self._reset_copies(done, [None] * done.size, [None] * done.size, start_frame=False)
        info["final_obs"], info["_final_obs"] = final_obs, ended.copy()
        info["final_info"], info["_final_info"] = final_info, ended.copy()
        return info

    @property
    def render_copy(self) -> int:
        """The copy that :meth:`render` draws (0 by default; settable)."""
        return self._render_copy

    @render_copy.setter
    def render_copy(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"render_copy={value!r} must be an int in [0, {self.num_envs})")
        if not 0 <= value < self.num_envs:
            raise ConfigError(f"render_copy={value!r} must be in [0, {self.num_envs})")
        self._render_copy = int(value)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Copy :attr:`render_copy` after the last step, as ``PowerTripEnv.render`` draws it.

        ``render_mode="rgb_array"``: one (480, 720, 3) uint8 frame (not a tuple per copy);
        ``"human"``: shows it (also after every ``reset`` and ``step``) and returns ``None``.
        The voltages at every bus come from the reduced model's solution of that copy.
        """
        if self.render_mode is None:
            logger.warn(
                "render() without a render mode: make the env with "
                "render_mode='rgb_array' or 'human'"
            )
            return None
        if not self._started:
            raise ResetNeeded("call reset() before render()")
        if self._renderer is None:
            assert self._geometry is not None  # taken in __init__ when render_mode is set
            self._renderer = FeederRenderer(
                self._geometry, self.net.node_names, self.config.devices, self.render_colour
            )
        frame = self._renderer.frame(self._snapshot_of(self.render_copy))
        if self.render_mode == "human":
            if self._window is None:
                self._window = FrameWindow(self.metadata["render_fps"])
            self._window.show(frame)
            return None
        return frame

    def close_extras(self) -> None:
        if self._prefetcher is not None:
            self._prefetcher.close()
        if self._window is not None:
            self._window.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by rebuilding from the constructor arguments (like ``PowerTripEnv``)."""
        return (type(self), self._init_args)

    # ------------------------------------------------------------------------- internals
    def _allocate(self) -> None:
        """Per-copy arrays: each copy's day in a block of ``n_steps`` rows, and its state."""
        n, rows = self.num_envs, self.num_envs * self.n_steps
        self._all = np.arange(n)
        self._load_p = np.zeros((rows, self.n_loads))
        self._load_q = np.zeros((rows, self.n_loads))
        self._pv = np.zeros((rows, self.n_pv))
        self._fixed_net = np.zeros((rows, 3))
        self._session = np.full((rows, self.n_cp), -1, dtype=np.intp)
        self._stop = np.zeros((rows, self.n_cp))
        self._request = np.zeros((rows, self.n_cp))
        self._remaining = np.zeros((n, 1))  # (copies, sessions), widened as needed
        self._refs = np.ones((n, 2))
        self._t = np.zeros(n, dtype=np.intp)
        self._lower = np.zeros((n, self.n_cp))  # CP bounds at each copy's current step
        self._upper = np.zeros((n, self.n_cp))
        self._v_cp_pu = np.ones((n, 3 * self.n_cp))  # the last step's, for the observation
        self._unb = np.zeros((n, self.n_cp))
        self._obs = np.zeros((n, self._obs_low.size), dtype=np.float32)
        self._autoreset = np.zeros(n, dtype=bool)
        self._day_of_copy = np.zeros(n, dtype=np.int64)

    def _seed_list(self, seed: Any) -> list[int | None]:
        """One seed (or ``None``) per copy from ``None``, an int, or any sequence of ints."""
        n = self.num_envs
        if seed is None:
            return [None] * n
        if _is_int(seed):
            return [int(seed) + k for k in range(n)]
        values = [] if isinstance(seed, (str, bytes)) or np.ndim(seed) != 1 else list(seed)
        if len(values) == n and all(s is None or _is_int(s) for s in values):
            return [None if s is None else int(s) for s in values]
        raise ValueError(
            f"seed={seed!r} must be None, an int, or a sequence (list, tuple, numpy array) of "
            f"{n} ints or None, one per copy"
        )

    def _day_seed_list(self, day_seed: Any) -> list[int | None]:
        n = self.num_envs
        values = [day_seed] * n if day_seed is None or np.ndim(day_seed) == 0 else list(day_seed)
        if len(values) != n or any(v is not None and not _is_day_seed(v) for v in values):
            raise ValueError(
                f"options['day_seed']={day_seed!r} must be a non-negative int or a list of "
                f"{n} of them"
            )
        return [None if v is None else int(v) for v in values]

    def _reset_ids(self, mask: Any) -> np.ndarray:
        if mask is None:
            return np.arange(self.num_envs)
        if not (
            isinstance(mask, np.ndarray)
            and mask.dtype == np.bool_
            and mask.shape == (self.num_envs,)
            and mask.any()
        ):
            raise ValueError(
                f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},) "
                f"with at least one True, got {mask!r}"
            )
        if not self._started:
            raise ResetNeeded("the first reset() resets every copy; pass no reset_mask")
        return np.flatnonzero(mask)

    def _reset_copies(
        self,
        ids: np.ndarray,
        seeds: Sequence[int | None],
        day_seeds: Sequence[int | None],
        start_frame: bool = True,
    ) -> dict[str, Any]:
        """Start copies ``ids`` on a new day; write their first observations into ``_obs``.

        ``start_frame=False`` keeps the frame of the render copy's last step (SAME_STEP
        autoreset, where that step's frame is the one worth showing).
        """
        chosen, ahead = [], []
        for k, seed, day_seed in zip(ids, seeds, day_seeds, strict=True):
            if seed is not None:
                self._rngs[k], self._next_day[k] = seeding.np_random(seed)[0], None
            rng = self._rngs[k]
            if rng is None:  # never seeded: a seed from the vector env's own generator
                rng = self._rngs[k] = seeding.np_random(
                    int(self.np_random.integers(0, _MAX_DAY_SEED))
                )[0]
            if day_seed is not None:
                chosen.append(day_seed)
            elif self.day_seed is not None:
                chosen.append(self.day_seed)
            else:  # the draw PowerTripEnv.reset makes from its own np_random
                drawn = self._next_day[k]
                chosen.append(int(rng.integers(0, _MAX_DAY_SEED)) if drawn is None else drawn)
                if self._prefetcher is not None:  # the copy's next draw, made one episode early
                    self._next_day[k] = int(rng.integers(0, _MAX_DAY_SEED))
                    ahead.append(self._next_day[k])
        for k, day in zip(ids, self._get_days(chosen), strict=True):
            self._place(int(k), day)
        if ahead:
            self.prefetch(ahead)
        self._autoreset[ids] = False
        self._observe(ids)
        self._day_of_copy[ids] = chosen
        if start_frame:
            self._fresh[ids] = True
        return self._scatter(
            ids,
            {
                "day_seed": np.array(chosen, dtype=np.int64),
                "f1_ref": self._refs[ids, 0],
                "f2_ref": self._refs[ids, 1],
            },
        )

    def _place(self, k: int, day: DayTables) -> None:
        """Copy ``day`` into copy ``k``'s block, with the EVs owing their full energy."""
        block = slice(k * self.n_steps, (k + 1) * self.n_steps)
        self._load_p[block] = day.load_p_kw
        self._load_q[block] = day.load_q_kvar
        self._pv[block] = day.pv_available_kw
        self._fixed_net[block] = day.fixed_net_kw
        self._session[block] = day.session_at
        self._stop[block] = day.stop_at
        self._request[block] = day.request_kw
        n_sessions = day.requested_kwh.size
        if n_sessions > self._remaining.shape[1]:
            wider = np.zeros((self.num_envs, n_sessions))
            wider[:, : self._remaining.shape[1]] = self._remaining
            self._remaining = wider
        self._remaining[k] = 0.0
        self._remaining[k, :n_sessions] = day.requested_kwh
        self._refs[k] = day.refs
        self._t[k] = 0
        self._v_cp_pu[k] = 1.0
        self._unb[k] = 0.0

    def _observe(self, ids: np.ndarray) -> None:
        """Observations of copies ``ids`` at their current step; caches their CP bounds.

        After a day's last step a copy is observed at that last step (as ``PowerTripEnv``).
        """
        t = np.minimum(self._t[ids], self.n_steps - 1)
        f = ids * self.n_steps + t
        session = self._session[f]
        plugged = session >= 0
        owed = _remaining_at(self._remaining, ids, session)
        stop = self._stop[f]
        lower, upper = _cp_bounds(
            owed,
            plugged,
            stop,
            t,
            self._request[f],
            self.p_max_kw,
            self.dt_h,
            self.energy_guarantee,
        )
        self._lower[ids], self._upper[ids] = lower, upper
        self._obs[ids] = assemble_observations(
            hour_h=t * self.dt_h,
            plugged=plugged,
            remaining_kwh=owed,
            time_to_departure_h=(stop - t[:, np.newaxis]) * self.dt_h,
            request_kw=upper,
            minimum_kw=lower,
            pv_available_kw=self._pv[f],
            v_cp_pu=self._v_cp_pu[ids],
            net_load_kw=self._fixed_net[f] + upper @ self._phase_cp,
            unbalance_pct=self._unb[ids],
            low=self._obs_low,
            high=self._obs_high,
        )

    def _validate(self, actions: np.ndarray) -> np.ndarray:
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"actions must have shape {self.action_space.shape} (num_envs, n_cp + n_pv), "
                f"got {a.shape}"
            )
        finite = np.isfinite(a).all(axis=1)
        if not finite.all():
            raise ValueError(
                "actions must be finite fractions in [0, 1]; rows "
                f"{np.flatnonzero(~finite).tolist()} hold NaN or infinite values"
            )
        return np.clip(a, 0.0, 1.0)

    def _step_copies(
        self, ids: np.ndarray, a: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One step of copies ``ids`` at fractions ``a``: rewards, terminated, truncated, info."""
        n_cp, m = self.n_cp, ids.size
        t = self._t[ids]
        f = ids * self.n_steps + t
        lower = np.zeros_like(a)
        lower[:, :n_cp] = self._lower[ids]
        upper = np.empty_like(a)
        upper[:, :n_cp] = self._upper[ids]
        upper[:, n_cp:] = self._pv[f]
        x = lower + a * (upper - lower)  # PowerTripEnv.action_to_setpoints
        np.clip(x, lower, upper, out=x)  # FeederSimulator.clip
        cp_kw, pv_kw = x[:, :n_cp], x[:, n_cp:]

        sol = self.net.solve(self._load_p[f], self._load_q[f], cp_kw, pv_kw)
        v_cp_bus = self.net.cp_bus_phasors(sol)
        unb = metrics.unbalance(self.unbalance_index, v_cp_bus)
        f_raw = np.stack(
            [metrics.f_unbalance(unb), metrics.f_curtailment(upper[:, n_cp:], pv_kw)], axis=1
        )
        f_norm = metrics.normalise(f_raw, self._refs[ids])
        reward = np.clip(metrics.objectives_to_reward(f_norm), -FAILURE_COST, 0.0)
        v_cp_pu = np.abs(v_cp_bus) / self.v_base

        _deliver(self._remaining, ids, self._session[f], cp_kw, self.dt_h)
        self._t[ids] = t + 1
        ok = sol.converged
        self._v_cp_pu[ids] = np.where(ok[:, np.newaxis], v_cp_pu.reshape(m, -1), 1.0)
        self._unb[ids] = np.where(ok[:, np.newaxis], unb, 0.0)
        reward[~ok] = -FAILURE_COST
        truncated = (t + 1 >= self._horizon) & ok
        self._observe(ids)
        if self.render_mode is not None:  # references only: render() picks its copy later
            self._last_step = _LastStep(ids, sol, x, upper, f_norm, self._t[ids].copy())
            self._fresh[ids] = False
        values = {"f1": f_raw[:, 0], "f2": f_raw[:, 1], "f_norm": f_norm, "setpoints_kw": x}
        if self.info_metrics:
            values |= {"v_cp_pu": v_cp_pu, "unbalance_pct": unb}
        if not ok.all():
            values["termination_reason"] = _failure_reasons(sol)
        return reward, ~ok, truncated, values

    def _snapshot_of(self, k: int) -> RenderSnapshot:
        """What :meth:`render` draws of copy ``k``: its last step, or the start of its day."""
        last = self._last_step
        row = 0 if last is None else int(np.searchsorted(last.ids, k))
        day_seed = int(self._day_of_copy[k])
        if last is None or self._fresh[k] or row >= last.ids.size or last.ids[row] != k:
            return RenderSnapshot(
                None, None, None, 0, self._horizon, self.dt_h, None, day_seed, "start of the day"
            )
        sol = last.solution
        one = slice(row, row + 1)
        ok = bool(sol.converged[row])
        v_pu = None
        if ok:  # every bus's voltage of this one copy: n_nodes x n_inj, only when drawn
            single = ReducedSolution(
                sol.volts[one], sol.converged[one], sol.out_of_band[one], sol.currents[one], 0
            )
            v_pu = self.net.node_voltages_pu(single)[0]
        return RenderSnapshot(
            v_pu=v_pu,
            setpoints_kw=last.setpoints_kw[row],
            upper_kw=last.upper_kw[row],
            step=int(last.step[row]),
            n_steps=self._horizon,
            dt_h=self.dt_h,
            f_norm=last.f_norm[row],
            day_seed=day_seed,
            note="" if ok else "power flow failed",
        )

    def _scatter(self, ids: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, Any]:
        """Per-copy values of copies ``ids`` as (num_envs, ...) arrays with ``_key`` masks."""
        n = self.num_envs
        everyone = ids.size == n  # ids are sorted and unique, so they are all copies
        info: dict[str, Any] = {}
        for key, value in values.items():
            mask = np.ones(n, dtype=bool) if everyone else np.zeros(n, dtype=bool)
            if key == "termination_reason":  # only the failed copies carry one
                full = np.full(n, None, dtype=object)
                failed = ids[value != None]  # noqa: E711 - element-wise on an object array
                full[failed] = value[value != None]  # noqa: E711
                mask[:] = False
                mask[failed] = True
            elif everyone:
                full = value
            else:
                full = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
                full[ids] = value
                mask[ids] = True
            info[key], info[f"_{key}"] = full, mask
        return info


def _is_day_seed(value: Any) -> bool:
    return _is_int(value) and 0 <= value <= MAX_DAY_SEED


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    """``value`` as an :class:`AutoresetMode` (the enum or its value, e.g. ``"SameStep"``).

    Raises:
        ConfigError: ``value`` names no mode.
    """
    try:
        return AutoresetMode(value)
    except ValueError:
        allowed = [m.value for m in AutoresetMode]
        raise ConfigError(
            f"autoreset_mode={value!r} is not an AutoresetMode; use one of {allowed} or "
            "gymnasium.vector.AutoresetMode.<NAME>"
        ) from None


def _failure_reasons(sol: ReducedSolution) -> np.ndarray:
    """(B,) object array: why each copy's power flow failed (``None`` where it converged)."""
    out = np.full(sol.batch_size, None, dtype=object)
    out[~sol.converged] = (
        f"reduced-model power flow did not converge in {sol.iterations} iterations"
    )
    return out
