"""Figures of the benchmark report that compare controllers over a test day.

* :func:`plot_unbalance_heatmap`: PUI per CP bus over the day, one panel per controller;
* :func:`plot_day_fronts`: NSGA-II's Pareto fronts at telling steps, in normalised costs, with
  every controller's point of that step overlaid.

The per-controller day figures (unbalance, voltage drop, PV usage, EV energy) are those of
:mod:`experiments.figures`. Figures are drawn on pyplot-free :class:`Figure` objects and
written atomically, as there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.figure import Figure

from experiments.figures import plot_pareto_fronts, save_figure
from experiments.optimize import telling_steps


def plot_unbalance_heatmap(
    pui_pct: Mapping[str, npt.ArrayLike],
    hours: npt.ArrayLike,
    cp_names: Sequence[str],
    out_dir: Path,
    *,
    title: str = "PUI at the CP buses over the day",
    filename: str = "unbalance_heatmap.png",
) -> Path:
    """Heat map of PUI (%) per CP bus (rows) over the day (columns), a panel per controller.

    Args:
        pui_pct: controller -> (n_cp, n_steps) PUI at each CP's bus, percent (e.g. the mean
            over seeds); every controller shares one colour scale.
        hours: (n_steps,) start of each step, hours after midnight.
        cp_names: the CPs, in the rows' order.
        out_dir: folder to write ``filename`` into.
    """
    if not pui_pct:
        raise ValueError("pui_pct is empty; give at least one {controller: (n_cp, n_steps)}")
    data = {label: np.asarray(v, dtype=float) for label, v in pui_pct.items()}
    h = np.asarray(hours, dtype=float)
    for label, values in data.items():
        if values.shape != (len(cp_names), h.size):
            raise ValueError(
                f"{label!r}: PUI has shape {values.shape}; expected "
                f"({len(cp_names)}, {h.size}) = (CPs, steps)"
            )
    finite = np.concatenate([v[np.isfinite(v)] for v in data.values()])
    vmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    dt = float(h[1] - h[0]) if h.size > 1 else 1.0
    fig = Figure(
        figsize=(10, 0.9 + (0.45 * len(cp_names) + 0.55) * len(data)), layout="constrained"
    )
    axes = fig.subplots(len(data), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (label, values) in zip(axes, data.items(), strict=True):
        image = ax.imshow(
            values,
            aspect="auto",
            cmap="magma_r",
            vmin=0.0,
            vmax=vmax,
            extent=(h[0], h[-1] + dt, len(cp_names) - 0.5, -0.5),
            interpolation="nearest",
        )
        ax.set_yticks(range(len(cp_names)), list(cp_names))
        ax.set_title(label, fontsize=10, loc="left")
    axes[-1].set_xlabel("hour of day (h)")
    axes[-1].set_xticks(range(0, 25, 3))
    axes[-1].set_xlim(0, 24)
    assert image is not None
    fig.colorbar(image, ax=list(axes), label="PUI (%)", shrink=0.9)
    fig.suptitle(title)
    return save_figure(fig, out_dir / filename)


def _clock(step: int, dt_h: float) -> str:
    hour = step * dt_h
    return f"{int(hour):02d}:{round(hour % 1 * 60):02d}"


def plot_day_fronts(
    fronts: pd.DataFrame,
    points: pd.DataFrame,
    dt_h: float,
    out_dir: Path,
    *,
    n_steps: int = 3,
    filename: str = "pareto_fronts.png",
) -> Path | None:
    """NSGA-II's fronts at the ``n_steps`` widest-trade-off steps with controllers overlaid.

    Args:
        fronts: one day-seed's fronts (``step``, ``f1_norm``, ``f2_norm``, ``f1_opendss``,
            ``f2_opendss``).
        points: the controllers' points of that day-seed (``controller``, ``step``,
            ``f1_norm``, ``f2_norm``).
        dt_h: step length, hours (for the panel titles).
        out_dir: folder to write ``filename`` into.

    Returns:
        The PNG's path, or None when no step has a front of more than one point.
    """
    wide = fronts.groupby("step").filter(lambda g: len(g) > 1)
    steps = telling_steps(wide, n_steps)
    if not steps:
        return None
    data, marked = {}, {}
    for step in steps:
        title = f"step {step} ({_clock(step, dt_h)})"
        data[title] = fronts.loc[fronts["step"] == step, ["f1_norm", "f2_norm"]].to_numpy()
        here = points[points["step"] == step]
        marked[title] = {
            str(c): (float(f1), float(f2))
            for c, f1, f2 in here[["controller", "f1_norm", "f2_norm"]].itertuples(index=False)
        }
    return plot_pareto_fronts(
        data,
        out_dir,
        marked,
        f1_label="f1 / F1_ref (unbalance)",
        f2_label="f2 / F2_ref (curtailment)",
        filename=filename,
    )
