"""Rule-based controllers engineers deploy today (docs/architecture.md §6).

Each is a :class:`~powertrip_env.simulator.Controller` (``act(state) -> x_kw``) like
:class:`~baselines.no_control.NoControl`; none optimises anything:

* :class:`FlatRateCharging`: each EV charges at a flat rate, the energy it is still owed over
  the time it has left, so its charge spreads evenly over its plug-in window; PV is never
  curtailed.
* :class:`PVFollowingCharging`: the EVs share the feeder's PV surplus (PV available minus
  the houses' demand), and never charge below a floor that still serves them by departure
  (flat rate by default); PV is never curtailed.
* :class:`VoltWattPV`: EVs charge as under no control; every PV inverter follows a volt-watt
  droop P(U) on its own terminal voltage (EN 50549-1's voltage-related active power
  reduction, parameters in the scenario's ``volt_watt`` section). The quasi-static operating
  point, where each inverter's output matches the curve at the voltage that output causes,
  is found on the exact reduced network model by a damped fixed-point iteration.
"""

from __future__ import annotations

import numpy as np

from powertrip_env.config import VoltWattConfig
from powertrip_env.errors import ConfigError, PowerFlowError
from powertrip_env.ev import CP_FLOORS, CPFloor, cp_floor_kw
from powertrip_env.grid.reduced import ReducedNetwork
from powertrip_env.simulator import FeederSimulator, SimState


def _check_floor(floor: str) -> CPFloor:
    if floor not in CP_FLOORS:
        raise ConfigError(f"floor={floor!r} is not one of {CP_FLOORS}")
    return floor


class FlatRateCharging:
    """EVs at the flat rate (owed energy / time left), PV at its availability.

    With the EV energy guarantee every EV is served: the rate never falls below the
    guarantee's floor. In the seed formulation the rate is capped at each step's request.
    """

    name = "flat_rate"

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW."""
        x = state.upper_kw.copy()
        n_cp = state.n_cp
        x[:n_cp] = cp_floor_kw(
            "flat_rate",
            state.lower_kw[:n_cp],
            state.upper_kw[:n_cp],
            state.remaining_kwh,
            state.time_to_departure_h,
        )
        return x


class PVFollowingCharging:
    """EVs share the feeder's PV surplus above a floor that serves them; PV uncurtailed.

    The surplus is the PV available on the feeder minus the houses' demand at the step; each
    plugged-in EV gets an equal share of it, at least ``floor`` and at most its request.

    Args:
        floor: the CP floor (``flat_rate``: spread what the surplus leaves owed evenly over
            the window; ``latest``: defer it to the last moment, as a "solar only, then
            boost before departure" charger does).
    """

    name = "pv_following"

    def __init__(self, floor: CPFloor = "flat_rate") -> None:
        self.floor = _check_floor(floor)

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW."""
        n_cp = state.n_cp
        lower, upper = state.lower_kw[:n_cp], state.upper_kw[:n_cp]
        floor = cp_floor_kw(
            self.floor, lower, upper, state.remaining_kwh, state.time_to_departure_h
        )
        surplus_kw = max(0.0, float(state.pv_available_kw.sum() - state.load_p_kw.sum()))
        wanting = upper > 0.0
        share = surplus_kw / max(int(wanting.sum()), 1)
        x = state.upper_kw.copy()
        x[:n_cp] = np.minimum(np.maximum(np.where(wanting, share, 0.0), floor), upper)
        return x


def volt_watt_fraction(v_pu: np.ndarray, config: VoltWattConfig) -> np.ndarray:
    """Share of the available PV power the P(U) curve allows at voltages ``v_pu`` (pu of Un).

    1 up to ``u_start_pu``, linear down to ``p_end_fraction`` at ``u_end_pu``, flat above.
    """
    span = config.u_end_pu - config.u_start_pu
    drop = np.clip((np.asarray(v_pu) - config.u_start_pu) / span, 0.0, 1.0)
    return 1.0 - (1.0 - config.p_end_fraction) * drop


class VoltWattPV:
    """EVs as under no control; each PV inverter on the scenario's volt-watt curve P(U).

    Args:
        sim: the simulator (its engine is reduced once to the PV terminals).
        config: the curve; the scenario's ``volt_watt`` section when omitted.
        damping: step of the fixed-point iteration towards the curve, (0, 1].
        tol_kw: the iteration stops when no PV output moves more than this, kW.
        max_iter: iteration limit per step.

    Raises:
        ConfigError: a setting is out of range.
    """

    name = "volt_watt"

    def __init__(
        self,
        sim: FeederSimulator,
        config: VoltWattConfig | None = None,
        damping: float = 0.5,
        tol_kw: float = 1e-4,
        max_iter: int = 200,
    ) -> None:
        if not 0.0 < damping <= 1.0:
            raise ConfigError(f"damping={damping!r} must be in (0, 1]")
        if not tol_kw > 0.0 or max_iter < 1:
            raise ConfigError(f"tol_kw={tol_kw!r} must be > 0 and max_iter={max_iter!r} >= 1")
        self.config = config if config is not None else sim.scenario.config.volt_watt
        self.damping, self.tol_kw, self.max_iter = damping, tol_kw, max_iter
        pv_nodes = [d.node for d in sim.scenario.devices.pvs]
        self._network = ReducedNetwork(sim.engine, observed_nodes=pv_nodes)
        self._first_pv_obs = 3 * sim.n_cp
        #: Fixed-point iterations each step took (for checking convergence).
        self.iterations: list[int] = []

    def pv_kw(self, state: SimState, cp_kw: np.ndarray) -> np.ndarray:
        """(n_pv,) PV outputs on the curve at ``state``'s step with the CPs at ``cp_kw``, kW.

        Raises:
            PowerFlowError: the reduced power flow fails or the iteration does not settle.
        """
        available = state.pv_available_kw
        pv = available.copy()
        if not np.any(available > 0.0):
            self.iterations.append(0)
            return pv
        for k in range(1, self.max_iter + 1):
            solution = self._network.solve(state.load_p_kw, state.load_q_kvar, cp_kw, pv)
            if not solution.converged[0]:
                raise PowerFlowError(
                    f"volt-watt at step {state.t}: the reduced power flow did not converge "
                    f"with PV at {pv.round(3).tolist()} kW"
                )
            v_pu = np.abs(solution.volts[0, self._first_pv_obs :]) / self.config.u_nominal_v
            target = available * volt_watt_fraction(v_pu, self.config)
            move = self.damping * (target - pv)
            pv = pv + move
            if np.abs(move).max() <= self.tol_kw:
                self.iterations.append(k)
                return np.clip(pv, 0.0, available)
        raise PowerFlowError(
            f"volt-watt at step {state.t}: no operating point on the curve after "
            f"{self.max_iter} iterations (try a smaller damping)"
        )

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW."""
        x = state.upper_kw.copy()
        n_cp = state.n_cp
        x[n_cp:] = self.pv_kw(state, x[:n_cp])
        return x
