"""The stroke engine: dabs on one layer of a LayerStack, in UV texel space.

Brush, eraser, clone and stencil follow Blender's and ArmorPaint's stroke semantics: each dab
max-accumulates its strength into a stroke mask, and the layer is recomputed from a copy of
its tiles at stroke start blended with the paint by that mask, so overlapping dabs of one
stroke never pile up (opacity caps the stroke, flow < 1 builds up towards the dab strength).
Smudge and blur act on the current pixels dab by dab (they are cumulative by nature).
The tiles saved at first touch are also the stroke's undo record.

GUI use: s = begin_stroke(stack, layer_index, "brush", brush, symmetry=..., mask=...);
for each pointer event s.add_point(x, y, pressure), then for r in stack.refresh(): upload
stack.composite()[r] to the texture; on release s.end(). Projection painting computes its own per-texel
footprint and calls s.apply(y0, x0, strength) instead of add_point.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .brush import BrushSettings, DabPath, dab_rect, falloff
from .errors import PaintError
from .history import TileStep
from .layers import Layer, LayerStack
from .symmetry import MirrorMap
from .tiles import Key, Rect, TiledImage, clip_rect

TOOLS = ("brush", "eraser", "smudge", "blur", "clone", "stencil")
_MASKED = ("brush", "eraser", "clone", "stencil")
_INV255 = np.float32(1 / 255)


@dataclass
class Stencil:
    """An RGBA uint8 image placed on the canvas with its top-left texel at (x, y); the stencil
    tool paints its colours (and alpha) where the brush passes, a decal stamps all of it."""
    image: np.ndarray
    x: int = 0
    y: int = 0


class DabInput:
    """Pointer input shared by the strokes (colour layers, masks): dabs placed along the pointer
    path by the brush's spacing, each a falloff footprint handed to the stroke's `apply`. Needs
    `path` (DabPath), `brush`, `stack` and `apply(y0, x0, strength)`."""
    path: DabPath
    brush: BrushSettings
    stack: LayerStack

    def apply(self, y0: int, x0: int, strength: np.ndarray) -> list[Rect]:
        raise NotImplementedError

    def add_point(self, x: float, y: float, pressure: float = 1.0) -> list[Rect]:
        """A pointer sample in texels; places the dabs spacing asks for. Returns touched rects."""
        rects: list[Rect] = []
        for d in self.path.add(x, y, pressure):
            rects += self.dab(d.x, d.y, d.pressure, radius=d.radius)
        return rects

    def dab(self, x: float, y: float, pressure: float = 1.0, radius: float | None = None) -> list[Rect]:
        """One dab now at texel (x, y) (no spacing, no stabiliser)."""
        r = self.path.radius(pressure) if radius is None else radius
        rect = dab_rect(x, y, r, self.stack.size)
        if rect is None:
            return []
        s = falloff(rect, x, y, r, self.brush.hardness)
        if self.brush.pressure_opacity:
            s *= np.float32(np.clip(pressure, 0, 1))
        return self.apply(rect[0], rect[2], s)


class Stroke(DabInput):
    def __init__(self, stack: LayerStack, layer: Layer, tool: str, brush: BrushSettings,
                 symmetry: MirrorMap | None = None, mask: np.ndarray | None = None,
                 clone_offset: tuple[int, int] | None = None, stencil: Stencil | None = None,
                 seed: int = 0, name: str | None = None) -> None:
        if tool not in TOOLS:
            raise PaintError(f"Unknown tool {tool!r}; the tools are {', '.join(TOOLS)}.")
        if layer.locked:
            raise PaintError(f"The layer {layer.name!r} is locked; unlock it to paint on it.")
        if tool == "clone" and clone_offset is None:
            raise PaintError("Set a clone source first (the offset from the brush to the source).")
        if tool == "stencil" and stencil is None:
            raise PaintError("Choose a stencil image first.")
        if symmetry is not None and symmetry.size != stack.size:
            raise PaintError("The symmetry map does not match the texture resolution.")
        self.stack, self.layer, self.tool, self.brush = stack, layer, tool, brush
        self.symmetry = symmetry
        self.name = name or tool.capitalize()
        self.path = DabPath(brush, seed)
        s = stack.size
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (s, s):
                raise PaintError(f"A paint mask must be {s}x{s}, not {mask.shape}.")
            mask = mask.astype(np.float32) * (_INV255 if mask.dtype == np.uint8 else np.float32(1))
        self.mask = mask
        self.colour = np.asarray(brush.colour, np.float32) * _INV255
        self._smask = np.zeros((s, s), np.float32) if tool in _MASKED else None   # calloc: lazy pages
        self._orig = TiledImage(s)
        self._was_empty: set[Key] = set()
        self._smudge: np.ndarray | None = None
        self._clone = None
        if tool == "clone":
            self._clone = stack.composite().copy()   # clone what the artist sees, as at stroke start
            self._offset = (int(clone_offset[1]), int(clone_offset[0]))   # (dy, dx)
        self.stencil = stencil
        self.open = True
        stack.hold_below(layer)

    # ------------------------------------------------------------------ input
    def apply(self, y0: int, x0: int, strength: np.ndarray) -> list[Rect]:
        """Paint an arbitrary footprint: strength (h, w) float in [0, 1] with its top-left texel
        at (y0, x0) (projection painting computes it from the world-space brush)."""
        if not self.open:
            raise PaintError("This stroke has ended.")
        h, w = strength.shape
        rect = clip_rect((y0, y0 + h, x0, x0 + w), self.stack.size)
        if rect is None:
            return []
        s = np.asarray(strength, np.float32)[rect[0] - y0:rect[1] - y0, rect[2] - x0:rect[3] - x0]
        if self.mask is not None:
            s = s * self.mask[rect[0]:rect[1], rect[2]:rect[3]]
        rects = [self._paint(rect, s, None)]
        if self.symmetry is not None:
            m = self.symmetry.mirror(rect, s)
            if m is not None:
                r2, s2, rows, cols = m
                if self.mask is not None:
                    s2 = s2 * self.mask[r2[0]:r2[1], r2[2]:r2[3]]
                rects.append(self._paint(r2, s2, (rows, cols)))
        for r in rects:
            self.stack.mark_dirty(r)
        return rects

    # ------------------------------------------------------------------ pixels
    def _save(self, rect: Rect) -> None:
        """Keep the layer's tiles as they were before this stroke first touched them."""
        tiles = self.layer.pixels.tiles
        for key in self._orig.keys_in(rect):
            if key not in self._orig.tiles:
                t = tiles.get(key)
                if t is None:
                    self._was_empty.add(key)
                    self._orig.ensure(key)
                else:
                    self._orig.tiles[key] = t.copy()

    def _paint(self, rect: Rect, s: np.ndarray, coords) -> Rect:
        self._save(rect)
        if self.tool in _MASKED:
            self._masked(rect, s, coords)
        elif self.tool == "smudge":
            self._smudge_dab(rect, s)
        else:
            self._blur_dab(rect, s)
        return rect

    def _source(self, rect: Rect, coords) -> tuple[np.ndarray, np.ndarray]:
        """Paint colour (h, w, 3) and alpha (h, w, 1) float32 per texel of `rect`; `coords`
        (rows, cols): sample the source at those texels instead (mirrored dabs)."""
        y0, y1, x0, x1 = rect
        if self.tool in ("brush", "eraser"):
            return self.colour, np.float32(1.0)
        if coords is None:
            rows, cols = np.mgrid[y0:y1, x0:x1]
        else:
            rows, cols = coords
        if self.tool == "clone":
            dy, dx = self._offset
            sr, sc = rows + dy, cols + dx
            src = self._clone
        else:
            st = self.stencil
            sr, sc = rows - st.y, cols - st.x
            src = st.image
        h, w = src.shape[:2]
        inside = (sr >= 0) & (sr < h) & (sc >= 0) & (sc < w)
        px = src[np.clip(sr, 0, h - 1), np.clip(sc, 0, w - 1)].astype(np.float32) * _INV255
        alpha = inside[..., None].astype(np.float32)
        if px.shape[-1] == 4:
            alpha = alpha * px[..., 3:4]
        return px[..., :3], alpha

    def _masked(self, rect: Rect, s: np.ndarray, coords) -> None:
        y0, y1, x0, x1 = rect
        m = self._smask[y0:y1, x0:x1]
        flow = np.float32(np.clip(self.brush.flow, 0, 1))
        m += (np.maximum(m, s) - m) * flow        # in place: the stroke mask only grows
        a = (m * np.float32(np.clip(self.brush.opacity, 0, 1)))[..., None]
        orig = self._orig.read(rect).astype(np.float32) * _INV255
        oc, oa = orig[..., :3], orig[..., 3:4]
        if self.tool == "eraser":
            out = np.concatenate([oc, oa * (1 - a)], axis=-1)
        else:
            src, sa = self._source(rect, coords)
            sa = a * sa
            ao = sa + oa * (1 - sa)
            co = (src * sa + oc * oa * (1 - sa)) / np.maximum(ao, 1e-6)
            out = np.concatenate([co, ao], axis=-1)
        self.layer.pixels.write(rect, _u8(out))

    def _premul(self, rect: Rect) -> np.ndarray:
        px = self.layer.pixels.read(rect).astype(np.float32) * _INV255
        px[..., :3] *= px[..., 3:4]
        return px

    def _write_premul(self, rect: Rect, px: np.ndarray) -> None:
        a = px[..., 3:4]
        out = np.concatenate([px[..., :3] / np.maximum(a, 1e-6), a], axis=-1)
        self.layer.pixels.write(rect, _u8(out))

    def _smudge_dab(self, rect: Rect, s: np.ndarray) -> None:
        cur = self._premul(rect)
        buf = self._smudge
        if buf is None or buf.shape != cur.shape:
            self._smudge = cur      # the first dab (or one clipped at the border) picks up only
            return
        k = (s * np.float32(self.brush.strength * self.brush.opacity))[..., None]
        new = cur + (buf - cur) * k
        self._write_premul(rect, new)
        self._smudge = new

    def _blur_dab(self, rect: Rect, s: np.ndarray) -> None:
        y0, y1, x0, x1 = rect
        radius = max(1.0, (x1 - x0) / 8)
        g = int(np.ceil(2 * radius))
        big = clip_rect((y0 - g, y1 + g, x0 - g, x1 + g), self.stack.size)
        self._save(big)
        px = self._premul(big)
        blurred = cv2.GaussianBlur(px, (0, 0), radius, borderType=cv2.BORDER_REPLICATE)
        sl = (slice(y0 - big[0], y1 - big[0]), slice(x0 - big[2], x1 - big[2]))
        cur, blur = px[sl], blurred[sl]
        k = (s * np.float32(self.brush.strength * self.brush.opacity))[..., None]
        self._write_premul(rect, cur + (blur - cur) * k)

    # ------------------------------------------------------------------ end
    def end(self) -> TileStep | None:
        """Finish: push the undo step (only tiles that changed) and free the stroke buffers."""
        if not self.open:
            return None
        self.open = False
        self.stack.hold_below(None)
        before, after = {}, {}
        tiles = self.layer.pixels.tiles
        for key, old in self._orig.tiles.items():
            new = tiles.get(key)
            if new is None or np.array_equal(new, old):
                if key in self._was_empty and new is not None:
                    del tiles[key]          # touched but still empty: keep the layer sparse
                continue
            before[key] = None if key in self._was_empty else old
            after[key] = new.copy()
        self._smask = self._orig = self._clone = self._smudge = None
        if not before:
            return None
        step = TileStep(self.name, self.layer.id, before, after)
        self.stack.history.push(step)
        self.stack._emit("pixels")
        return step


def begin_stroke(stack: LayerStack, layer_index: int, tool: str, brush: BrushSettings, **kw) -> Stroke:
    """Start a stroke on stack.layers[layer_index]; see Stroke for the keyword options
    (symmetry, mask, clone_offset (dx, dy), stencil, seed, name)."""
    if not stack.layers:
        raise PaintError("Add a layer to paint on first.")
    return Stroke(stack, stack._layer(layer_index), tool, brush, **kw)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
