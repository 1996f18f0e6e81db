"""The grid state one power flow leaves behind (architecture.md §2)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class GridState(NamedTuple):
    """Result of one snapshot power flow (immutable; a NamedTuple, cheap to create per step).

    Attributes:
        converged: whether the power flow converged; every other field is meaningless if not.
        error: the engine's message when it did not converge, else ``None``.
        v_pu: (n_nodes,) phase-to-neutral voltage magnitudes of every LV node, pu of
            230.9 V (nodes ordered as :attr:`OpenDSSEngine.node_names`).
        v_cp_bus: (n_cp, 3) complex phase-to-neutral phasors in volts at each CP bus,
            phases a, b, c (what PUI and VUF need).
        cp_kw: (n_cp,) power drawn by each CP, kW (positive = consumption).
        pv_kw: (n_pv,) power fed in by each PV system, kW (positive = generation).
        p_phase_cp_bus_kw: (n_cp, 3) power flowing into each CP bus per phase from upstream, kW.
        transformer_loading_pct: apparent power through the transformer over its rating, %.
        losses_kw: total active losses of the circuit, kW.
        source_kw: active power drawn from the source, kW (positive = import).
    """

    converged: bool
    error: str | None
    v_pu: np.ndarray
    v_cp_bus: np.ndarray
    cp_kw: np.ndarray
    pv_kw: np.ndarray
    p_phase_cp_bus_kw: np.ndarray
    transformer_loading_pct: float
    losses_kw: float
    source_kw: float


class CPBusReading(NamedTuple):
    """What one power flow leaves at the CP buses only: the lean reading of a training step.

    :meth:`FeederSimulator.advance` returns it where the full :class:`GridState` (every node,
    the transformer, the losses) is not wanted; it has the CP-bus fields of
    :class:`GridState` under the same names, so either serves as ``SimState.previous``.

    Attributes:
        converged: whether the power flow converged (else the arrays are NaN).
        error: the engine's message when it did not converge, else ``None``.
        v_cp_bus: (n_cp, 3) complex phase-to-neutral phasors at each CP bus, volts.
        p_phase_cp_bus_kw: (n_cp, 3) power entering each CP bus per phase, kW, when asked
            for (the ``power`` unbalance index needs it), else ``None``.
    """

    converged: bool
    error: str | None
    v_cp_bus: np.ndarray
    p_phase_cp_bus_kw: np.ndarray | None
