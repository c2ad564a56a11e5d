"""Brush settings, presets, the dab footprint and the placement of dabs along a stroke.

Coordinates are UV texels of the layer stack: x to the right, y down (row index; v = 1 - y/S).
Spacing places dabs at fixed distances along the (stabilised) pointer path, so the painted line
does not depend on how fast pointer events arrive.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .tiles import Rect, clip_rect


@dataclass(frozen=True)
class BrushSettings:
    """size: dab diameter in texels. hardness: 0 (soft, smooth falloff to the rim) .. 1 (hard
    edge). opacity: the most a stroke can cover. flow: how much of the way to the dab strength
    each dab goes (below 1 repeated dabs build up, never past the dab). spacing: dab distance as
    a fraction of the diameter. jitter: random dab offset as a fraction of the diameter.
    stabiliser: lazy-mouse string length in texels (0: off). pressure_size / pressure_opacity:
    what pen pressure scales. colour: RGB uint8. strength: rate for smudge and blur."""
    size: float = 32.0
    hardness: float = 0.5
    opacity: float = 1.0
    flow: float = 1.0
    spacing: float = 0.1
    jitter: float = 0.0
    stabiliser: float = 0.0
    pressure_size: bool = True
    pressure_opacity: bool = False
    colour: tuple[int, int, int] = (0, 0, 0)
    strength: float = 0.5

    def with_(self, **changes) -> "BrushSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


# Named presets as data (the GUI lists them; colour stays the user's).
PRESETS: dict[str, BrushSettings] = {
    "Soft round": BrushSettings(size=48, hardness=0.0, opacity=1.0, flow=1.0, spacing=0.1),
    "Hard round": BrushSettings(size=24, hardness=0.9, opacity=1.0, flow=1.0, spacing=0.08),
    "Airbrush": BrushSettings(size=96, hardness=0.0, opacity=0.6, flow=0.15, spacing=0.05,
                              pressure_size=False, pressure_opacity=True),
    "Pencil": BrushSettings(size=3, hardness=1.0, opacity=1.0, flow=1.0, spacing=0.25,
                            pressure_opacity=True),
    "Inking": BrushSettings(size=8, hardness=0.8, opacity=1.0, flow=1.0, spacing=0.1,
                            stabiliser=12.0),
    "Freckles": BrushSettings(size=5, hardness=0.6, opacity=0.7, flow=1.0, spacing=2.5,
                              jitter=3.0, pressure_size=False),
    "Blender": BrushSettings(size=40, hardness=0.2, strength=0.4, spacing=0.15),
}


def falloff(rect: Rect, cx: float, cy: float, radius: float, hardness: float) -> np.ndarray:
    """Dab strength (h, w) float32 in [0, 1] over `rect` for a dab centred at texel (cx, cy):
    1 inside hardness x radius, a smoothstep down to 0 at the rim (at least one texel wide, so
    hard brushes stay anti-aliased)."""
    y0, y1, x0, x1 = rect
    ys = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    xs = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    d = np.sqrt(xs * xs + ys * ys)
    r = max(float(radius), 0.5)
    inner = min(float(np.clip(hardness, 0, 1)) * r, r - 1.0)
    t = np.clip((d - inner) / max(r - inner, 1e-3), 0.0, 1.0)
    return (1.0 - t * t * (3.0 - 2.0 * t)).astype(np.float32)


def dab_rect(cx: float, cy: float, radius: float, size: int) -> Rect | None:
    r = int(np.ceil(radius)) + 1
    return clip_rect((int(np.floor(cy)) - r, int(np.floor(cy)) + r + 1,
                      int(np.floor(cx)) - r, int(np.floor(cx)) + r + 1), size)


@dataclass
class Dab:
    x: float
    y: float
    radius: float
    pressure: float


class DabPath:
    """Turns pointer samples (x, y, pressure) into evenly spaced dabs: lazy-mouse stabiliser,
    spacing along the path (pressure interpolated), seeded jitter."""

    def __init__(self, brush: BrushSettings, seed: int = 0) -> None:
        self.brush = brush
        self.rng = np.random.default_rng(seed)
        self._last: tuple[float, float, float] | None = None   # last stabilised point
        self._carry = 0.0                                        # path length since the last dab

    def radius(self, pressure: float) -> float:
        p = float(np.clip(pressure, 0, 1)) if self.brush.pressure_size else 1.0
        return max(0.5, 0.5 * self.brush.size * p)

    def _stabilise(self, x: float, y: float, p: float) -> tuple[float, float, float] | None:
        if self._last is None or self.brush.stabiliser <= 0:
            return x, y, p
        lx, ly, lp = self._last
        d = np.hypot(x - lx, y - ly)
        L = self.brush.stabiliser
        if d <= L:
            return None   # the pointer moves inside the string: the brush stays
        k = (d - L) / d
        return lx + (x - lx) * k, ly + (y - ly) * k, lp + (p - lp) * k

    def add(self, x: float, y: float, pressure: float = 1.0) -> list[Dab]:
        pt = self._stabilise(float(x), float(y), float(pressure))
        if pt is None:
            return []
        if self._last is None:
            self._last = pt
            return [self._dab(*pt)]
        (lx, ly, lp), (nx, ny, np_) = self._last, pt
        seg = float(np.hypot(nx - lx, ny - ly))
        dabs = []
        pos = 0.0
        while True:
            step = max(1.0, self.brush.spacing * 2 * self.radius(lp + (np_ - lp) * (pos / seg if seg else 1)))
            if self._carry + (seg - pos) < step:
                self._carry += seg - pos
                break
            pos += step - self._carry
            self._carry = 0.0
            t = pos / seg
            dabs.append(self._dab(lx + (nx - lx) * t, ly + (ny - ly) * t, lp + (np_ - lp) * t))
        self._last = pt
        return dabs

    def _dab(self, x: float, y: float, p: float) -> Dab:
        r = self.radius(p)
        if self.brush.jitter > 0:
            ang = self.rng.uniform(0, 2 * np.pi)
            dist = self.rng.uniform(0, self.brush.jitter * 2 * r)
            x, y = x + dist * np.cos(ang), y + dist * np.sin(ang)
        return Dab(x, y, r, float(np.clip(p, 0, 1)))
