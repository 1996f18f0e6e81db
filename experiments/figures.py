"""Figures of simulated days (architecture.md §7 metrics, §9 ``runs/<run>/figures/*.png``).

Every function takes one or more labelled results, ``{"no control": day}`` or
``{"no control": day_a, "NSGA-II": day_b}``, so the same figure shows one controller or
compares several; a controller keeps its colour across figures (``C0``, ``C1``, ... in the
mapping's order). A result is anything shaped like
:class:`powertrip_env.simulator.DayResult` (:class:`DayResultLike`).

Figures are drawn on :class:`matplotlib.figure.Figure` objects that pyplot never sees, so
nothing opens a window, nothing depends on the process's backend and no figure outlives
its function. Each function writes one PNG atomically and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from experiments.runs import atomic_write
from powertrip_env import metrics

#: Phase (1, 2, 3) -> colour, shared by every figure that separates phases.
PHASE_COLOURS: dict[int, str] = {1: "tab:red", 2: "tab:green", 3: "tab:blue"}
PHASE_LETTERS: dict[int, str] = {1: "a", 2: "b", 3: "c"}
#: Nominal UK/EU phase-to-neutral supply voltage, V (the statutory limits are pu of this).
NOMINAL_V = 230.0
#: Phase-to-neutral base voltage of a 0.416 kV feeder, V (what the simulator's ``*_pu`` use).
FEEDER_BASE_V = 416.0 / np.sqrt(3.0)
DPI = 120
_CONTROLLER_MARKERS = ("o", "x", "^", "s", "d", "v")


class DayResultLike(Protocol):
    """What the figures read from a simulated day (``DayResult`` satisfies it)."""

    @property
    def steps(self) -> pd.DataFrame:
        """One row per step: ``hour`` and the architecture.md §7 metrics."""
        ...

    @property
    def worst_v_pu(self) -> npt.NDArray[np.float64] | None:
        """(n_nodes,) voltages at the lowest-voltage step, pu of the feeder base."""
        ...

    @property
    def ev_requested_kwh(self) -> npt.NDArray[np.float64]:
        """(n_cp,) EV energy requested per CP, kWh."""
        ...

    @property
    def dt_h(self) -> float:
        """Step length, hours."""
        ...


Results = Mapping[str, DayResultLike]


# --- Helpers --------------------------------------------------------------------------------


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically (temp file + rename); return ``path``."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))


def _check(results: Results, columns: Sequence[str]) -> None:
    """Raise ``ValueError`` if ``results`` is empty or a result lacks one of ``columns``."""
    if not results:
        raise ValueError("results is empty; give at least one {label: DayResult}")
    for label, result in results.items():
        missing = [c for c in columns if c not in result.steps.columns]
        if missing:
            raise ValueError(
                f"result {label!r} lacks step column(s) {missing}; "
                f"it has {list(result.steps.columns)}"
            )


def cp_names_of(result: DayResultLike) -> list[str]:
    """CP names in device order, from the ``cp_kw_<name>`` step columns."""
    return [c.removeprefix("cp_kw_") for c in result.steps.columns if c.startswith("cp_kw_")]


def _hour_axis(ax: Axes, *, label: bool = True) -> None:
    """0-24 h axis with 3-hour ticks; ``label=False`` for panels stacked above another."""
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 3))
    ax.set_xlabel("hour of day (h)" if label else "")
    ax.grid(alpha=0.3)


def _colour(k: int) -> str:
    return f"C{k}"


# --- Unbalance ------------------------------------------------------------------------------


def plot_unbalance(
    results: Results,
    out_dir: Path,
    cp_names: Sequence[str] | None = None,
    *,
    filename: str = "unbalance.png",
) -> Path:
    """PUI (percent) at each CP's bus over the day: one panel per CP, a line per controller.

    Args:
        results: label -> day; each needs ``hour`` and ``pui_<cp>`` step columns.
        out_dir: folder to write ``filename`` into.
        cp_names: CPs to show (default: every CP of the first result, in device order).
    """
    first = next(iter(results.values()), None)
    names = list(cp_names) if cp_names is not None else cp_names_of(first) if first else []
    _check(results, ["hour", *(f"pui_{cp}" for cp in names)])
    fig = Figure(figsize=(10, 1.0 + 2.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for row, (ax, cp) in enumerate(zip(axes, names, strict=True)):
        for k, (label, result) in enumerate(results.items()):
            steps = result.steps
            ax.plot(steps["hour"], steps[f"pui_{cp}"], color=_colour(k), lw=1.2, label=label)
        ax.set_ylabel(f"PUI at {cp} bus (%)")
        _hour_axis(ax, label=row == len(names) - 1)
        ax.set_ylim(bottom=0)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("Phase voltage unbalance (PUI) at the charging-point buses")
    return save_figure(fig, out_dir / filename)


def plot_pui_over_day(
    results: Results,
    out_dir: Path,
    cp_names: Sequence[str] | None = None,
    *,
    filename: str = "pui_over_day.png",
) -> Path:
    """PUI at the CP buses over the day, a line per controller, in two panels: the worst CP
    bus of each step (the legend gives the day's worst step) and the mean over the CP buses.

    Args:
        results: label -> day; each needs ``hour`` and ``pui_<cp>`` step columns (percent).
        out_dir: folder to write ``filename`` into.
        cp_names: CPs whose buses count (default: every CP of the first result).
    """
    first = next(iter(results.values()), None)
    names = list(cp_names) if cp_names is not None else cp_names_of(first) if first else []
    if not names:
        raise ValueError("no CP buses: the results have no cp_kw_<cp> columns and none given")
    columns = [f"pui_{cp}" for cp in names]
    _check(results, ["hour", *columns])
    fig = Figure(figsize=(10, 6.4), layout="constrained")
    worst_ax, mean_ax = fig.subplots(2, 1, sharex=True)
    for k, (label, result) in enumerate(results.items()):
        pui = result.steps[columns].to_numpy(dtype=float)
        hour = result.steps["hour"].to_numpy(dtype=float)
        worst = pui.max(axis=1)
        # Each line a little thinner than the one before, so a controller that repeats
        # another's day (volt-watt without overvoltage is no control) still shows beneath it.
        style = {
            "color": _colour(k),
            "lw": max(3.2 - 0.3 * k, 0.9),
            "ls": "--" if k >= 10 else "-",
        }
        worst_ax.plot(hour, worst, label=f"{label} (worst step {worst.max():.2f} %)", **style)
        mean_ax.plot(hour, pui.mean(axis=1), label=label, **style)
    worst_ax.set_ylabel("PUI at the worst CP bus (%)")
    mean_ax.set_ylabel("mean PUI over the CP buses (%)")
    _hour_axis(worst_ax, label=False)
    _hour_axis(mean_ax)
    for ax in (worst_ax, mean_ax):
        ax.set_ylim(bottom=0)
    worst_ax.legend(loc="upper left", fontsize=7, ncols=2)
    fig.suptitle("Phase voltage unbalance (PUI) at the charging-point buses over the day")
    return save_figure(fig, out_dir / filename)


# --- Voltage --------------------------------------------------------------------------------


def _worst_hour(steps: pd.DataFrame) -> float:
    """Hour of the first converged step with the lowest minimum voltage."""
    v_min = np.where(steps["converged"].to_numpy(bool), steps["v_min_pu"].to_numpy(float), np.inf)
    return float(steps["hour"].to_numpy(float)[np.argmin(v_min)])


def _plot_profile(
    ax: Axes,
    results: Results,
    node_distance_m: Mapping[str, float],
    node_names: Sequence[str],
) -> None:
    """Voltage (pu) vs distance (m) at each result's worst step, colour = phase."""
    names = [n.lower() for n in node_names]
    distance = np.array([node_distance_m.get(n, np.nan) for n in names])
    phase = np.array([int(n.rsplit(".", 1)[-1]) if "." in n else 0 for n in names])
    handles: list[Line2D] = []
    for k, (label, result) in enumerate(results.items()):
        v_pu = result.worst_v_pu
        if v_pu is None:
            continue
        if len(v_pu) != len(names):
            raise ValueError(
                f"result {label!r}: worst_v_pu has {len(v_pu)} values for {len(names)} node names"
            )
        marker = _CONTROLLER_MARKERS[k % len(_CONTROLLER_MARKERS)]
        for p, colour in PHASE_COLOURS.items():
            keep = (phase == p) & np.isfinite(distance)
            ax.scatter(distance[keep], v_pu[keep], s=6, marker=marker, color=colour, alpha=0.7)
        hour = _worst_hour(result.steps)
        when = f"{int(hour):02d}:{round(hour % 1 * 60):02d}"
        handles.append(Line2D([], [], ls="", marker=marker, color="0.3", label=f"{label} {when}"))
    handles += [
        Line2D([], [], ls="", marker="o", color=c, label=f"phase {PHASE_LETTERS[p]}")
        for p, c in PHASE_COLOURS.items()
    ]
    ax.legend(handles=handles, loc="lower left", fontsize=8)
    ax.set_xlabel("cable distance from the transformer (m)")
    ax.set_ylabel("phase voltage (pu)")
    ax.set_title("Voltage along the feeder at the lowest-voltage step", fontsize=10)
    ax.grid(alpha=0.3)


def plot_voltage_drop(
    results: Results,
    out_dir: Path,
    node_distance_m: Mapping[str, float],
    node_names: Sequence[str],
    *,
    base_v: float = FEEDER_BASE_V,
    filename: str = "voltage_drop.png",
) -> Path:
    """Minimum phase voltage over the day, and the voltage profile along the feeder.

    Top: the lowest phase-to-neutral voltage of any node per step (pu of ``base_v``; volts
    on the right axis) with the UK statutory lower limit, 230 V - 6 % = 216.2 V, which is
    0.90 pu of the 240.2 V base of a 0.416 kV feeder. Bottom: every node's voltage (pu) at
    the step with the lowest voltage, against its cable distance from the transformer (m),
    coloured by phase.

    Args:
        results: label -> day; needs ``hour``, ``converged`` and ``v_min_pu`` columns and
            ``worst_v_pu`` ordered as ``node_names`` (a day that never converged has
            ``worst_v_pu=None`` and is left out of the profile).
        out_dir: folder to write ``filename`` into.
        node_distance_m: node (``"34.1"``) -> cable distance from the transformer, metres
            (:func:`experiments.feeder_drawing.node_distances_m`); nodes without one are
            not drawn in the profile.
        node_names: ``OpenDSSEngine.node_names``, the order of ``worst_v_pu``.
        base_v: the phase-to-neutral base voltage of the ``*_pu`` values, V.
    """
    _check(results, ["hour", "converged", "v_min_pu"])
    limit_pu = metrics.UK_STATUTORY_LIMITS_PU[0] * NOMINAL_V / base_v
    fig = Figure(figsize=(10, 8), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    for k, (label, result) in enumerate(results.items()):
        top.plot(result.steps["hour"], result.steps["v_min_pu"], color=_colour(k), label=label)
    for ax in (top, bottom):
        ax.axhline(limit_pu, color="black", ls="--", lw=1)
    top.text(0.3, limit_pu, f"UK statutory minimum {limit_pu * base_v:.1f} V", va="bottom")
    top.set_ylabel("minimum phase voltage (pu)")
    top.secondary_yaxis("right", functions=(lambda pu: pu * base_v, lambda v: v / base_v))
    top.set_title(f"Lowest phase voltage on the feeder (base {base_v:.1f} V)", fontsize=10)
    top.legend(loc="lower right", fontsize=8)
    _hour_axis(top)
    _plot_profile(bottom, results, node_distance_m, node_names)
    return save_figure(fig, out_dir / filename)


# --- PV -------------------------------------------------------------------------------------


def _cumulative_efficiency_pct(steps: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Cumulative PV used / available since midnight, percent (NaN before any sun)."""
    available = np.cumsum(steps["pv_available_kw"].to_numpy(dtype=float))
    used = np.cumsum(steps["pv_kw"].to_numpy(dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(available > 1e-9, 100.0 * used / available, np.nan)


def plot_pv_usage(results: Results, out_dir: Path, *, filename: str = "pv_usage.png") -> Path:
    """PV available vs used (kW) over the day, and cumulative PV usage efficiency (%).

    Availability is drawn once (grey, from the first result) unless another result's
    differs, in which case that one is drawn dashed in its controller's colour.

    Args:
        results: label -> day; needs ``hour``, ``pv_available_kw`` and ``pv_kw`` columns.
        out_dir: folder to write ``filename`` into.
    """
    _check(results, ["hour", "pv_available_kw", "pv_kw"])
    fig = Figure(figsize=(10, 7), layout="constrained")
    power, efficiency = fig.subplots(2, 1, sharex=True)
    reference = next(iter(results.values())).steps
    power.fill_between(
        reference["hour"], reference["pv_available_kw"], color="0.85", label="available"
    )
    for k, (label, result) in enumerate(results.items()):
        steps = result.steps
        if not np.allclose(steps["pv_available_kw"], reference["pv_available_kw"]):
            power.plot(steps["hour"], steps["pv_available_kw"], color=_colour(k), ls="--")
        power.plot(steps["hour"], steps["pv_kw"], color=_colour(k), label=f"used: {label}")
        available_kwh = float(steps["pv_available_kw"].sum() * result.dt_h)
        used_kwh = float(steps["pv_kw"].sum() * result.dt_h)
        share = 100.0 * used_kwh / available_kwh if available_kwh > 0 else float("nan")
        efficiency.plot(
            steps["hour"],
            _cumulative_efficiency_pct(steps),
            color=_colour(k),
            label=f"{label}: {used_kwh:.1f} of {available_kwh:.1f} kWh used ({share:.1f} %)",
        )
    power.set_ylabel("PV power, all systems (kW)")
    power.set_title("PV available and used", fontsize=10)
    power.legend(loc="upper left", fontsize=8)
    efficiency.set_ylabel("PV usage efficiency (%)")
    efficiency.set_ylim(0, 105)
    efficiency.set_title("Cumulative PV used / available since midnight", fontsize=10)
    efficiency.legend(loc="lower left", fontsize=8)
    _hour_axis(power, label=False)
    _hour_axis(efficiency)
    return save_figure(fig, out_dir / filename)


# --- EV -------------------------------------------------------------------------------------


def _energy_bars(ax: Axes, results: Results, cp_names: Sequence[str]) -> None:
    """Grouped bars per CP: requested energy, then delivered energy per controller (kWh)."""
    x = np.arange(len(cp_names))
    width = 0.8 / (len(results) + 1)
    requested = np.asarray(next(iter(results.values())).ev_requested_kwh, dtype=float)
    if requested.shape != (len(cp_names),):
        raise ValueError(
            f"ev_requested_kwh has shape {requested.shape}; expected ({len(cp_names)},), one "
            f"value per CP of {list(cp_names)}"
        )
    ax.bar(x, requested, width, color="0.8", edgecolor="black", hatch="//", label="requested")
    for k, (label, result) in enumerate(results.items(), start=1):
        steps = result.steps
        delivered = [float(steps[f"cp_kw_{cp}"].sum() * result.dt_h) for cp in cp_names]
        ax.bar(x + k * width, delivered, width, color=_colour(k - 1), label=f"delivered: {label}")
    ax.set_xticks(x + width * len(results) / 2, list(cp_names))
    ax.set_ylabel("EV energy (kWh)")
    ax.set_title("EV energy requested and delivered per charging point", fontsize=10)
    ax.set_ylim(0, 1.2 * max(ax.get_ylim()[1], 1e-3))  # headroom for the legend
    ax.legend(loc="upper center", ncols=2, fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def plot_ev_energy(
    results: Results,
    out_dir: Path,
    cp_names: Sequence[str] | None = None,
    *,
    filename: str = "ev_energy.png",
) -> Path:
    """EV energy delivered vs requested per CP (kWh), and CP power vs request over the day (kW).

    Left: grouped bars per CP (requested from the first result's ``ev_requested_kwh``;
    delivered = sum of ``cp_kw_<cp>`` x ``dt_h`` per controller). Right: one panel per CP with
    each controller's power (solid) and request (dashed; the request depends on what the
    controller has already delivered).

    Args:
        results: label -> day; needs ``hour``, ``cp_kw_<cp>`` and ``cp_request_kw_<cp>``.
        out_dir: folder to write ``filename`` into.
        cp_names: CPs in device order, matching ``ev_requested_kwh`` (default: from the
            first result's ``cp_kw_<cp>`` columns).
    """
    first = next(iter(results.values()), None)
    names = list(cp_names) if cp_names is not None else cp_names_of(first) if first else []
    power_cols = [f"{kind}_{cp}" for cp in names for kind in ("cp_kw", "cp_request_kw")]
    _check(results, ["hour", *power_cols])
    fig = Figure(figsize=(13, 1.5 + 2.2 * len(names)), layout="constrained")
    grid = fig.add_gridspec(len(names), 2, width_ratios=(1, 1.6))
    _energy_bars(fig.add_subplot(grid[:, 0]), results, names)
    for row, cp in enumerate(names):
        ax = fig.add_subplot(grid[row, 1])
        for k, (label, result) in enumerate(results.items()):
            steps = result.steps
            ax.plot(steps["hour"], steps[f"cp_kw_{cp}"], color=_colour(k), label=label)
            ax.plot(steps["hour"], steps[f"cp_request_kw_{cp}"], color=_colour(k), ls="--", lw=1)
        ax.set_ylabel(f"{cp} (kW)")
        _hour_axis(ax, label=row == len(names) - 1)
        if row == 0:
            ax.set_title("CP power (solid) and request (dashed)", fontsize=10)
            ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, out_dir / filename)


# --- Pareto fronts --------------------------------------------------------------------------


def plot_pareto_fronts(
    fronts: Mapping[str, npt.ArrayLike],
    out_dir: Path,
    marked: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    *,
    f1_label: str = "f1 = sum of PUI² at CP buses (%²)",
    f2_label: str = "f2 = sum of curtailment² (kW²)",
    n_cols: int = 3,
    filename: str = "pareto_fronts.png",
) -> Path:
    """Small multiples of Pareto fronts, one panel per timestep.

    Args:
        fronts: panel title (e.g. ``"12:00"``) -> (n, 2) objective points ``(f1, f2)``.
        out_dir: folder to write ``filename`` into.
        marked: panel title -> {point label -> (f1, f2)}, e.g. ``"no control"``,
            ``"chosen"``; a label keeps one colour across panels.
        f1_label: x-axis label (pass normalised units when the points are normalised).
        f2_label: y-axis label.
        n_cols: panels per row.
    """
    if not fronts:
        raise ValueError("fronts is empty; give at least one {title: (n, 2) array}")
    points = {title: np.asarray(f, dtype=float) for title, f in fronts.items()}
    for title, f in points.items():
        if f.ndim != 2 or f.shape[1] != 2:
            raise ValueError(f"front {title!r} has shape {f.shape}; expected (n, 2) = (f1, f2)")
    marked = marked or {}
    mark_labels = list(dict.fromkeys(m for marks in marked.values() for m in marks))
    n_rows = -(-len(points) // n_cols)
    fig = Figure(figsize=(4 * min(n_cols, len(points)), 3.4 * n_rows + 0.6), layout="constrained")
    axes = fig.subplots(n_rows, min(n_cols, len(points)), squeeze=False).ravel()
    for ax, (title, f) in zip(axes, points.items(), strict=False):
        order = np.argsort(f[:, 0])
        ax.plot(f[order, 0], f[order, 1], "-o", color="0.4", ms=3, lw=1)
        for label, (f1, f2) in marked.get(title, {}).items():
            colour = _colour(mark_labels.index(label) + 1)
            ax.scatter([f1], [f2], s=70, marker="D", color=colour, edgecolors="black", zorder=3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(f1_label, fontsize=8)
        ax.set_ylabel(f2_label, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(points) :]:
        ax.set_visible(False)
    handles = [Line2D([], [], color="0.4", marker="o", ms=3, label="Pareto front")] + [
        Line2D([], [], ls="", marker="D", mfc=_colour(k + 1), mec="black", label=label)
        for k, label in enumerate(mark_labels)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return save_figure(fig, out_dir / filename)


def plot_day_front(
    front: npt.ArrayLike,
    points: Mapping[str, tuple[float, float]],
    out_dir: Path,
    *,
    front_weights: npt.ArrayLike | None = None,
    title: str = "The day's Pareto front and each controller's day",
    filename: str = "day_pareto.png",
) -> Path:
    """The day's Pareto front in day totals, with each controller's day as a point.

    Args:
        front: (n, 2) day totals ``(sum_t f1_t / F1_ref, sum_t f2_t / F2_ref)`` of the
            optimum at n weights (e.g. the oracle's, OpenDSS values).
        points: controller -> its day's totals, in the same units.
        out_dir: folder to write ``filename`` into.
        front_weights: (n,) w1 of each front point, written next to it.
    """
    f = np.asarray(front, dtype=float)
    if f.ndim != 2 or f.shape[1] != 2 or len(f) == 0:
        raise ValueError(f"front has shape {f.shape}; expected (n, 2) = (f1 total, f2 total)")
    fig = Figure(figsize=(8, 5.8), layout="constrained")
    ax = fig.subplots()
    order = np.argsort(f[:, 0], kind="stable")
    ax.plot(f[order, 0], f[order, 1], "-o", color="0.3", ms=4, lw=1.2, label="day's Pareto front")
    if front_weights is not None:
        for w1, (a, b) in zip(np.asarray(front_weights, dtype=float), f, strict=True):
            ax.annotate(
                f"w1={w1:.2f}",
                (a, b),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                color="0.3",
            )
    markers = ("o", "s", "D", "^", "v", "<", ">", "P", "X", "*", "h")
    for k, (label, (a, b)) in enumerate(points.items()):
        ax.plot(
            a,
            b,
            ls="",
            marker=markers[k % len(markers)],
            ms=9,
            color=_colour(k),
            mec="black",
            label=label,
        )
    ax.set_xlabel("day total of f1 / F1_ref (unbalance)")
    ax.set_ylabel("day total of f2 / F2_ref (curtailment)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir / filename)
