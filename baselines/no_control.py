"""No control: every EV takes what it asks for, PV is never curtailed (architecture.md §1)."""

from __future__ import annotations

import numpy as np

from powertrip_env.simulator import SimState


class NoControl:
    """CPs at their request, PV at its availability: the upper bound of every setpoint."""

    name = "no_control"

    def act(self, state: SimState) -> np.ndarray:
        """Decision vector ``[P_CP..., P_PV...]`` in kW: the step's upper bounds."""
        return state.upper_kw.copy()
