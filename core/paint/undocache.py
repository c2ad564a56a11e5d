"""Composite tiles before and after recent strokes, so undo and redo skip recompositing.

Undoing a long stroke restores its layer tiles in microseconds, but recompositing those tiles
(every visible layer, blend modes, seam padding) takes a hundred milliseconds or more at 2048^2
with several layers. While a stroke is painted, the composite of each tile is copied just
before the stroke first changes it; at the end, the composite after. Undo of that stroke (and
redo) then writes the saved composite back, provided the stack is otherwise as it was: same
base, coverage, layers and layer properties (other layers' pixels change only through history
steps, which sit above or below this one in the linear history). Anything else falls back to
the ordinary recomposite.
"""
from __future__ import annotations

import numpy as np

from .layers import LayerStack
from .tiles import TILE, Key, Rect, tile_rect

DEFAULT_BUDGET = 96 * 2**20


def state_token(stack: LayerStack) -> tuple:
    """What, besides the layers' pixels, decides the composite."""
    return (stack._base_key, id(stack.coverage), stack.size, stack.padding,
            tuple((l.id, l.opacity, l.blend, l.visible, id(l.mask)) for l in stack.layers))


class CompositeMemo:
    def __init__(self, stack: LayerStack, budget_bytes: int = DEFAULT_BUDGET) -> None:
        self.stack = stack
        self.budget = budget_bytes
        self._memo: dict[int, tuple] = {}       # id(step) -> (step, token, before, after)
        self._before: dict[Key, np.ndarray] | None = None
        self.hits = 0

    # ------------------------------------------------------------------ during a stroke
    def begin(self) -> None:
        """Call when a stroke starts: the composite is brought up to date first."""
        self.stack.refresh()
        self._before = {}

    def capture(self) -> None:
        """Call before each stack.refresh() of the stroke: keep the old composite of tiles
        about to be recomposited for the first time in this stroke."""
        if self._before is None:
            return
        comp = self.stack._composite
        for ty, tx in zip(*np.nonzero(self.stack._dirty)):
            key = (int(ty), int(tx))
            if key not in self._before:
                y0, y1, x0, x1 = tile_rect(key, self.stack.size)
                self._before[key] = comp[y0:y1, x0:x1].copy()

    def end(self, step) -> None:
        """The stroke ended with `step` (its TileStep, or None: nothing changed); the composite
        must be up to date."""
        before, self._before = self._before, None
        if step is None or not before:
            return
        comp = self.stack._composite
        after = {}
        for key in before:
            y0, y1, x0, x1 = tile_rect(key, self.stack.size)
            after[key] = comp[y0:y1, x0:x1].copy()
        self._memo[id(step)] = (step, state_token(self.stack), before, after)
        self._trim()

    def _trim(self) -> None:
        live = {id(s) for s in self.stack.history.done + self.stack.history.undone}
        for k in [k for k in self._memo if k not in live]:
            del self._memo[k]
        total = sum(self._nbytes(v) for v in self._memo.values())
        for k in list(self._memo):          # oldest first (insertion order)
            if total <= self.budget:
                break
            total -= self._nbytes(self._memo.pop(k))

    @staticmethod
    def _nbytes(entry) -> int:
        return sum(t.nbytes for d in entry[2:] for t in d.values())

    # ------------------------------------------------------------------ undo / redo
    def restore(self, step, which: str) -> list[Rect] | None:
        """After history moved `step` to `which` ("before": undone, "after": redone) and marked
        its tiles dirty: write the saved composite and clear the dirty flags. Returns the
        refreshed rects, or None when the memo does not apply (recomposite as usual). The
        stack must have been clean before the step moved."""
        entry = self._memo.get(id(step))
        if entry is None or entry[0] is not step or entry[1] != state_token(self.stack):
            return None
        tiles = entry[2] if which == "before" else entry[3]
        comp, size = self.stack._composite, self.stack.size
        rects = []
        for key, data in tiles.items():
            r = tile_rect(key, size)
            comp[r[0]:r[1], r[2]:r[3]] = data
            rects.append(r)
        # Tiles marked dirty by the move but not saved: no texel within the padding of them
        # changed during the stroke, so their composite is still right.
        self.stack._dirty[:] = False
        self.hits += 1
        return _merge_rows(rects)


def _merge_rows(rects: list[Rect]) -> list[Rect]:
    """Join horizontally adjacent tile rects of the same row (fewer texture uploads)."""
    rects = sorted(rects)
    out: list[list[int]] = []
    for y0, y1, x0, x1 in rects:
        if out and out[-1][0] == y0 and out[-1][1] == y1 and out[-1][3] == x0:
            out[-1][3] = x1
        else:
            out.append([y0, y1, x0, x1])
    return [tuple(r) for r in out]


__all__ = ["CompositeMemo", "state_token", "TILE"]
