"""File > New from photo under Xvfb: fit, drag a landmark, refit, create; cancel; bad photos."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.gui
FIT_TIMEOUT_MS = 180_000
MESH_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    """A public-domain portrait (skimage.data.astronaut, NASA) with one face."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture
def fast():
    """A shorter fit than the app's default (same stages minus shading): the tests check the
    dialog, not the fitter's accuracy."""
    from core.fitting import FitOptions

    return {"options": FitOptions(rigid_steps=30, landmark_steps=80, photo_steps=0), "texture_size": 256}


@pytest.fixture
def window(qtbot, face_model, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow

    def unexpected(*args, **kwargs):   # a test must never hang on a modal dialog
        raise AssertionError(f"unexpected message box: {args[1:3]}")

    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, unexpected)
    w = MainWindow(face_model)
    w.resize(1280, 800)
    with qtbot.waitSignal(w.mesh_ready, timeout=MESH_TIMEOUT_MS):
        w.show()
    yield w
    w.avatar.set_dirty(False)
    w.close()
    w.runner.wait(30_000)
    w.deleteLater()


def drag(qtbot, view, item, dx: float, dy: float) -> None:
    """Drag a graphics item with the mouse by (dx, dy) screen pixels."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    start = view.mapFromScene(item.pos())
    vp = view.viewport()
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, start)
    for t in (0.25, 0.5, 0.75, 1.0):
        QTest.mouseMove(vp, start + QPoint(round(dx * t), round(dy * t)))
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, start + QPoint(round(dx), round(dy)))


def test_fit_drag_landmark_refit_and_create(window, qtbot, astronaut, fast, monkeypatch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    ticks: list[float] = []
    timer = QTimer(interval=20, timeout=lambda: ticks.append(time.perf_counter()))
    timer.start()
    dlg = window.new_from_photo(astronaut, **fast)
    assert dlg.isVisible() and dlg.busy and not dlg.create_button.isEnabled()
    with qtbot.waitSignal(dlg.fitted, timeout=FIT_TIMEOUT_MS):
        pass
    timer.stop()
    gaps = np.diff(ticks)
    assert gaps.max() < 1.0, f"the GUI froze for {gaps.max():.2f} s during detection and fit"
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    fit = dlg.result.fit
    assert dlg.faces_label.text() == "1 face found" and dlg.error == ""
    items = dlg.landmark_items
    assert len(items) == 68 and all(i.isVisible() for i in items)
    assert np.allclose([(i.pos().x(), i.pos().y()) for i in items], fit.landmarks68, atol=1e-3)
    assert dlg.create_button.isEnabled() and dlg.refit_button.text() == "Refit"
    # The right view shows the fitted face blended over the photo, not the bare photo.
    shown = dlg.right_pixmap.pixmap().toImage()
    assert (shown.width(), shown.height()) == fit.image_size
    assert np.abs(dlg.render[..., 3]).max() > 0

    # The user drags the right mouth corner (landmark 49) ~8 photo pixels down and outward.
    k = 48
    view = dlg.left_view
    zoom = view.transform().m11()                   # screen pixels per photo pixel
    before = np.array([items[k].pos().x(), items[k].pos().y()])
    drag(qtbot, view, items[k], -8 * zoom, 8 * zoom)
    pin = np.array([items[k].pos().x(), items[k].pos().y()])
    assert np.allclose(pin - before, (-8, 8), atol=1.5 / zoom + 0.01), "the landmark follows the mouse"
    assert set(dlg.pins) == {k} and np.allclose(dlg.pins[k], pin)
    assert dlg.refit_button.text() == "Refit (1 moved)" and dlg.reset_button.isEnabled()

    with qtbot.waitSignal(dlg.fitted, timeout=FIT_TIMEOUT_MS):
        dlg.refit_button.click()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    refit = dlg.result.fit
    assert set(refit.pins) == {k}
    assert np.linalg.norm(refit.landmarks68[k] - pin) < 15, (refit.landmarks68[k], pin)
    assert np.linalg.norm(refit.landmarks68[k] - pin) < np.linalg.norm(fit.landmarks68[k] - pin)

    dlg.reset_button.click()
    assert dlg.pins == {} and dlg.refit_button.text() == "Refit"
    assert np.allclose([items[k].pos().x(), items[k].pos().y()], refit.landmarks68[k], atol=1e-3)

    # Create: the unsaved-changes prompt comes first; Cancel keeps the document and the dialog.
    window.avatar.set_weight("jawOpen", 0.5)
    old_identity = window.avatar.identity
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **kw: QMessageBox.Cancel)
    dlg.create_button.click()
    assert dlg.isVisible() and np.array_equal(window.avatar.identity, old_identity)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **kw: QMessageBox.Discard)
    result = dlg.result
    with qtbot.waitSignal(window.session.mesh_changed, timeout=MESH_TIMEOUT_MS):
        dlg.create_button.click()
    assert window.photo_dialog is None   # closed (and deleted once idle)
    assert np.allclose(window.avatar.identity, result.avatar.identity)
    assert np.allclose(window.avatar.expression, refit.expression)
    assert window.avatar.texture is not None and window.avatar.name == "astronaut"
    assert window.avatar.dirty and window.path is None
    assert window.windowTitle().startswith("astronaut")
    assert "New avatar 'astronaut'" in window.log_panel.text.toPlainText()


def fitting(dlg) -> bool:
    return dlg.task is not None and dlg.task.title == "Fitting" and dlg.progress.value() > 5


def test_cancel_stops_the_fit(window, qtbot, astronaut):
    from app.photo_dialog import photo_pool

    identity = window.avatar.identity
    dlg = window.new_from_photo(astronaut)          # the app's full fit: cancelled long before its end
    qtbot.waitUntil(lambda: fitting(dlg), timeout=FIT_TIMEOUT_MS)
    started = time.perf_counter()
    dlg.stop_button.click()
    qtbot.waitUntil(lambda: not dlg.busy, timeout=30_000)
    assert time.perf_counter() - started < 10, "cancel must stop the fit promptly"
    assert dlg.result is None and dlg.error == "" and "cancelled" in dlg.progress_label.text()
    assert not dlg.create_button.isEnabled() and dlg.isVisible()
    assert dlg.refit_button.isEnabled() and dlg.refit_button.text() == "Fit"   # a way to try again
    dlg.reject()
    # Closing the dialog mid-fit stops the fit too, and changes nothing.
    dlg = window.new_from_photo(astronaut)
    qtbot.waitUntil(lambda: fitting(dlg), timeout=FIT_TIMEOUT_MS)
    started = time.perf_counter()
    dlg.reject()
    assert window.photo_dialog is None
    qtbot.waitUntil(lambda: photo_pool().activeThreadCount() == 0, timeout=30_000)
    assert time.perf_counter() - started < 10
    assert np.array_equal(window.avatar.identity, identity) and not window.avatar.dirty
    # Quitting mid-fit: the window closes promptly and leaves no fit running.
    dlg = window.new_from_photo(astronaut)
    qtbot.waitUntil(lambda: fitting(dlg), timeout=FIT_TIMEOUT_MS)
    started = time.perf_counter()
    assert window.close()
    assert time.perf_counter() - started < 10 and photo_pool().activeThreadCount() == 0


@pytest.mark.parametrize("kind, expected", [("grey", "No face was found"),
                                            ("text", "not an image this app can read")])
def test_bad_photo_shows_message(window, qtbot, tmp_path, kind, expected):
    from PIL import Image

    path = tmp_path / "photo.png"
    if kind == "grey":
        Image.new("RGB", (400, 300), (128, 128, 128)).save(path)
    else:
        path.write_text("not a photo")
    dlg = window.new_from_photo(path)
    with qtbot.waitSignal(dlg.failed, timeout=FIT_TIMEOUT_MS):
        pass
    qtbot.waitUntil(lambda: not dlg.busy, timeout=5000)
    assert expected in dlg.error and expected in dlg.message.text()
    assert dlg.message.isVisible() and "Traceback" not in dlg.message.text()
    assert dlg.isVisible() and not dlg.create_button.isEnabled() and not dlg.refit_button.isEnabled()
    dlg.reject()
    qtbot.waitUntil(lambda: window.photo_dialog is None, timeout=5000)
