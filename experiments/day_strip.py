"""A controlled day as pictures: a strip of the env's frames at telling moments, and a GIF.

A recorded day (a controller's setpoints, step by step) is replayed in a
:class:`~powertrip_env.env.PowerTripEnv` with ``render_mode="rgb_array"``, so the pictures
are exactly the frames a user records with Gymnasium's ``RecordVideo``: the feeder coloured by
each bus's lowest phase voltage, the devices with their setpoints, the time and the costs.
The replay is deterministic (the day is rebuilt from its seed; the setpoints are given), and
its normalised costs come back with the frames, so a caller can check that the replay is the
day it recorded.

The strip (:func:`write_strip`) tiles a few frames with matplotlib, one per moment: night,
morning, the PV peak (highest PV availability), the step of highest unbalance cost f1, the
evening EV peak (highest CP power from 16:00) and late evening. The GIF
(:func:`write_gif`) is the whole day at ``gif_step_min`` minutes a frame, on one shared
palette (Pillow, a matplotlib dependency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from experiments.runs import atomic_write
from powertrip_env.config import ScenarioConfig
from powertrip_env.env import PowerTripEnv
from powertrip_env.errors import ConfigError
from powertrip_env.render import RENDER_COLOURS, RenderColour
from powertrip_env.simulator import Controller, SimState

#: Fixed moments of the strip: (label, hour the step starts).
CLOCK_MOMENTS: tuple[tuple[str, float], ...] = (
    ("night", 3.0),
    ("morning", 7.5),
    ("late evening", 22.0),
)
#: The evening EV peak is looked for from this hour on (home charging; fleet sessions charge
#: around midday, beside the PV peak, which the strip shows already).
EVENING_FROM_H = 16.0


@dataclass(frozen=True)
class DayStripSettings:
    """What the day's pictures show and cost.

    Attributes:
        strip: draw the day's pictures at all (the strip of frames, a PNG, and the GIF).
        gif: also write an animated GIF of the whole day (a few hundred kB).
        gif_step_min: minutes of the day between two GIF frames.
        colour: what colours the feeder: ``"voltage"`` or ``"unbalance"``.
    """

    strip: bool = True
    gif: bool = True
    gif_step_min: float = 30.0
    colour: RenderColour = "voltage"

    def __post_init__(self) -> None:
        for name in ("strip", "gif"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r} must be true or false")
        step = self.gif_step_min
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ConfigError(f"gif_step_min={step!r} must be a positive number of minutes")
        if self.colour not in RENDER_COLOURS:
            raise ConfigError(f"colour={self.colour!r} is not one of {list(RENDER_COLOURS)}")


@dataclass
class DayReplay:
    """A recorded day replayed in the env: its frames and its normalised costs.

    Attributes:
        frames: step index -> the (480, 720, 3) uint8 frame after that step.
        moments: (label, step index) of the strip's frames, in time order.
        f_norm: (n_steps, 2) normalised costs ``(f1 / F1_ref, f2 / F2_ref)`` of each step.
        dt_h: step length, hours.
    """

    frames: dict[int, np.ndarray]
    moments: list[tuple[str, int]]
    f_norm: np.ndarray
    dt_h: float
    gif_steps: list[int] = field(default_factory=list)


def strip_moments(
    dt_h: float, pv_available_kw: np.ndarray, cp_kw: np.ndarray, f1: np.ndarray
) -> list[tuple[str, int]]:
    """(label, step) of the strip's moments within the steps given, in time order.

    Args:
        dt_h: step length, hours.
        pv_available_kw: (n_steps,) total PV availability of each step.
        cp_kw: (n_steps,) total CP power of each step (its peak from 16:00 is shown).
        f1: (n_steps,) unbalance cost of each step.

    Moments that fall on one step share a frame (their labels joined); with fewer than two
    moments in a short horizon, its first and last steps are shown.
    """
    n = len(cp_kw)
    found: dict[int, list[str]] = {}
    for label, hour in CLOCK_MOMENTS:
        t = round(hour / dt_h)
        if t < n:
            found.setdefault(t, []).append(label)
    evening = np.arange(n) >= EVENING_FROM_H / dt_h
    peaks = (
        ("PV peak", np.asarray(pv_available_kw, dtype=float)),
        ("worst f1", np.asarray(f1, dtype=float)),
        ("evening EV peak", np.where(evening, np.asarray(cp_kw, dtype=float), np.nan)),
    )
    for label, values in peaks:
        finite = np.nan_to_num(values, nan=-np.inf)
        if n and finite.max() > 0:
            found.setdefault(int(np.argmax(finite)), []).append(label)
    if len(found) < 2:
        for t in (0, n - 1):
            found.setdefault(t, [])
    return [(", ".join(labels) or "step", t) for t, labels in sorted(found.items())]


class RecordedSetpoints:
    """A controller that plays back a recorded day's setpoints.

    Args:
        x_kw: (n_steps, n_cp + n_pv) setpoints, kW. A NaN PV entry (a PV setpoint the
            recording did not keep) becomes ``pv_share[t]`` of that PV's availability.
        pv_share: (n_steps,) the step's PV used / PV available (from the recorded totals),
            needed only where ``x_kw`` has NaN.
    """

    def __init__(self, x_kw: np.ndarray, pv_share: np.ndarray | None = None) -> None:
        self.x_kw = np.asarray(x_kw, dtype=float)
        self.pv_share = None if pv_share is None else np.asarray(pv_share, dtype=float)

    @property
    def approximated_steps(self) -> int:
        """Steps with a PV setpoint shared out of the recorded PV total."""
        return int(np.isnan(self.x_kw).any(axis=1).sum())

    def act(self, state: SimState) -> np.ndarray:
        x = self.x_kw[state.t].copy()
        pv = x[state.n_cp :]  # a view: filled in place
        gap = np.isnan(pv)
        if gap.any():
            share = 1.0 if self.pv_share is None else float(np.nan_to_num(self.pv_share[state.t]))
            pv[gap] = share * state.pv_available_kw[gap]
        return x


def _action(env: PowerTripEnv, x_kw: np.ndarray) -> np.ndarray:
    """The env action (fractions of each step's range) that applies setpoints ``x_kw``."""
    assert env.sim is not None
    state = env.sim.observe()
    span = state.upper_kw - state.lower_kw
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(span > 1e-12, (x_kw - state.lower_kw) / span, 0.0)
    return np.clip(a, 0.0, 1.0)


def replay_day(
    config: ScenarioConfig,
    day_seed: int,
    setpoints: Controller,
    n_steps: int,
    settings: DayStripSettings = DayStripSettings(),
) -> DayReplay:
    """Replay ``n_steps`` of the day ``day_seed`` of ``config`` under ``setpoints``.

    ``setpoints`` is any controller: its ``act(state)`` gives the step's kW setpoints (the
    recorded ones), turned into the env's action; the frames of the strip's moments (and of
    the GIF's steps, when ``settings.gif``) are rendered after their steps.
    """
    env = PowerTripEnv(
        config,
        day_seed=day_seed,
        info_metrics=False,
        max_episode_steps=n_steps,
        render_mode="rgb_array",
        render_colour=settings.colour,
    )
    try:
        env.reset()
        sim = env.sim
        assert sim is not None
        n = min(n_steps, sim.n_steps)
        dt_h = sim.dt_h
        xs, f_norm = np.zeros((n, sim.n_cp + sim.n_pv)), np.full((n, 2), np.nan)
        for t in range(n):
            x = np.asarray(setpoints.act(sim.observe()), dtype=float)
            _, _, terminated, _, info = env.step(_action(env, x))
            xs[t] = info["setpoints_kw"]
            f_norm[t] = info.get("f_norm", np.nan)
            if terminated:
                break
        pv_available = sim.profiles.pv_available_kw[:n].sum(axis=1)
        moments = strip_moments(dt_h, pv_available, xs[:, : sim.n_cp].sum(axis=1), f_norm[:, 0])
        stride = max(1, round(settings.gif_step_min / 60.0 / dt_h))
        gif_steps = list(range(stride - 1, n, stride)) if settings.gif else []
        wanted = sorted({t for _, t in moments} | set(gif_steps))
        frames = _render_steps(env, config, day_seed, setpoints, n, wanted, settings)
    finally:
        env.close()
    return DayReplay(frames, moments, f_norm, dt_h, gif_steps)


def _render_steps(
    env: PowerTripEnv,
    config: ScenarioConfig,
    day_seed: int,
    setpoints: Controller,
    n: int,
    wanted: Sequence[int],
    settings: DayStripSettings,
) -> dict[int, np.ndarray]:
    """Frames after the steps ``wanted``: the day again from its start (it is deterministic),
    rendering only where asked, since the moments are known only after the first pass."""
    env.reset()
    sim = env.sim
    assert sim is not None
    frames: dict[int, np.ndarray] = {}
    todo = set(wanted)
    for t in range(n):
        if not todo:
            break
        x = np.asarray(setpoints.act(sim.observe()), dtype=float)
        _, _, terminated, _, _ = env.step(_action(env, x))
        if t in todo:
            frame = env.render()
            assert frame is not None
            frames[t] = frame
            todo.discard(t)
        if terminated:
            break
    return frames


def _clock(hours: float) -> str:
    minutes = round(hours * 60.0)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def write_strip(replay: DayReplay, path: Path, title: str) -> Path:
    """Tile the replay's moments into one PNG at ``path`` (labels: moment and time span)."""
    moments = [(label, t) for label, t in replay.moments if t in replay.frames]
    n_cols = min(3, max(1, len(moments)))
    n_rows = -(-len(moments) // n_cols)
    fig = Figure(figsize=(6.0 * n_cols, 4.2 * n_rows + 0.5))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, (label, t) in zip(axes.ravel(), moments, strict=False):
        ax.imshow(replay.frames[t])
        span = f"{_clock(t * replay.dt_h)}-{_clock((t + 1) * replay.dt_h)}"
        ax.set_title(f"{label}: {span}", fontsize=12)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def write_gif(replay: DayReplay, path: Path, fps: float = 6.0) -> Path | None:
    """The replay's GIF steps as an animated GIF at ``path`` (None without GIF frames).

    Every frame is mapped onto one palette taken from the strip's frames (which span the
    day's colours), without dithering: deterministic, and a few hundred kB for a day.
    """
    steps = [t for t in replay.gif_steps if t in replay.frames]
    if not steps:
        return None
    sample = np.concatenate([replay.frames[t] for _, t in replay.moments], axis=0)
    palette = Image.fromarray(sample).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [
        Image.fromarray(replay.frames[t]).quantize(palette=palette, dither=Image.Dither.NONE)
        for t in steps
    ]
    return atomic_write(
        path,
        lambda tmp: images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        ),
    )
