"""The day simulator: steps a scenario-day under any controller (architecture.md §2, §6, §7).

A controller is anything with ``act(state: SimState) -> np.ndarray`` returning the decision
vector ``x = [P_CP_1..n_cp, P_PV_1..n_pv]`` in kW. The simulator clips ``x`` into the step's
bounds (CP between its guaranteed minimum and its request, PV between 0 and its availability),
solves the power flow, books the EV energy and records every architecture.md §7 metric.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import pandas as pd

from powertrip_env import metrics
from powertrip_env.daylog import DayLayout, DayLog
from powertrip_env.errors import ConfigError, FeederError, PowerFlowError
from powertrip_env.ev import EVFleetState
from powertrip_env.grid.devices import DevicePlacement
from powertrip_env.grid.engine import OpenDSSEngine
from powertrip_env.grid.feeder import Feeder
from powertrip_env.grid.loadmodel import VALID_MIN_PU, load_model_warning
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.grid.state import CPBusReading, GridState
from powertrip_env.scenario import Scenario


class SimState(NamedTuple):
    """What a controller sees before deciding step ``t`` (all powers in kW; immutable).

    Attributes:
        t: step index in the day.
        hour: start of the step, hours after midnight.
        dt_h: step length, hours.
        lower_kw: (n_cp + n_pv,) lower bounds of the decision vector.
        upper_kw: (n_cp + n_pv,) upper bounds of the decision vector.
        plugged: (n_cp,) whether an EV is plugged in.
        remaining_kwh: (n_cp,) energy still owed to the plugged-in EV.
        time_to_departure_h: (n_cp,) hours until the plugged-in EV leaves.
        pv_available_kw: (n_pv,) PV availability.
        load_p_kw: (n_loads,) residential active power this step (fixed, uncontrolled).
        load_q_kvar: (n_loads,) residential reactive power this step.
        previous: grid state after the previous step (``None`` at the first step; only its
            CP-bus fields, a :class:`CPBusReading`, after :meth:`FeederSimulator.advance`).
    """

    t: int
    hour: float
    dt_h: float
    lower_kw: np.ndarray
    upper_kw: np.ndarray
    plugged: np.ndarray
    remaining_kwh: np.ndarray
    time_to_departure_h: np.ndarray
    pv_available_kw: np.ndarray
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    previous: GridState | CPBusReading | None

    @property
    def n_cp(self) -> int:
        return int(self.plugged.size)


class Controller(Protocol):
    """The policy interface every baseline and agent shares."""

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW for the step ``state`` describes."""
        ...


class StepResult(NamedTuple):
    """What one step did: the applied setpoints, the grid state and the step's metrics."""

    x_kw: np.ndarray
    grid: GridState
    metrics: dict[str, float]


def unbalance_at_cp_buses(
    grid: GridState | CPBusReading, index: metrics.UnbalanceIndex
) -> list[float]:
    """The unbalance index that drives f1 at each CP bus, %, as Python floats (one step)."""
    return metrics.unbalance_of_buses(index, grid.v_cp_bus, grid.p_phase_cp_bus_kw)


