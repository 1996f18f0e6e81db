"""Raw per-step records of a simulated day, turned into metrics in one batched pass.

The simulator's hot path only copies what a step produced into preallocated arrays; every
DESIGN.md §7 metric is then computed for a whole range of steps at once with the batched pure
functions of :mod:`powertrip_env.metrics` (STYLE.md habit 4). One row of the result per step.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    unbalance_index: str
    base_v: np.ndarray
    secondary_index: np.ndarray
    dt_h: float


class DayLog:
    """Preallocated arrays holding everything each step of a day produced."""

    def __init__(self, n_steps: int, n_cp: int, n_pv: int, n_nodes: int) -> None:
        self.n_cp = n_cp
        self.x_kw = np.zeros((n_steps, n_cp + n_pv))
        self.request_kw = np.zeros((n_steps, n_cp))
        self.available_kw = np.zeros((n_steps, n_pv))
        self.load_kw = np.zeros(n_steps)
        self.v_pu = np.full((n_steps, n_nodes), np.nan)
        self.v_cp_bus = np.full((n_steps, n_cp, 3), np.nan, dtype=complex)
        self.p_phase_cp_bus_kw = np.full((n_steps, n_cp, 3), np.nan)
        self.converged = np.zeros(n_steps, dtype=bool)
        self.transformer_loading_pct = np.full(n_steps, np.nan)
        self.losses_kw = np.full(n_steps, np.nan)

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
        self.v_pu[t] = grid.v_pu
        self.v_cp_bus[t] = grid.v_cp_bus
        self.p_phase_cp_bus_kw[t] = grid.p_phase_cp_bus_kw
        self.transformer_loading_pct[t] = grid.transformer_loading_pct
        self.losses_kw[t] = grid.losses_kw

    def frame(self, layout: DayLayout, start: int, stop: int) -> pd.DataFrame:
        """Every DESIGN.md §7 metric for steps ``start``..``stop - 1``, one row per step."""
        return pd.DataFrame(self.columns(layout, start, stop))

    def row(self, layout: DayLayout, t: int) -> dict[str, float]:
        """Every DESIGN.md §7 metric of step ``t`` as plain numbers (no pandas: hot path)."""
        return {k: v[0].item() for k, v in self.columns(layout, t, t + 1).items()}

    def columns(self, layout: DayLayout, start: int, stop: int) -> dict[str, np.ndarray]:
        """Every DESIGN.md §7 metric for steps ``start``..``stop - 1``, column by column."""
        sl = slice(start, stop)
        n_cp = self.n_cp
        x = self.x_kw[sl]
        cp_kw, pv_kw = x[:, :n_cp], x[:, n_cp:]
        available = self.available_kw[sl]
        v_pu = self.v_pu[sl]
        pui = metrics.pui(np.abs(self.v_cp_bus[sl]))
        vuf = metrics.vuf(self.v_cp_bus[sl])
        p_unb = metrics.power_unbalance(self.p_phase_cp_bus_kw[sl])
        drive = {"pui": pui, "vuf": vuf, "power": p_unb}[layout.unbalance_index]
        cols: dict[str, np.ndarray] = {
            "step": np.arange(start, stop),
            "hour": np.arange(start, stop) * layout.dt_h,
            "converged": self.converged[sl],
            "f1": metrics.f_unbalance(drive),
            "f2": metrics.f_curtailment(available, pv_kw),
        }
        for k, name in enumerate(layout.cp_names):
            cols[f"pui_{name}"] = pui[:, k]
            cols[f"vuf_{name}"] = vuf[:, k]
            cols[f"power_unbalance_{name}"] = p_unb[:, k]
            cols[f"cp_kw_{name}"] = cp_kw[:, k]
            cols[f"cp_request_kw_{name}"] = self.request_kw[sl, k]
        v_min, v_max = metrics.voltage_extremes(v_pu)
        secondary = layout.secondary_index
        v_ref = v_pu[:, secondary].mean(axis=1) if secondary.size else np.ones(len(v_pu))
        v_nominal = v_pu * (layout.base_v / NOMINAL_LV_V)
        cols |= {
            "v_min_pu": v_min,
            "v_max_pu": v_max,
            "voltage_drop_pu": metrics.voltage_drop(v_pu, v_ref),
            "n_outside_uk_statutory": metrics.count_outside(
                v_nominal, metrics.UK_STATUTORY_LIMITS_PU
            ),
            "n_outside_en50160": metrics.count_outside(v_nominal, metrics.EN50160_LIMITS_PU),
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

    def worst_voltage_step(self, stop: int) -> np.ndarray | None:
        """(n_nodes,) voltages of the converged step with the lowest voltage, or None."""
        converged = np.flatnonzero(self.converged[:stop])
        if converged.size == 0:
            return None
        worst = converged[int(np.argmin(self.v_pu[converged].min(axis=1)))]
        return self.v_pu[worst].copy()
