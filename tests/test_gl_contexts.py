"""One thread, two GL worlds: the studio's Qt (GLX) contexts and the headless EGL context that
tests, scripts and exports use. Qt keeps its own note of which context is current; a stale note
once let a closed window's garbage-collected context release the EGL context in the middle of a
later headless test (CI: "cannot create buffer")."""
from __future__ import annotations

import gc

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_closed_window_cannot_release_the_headless_context(qtbot, face_model):
    from PySide6.QtCore import QCoreApplication, QEvent

    from app.main_window import MainWindow
    from core.render import headless_context

    w = MainWindow(face_model)
    w.resize(480, 360)
    with qtbot.waitSignal(w.mesh_ready, timeout=120_000):
        w.show()
    w.avatar.set_dirty(False)
    assert w.viewport.makeCurrent()          # Qt now notes its context as current here
    ctx = headless_context()                 # EGL made current on the same thread
    w.close()
    w.runner.wait(30_000)
    QCoreApplication.processEvents()         # the finished jobs' results reach the live window
    w.deleteLater()
    del w
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()                             # the window and its Qt context are destroyed
    data = np.arange(16, dtype=np.float32)
    buf = ctx.buffer(data.tobytes())         # the EGL context is still current and working
    assert np.array_equal(np.frombuffer(buf.read(), np.float32), data)
    buf.release()
