"""One-shot tools: fill (by UV island or by colour similarity, inside a selection), the
eyedropper, and stamping a decal. Fills and decals go through a Stroke, so they are undoable
and mirrored like any stroke."""
from __future__ import annotations

import cv2
import numpy as np

from .brush import BrushSettings
from .errors import PaintError
from .layers import LayerStack
from .stroke import Stencil, Stroke
from .symmetry import MirrorMap
from .tiles import Rect


def pick_colour(stack: LayerStack, x: float, y: float, radius: int = 0) -> tuple[int, int, int]:
    """Eyedropper: the composite's colour at texel (x, y), averaged over a (2r+1)^2 square."""
    s = stack.size
    xi, yi = int(np.clip(x, 0, s - 1)), int(np.clip(y, 0, s - 1))
    r = max(0, int(radius))
    rect = (max(0, yi - r), min(s, yi + r + 1), max(0, xi - r), min(s, xi + r + 1))
    comp = stack.composite(rect)
    c = comp[rect[0]:rect[1], rect[2]:rect[3]].reshape(-1, 3).mean(axis=0)
    return tuple(int(round(v)) for v in c)


def fill_region(stack: LayerStack, x: float, y: float, mode: str = "island", tolerance: int = 24,
                selection: np.ndarray | None = None) -> np.ndarray:
    """(S, S) bool texels a fill at texel (x, y) covers: the UV island there ('island') or the
    contiguous texels of the composite within `tolerance` per channel of the seed ('colour'),
    always limited to `selection` ((S, S) bool/uint8, None: everything)."""
    s = stack.size
    xi, yi = int(np.clip(x, 0, s - 1)), int(np.clip(y, 0, s - 1))
    allowed = np.ones((s, s), bool) if selection is None else np.asarray(selection).astype(bool)
    if allowed.shape != (s, s):
        raise PaintError(f"A selection must be {s}x{s}, not {allowed.shape}.")
    if not allowed[yi, xi]:
        raise PaintError("The fill point is outside the selection.")
    if mode == "island":
        if stack.coverage is None:
            raise PaintError("Filling by UV island needs the UV layout; it is not known for this texture.")
        if not stack.coverage[yi, xi]:
            raise PaintError("The fill point is outside the UV islands.")
        _, labels = cv2.connectedComponents(stack.coverage.astype(np.uint8), connectivity=8)
        return (labels == labels[yi, xi]) & allowed
    if mode == "colour":
        img = np.ascontiguousarray(stack.composite())
        # floodFill never enters texels whose mask is non-zero: block what is not selected.
        mask = np.ones((s + 2, s + 2), np.uint8)
        mask[1:-1, 1:-1] = ~allowed
        t = int(np.clip(tolerance, 0, 255))
        flags = 8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
        cv2.floodFill(img, mask, (xi, yi), (0, 0, 0), (t, t, t), (t, t, t), flags)
        return mask[1:-1, 1:-1] == 255
    raise PaintError(f"Unknown fill mode {mode!r}; use 'island' or 'colour'.")


def fill(stack: LayerStack, layer_index: int, x: float, y: float, colour: tuple[int, int, int],
         mode: str = "island", tolerance: int = 24, selection: np.ndarray | None = None,
         opacity: float = 1.0, symmetry: MirrorMap | None = None) -> list[Rect]:
    """Fill on a layer (one undo step 'Fill'); returns the touched rects."""
    region = fill_region(stack, x, y, mode, tolerance, selection)
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    brush = BrushSettings(colour=tuple(int(c) for c in colour), opacity=opacity, flow=1.0)
    st = Stroke(stack, stack._layer(layer_index), "brush", brush, symmetry=symmetry, name="Fill")
    rects = st.apply(int(y0), int(x0), region[y0:y1, x0:x1].astype(np.float32))
    st.end()
    return rects


def stamp_decal(stack: LayerStack, layer_index: int, image: np.ndarray, x: int, y: int,
                opacity: float = 1.0, symmetry: MirrorMap | None = None) -> list[Rect]:
    """Stamp an RGBA (or RGB) image with its top-left texel at (x, y): one undo step 'Decal'."""
    img = np.asarray(image, np.uint8)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise PaintError(f"A decal must be an RGB or RGBA image, not an array of shape {img.shape}.")
    brush = BrushSettings(opacity=opacity, flow=1.0)
    st = Stroke(stack, stack._layer(layer_index), "stencil", brush, symmetry=symmetry,
                stencil=Stencil(img, int(x), int(y)), name="Decal")
    rects = st.apply(int(y), int(x), np.ones(img.shape[:2], np.float32))
    st.end()
    return rects
