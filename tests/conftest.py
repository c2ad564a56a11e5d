"""Shared fixtures. GUI tests run on an X display: the session's own if DISPLAY is set, else a
private Xvfb started here (and stopped at the end); without either they are skipped with the
reason. Qt's `offscreen` platform has no OpenGL context, so it is not an option for them."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def display():
    from app.xvfb import VirtualDisplay

    vd = None
    if not os.environ.get("DISPLAY"):
        if not VirtualDisplay.available():
            pytest.skip("GUI test skipped: no X display (DISPLAY unset) and Xvfb is not installed")
        vd = VirtualDisplay()
        try:
            os.environ["DISPLAY"] = vd.start()
        except RuntimeError as exc:
            pytest.skip(f"GUI test skipped: could not start Xvfb ({exc})")
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    # paint autosaves (app/paint_controller.py) go to a private folder, never the user's
    import tempfile
    os.environ.setdefault("LIKENESS_RECOVERY_DIR", tempfile.mkdtemp(prefix="likeness-recovery-"))
    from app.main import set_gl_format

    set_gl_format()  # must precede the QApplication
    # Xvfb is stopped at interpreter exit (VirtualDisplay registers that), after the test
    # session's QApplication is gone: stopping it here would cut Qt's X connection.
    return os.environ["DISPLAY"]


@pytest.fixture(scope="session")
def qapp_args(display):
    """pytest-qt builds its QApplication from this: depending on `display` makes sure the
    X server exists and the GL format is set before the application is created."""
    return ["likeness-tests"]


@pytest.fixture(scope="session")
def face_model():
    try:
        from core.facemodel import FaceModel
        return FaceModel.load()
    except (ImportError, FileNotFoundError) as exc:
        pytest.skip(f"face model not available: {exc}")


@pytest.fixture(autouse=True)
def _no_headless_gl_current_for_gui_tests(request):
    """A GUI test needs the main thread free of the headless EGL context earlier tests made
    current, and leaves it free of its Qt (GLX) context (core.render.release_current_context
    says why)."""
    gui = "qtbot" in request.fixturenames or "qapp" in request.fixturenames
    if gui:
        from core.render.renderer import release_current_context
        release_current_context()
    yield
    if gui:   # and the other way round: a GLX context left current blocks later headless work
        import gc

        from PySide6.QtCore import QCoreApplication, QEvent
        from PySide6.QtGui import QOpenGLContext
        # Destroy the test's closed widgets (and their GL contexts) now, not at some garbage
        # collection in the middle of a later headless test.
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        gc.collect()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        current = QOpenGLContext.currentContext()
        if current is not None:
            current.doneCurrent()
