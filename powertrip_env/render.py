"""Frames of the feeder for the envs' ``render()``: numpy rasterisation, a few ms a frame.

A frame shows the feeder's lines and buses at their coordinates (see
:mod:`powertrip_env.grid.geometry`), coloured by the step's lowest phase voltage at each bus
(pu, UK statutory band 0.94-1.10) or by its phase voltage unbalance (PUI, %); the CPs
(squares) and PV systems (diamonds), filled with their phase's colour, each with a bar of its
setpoint over its step's upper bound; and a panel with the time, the normalised costs and
every device's setpoint.

Everything that does not change between steps (the pixels of each line, the colour bar, the
labels) is computed once; a frame paints the line and bus pixels through a colour table and
writes the panel's text with Pillow (a dependency of matplotlib), so recording a whole day
with Gymnasium's ``RecordVideo`` costs well under a second of drawing
(``python benchmarks/render.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from powertrip_env.errors import ConfigError
from powertrip_env.grid.devices import DevicePlacement
from powertrip_env.grid.geometry import FeederGeometry

RenderColour = Literal["voltage", "unbalance"]
RENDER_COLOURS: tuple[str, ...] = get_args(RenderColour)

#: Frame size, pixels (height, width): a square map and a panel on its right.
FRAME_SHAPE = (480, 720)
_MAP = 480  # map side, pixels
_MARGIN = 16
#: Colour scale of each quantity: (low, high, label, tick values).
_SCALES: dict[str, tuple[float, float, str, tuple[float, ...]]] = {
    "voltage": (0.94, 1.10, "lowest phase voltage, pu", (0.94, 1.0, 1.05, 1.10)),
    "unbalance": (0.0, 3.0, "phase voltage unbalance (PUI), %", (0.0, 1.0, 2.0, 3.0)),
}
_PHASE_RGB = {1: (214, 39, 40), 2: (31, 119, 180), 3: (44, 160, 44)}  # a, b, c
_NO_VALUE = np.array([170, 170, 170], dtype=np.uint8)  # before the first solve, or failed
_BACKGROUND = 255
_INK = (20, 20, 20)


def check_render_args(render_mode: str | None, render_colour: str, modes: list[str]) -> None:
    """Refuse a render mode or colour quantity the envs do not offer (naming the choices).

    Raises:
        ConfigError: ``render_mode`` is not ``None`` or one of ``modes``, or ``render_colour``
            is not one of :data:`RENDER_COLOURS`.
    """
    if render_mode is not None and render_mode not in modes:
        raise ConfigError(f"render_mode={render_mode!r} is not one of {[None, *modes]}")
    if render_colour not in RENDER_COLOURS:
        raise ConfigError(f"render_colour={render_colour!r} is not one of {list(RENDER_COLOURS)}")


@dataclass(frozen=True)
class RenderSnapshot:
    """What one frame shows: the state after a step (or at the start of a day).

    Attributes:
        v_pu: (n_nodes,) LV node voltage magnitudes in the order of the renderer's
            ``node_names``, pu; ``None`` before the day's first solve or after a failed one.
        setpoints_kw: (n_cp + n_pv,) the step's setpoints, kW (``None`` at the start).
        upper_kw: (n_cp + n_pv,) the step's upper bounds (CP request, PV availability), kW.
        step: steps taken in the day; ``n_steps`` steps in a day; ``dt_h`` hours a step.
        f_norm: (2,) the step's normalised costs ``(f1 / F1_ref, f2 / F2_ref)`` or ``None``.
        day_seed: the day shown.
        note: a line of text for the panel (e.g. why a power flow failed).
    """

    v_pu: np.ndarray | None
    setpoints_kw: np.ndarray | None
    upper_kw: np.ndarray | None
    step: int
    n_steps: int
    dt_h: float
    f_norm: np.ndarray | None
    day_seed: int
    note: str = ""


class FeederRenderer:
    """Draws :class:`RenderSnapshot` s of one feeder into (480, 720, 3) uint8 RGB frames.

    Args:
        geometry: the feeder's buses and lines on a plane.
        node_names: the LV nodes (``"bus.phase"``) in the order of ``RenderSnapshot.v_pu``.
        devices: the CPs and PV systems to mark.
        colour: what colours lines and buses: ``"voltage"`` (each bus's lowest phase voltage)
            or ``"unbalance"`` (each bus's PUI).
    """

    def __init__(
        self,
        geometry: FeederGeometry,
        node_names: tuple[str, ...],
        devices: DevicePlacement,
        colour: RenderColour = "voltage",
    ) -> None:
        check_render_args(None, colour, [])
        self.colour = colour
        self.devices = devices
        bus_index = {b: k for k, b in enumerate(geometry.bus_names)}
        node_bus = np.array([bus_index[n.rsplit(".", 1)[0]] for n in node_names], dtype=np.intp)
        # Nodes grouped by bus, so that per-bus reductions are one reduceat each.
        self._node_order = np.argsort(node_bus, kind="stable")
        sorted_bus = node_bus[self._node_order]
        self._bus_starts = np.flatnonzero(np.r_[True, sorted_bus[1:] != sorted_bus[:-1]])
        self._bus_of_group = sorted_bus[self._bus_starts]
        self._phases = np.diff(np.r_[self._bus_starts, sorted_bus.size])
        self._n_bus = len(geometry.bus_names)

        px = _to_pixels(geometry.bus_xy)
        self._line_pixels, self._line_of_pixel = _rasterise_lines(px, geometry.lines)
        self._lines = geometry.lines
        self._bus_pixels, self._bus_of_pixel = _squares(px, np.unique(geometry.lines), 1)
        self._device_px = [px[bus_index[d.bus.lower()]] for d in (*devices.cps, *devices.pvs)]
        self._markers = [
            _marker_pixels(int(x), int(y), diamond=k >= devices.n_cp)
            for k, (x, y) in enumerate(self._device_px)
        ]
        self._lut = _colour_table()
        self._background = self._draw_background(px[geometry.root], geometry.schematic)
        self._font = _GlyphFont(12)

    # ------------------------------------------------------------------------------ frame
    def bus_values(self, v_pu: np.ndarray) -> np.ndarray:
        """(n_bus,) the colour quantity at each bus (NaN at buses without nodes)."""
        v = np.asarray(v_pu, dtype=float)[self._node_order]
        out = np.full(self._n_bus, np.nan)
        if self.colour == "voltage":
            out[self._bus_of_group] = np.minimum.reduceat(v, self._bus_starts)
        else:
            mean = np.add.reduceat(v, self._bus_starts) / self._phases
            dev = np.abs(v - np.repeat(mean, self._phases))
            out[self._bus_of_group] = 100.0 * np.maximum.reduceat(dev, self._bus_starts) / mean
        return out

    def frame(self, snap: RenderSnapshot) -> np.ndarray:
        """The (480, 720, 3) uint8 RGB frame of ``snap``."""
        img = self._background.copy()
        flat = img.reshape(-1, 3)
        if snap.v_pu is None:
            flat[self._line_pixels] = _NO_VALUE
            flat[self._bus_pixels] = _NO_VALUE
        else:
            values = self.bus_values(snap.v_pu)
            bus_rgb = self._colours(values)
            line_rgb = self._colours(0.5 * (values[self._lines[:, 0]] + values[self._lines[:, 1]]))
            flat[self._line_pixels] = line_rgb[self._line_of_pixel]
            flat[self._bus_pixels] = bus_rgb[self._bus_of_pixel]
        self._draw_devices(img, snap)
        self._draw_panel(img, snap)
        return img

    def _colours(self, values: np.ndarray) -> np.ndarray:
        lo, hi = _SCALES[self.colour][:2]
        with np.errstate(invalid="ignore"):
            k = np.clip((values - lo) * (255.0 / (hi - lo)), 0.0, 255.0)
        rgb = self._lut[np.nan_to_num(k).astype(np.intp)]
        rgb[np.isnan(values)] = _NO_VALUE
        return rgb

    def _draw_devices(self, img: np.ndarray, snap: RenderSnapshot) -> None:
        flat = img.reshape(-1, 3)
        specs = (*self.devices.cps, *self.devices.pvs)
        for k, (spec, (x, y)) in enumerate(zip(specs, self._device_px, strict=True)):
            border, inside = self._markers[k]
            flat[border] = _INK
            flat[inside] = _PHASE_RGB.get(spec.phase, _INK)
            if snap.setpoints_kw is not None and snap.upper_kw is not None:
                upper = snap.upper_kw[k]
                share = snap.setpoints_kw[k] / upper if upper > 1e-9 else 0.0
                _bar(img, int(x) - 7, int(y) + 7, share)

    def _draw_panel(self, img: np.ndarray, snap: RenderSnapshot) -> None:
        minutes = round(snap.step * snap.dt_h * 60.0)
        lines = [
            f"day {snap.day_seed}   {minutes // 60:02d}:{minutes % 60:02d}",
            f"step {snap.step} / {snap.n_steps}",
        ]
        if snap.f_norm is not None:
            lines.append(f"cost f1 {snap.f_norm[0]:.3f}  f2 {snap.f_norm[1]:.3f}")
        else:
            lines.append("cost f1 -      f2 -")
        if snap.v_pu is not None:
            lines.append(f"V {np.nanmin(snap.v_pu):.3f} - {np.nanmax(snap.v_pu):.3f} pu")
        else:
            lines.append(snap.note or "no power flow yet")
        lines.append("")
        lines.append("device  setpoint / upper kW")
        for k, spec in enumerate((*self.devices.cps, *self.devices.pvs)):
            if snap.setpoints_kw is None or snap.upper_kw is None:
                lines.append(f"{spec.name[:8]:<8} -")
            else:
                lines.append(
                    f"{spec.name[:8]:<8} {snap.setpoints_kw[k]:5.2f} / {snap.upper_kw[k]:5.2f}"
                )
        for row, text in enumerate(lines):
            self._font.write(img, _MAP + 12, 8 + 15 * row, text)

    # ------------------------------------------------------------------------- background
    def _draw_background(self, root_px: np.ndarray, schematic: bool) -> np.ndarray:
        img = np.full((*FRAME_SHAPE, 3), _BACKGROUND, dtype=np.uint8)
        x, y = int(root_px[0]), int(root_px[1])
        img[max(y - 6, 0) : y + 7, max(x - 6, 0) : x + 7] = _INK  # the transformer
        lo, hi, label, ticks = _SCALES[self.colour]
        # Colour bar along the panel's bottom, with its ticks and label.
        bar_left, bar_right, bar_top = _MAP + 16, FRAME_SHAPE[1] - 16, FRAME_SHAPE[0] - 56
        width = bar_right - bar_left
        idx = np.linspace(0, 255, width).astype(np.intp)
        img[bar_top : bar_top + 12, bar_left:bar_right] = self._lut[idx][np.newaxis]
        pil = Image.fromarray(img)
        draw = ImageDraw.Draw(pil)
        font = ImageFont.load_default(size=11)
        for tick in ticks:
            tx = bar_left + round((tick - lo) / (hi - lo) * (width - 1))
            draw.line([(tx, bar_top + 12), (tx, bar_top + 16)], fill=_INK)
            draw.text((tx, bar_top + 17), f"{tick:g}", fill=_INK, font=font, anchor="ma")
        draw.text((bar_left, bar_top - 16), label, fill=_INK, font=font)
        note = "schematic layout (no bus coordinates)" if schematic else "bus coordinates"
        legend = "black square: transformer; squares: CPs; diamonds: PV; fill = phase a/b/c"
        draw.text((_MARGIN, FRAME_SHAPE[0] - 14), f"{note}", fill=_INK, font=font)
        draw.text((bar_left, bar_top - 48), legend[:40], fill=_INK, font=font)
        draw.text((bar_left, bar_top - 34), legend[40:].lstrip(), fill=_INK, font=font)
        return np.asarray(pil).copy()


class FrameWindow:
    """A matplotlib window that shows frames as they come (``render_mode="human"``).

    On a non-interactive backend (e.g. Agg on a server) the frame is drawn but nothing opens.
    """

    _HEADLESS = frozenset({"agg", "pdf", "ps", "svg", "cairo", "pgf", "template"})

    def __init__(self, fps: float) -> None:
        self._pause_s = 1.0 / fps
        self._figure: Any = None
        self._image: Any = None

    def show(self, frame: np.ndarray) -> None:
        import matplotlib.pyplot as plt

        if self._figure is None or not plt.fignum_exists(self._figure.number):
            h, w = frame.shape[:2]
            self._figure = plt.figure(figsize=(w / 100, h / 100), dpi=100)
            axes = self._figure.add_axes((0.0, 0.0, 1.0, 1.0))
            axes.set_axis_off()
            self._image = axes.imshow(frame)
        else:
            self._image.set_data(frame)
        if plt.get_backend().lower() in self._HEADLESS:
            self._figure.canvas.draw()
        else:
            plt.pause(self._pause_s)

    def close(self) -> None:
        if self._figure is not None:
            import matplotlib.pyplot as plt

            plt.close(self._figure)
            self._figure = None


# ------------------------------------------------------------------------- raster helpers
def _to_pixels(xy: np.ndarray) -> np.ndarray:
    """(n, 2) int pixel (column, row) of each position, fitted into the map, aspect kept."""
    finite = np.isfinite(xy).all(axis=1)
    lo = xy[finite].min(axis=0)
    span = max(float((xy[finite].max(axis=0) - lo).max()), 1e-9)
    scale = (_MAP - 2 * _MARGIN - 1) / span
    px = np.zeros(xy.shape, dtype=np.intp)
    centred = (xy[finite] - lo) * scale
    centred += (_MAP - 2 * _MARGIN - 1 - (xy[finite].max(axis=0) - lo) * scale) / 2.0
    px[finite, 0] = _MARGIN + np.rint(centred[:, 0]).astype(np.intp)
    px[finite, 1] = _MAP - 1 - _MARGIN - np.rint(centred[:, 1]).astype(np.intp)  # north up
    return px


def _rasterise_lines(px: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of every line (2 px wide) and the line each pixel belongs to."""
    p0, p1 = px[lines[:, 0]], px[lines[:, 1]]
    n = np.abs(p1 - p0).max(axis=1) + 1
    line_of = np.repeat(np.arange(len(lines)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    frac = (np.arange(line_of.size) - start) / np.maximum(n[line_of] - 1, 1)
    cols = np.rint(p0[line_of, 0] + frac * (p1 - p0)[line_of, 0]).astype(np.intp)
    rows = np.rint(p0[line_of, 1] + frac * (p1 - p0)[line_of, 1]).astype(np.intp)
    cols = np.r_[cols, np.minimum(cols + 1, _MAP - 1)]
    rows = np.r_[rows, rows]
    return rows * FRAME_SHAPE[1] + cols, np.r_[line_of, line_of]


def _squares(px: np.ndarray, which: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of a (2 half + 1)-px square at each bus of ``which``, and its bus."""
    d = np.arange(-half, half + 1)
    dr, dc = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    rows = np.clip(px[which, 1][:, np.newaxis] + dr, 0, _MAP - 1)
    cols = np.clip(px[which, 0][:, np.newaxis] + dc, 0, _MAP - 1)
    return (rows * FRAME_SHAPE[1] + cols).ravel(), np.repeat(which, dr.size)


def _marker_pixels(x: int, y: int, diamond: bool) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices of a device marker's border and inside (square or diamond)."""
    half = 5
    d = np.arange(-half, half + 1)
    dr, dc = np.meshgrid(d, d, indexing="ij")
    dist = np.abs(dr) + np.abs(dc) if diamond else np.maximum(np.abs(dr), np.abs(dc))
    flat = np.clip(y + dr, 0, FRAME_SHAPE[0] - 1) * FRAME_SHAPE[1] + np.clip(x + dc, 0, _MAP - 1)
    return flat[dist == half], flat[dist < half]


class _GlyphFont:
    """DejaVu Sans Mono (shipped with matplotlib) rasterised once per character.

    Writing a line of text is then one concatenation of glyph bitmaps and one blend, instead
    of asking FreeType for every frame (``benchmarks/render.py`` times a frame).
    """

    def __init__(self, size: int) -> None:
        from matplotlib import get_data_path

        path = f"{get_data_path()}/fonts/ttf/DejaVuSansMono.ttf"
        font = ImageFont.truetype(path, size)
        ascent, descent = font.getmetrics()
        width = round(font.getlength("M"))
        self._height = ascent + descent
        self._glyphs: dict[str, np.ndarray] = {}
        for code in range(32, 127):
            cell = Image.new("L", (width, self._height), 0)
            ImageDraw.Draw(cell).text((0, 0), chr(code), fill=255, font=font)
            self._glyphs[chr(code)] = np.asarray(cell, dtype=np.float32) / 255.0
        self._missing = self._glyphs["?"]

    def write(self, img: np.ndarray, x: int, y: int, text: str) -> None:
        """Write ``text`` in ink at (x, y) (top left, pixels), clipped to the frame."""
        if not text:
            return
        glyphs = self._glyphs
        cover = np.concatenate([glyphs.get(c, self._missing) for c in text], axis=1)
        h = min(cover.shape[0], img.shape[0] - y)
        w = min(cover.shape[1], img.shape[1] - x)
        if h <= 0 or w <= 0:
            return
        alpha = cover[:h, :w, np.newaxis]
        region = img[y : y + h, x : x + w]
        region[:] = region * (1.0 - alpha) + np.asarray(_INK, dtype=np.float32) * alpha


def _bar(img: np.ndarray, x: int, y: int, share: float) -> None:
    """A 15 x 4 px bar at (x, y): its left ``share`` filled (setpoint / upper bound)."""
    y0, y1 = min(max(y, 0), FRAME_SHAPE[0] - 4), min(max(y, 0), FRAME_SHAPE[0] - 4) + 4
    x0 = min(max(x, 0), _MAP - 15)
    img[y0:y1, x0 : x0 + 15] = (200, 200, 200)
    filled = round(15 * min(max(share, 0.0), 1.0))
    img[y0:y1, x0 : x0 + filled] = _INK


def _colour_table() -> np.ndarray:
    """(256, 3) uint8 colours of matplotlib's ``turbo`` map (vivid on white, ordered)."""
    from matplotlib import colormaps

    table = colormaps["turbo"](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.rint(table * 255).astype(np.uint8)
