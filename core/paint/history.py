"""Undo/redo: a bounded list of named steps within a memory budget.

A stroke keeps, per touched tile, its bytes before and after (Blender's and Krita's tile undo:
memory grows with the painted area, not the texture size); a layer operation keeps the objects
it replaced. Restoring copies the saved bytes back, so undo and redo are exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .tiles import TILE, Key, Rect, tile_rect

DEFAULT_BUDGET = 512 * 1024 * 1024


@dataclass
class TileStep:
    """A stroke on one layer: tiles before (None: was unallocated) and after."""
    name: str
    layer_id: int
    before: dict[Key, np.ndarray | None]
    after: dict[Key, np.ndarray | None]

    @property
    def nbytes(self) -> int:
        # the tiles never change once the step exists; the history list asks on every undo
        n = self.__dict__.get("_nbytes")
        if n is None:
            n = self.__dict__["_nbytes"] = sum(
                t.nbytes for d in (self.before, self.after) for t in d.values() if t is not None) \
                + 64 * (len(self.before) + len(self.after))
        return n

    def rect(self, size: int) -> Rect | None:
        if not self.before:
            return None
        ks = np.array(list(self.before))
        return (int(ks[:, 0].min()) * TILE, min(size, int(ks[:, 0].max() + 1) * TILE),
                int(ks[:, 1].min()) * TILE, min(size, int(ks[:, 1].max() + 1) * TILE))

    def apply(self, stack, which: str) -> None:
        tiles = (self.before if which == "before" else self.after)
        layer = stack.layer_by_id(self.layer_id)
        for key, data in tiles.items():
            if data is None:
                layer.pixels.tiles.pop(key, None)
            else:
                layer.pixels.tiles[key] = data.copy()
            stack.mark_dirty(tile_rect(key, stack.size))

    def undo(self, stack) -> None:
        self.apply(stack, "before")

    def redo(self, stack) -> None:
        self.apply(stack, "after")


@dataclass
class OpStep:
    """A layer operation: two closures and the bytes they keep alive."""
    name: str
    do: Callable[[], None]
    undo_fn: Callable[[], None]
    kept_bytes: int = 0

    @property
    def nbytes(self) -> int:
        return self.kept_bytes + 256

    def undo(self, stack) -> None:
        self.undo_fn()

    def redo(self, stack) -> None:
        self.do()


@dataclass
class History:
    """Steps older than `max_steps` or beyond `budget_bytes` in total are forgotten, oldest first
    (the newest step is always kept, whatever its size)."""
    budget_bytes: int = DEFAULT_BUDGET
    max_steps: int = 1000
    done: list = field(default_factory=list)
    undone: list = field(default_factory=list)

    def push(self, step) -> None:
        self.done.append(step)
        self.undone.clear()
        self._trim()

    def set_budget(self, budget_bytes: int) -> None:
        self.budget_bytes = int(budget_bytes)
        self._trim()

    def _trim(self) -> None:
        total = self.nbytes
        while len(self.done) > 1 and (total > self.budget_bytes or len(self.done) > self.max_steps):
            total -= self.done.pop(0).nbytes

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self.done) + sum(s.nbytes for s in self.undone)

    def can_undo(self) -> bool:
        return bool(self.done)

    def can_redo(self) -> bool:
        return bool(self.undone)

    def undo(self, stack) -> str | None:
        if not self.done:
            return None
        step = self.done.pop()
        step.undo(stack)
        self.undone.append(step)
        return step.name

    def redo(self, stack) -> str | None:
        if not self.undone:
            return None
        step = self.undone.pop()
        step.redo(stack)
        self.done.append(step)
        return step.name

    def entries(self) -> list[tuple[str, int, bool]]:
        """The history list for a panel: (name, bytes, done) oldest first; undone steps last."""
        return [(s.name, s.nbytes, True) for s in self.done] + \
               [(s.name, s.nbytes, False) for s in reversed(self.undone)]
