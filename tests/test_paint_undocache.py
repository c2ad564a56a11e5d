"""The composite memo (core/paint/undocache.py): undo/redo of a stroke write back the saved
composite, which must equal a recomposite from scratch; any other change disables it."""
from __future__ import annotations

import numpy as np

from core.paint import BrushSettings, LayerStack, begin_stroke
from core.paint.undocache import CompositeMemo


def _stack() -> LayerStack:
    rng = np.random.default_rng(1)
    size = 1024
    yy, xx = np.mgrid[0:size, 0:size]
    cov = ((xx - 300) ** 2 + (yy - 500) ** 2 < 250 ** 2) | ((xx - 760) ** 2 + (yy - 500) ** 2 < 200 ** 2)
    base = rng.integers(60, 200, (size, size, 3), dtype=np.uint8)
    st = LayerStack(size, base=base, coverage=cov, padding=4)
    photo = np.dstack([rng.integers(0, 255, (size, size, 3)), np.full((size, size), 255)]).astype(np.uint8)
    st.add_layer("photo", pixels=photo, blend="multiply", opacity=0.6)
    st.add_layer("paint")
    st.add_layer("tint", blend="overlay", opacity=0.5)
    st.composite()
    return st


def _stroke(st: LayerStack, memo: CompositeMemo, layer: int, colour, xs) -> object:
    s = begin_stroke(st, layer, "brush", BrushSettings(size=40, colour=colour))
    memo.begin()
    for x in xs:
        s.dab(float(x), 500.0 + 80 * np.sin(x / 60.0))
        memo.capture()
        st.refresh()
    step = s.end()
    st.refresh()
    memo.end(step)
    return step


def test_memo_undo_redo_equals_a_fresh_composite():
    st = _stack()
    memo = CompositeMemo(st)
    _stroke(st, memo, 1, (200, 20, 20), np.arange(80, 900, 6))    # crosses both islands and the gap
    after = st.composite().copy()
    for _ in range(2):
        step = st.history.done[-1]
        st.undo()
        rects = memo.restore(step, "before")
        assert rects, "the memo applies to the stroke just painted"
        assert np.array_equal(st.composite(), st.flatten())
        st.redo()
        assert memo.restore(step, "after")
        assert np.array_equal(st.composite(), after)
        assert np.array_equal(st.composite(), st.flatten())
    assert memo.hits == 4


def test_memo_refuses_when_the_stack_changed_otherwise():
    st = _stack()
    memo = CompositeMemo(st)
    step = _stroke(st, memo, 1, (20, 200, 20), np.arange(100, 600, 8))
    st.undo()
    st.layers[2].opacity = 0.9           # not through history: the saved composite is stale
    assert memo.restore(step, "before") is None
    st.layers[2].opacity = 0.5
    st.composite()
    # a layer operation after the stroke (history step on top) is undone first: still right
    st.redo()
    assert memo.restore(step, "after") is not None
    st.set_layer(2, blend="screen")
    st.undo()                            # the blend change
    st.composite()
    st.undo()                            # the stroke: same state as when it was painted
    assert memo.restore(step, "before") is not None
    assert np.array_equal(st.composite(), st.flatten())