class FeederSimulator:
    """Steps one scenario-day on its own OpenDSS engine.

    Args:
        scenario: feeder, devices and day profiles.
        engine: an engine already built for ``scenario`` (one is built when omitted); the
            simulator closes it in :meth:`close`.
    """

    def __init__(self, scenario: Scenario, engine: OpenDSSEngine | None = None) -> None:
        self.scenario = scenario
        self.engine = engine or OpenDSSEngine(scenario.feeder, scenario.devices)
        devices = scenario.devices
        self.n_cp, self.n_pv = devices.n_cp, devices.n_pv
        self.cp_p_max_kw = np.array([d.p_max_kw for d in devices.cps])
        self.profiles = scenario.profiles
        self.n_steps = self.profiles.n_steps
        self.dt_h = self.profiles.dt_h
        self.ev = EVFleetState(
            scenario.sessions,
            self.cp_p_max_kw,
            self.dt_h,
            self.n_steps,
            scenario.config.ev.energy_guarantee,
        )
        self.unbalance_index = scenario.config.objective.unbalance_index
        self._needs_phase_powers = self.unbalance_index not in metrics.VOLTAGE_INDICES
        self.layout = DayLayout(
            cp_names=tuple(d.name for d in devices.cps),
            unbalance_index=self.unbalance_index,
            base_v=self.engine.base_v,
            secondary_index=self.engine.secondary_index,
            dt_h=self.dt_h,
        )
        self._load_kw = self.profiles.load_p_kw.sum(axis=1)
        self._pv_zeros = np.zeros(self.n_pv)  # the PV lower bounds (concatenated, never handed out)
        #: The day's records; reset() clears it (frames and results built from it are copies).
        self.log = DayLog(self.n_steps, self.n_cp, self.n_pv, len(self.engine.node_names))
        self.reset()

    # ---------------------------------------------------------------------------- stepping
    def reset(self) -> SimState:
        """Back to the start of the day; EVs owe their full energy again."""
        self.t = 0
        self._bounds_t = -1
        self.ev.reset()
        self.engine.reset_solution()
        self.log.clear()
        self.last_grid: GridState | CPBusReading | None = None
        return self.observe()

    @property
    def done(self) -> bool:
        return self.t >= self.n_steps

    def bounds(self, t: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the decision vector at step ``t`` (the current step by default).

        EV bounds depend on the energy delivered so far, so for a past or future step they
        assume the EV state as it is now.
        """
        if t is None or t == self.t:
            if self._bounds_t != self.t:
                self._bounds = self._compute_bounds(min(self.t, self.n_steps - 1))
                self._bounds_t = self.t
            return self._bounds
        return self._compute_bounds(t)

    def _compute_bounds(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        cp_lo, cp_hi = self.ev.bounds(t)
        pv_hi = self.profiles.pv_available_kw[t]
        return np.concatenate((cp_lo, self._pv_zeros)), np.concatenate((cp_hi, pv_hi))

    def observe(self) -> SimState:
        """The controller's view of the current step."""
        t = min(self.t, self.n_steps - 1)
        return self._state(self.t, t, self.bounds(t), self.last_grid)

    def state_at(self, t: int) -> SimState:
        """The controller's view of step ``t`` without simulating the steps before it.

        Only defined in the seed formulation, where no step's bounds depend on the past
        (``previous`` is None and the EV energy is the no-control one).

        Raises:
            ConfigError: the scenario uses the EV energy guarantee.
        """
        if self.ev.energy_guarantee:
            raise ConfigError(
                "state_at() needs independent steps: set ev.energy_guarantee: false (the seed "
                "formulation); with the guarantee a step's bounds depend on earlier steps"
            )
        if not 0 <= t < self.n_steps:
            raise ValueError(f"t={t} is outside the day's steps 0..{self.n_steps - 1}")
        return self._state(t, t, self._compute_bounds(t), None)

    def _state(
        self,
        t: int,
        row: int,
        bounds: tuple[np.ndarray, np.ndarray],
        previous: GridState | CPBusReading | None,
    ) -> SimState:
        p = self.profiles
        return SimState(
            t=t,
            hour=row * self.dt_h,
            dt_h=self.dt_h,
            lower_kw=bounds[0],
            upper_kw=bounds[1],
            plugged=self.ev.plugged(row),
            remaining_kwh=self.ev.remaining_at(row),
            time_to_departure_h=self.ev.time_to_departure_h(row),
            pv_available_kw=p.pv_available_kw[row],
            load_p_kw=p.load_p_kw[row],
            load_q_kvar=p.load_q_kvar[row],
            previous=previous,
        )

    def clip(self, x_kw: np.ndarray) -> np.ndarray:
        """Validate a decision vector and clip it into the current step's bounds.

        Raises:
            ValueError: wrong shape, or NaN/infinite entries.
        """
        x = np.asarray(x_kw, dtype=float)
        if x.shape != (self.n_cp + self.n_pv,):
            raise ValueError(
                f"setpoints must have shape ({self.n_cp + self.n_pv},) = "
                f"[{self.n_cp} CP kW, {self.n_pv} PV kW], got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError(f"setpoints must be finite numbers of kW, got {x.tolist()}")
        lower, upper = self.bounds()
        return np.minimum(np.maximum(x, lower), upper)  # np.clip, without its wrapper cost

    def step(
        self, x_kw: np.ndarray, with_metrics: bool = True, checked: bool = False
    ) -> StepResult:
        """Apply setpoints (clipped into bounds), solve, book EV energy, advance one step.

        A power flow that does not converge is recorded (``converged = False``) rather than
        raised; the EV energy is still booked at the setpoints. With ``with_metrics=False``
        the step's metrics are left for one batched pass at the end of the day (what
        :meth:`run` does) and ``StepResult.metrics`` is empty. ``checked=True`` skips
        :meth:`clip` for a float array the caller built inside :meth:`bounds` (the env's
        action mapping does).
        """
        t, x = self.t, self._setpoints(x_kw, checked)
        p = self.profiles
        grid = self.engine.solve(p.load_p_kw[t], p.load_q_kvar[t], x[: self.n_cp], x[self.n_cp :])
        request = self._bounds[1][: self.n_cp]
        self.log.record(t, x, request, p.pv_available_kw[t], self._load_kw[t], grid)
        self._book(t, x, grid)
        record = self.step_metrics(t) if with_metrics else {}
        return StepResult(x_kw=x, grid=grid, metrics=record)

    def advance(self, x_kw: np.ndarray, checked: bool = False) -> CPBusReading:
        """As :meth:`step`, reading only the CP buses: no grid state, no day log, no metrics.

        The lean step of training loops, which need only the objectives of each step: the
        steps it takes stay out of :attr:`log` (their rows remain empty), and the next
        :class:`SimState`'s ``previous`` is the returned reading. ``checked`` as in
        :meth:`step`.
        """
        t, x = self.t, self._setpoints(x_kw, checked)
        p = self.profiles
        engine = self.engine
        engine.set_powers(p.load_p_kw[t], p.load_q_kvar[t], x[: self.n_cp], x[self.n_cp :])
        reading = engine.read_cp_buses(*engine.run_pf(), self._needs_phase_powers)
        self._book(t, x, reading)
        return reading

    def _setpoints(self, x_kw: np.ndarray, checked: bool) -> np.ndarray:
        """The current step's setpoints: ``x_kw`` clipped (or as given when ``checked``)."""
        if self.done:
            raise PowerFlowError("the day is over; call reset() before stepping again")
        if not checked:
            return self.clip(x_kw)
        self.bounds()  # the step's bounds are cached: its request is recorded
        return x_kw

    def _book(self, t: int, x: np.ndarray, grid: GridState | CPBusReading) -> None:
        """Book the EV energy of step ``t`` at setpoints ``x`` and move to the next step."""
        self.ev.deliver(t, x[: self.n_cp])
        self.last_grid = grid
        self.t += 1
        self._bounds_t = -1

    def step_metrics(self, t: int) -> dict[str, Any]:
        """Every architecture.md §7 metric of an already simulated step ``t``."""
        return self.log.row(self.layout, t)

    # ------------------------------------------------------------------------------- days
    def run(
        self, controller: Controller, progress: Any = None, steps: int | None = None
    ) -> DayResult:
        """Run the day (or its first ``steps``) under ``controller``.

        ``progress(t)`` is called after each step.
        """
        self.reset()
        n_steps = self.n_steps if steps is None else min(int(steps), self.n_steps)
        while self.t < n_steps:
            self.step(controller.act(self.observe()), with_metrics=False)
            if progress is not None:
                progress(self.t)
        steps_frame = self.log.frame(self.layout, 0, n_steps)
        v_min = steps_frame["v_min_pu"].to_numpy()
        return DayResult(
            steps=steps_frame,
            worst_v_pu=self.log.worst_voltage_step(n_steps, v_min),
            ev_requested_kwh=self.ev.requested_per_cp_kwh(),
            ev_unserved_kwh=self.ev.unserved_kwh(),
            dt_h=self.dt_h,
            load_model=self.scenario.feeder.load_model,
        )

    def objective_refs(self) -> tuple[float, float]:
        """Per-day normalisation references (architecture.md §6), computed once per day.

        :func:`no_control_refs` of this day: through the exact reduced network model
        (:func:`reduced_network`, the batched env's computation) or, where that model does
        not apply (a feeder it cannot represent, the ``power`` unbalance index), through
        this simulator's OpenDSS engine. The simulator is reset afterwards.
        """
        p = self.profiles
        net = reduced_network(self.scenario.feeder, self.scenario.devices, self.unbalance_index)
        if net is not None:
            f1 = reduced_no_control_f1_max(
                net,
                self.unbalance_index,
                p.load_p_kw[np.newaxis],
                p.load_q_kvar[np.newaxis],
                self.ev.request_profile_kw.T[np.newaxis],
                p.pv_available_kw[np.newaxis],
            )
        else:  # the same no-control pass, one OpenDSS solve a step
            self.reset()
            while not self.done:
                self.step(self.bounds()[1], with_metrics=False)
            f1 = self.log.frame(self.layout, 0, self.n_steps)["f1"].to_numpy()
        self.reset()
        # f1: the day's largest (reduced model) or every step's (OpenDSS): the same reference.
        f1_ref, f2_ref = refs_from_f1(f1[np.newaxis], p.pv_available_kw[np.newaxis])[0]
        return float(f1_ref), float(f2_ref)

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> FeederSimulator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class DayResult:
    """A simulated day: one row of metrics per step plus day-level EV and voltage facts."""

    steps: pd.DataFrame
    worst_v_pu: np.ndarray | None
    ev_requested_kwh: np.ndarray
    ev_unserved_kwh: np.ndarray
    dt_h: float
    load_model: str = "constant_pq"

    def warnings(self) -> list[str]:
        """What a reader of the day's numbers must know: steps whose voltages leave the range
        where the feeder's load model describes houses (``loadmodel.VALID_MIN_PU``)."""
        warning = load_model_warning(self.steps["v_min_pu"].to_numpy(), self.load_model)
        return [] if warning is None else [warning]

    def summary(self) -> dict[str, float]:
        """Day totals and extremes of every architecture.md §7 metric."""
        s = self.steps
        dt = self.dt_h
        pui_cols = [c for c in s.columns if c.startswith("pui_")]
        vuf_cols = [c for c in s.columns if c.startswith("vuf_")]
        available_kwh = float(s["pv_available_kw"].sum() * dt)
        used_kwh = float(s["pv_kw"].sum() * dt)
        return {
            "steps": len(s),
            "converged_steps": int(s["converged"].sum()),
            "f1_total": float(s["f1"].sum()),
            "f2_total": float(s["f2"].sum()),
            "pui_max_pct": float(s[pui_cols].max().max()),
            "pui_mean_pct": float(s[pui_cols].mean().mean()),
            "vuf_max_pct": float(s[vuf_cols].max().max()),
            "v_min_pu": float(s["v_min_pu"].min()),
            "v_max_pu": float(s["v_max_pu"].max()),
            "voltage_drop_max_pu": float(s["voltage_drop_pu"].max()),
            "n_outside_uk_statutory": int(s["n_outside_uk_statutory"].sum()),
            "n_outside_en50160": int(s["n_outside_en50160"].sum()),
            "pv_available_kwh": available_kwh,
            "pv_used_kwh": used_kwh,
            "pv_curtailed_kwh": available_kwh - used_kwh,
            "pv_usage_efficiency": float(metrics.pv_usage_efficiency(available_kwh, used_kwh)),
            "ev_requested_kwh": float(self.ev_requested_kwh.sum()),
            "ev_delivered_kwh": float(s["cp_kw"].sum() * dt),
            "ev_unserved_kwh": float(self.ev_unserved_kwh.sum()),
            "transformer_loading_max_pct": float(s["transformer_loading_pct"].max()),
            "losses_kwh": float(s["losses_kw"].sum() * dt),
            "steps_below_load_model_range": int(
                (s["v_min_pu"] < VALID_MIN_PU[self.load_model]).sum()
            ),
        }


# ------------------------------------------------------------------ the day's references
#: Rows (step x day) per reduced-model solve of a no-control pass: enough to spread numpy's
#: per-call cost, few enough for the batch's arrays to stay in cache.
_REF_ROWS = 1024


@functools.lru_cache(maxsize=4)
def _reduced_network(feeder: Feeder, devices: DevicePlacement) -> ReducedNetwork | None:
    # Built on an engine of its own, so that no simulator's engine (whose solves start from
    # its history, at OpenDSS's 1e-4 tolerance) is touched.
    with OpenDSSEngine(feeder, devices) as engine:
        try:
            return ReducedNetwork(engine)
        except FeederError:  # an element the model cannot represent: OpenDSS passes instead
            return None


def reduced_network(
    feeder: Feeder, devices: DevicePlacement, unbalance_index: metrics.UnbalanceIndex
) -> ReducedNetwork | None:
    """The exact reduced model of ``feeder`` with ``devices`` (built once per process), or
    ``None`` where it cannot give f1: a feeder it cannot represent, or the ``power`` index
    (it gives voltages only)."""
    if unbalance_index not in metrics.VOLTAGE_INDICES:
        return None
    return _reduced_network(feeder, devices)


def reduced_no_control_f1_max(
    net: ReducedNetwork,
    unbalance_index: metrics.UnbalanceIndex,
    load_p_kw: np.ndarray,
    load_q_kvar: np.ndarray,
    cp_kw: np.ndarray,
    pv_kw: np.ndarray,
) -> np.ndarray:
    """(B,) the largest f1 of each of B days at the given powers, %^2 (NaN if no step solved).

    Every argument is (B, n_steps, n) in :meth:`ReducedNetwork.solve`'s units and signs. The
    steps of a no-control day do not depend on each other (its CP powers are known
    beforehand: :attr:`~powertrip_env.ev.SessionTables.no_control_kw`), so all the steps of
    a day are rows of a few batched solves. Every step is first solved to ``_SCREEN_TOL``;
    only the steps that can hold the day's largest f1 (within ``_NEAR_MAX`` of its screened
    largest, or unsolved) are solved again at the model's default tolerance, so the result
    is that of solving every step at the default. Where the screen's error (seen on the
    steps solved both ways) is not far inside that margin, the whole day is solved at the
    default.

    Each day is solved on its own, screen included: a batch iterates until its last row
    converges, so a row solved beside other days' differs, in the last bits after the exact
    solve and by up to the screen's error after the screen (which then picks other steps on a
    slowly converging feeder). Solved alone, a day's result is the one the day simulator
    gets (``B = 1``) whatever days are built with it.
    """
    return np.array(
        [
            _day_f1_max(
                net, unbalance_index, [a[k] for a in (load_p_kw, load_q_kvar, cp_kw, pv_kw)]
            )
            for k in range(load_p_kw.shape[0])
        ],
        dtype=float,
    )


def _day_f1_max(
    net: ReducedNetwork, unbalance_index: metrics.UnbalanceIndex, rows: list[np.ndarray]
) -> float:
    """The largest f1 of one day (``rows``: its (n_steps, n) powers), NaN if no step solved:
    see :func:`reduced_no_control_f1_max`."""
    f1 = _f1_rows(net, unbalance_index, rows, _SCREEN_TOL)
    finite = np.isfinite(f1)
    top = float(np.where(finite, f1, -np.inf).max(initial=-np.inf))
    again = np.flatnonzero(~finite | (f1 >= top * (1.0 - _NEAR_MAX)))
    exact = np.full(f1.size, -np.inf)
    exact[again] = _f1_rows(net, unbalance_index, [a[again] for a in rows], None)
    # The screen's error, seen where both were solved, must stay well inside the margin;
    # a day where it does not (a feeder that converges slowly) is solved again in full.
    seen = np.abs(exact[again] - f1[again])
    error = float(seen[np.isfinite(seen)].max(initial=0.0))
    if not top * _NEAR_MAX > 10.0 * error:
        exact = _f1_rows(net, unbalance_index, rows, None)
    largest = float(np.where(np.isfinite(exact), exact, -np.inf).max(initial=-np.inf))
    return largest if np.isfinite(largest) else float("nan")


#: Tolerance of the first no-control solve of every step (f1 within a few 1e-5 relative of
#: the converged value on the embedded feeder), and how close to a day's screened largest
#: f1 a step must be to be solved again at the default tolerance (1 %: far above that error,
#: and checked against it on every call).
_SCREEN_TOL = 1e-3
_NEAR_MAX = 0.01


def _f1_rows(
    net: ReducedNetwork,
    unbalance_index: metrics.UnbalanceIndex,
    rows: list[np.ndarray],
    tol: float | None,
) -> np.ndarray:
    """(N,) f1 of N independent power flows (rows of ``rows``), in chunks of ``_REF_ROWS``,
    at tolerance ``tol`` (``None``: the model's default)."""
    f1 = np.empty(rows[0].shape[0])
    for start in range(0, f1.size, _REF_ROWS):
        p, q, cp, pv = (a[start : start + _REF_ROWS] for a in rows)
        sol = net.solve(p, q, cp, pv) if tol is None else net.solve(p, q, cp, pv, tol=tol)
        f1[start : start + _REF_ROWS] = metrics.f_unbalance(
            metrics.unbalance(unbalance_index, net.cp_bus_phasors(sol))
        )
    return f1


def refs_from_f1(f1: np.ndarray, pv_available_kw: np.ndarray) -> np.ndarray:
    """(B, 2) ``(F1_ref, F2_ref)`` of B days (architecture.md §6).

    F1_ref is the largest finite no-control f1 of the day (``f1`` (B, n_steps), %^2), F2_ref
    the largest full-curtailment f2, sum_p available_p(t)^2 (``pv_available_kw``
    (B, n_steps, n_pv)); each at least 1e-9 so that a day without EVs or sun still
    normalises.
    """
    finite = np.isfinite(f1)
    f1_ref = np.where(finite.any(axis=1), np.where(finite, f1, -np.inf).max(axis=1), 0.0)
    f2_ref = (pv_available_kw**2).sum(axis=2).max(axis=1, initial=0.0)
    return np.maximum(np.stack([f1_ref, f2_ref], axis=1), 1e-9)
