"""Raw per-step records of a simulated day, turned into metrics in one batched pass.

The simulator's hot path only copies what a step produced into preallocated arrays; every
architecture.md §7 metric is then computed for a whole range of steps at once with the batched pure
functions of :mod:`powertrip_env.metrics` (conventions.md habit 4). One row of the result per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import chain

import numpy as np
import pandas as pd

from powertrip_env import metrics
from powertrip_env.grid.state import GridState

NOMINAL_LV_V = 230.0


@dataclass(frozen=True)
class DayLayout:
    """What a day's records need to know about the feeder to become metrics.

    Attributes:
        cp_names: names of the CPs, in decision-vector order.
        unbalance_index: ``pui``, ``vuf`` or ``power``: which drives f1.
        base_v: (n_nodes,) voltage base of each LV node, volts.
        secondary_index: indices of the transformer's LV terminal nodes (drop reference).
        dt_h: step length, hours.
    """

    cp_names: tuple[str, ...]
    unbalance_index: metrics.UnbalanceIndex
    base_v: np.ndarray
    secondary_index: np.ndarray
    dt_h: float

    @cached_property
    def per_cp_keys(self) -> tuple[str, ...]:
        """Names of the per-CP metrics, CP by CP, in :data:`PER_CP_METRICS` order."""
        return tuple(f"{m}_{name}" for name in self.cp_names for m in PER_CP_METRICS)

    @cached_property
    def nominal_scale(self) -> float | None:
        """``base_v / 230 V`` when every node shares one base (then statutory limits are
        compared in pu of the feeder base, without rescaling every voltage), else None."""
        scale = self.base_v / NOMINAL_LV_V
        return float(scale[0]) if scale.size and np.all(scale == scale[0]) else None


#: Per-CP metrics of each step, in the order of their columns.
PER_CP_METRICS = ("pui", "vuf", "power_unbalance", "cp_kw", "cp_request_kw")


def counts_outside(
    v_pu: np.ndarray, v_min: np.ndarray, v_max: np.ndarray, layout: DayLayout
) -> tuple[np.ndarray, np.ndarray]:
    """Bus-phases outside the UK statutory and the EN 50160 limits (of 230 V) per row.

    ``v_pu`` is (..., n_nodes) in pu of each node's base, ``v_min``/``v_max`` its extremes
    over the last axis, which spare the pass over rows that stay inside the limits.
    """
    limits = (metrics.UK_STATUTORY_LIMITS_PU, metrics.EN50160_LIMITS_PU)
    scale = layout.nominal_scale
    if scale is None:  # nodes on different bases: rescale every voltage to 230 V
        v_nominal = v_pu * (layout.base_v / NOMINAL_LV_V)
        uk, en = (metrics.count_outside(v_nominal, lim) for lim in limits)
        return uk, en
    # One base: compare in pu of it, with the limits rescaled instead of every voltage.
    extremes = (v_min, v_max)
    uk, en = (
        metrics.count_outside(v_pu, (lim[0] / scale, lim[1] / scale), extremes=extremes)
        for lim in limits
    )
    return uk, en


class DayLog:
    """Preallocated arrays holding everything each step of a day produced."""

    def __init__(self, n_steps: int, n_cp: int, n_pv: int, n_nodes: int) -> None:
        self.n_cp = n_cp
        self.x_kw = np.zeros((n_steps, n_cp + n_pv))
        self.request_kw = np.zeros((n_steps, n_cp))
        self.available_kw = np.zeros((n_steps, n_pv))
        self.load_kw = np.zeros(n_steps)
        # Every node's voltage at every step (MBs): allocated once and never cleared; a row
        # counts only once recorded (``recorded``), which clear() resets.
        self._v_pu = np.empty((n_steps, n_nodes))
        self.recorded = np.zeros(n_steps, dtype=bool)
        self.v_cp_bus = np.empty((n_steps, n_cp, 3), dtype=complex)
        self.p_phase_cp_bus_kw = np.empty((n_steps, n_cp, 3))
        self.converged = np.zeros(n_steps, dtype=bool)
        self.transformer_loading_pct = np.empty(n_steps)
        self.losses_kw = np.empty(n_steps)
        self.clear()

    def clear(self) -> None:
        """Forget every step (a new day): the arrays stay, their rows read as not recorded."""
        self.recorded[:] = False
        self.converged[:] = False
        for small in (
            self.v_cp_bus,
            self.p_phase_cp_bus_kw,
            self.transformer_loading_pct,
            self.losses_kw,
        ):
            small.fill(np.nan)

    @property
    def v_pu(self) -> np.ndarray:
        """(n_steps, n_nodes) voltage magnitudes, pu; NaN in the rows not recorded."""
        return self.voltages(slice(None))

    def voltages(self, steps: int | slice) -> np.ndarray:
        """Voltage magnitudes of step(s) ``steps``, pu; NaN where a step is not recorded."""
        if isinstance(steps, int):  # one step (the env's info): no masks
            return (
                self._v_pu[steps] if self.recorded[steps] else np.full(self._v_pu.shape[1], np.nan)
            )
        recorded = self.recorded[steps]
        if recorded.all():
            return self._v_pu[steps]
        return np.where(np.asarray(recorded)[..., np.newaxis], self._v_pu[steps], np.nan)

    def record(
        self,
        t: int,
        x_kw: np.ndarray,
        request_kw: np.ndarray,
        available_kw: np.ndarray,
        load_kw: float,
        grid: GridState,
    ) -> None:
        """Copy step ``t``'s inputs and grid state into the day's arrays."""
        self.x_kw[t] = x_kw
        self.request_kw[t] = request_kw
        self.available_kw[t] = available_kw
        self.load_kw[t] = load_kw
        self.converged[t] = grid.converged
        self._v_pu[t] = grid.v_pu
        self.recorded[t] = True
        self.v_cp_bus[t] = grid.v_cp_bus
        self.p_phase_cp_bus_kw[t] = grid.p_phase_cp_bus_kw
        self.transformer_loading_pct[t] = grid.transformer_loading_pct
        self.losses_kw[t] = grid.losses_kw

    def frame(self, layout: DayLayout, start: int, stop: int) -> pd.DataFrame:
        """Every architecture.md §7 metric for steps ``start``..``stop - 1``, one row per step."""
        return pd.DataFrame(self.columns(layout, start, stop))

    def unbalance(self, t: int | slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(PUI, VUF, power unbalance) at the CP buses of step(s) ``t``, percent."""
        v_cp = self.v_cp_bus[t]
        return (
            metrics.pui(np.abs(v_cp)),
            metrics.vuf(v_cp),
            metrics.power_unbalance(self.p_phase_cp_bus_kw[t]),
        )

    def row(self, layout: DayLayout, t: int) -> dict[str, float]:
        """Every architecture.md §7 metric of step ``t`` as plain numbers (the env's info).

        Equal to that step's row of :meth:`frame` (``tests/test_env.py`` holds them together):
        the same metric functions on one step's arrays, and the per-bus Python twins of the
        unbalance indices (:func:`metrics.pui_of_buses` and siblings). A scalar twin of
        :meth:`columns` kept only because the env calls it every step;
        ``benchmarks/scalar_paths.py`` prints what it saves.
        """
        n_cp = self.n_cp
        x = self.x_kw[t]
        pv_kw = x[n_cp:]
        available = self.available_kw[t]
        v_pu = self.voltages(t)
        v_cp = self.v_cp_bus[t]
        pui = metrics.pui_of_buses(np.abs(v_cp))
        vuf = metrics.vuf_of_buses(v_cp)
        p_unb = metrics.power_unbalance_of_buses(self.p_phase_cp_bus_kw[t])
        drive = metrics.by_index(layout.unbalance_index, pui=pui, vuf=vuf, power=p_unb)
        v_min, v_max = metrics.voltage_extremes(v_pu)
        secondary = layout.secondary_index
        # = v_pu[secondary].mean(), without its wrapper
        v_ref = np.add.reduce(v_pu[secondary]) / secondary.size if secondary.size else 1.0
        n_uk, n_en = counts_outside(v_pu, v_min, v_max, layout)
        cp_kw, request_kw = x[:n_cp].tolist(), self.request_kw[t].tolist()
        out: dict[str, float] = {
            "step": t,
            "hour": t * layout.dt_h,
            "converged": bool(self.converged[t]),
            "f1": float(metrics.f_unbalance(drive)),
            "f2": float(metrics.f_curtailment(available, pv_kw)),
        }
        per_cp = chain.from_iterable(zip(pui, vuf, p_unb, cp_kw, request_kw, strict=True))
        out.update(zip(layout.per_cp_keys, per_cp, strict=True))
        out.update(
            v_min_pu=float(v_min),
            v_max_pu=float(v_max),
            voltage_drop_pu=float(metrics.voltage_drop(v_pu, v_ref, v_min=v_min)),
            n_outside_uk_statutory=int(n_uk),
            n_outside_en50160=int(n_en),
            pv_available_kw=float(available.sum()),
            pv_kw=float(pv_kw.sum()),
            pv_curtailed_kw=float(metrics.curtailment_kw(available, pv_kw).sum()),
            cp_kw=float(np.add.reduce(x[:n_cp])),
            cp_request_kw=float(np.add.reduce(self.request_kw[t])),
            load_kw=float(self.load_kw[t]),
            transformer_loading_pct=float(self.transformer_loading_pct[t]),
            losses_kw=float(self.losses_kw[t]),
        )
        return out

    def columns(self, layout: DayLayout, start: int, stop: int) -> dict[str, np.ndarray]:
        """Every architecture.md §7 metric for steps ``start``..``stop - 1``, column by column."""
        sl = slice(start, stop)
        n_cp = self.n_cp
        x = self.x_kw[sl]
        cp_kw, pv_kw = x[:, :n_cp], x[:, n_cp:]
        available = self.available_kw[sl]
        v_pu = self.voltages(sl)
        pui, vuf, p_unb = self.unbalance(sl)
        drive = metrics.by_index(layout.unbalance_index, pui=pui, vuf=vuf, power=p_unb)
        cols: dict[str, np.ndarray] = {
            "step": np.arange(start, stop),
            "hour": np.arange(start, stop) * layout.dt_h,
            "converged": self.converged[sl],
            "f1": metrics.f_unbalance(drive),
            "f2": metrics.f_curtailment(available, pv_kw),
        }
        per_cp = (pui, vuf, p_unb, cp_kw, self.request_kw[sl])
        keys = iter(layout.per_cp_keys)
        for k in range(n_cp):
            for values in per_cp:
                cols[next(keys)] = values[:, k]
        v_min, v_max = metrics.voltage_extremes(v_pu)
        secondary = layout.secondary_index
        v_ref = v_pu[:, secondary].mean(axis=1) if secondary.size else np.ones(len(v_pu))
        n_uk, n_en = counts_outside(v_pu, v_min, v_max, layout)
        cols |= {
            "v_min_pu": v_min,
            "v_max_pu": v_max,
            "voltage_drop_pu": metrics.voltage_drop(v_pu, v_ref, v_min=v_min),
            "n_outside_uk_statutory": n_uk,
            "n_outside_en50160": n_en,
            "pv_available_kw": available.sum(axis=1),
            "pv_kw": pv_kw.sum(axis=1),
            "pv_curtailed_kw": metrics.curtailment_kw(available, pv_kw).sum(axis=1),
            "cp_kw": cp_kw.sum(axis=1),
            "cp_request_kw": self.request_kw[sl].sum(axis=1),
            "load_kw": self.load_kw[sl],
            "transformer_loading_pct": self.transformer_loading_pct[sl],
            "losses_kw": self.losses_kw[sl],
        }
        return cols

    def worst_voltage_step(self, stop: int, v_min: np.ndarray | None = None) -> np.ndarray | None:
        """(n_nodes,) voltages of the converged step with the lowest voltage, or None.

        ``v_min`` is each step's lowest voltage (the ``v_min_pu`` column of :meth:`frame`)
        when the caller has it, which spares a pass over every voltage of the day.
        """
        converged = np.flatnonzero(self.converged[:stop])
        if converged.size == 0:
            return None
        # A converged step is a recorded one.
        lowest = self._v_pu[converged].min(axis=1) if v_min is None else v_min[converged]
        return self._v_pu[converged[int(np.argmin(lowest))]].copy()
