"""Painting on a layer mask: the brush reveals (mask -> 255), the eraser hides (-> 0).

Same stroke semantics as stroke.Stroke (per-stroke max-accumulated strength against the mask
as it was at stroke start, opacity caps, flow builds up), same input (add_point / dab / apply),
so the views drive it alike. The stroke works on a copy shown live; end() hands the result to
LayerStack.set_layer(mask=...), which makes it one undoable step.
"""
from __future__ import annotations

import numpy as np

from .brush import BrushSettings, DabPath
from .errors import PaintError
from .layers import LayerStack
from .stroke import DabInput
from .tiles import Rect, clip_rect


class MaskStroke(DabInput):
    def __init__(self, stack: LayerStack, layer_index: int, tool: str, brush: BrushSettings,
                 seed: int = 0) -> None:
        if tool not in ("brush", "eraser"):
            raise PaintError("Only the brush (reveal) and the eraser (hide) paint on a layer mask.")
        layer = stack._layer(layer_index)
        if layer.locked:
            raise PaintError(f"The layer {layer.name!r} is locked; unlock it to paint on its mask.")
        if layer.mask is None:
            raise PaintError(f"The layer {layer.name!r} has no mask; add one first.")
        self.stack, self.layer, self.tool, self.brush = stack, layer, tool, brush
        self.index = stack.index_of(layer)
        self.path = DabPath(brush, seed)
        self._orig = layer.mask
        self._work = layer.mask.copy()
        self._smask = np.zeros(layer.mask.shape, np.float32)
        self._target = np.float32(255.0 if tool == "brush" else 0.0)
        layer.mask = self._work        # shown while painting; the stack's step comes at end()
        self.open = True

    def apply(self, y0: int, x0: int, strength: np.ndarray) -> list[Rect]:
        if not self.open:
            raise PaintError("This stroke has ended.")
        h, w = strength.shape
        rect = clip_rect((y0, y0 + h, x0, x0 + w), self.stack.size)
        if rect is None:
            return []
        a0, a1, b0, b1 = rect
        s = np.asarray(strength, np.float32)[a0 - y0:a1 - y0, b0 - x0:b1 - x0]
        m = self._smask[a0:a1, b0:b1]
        m += (np.maximum(m, s) - m) * np.float32(np.clip(self.brush.flow, 0, 1))
        a = m * np.float32(np.clip(self.brush.opacity, 0, 1))
        orig = self._orig[a0:a1, b0:b1].astype(np.float32)
        self._work[a0:a1, b0:b1] = np.clip(orig + (self._target - orig) * a + 0.5, 0, 255).astype(np.uint8)
        self.stack._below = None
        self.stack.mark_dirty(rect)
        return [rect]

    def end(self):
        if not self.open:
            return None
        self.open = False
        self.layer.mask = self._orig
        if np.array_equal(self._work, self._orig):
            return None
        self.stack.set_layer(self.index, mask=self._work)
        self._smask = None
        return self.stack.history.done[-1]
