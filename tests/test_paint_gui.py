"""The texture-painting studio under Xvfb: strokes in the 3D viewport and on the UV canvas,
undo/redo, pen pressure, the layer panel, recovery after a crash, work off the GUI thread.

Real face model, real renderer, real mouse and tablet events; every wait is on a condition
with a generous timeout (the machine is shared and slow)."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = pytest.mark.gui
MESH_TIMEOUT_MS = 120_000
READY_TIMEOUT_MS = 240_000
BLUE = (20, 40, 230)


@pytest.fixture
def recovery(tmp_path, monkeypatch):
    d = tmp_path / "recovery"
    monkeypatch.setenv("LIKENESS_RECOVERY_DIR", str(d))
    return d


def _open(qtbot, face_model, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow

    def unexpected(*args, **kwargs):
        raise AssertionError(f"unexpected message box: {args[1:3]}")
    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, unexpected)
    w = MainWindow(face_model)
    w.resize(1400, 900)
    with qtbot.waitSignal(w.mesh_ready, timeout=MESH_TIMEOUT_MS):
        w.show()
    qtbot.waitExposed(w)
    return w


def _close(w) -> None:
    w.avatar.set_dirty(False)
    w.close()
    w.runner.wait(30_000)
    w.deleteLater()


@pytest.fixture
def window(qtbot, face_model, monkeypatch, recovery):
    from app.viewport import default_camera

    w = _open(qtbot, face_model, monkeypatch)
    w.paint.show_workspace(True)
    c = w.paint.controller
    qtbot.waitUntil(lambda: c.texel_map is not None and not w.session.busy, timeout=READY_TIMEOUT_MS)
    cam = default_camera(w.viewport.bounds)
    cam.yaw, cam.pitch = 0.0, 0.0          # frontal: the tests know where the face is
    w.viewport.camera = cam
    c.apply_preset("Hard round")
    c.set_brush(size=16, colour=BLUE, hardness=0.8)
    w.paint.canvas.fit()
    w.viewport.repaint()
    yield w
    _close(w)


def render(w) -> np.ndarray:
    w.viewport.set_cursor(None)    # the brush outline is not part of the painted texture
    w.viewport.repaint()
    return w.viewport.render_image().astype(np.int16)


def settle(qtbot, w) -> None:
    """Wait for the viewport's deferred mip-map rebuild after painting."""
    w.viewport.repaint()
    qtbot.waitUntil(lambda: not w.viewport._mip_timer.isActive(), timeout=30_000)


def blueness(img: np.ndarray) -> np.ndarray:
    return img[..., 2] - np.maximum(img[..., 0], img[..., 1])


def drag(qtbot, widget, pts, button=None, pressures=None) -> None:
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    button = button or Qt.LeftButton
    QTest.mousePress(widget, button, Qt.NoModifier, QPoint(*pts[0]))
    for p in pts[1:]:
        QTest.mouseMove(widget, QPoint(*p))
    QTest.mouseRelease(widget, button, Qt.NoModifier, QPoint(*pts[-1]))


def cheek_path(w, n: int = 12) -> list[tuple[int, int]]:
    """A short horizontal path over the cheek below the eye (pixels the face covers)."""
    pick = w.paint.painter.pick()
    h, wd = pick.depth.shape
    y = int(h * 0.56)
    xs = np.linspace(wd * 0.40, wd * 0.47, n).astype(int)
    pts = [(int(x), y) for x in xs]
    assert all(pick.covered(x, y) for x, y in pts), "the frontal view should show the cheek there"
    return pts


def painted(w) -> np.ndarray:
    return w.paint.controller.stack.layers[-1].to_array()[..., 3] > 0


def test_viewport_stroke_paints_the_texels_under_it_and_the_render(window, qtbot):
    w, c = window, window.paint.controller
    before = render(w)
    pts = cheek_path(w)
    drag(qtbot, w.viewport, pts)
    assert c.stack.layers and c.stack.history.entries()[-1][0] == "Brush"
    alpha = painted(w)
    assert alpha.any()
    # the texels shown at the stroke's pixels are painted (the pick maps pixel -> texel)
    pick = w.paint.painter.pick()
    for x, y in pts[2:-2]:
        tx, ty = pick.texel(x, y, c.stack.size)
        assert alpha[int(ty), int(tx)], f"texel under pixel ({x}, {y}) not painted"
    # ... and little else: the painted texels stay near the stroke in space
    ys, xs = np.nonzero(alpha)
    qtbot.waitUntil(lambda: True)
    after = render(w)
    b = blueness(after) - blueness(before)
    y = pts[0][1]
    on = b[y - 2:y + 3, pts[2][0]:pts[-3][0]]
    assert (on > 60).mean() > 0.8, "the render shows the blue stroke where it was drawn"
    far = b[: y - 40]
    assert (np.abs(far) > 40).mean() < 0.001, "the render changed far from the stroke"
    assert w.viewport.partial_frames >= 0


def test_partial_frames_show_what_a_whole_frame_does(window, qtbot):
    """During a stroke the viewport repaints (from the lighting kept per pixel, without drawing
    the mesh), reads back and blits only the painted screen box; the frame it shows afterwards
    equals one drawn whole (no stale or shifted region, the same shading)."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    w, vp = window, window.viewport
    vp.set_cursor(None)
    w.paint.controller.ensure_layer()      # the texture becomes the layer stack's composite
    vp.repaint()
    # Painting samples the texture's level 0 until the mip levels are rebuilt (0.4 s after the
    # last change): start from a whole frame drawn that way, as the partial frames are, and
    # keep the rebuild from happening during this (slow, shared machine) test.
    vp._mip_timer.stop()
    vp._mip_timer.setInterval(3_600_000)
    vp.makeCurrent()
    vp.renderer.update_texture(vp.texel_source(), [(0, 64, 0, 64)])
    vp.doneCurrent()
    vp._partial_full = True
    vp.repaint()
    swaps = []
    vp.frameSwapped.connect(lambda: swaps.append(vp.partial_frames))
    n0, r0, pts = vp.partial_frames, vp._paint_frame.repaints, cheek_path(w)
    QTest.mousePress(vp, Qt.LeftButton, Qt.NoModifier, QPoint(*pts[0]))
    for p in pts[1:]:
        k = len(swaps)
        QTest.mouseMove(vp, QPoint(*p))
        qtbot.waitUntil(lambda: len(swaps) > k, timeout=10_000)   # the frame that shows the dab
    QTest.mouseRelease(vp, Qt.LeftButton, Qt.NoModifier, QPoint(*pts[-1]))
    k = len(swaps)
    vp.set_cursor(None)                    # the outline's box is redrawn without it
    qtbot.waitUntil(lambda: len(swaps) > k, timeout=10_000)
    assert vp.partial_frames - n0 >= len(pts) - 1, "the stroke's frames should be partial"
    assert vp._paint_frame.repaints - r0 >= len(pts) - 1, "... and repainted from the kept lighting"
    shown = vp._pixels[..., :3].astype(np.int16)
    whole = vp.render_image().astype(np.int16)
    diff = np.abs(shown - whole)
    assert diff.max() <= 2, f"the partial frames left {(diff > 2).sum()} pixels unlike a whole frame"
    assert (blueness(whole) > 60).sum() > 20, "the stroke is on screen"


def test_uv_canvas_shows_the_same_and_paints_the_viewport(window, qtbot):
    w, c = window, window.paint.controller
    cv = w.paint.canvas
    pts = cheek_path(w)
    drag(qtbot, w.viewport, pts)
    pick = w.paint.painter.pick()
    tx, ty = pick.texel(*pts[len(pts) // 2], c.stack.size)
    cv.zoom(4.0, cv.to_screen(tx, ty))      # zoom in on the painted texel
    img = cv.grab().toImage()
    q = cv.to_screen(tx, ty)
    col = img.pixelColor(int(q.x()), int(q.y()))
    # (the UV wireframe is drawn over it, lightening some pixels)
    assert col.blue() > 150 and col.blue() > col.red() + 80, f"canvas shows {col.getRgb()} at the painted texel"
    # a stroke on the canvas, over the texels of the forehead, shows up in the 3D view
    before = render(w)
    h, wd = pick.depth.shape
    fx, fy = int(wd * 0.5), int(h * 0.3)
    assert pick.covered(fx, fy)
    ftx, fty = pick.texel(fx, fy, c.stack.size)
    cv.fit()
    c.set_brush(colour=(230, 30, 30), size=12)
    p0 = cv.to_screen(ftx - 30, fty)
    p1 = cv.to_screen(ftx + 30, fty)
    drag(qtbot, cv, [(int(p0.x()), int(p0.y())), (int((p0.x() + p1.x()) / 2), int(p0.y())),
                     (int(p1.x()), int(p1.y()))])
    assert c.stack.layers[-1].to_array()[int(fty), int(ftx), 3] > 0
    after = render(w)
    red = (after[..., 0] - np.maximum(after[..., 1], after[..., 2])) - \
          (before[..., 0] - np.maximum(before[..., 1], before[..., 2]))
    yy, xx = np.nonzero(red > 50)
    assert len(yy) > 20, "the viewport shows the canvas stroke"
    assert abs(np.median(xx) - fx) < 25 and abs(np.median(yy) - fy) < 25


def test_undo_redo_through_the_gui_restores_bytes_and_render(window, qtbot):
    w, c = window, window.paint.controller
    c.ensure_layer()
    layer = c.stack.layers[-1]
    empty = layer.to_array()
    w.viewport.upload_texels(None)
    settle(qtbot, w)
    before = render(w)
    drag(qtbot, w.viewport, cheek_path(w))
    painted_bytes = layer.to_array()
    settle(qtbot, w)
    after = render(w)
    assert not np.array_equal(painted_bytes, empty)
    w.paint.undo_action.trigger()
    assert np.array_equal(layer.to_array(), empty)
    settle(qtbot, w)
    undone = render(w)
    assert np.abs(undone - before).max() <= 3, "undo brings the render back"
    w.paint.history_panel.redo_button.click()
    assert np.array_equal(layer.to_array(), painted_bytes)
    settle(qtbot, w)
    assert np.abs(render(w) - after).max() <= 3
    # the history list: clicking the first entry goes back to the start
    hp = w.paint.history_panel
    assert hp.list.count() == len(c.stack.history.entries()) + 1
    hp.list.itemClicked.emit(hp.list.item(0))
    assert not c.stack.history.done
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor
    greyed = [hp.list.item(i).foreground().color() == QColor(Qt.gray) for i in range(1, hp.list.count())]
    assert all(greyed) and hp.list.currentRow() == 0, "every step is listed as undone"
    c.redo()
    assert hp.list.item(1).foreground().color() != QColor(Qt.gray) and hp.list.currentRow() == 1
    # the undo memory budget is the user's
    hp.budget.setValue(64)
    hp.budget.editingFinished.emit()
    assert c.stack.history.budget_bytes == 64 * 2**20


def _tablet(widget, kind, pos, pressure, button):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QInputDevice, QPointingDevice, QTabletEvent
    from PySide6.QtWidgets import QApplication

    dev = QPointingDevice("test pen", 1, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                          QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    p = QPointF(*pos)
    buttons = Qt.NoButton if kind.name.endswith("Release") else Qt.LeftButton
    ev = QTabletEvent(kind, dev, p, widget.mapToGlobal(p), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
                      Qt.NoModifier, button, buttons)
    QApplication.sendEvent(widget, ev)
    return ev


def _pen_stroke(widget, y: int, x0: int, x1: int, pressure: float) -> None:
    from PySide6.QtCore import QEvent, Qt

    _tablet(widget, QEvent.TabletPress, (x0, y), pressure, Qt.LeftButton)
    for x in range(x0 + 4, x1, 4):
        _tablet(widget, QEvent.TabletMove, (x, y), pressure, Qt.NoButton)
    _tablet(widget, QEvent.TabletRelease, (x1, y), pressure, Qt.LeftButton)


def test_pen_pressure_drives_size_and_opacity(window, qtbot):
    w, c = window, window.paint.controller
    cv = w.paint.canvas
    cv.fit()
    c.ensure_layer()
    layer = c.stack.layers[-1]
    c.set_brush(size=24, pressure_size=True, pressure_opacity=False, hardness=0.9)
    W, H = cv.width(), cv.height()
    x0, x1 = int(W * 0.3), int(W * 0.7)
    y_light, y_hard = int(H * 0.3), int(H * 0.7)
    col = int((W * 0.5 - cv.offset.x()) / cv.scale)

    def rows(y: int) -> slice:
        t = int((y - cv.offset.y()) / cv.scale)
        return slice(max(0, t - 100), t + 100)

    _pen_stroke(cv, y_light, x0, x1, 0.25)
    _pen_stroke(cv, y_hard, x0, x1, 1.0)
    a = layer.to_array()[:, col, 3]
    light, hard = int((a[rows(y_light)] > 0).sum()), int((a[rows(y_hard)] > 0).sum())
    assert light > 0 and hard > 2.5 * light, f"pressure 0.25 painted {light} texels wide, 1.0 {hard}"
    # pressure -> opacity
    c.set_brush(pressure_size=False, pressure_opacity=True, colour=(255, 255, 255))
    c.stack.add_layer("pen opacity")
    c.layer_index = len(c.stack.layers) - 1
    top = c.stack.layers[-1]
    _pen_stroke(cv, y_light, x0, x1, 0.3)
    _pen_stroke(cv, y_hard, x0, x1, 0.9)
    a = top.to_array()[:, col, 3]
    soft, strong = int(a[rows(y_light)].max()), int(a[rows(y_hard)].max())
    assert abs(soft - 0.3 * 255) < 20 and abs(strong - 0.9 * 255) < 20, (soft, strong)


def test_pen_pressure_in_the_3d_view(window, qtbot):
    w, c = window, window.paint.controller
    c.set_brush(size=30, pressure_size=True, pressure_opacity=False, hardness=0.9)
    pts = cheek_path(w)
    y, x0, x1 = pts[0][1], pts[0][0], pts[-1][0]
    c.stack.add_layer("light")
    c.layer_index = len(c.stack.layers) - 1
    _pen_stroke(w.viewport, y, x0, x1, 0.2)
    light = int(painted(w).sum())
    c.stack.add_layer("hard")
    c.layer_index = len(c.stack.layers) - 1
    _pen_stroke(w.viewport, y, x0, x1, 1.0)
    hard = int(painted(w).sum())
    assert light > 0 and hard > 2.5 * light, f"pen at 0.2 painted {light} texels, at 1.0 {hard}"


def test_layer_panel_operations(window, qtbot):
    from PySide6.QtCore import Qt

    w, c = window, window.paint.controller
    lp = w.paint.layers_panel
    st = c.stack
    lp.add()
    lp.add()
    assert [l.name for l in st.layers] == ["Layer 1", "Layer 2"]
    assert lp.list.count() == 2 and lp.list.item(0).text() == "Layer 2"   # top first
    drag(qtbot, w.viewport, cheek_path(w))                                  # paints Layer 2
    assert st.layers[1].pixels.tiles and not st.layers[0].pixels.tiles
    # rename by editing the item
    lp.list.item(0).setText("Freckles")
    assert st.layers[1].name == "Freckles"
    # duplicate, reorder
    lp.duplicate()
    assert [l.name for l in st.layers] == ["Layer 1", "Freckles", "Freckles copy"]
    c.layer_index = 2
    lp.move(-1)
    assert [l.name for l in st.layers] == ["Layer 1", "Freckles copy", "Freckles"]
    # hide / show through the check box: the composite changes back and forth
    comp = st.composite().copy()
    row = lp._row_to_index(2)   # the list row of layer index 2 ("Freckles")
    for i in range(lp.list.count()):
        if lp.list.item(i).text().startswith("Freckles") and "copy" not in lp.list.item(i).text():
            row = i
    lp.list.item(row).setCheckState(Qt.Unchecked)
    assert not st.layers[2].visible
    lp.list.item(lp.list.count() - 1 - 1).setCheckState(Qt.Unchecked)   # and the copy
    assert not np.array_equal(st.composite(), comp)
    # opacity and blend
    c.layer_index = 0
    lp._sync_controls()
    lp.opacity.setValue(40)
    assert st.layers[0].opacity == pytest.approx(0.4)
    lp.blend.textActivated.emit("Multiply")
    assert st.layers[0].blend == "multiply"
    # lock: painting a locked layer changes nothing and says why
    lp.lock.setChecked(True)
    assert st.layers[0].locked
    n = len(st.history.done)
    drag(qtbot, w.viewport, cheek_path(w))
    assert len(st.history.done) == n and not st.layers[0].pixels.tiles
    assert "locked" in w.paint.brush_panel.message.text()
    lp.lock.setChecked(False)
    # a mask, painted on: the eraser hides where it passes
    lp.toggle_mask()
    assert st.layers[0].mask is not None and st.layers[0].mask.min() == 255
    lp.paint_mask.setChecked(True)
    c.set_tool("eraser")
    drag(qtbot, w.viewport, cheek_path(w))
    assert st.layers[0].mask.min() < 128
    assert st.history.entries()[-1][0].endswith("mask")
    # delete; every step undoes
    c.set_tool("brush")
    lp.paint_mask.setChecked(False)
    lp.delete()
    assert len(st.layers) == 2
    while st.history.can_undo():
        c.undo()
    assert st.layers == []


def test_brush_outline_follows_the_pointer(window, qtbot):
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    w, c = window, window.paint.controller
    c.set_brush(size=40, pressure_size=True)
    x, y = cheek_path(w)[3]
    QTest.mouseMove(w.viewport, QPoint(x, y))
    qtbot.waitUntil(lambda: w.viewport.cursor is not None, timeout=10_000)
    w.viewport.repaint()
    img = w.viewport.render_image().astype(np.int16)
    r = int(round(w.viewport.cursor[2]))
    assert r == 20
    ring = img[y, x + r - 1:x + r + 3]
    assert ring.max() > 200 and ring.min() < 40, f"outline at radius {r}: {ring.tolist()}"
    c.set_tool("eyedropper")
    QTest.mouseMove(w.viewport, QPoint(x + 5, y))
    qtbot.waitUntil(lambda: w.viewport.cursor is None, timeout=10_000)


def test_eyedropper_and_symmetry_from_the_views(window, qtbot):
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    w, c = window, window.paint.controller
    pts = cheek_path(w)
    drag(qtbot, w.viewport, pts)
    c.set_colour((0, 0, 0))
    c.set_tool("eyedropper")
    QTest.mouseClick(w.viewport, Qt.LeftButton, Qt.NoModifier, QPoint(*pts[len(pts) // 2]))
    r, g, b = c.brush.colour
    assert b > 150 and r < 90 and g < 90, c.brush.colour
    # symmetry: a stroke on the left cheek paints the right cheek too
    qtbot.waitUntil(lambda: c.mirror is not None, timeout=READY_TIMEOUT_MS)
    c.set_tool("brush")
    c.stack.add_layer("sym")
    c.layer_index = len(c.stack.layers) - 1
    w.paint.brush_panel.symmetry.setChecked(True)
    drag(qtbot, w.viewport, pts)
    img = render(w)
    wd = img.shape[1]
    y = pts[0][1]
    mirrored = blueness(img)[y - 6:y + 7, wd - pts[-3][0]:wd - pts[2][0]]
    assert (mirrored > 60).mean() > 0.3, "the mirrored stroke shows on the other cheek"


def test_project_photo_onto_the_view(window, qtbot):
    w, c = window, window.paint.controller
    photo = np.zeros((300, 300, 3), np.uint8)
    photo[:, :150] = (20, 200, 30)      # left half green, right half magenta
    photo[:, 150:] = (200, 20, 200)
    n = len(c.stack.layers)
    task = w.paint.painter.project_photo(photo)
    assert task is not None
    qtbot.waitUntil(lambda: len(c.stack.layers) == n + 1, timeout=READY_TIMEOUT_MS)
    img = render(w)
    pick = w.paint.painter.pick()
    h, wd = pick.depth.shape
    y = int(h * 0.5)
    left, right = img[y, int(wd * 0.42)], img[y, int(wd * 0.58)]
    assert left[1] > left[0] + 40 and left[1] > left[2] + 40, f"left of the face {left}"
    assert right[0] > right[1] + 40 and right[2] > right[1] + 40, f"right of the face {right}"


def test_recovery_is_offered_after_a_crash(qtbot, face_model, monkeypatch, recovery):
    from PySide6.QtWidgets import QMessageBox

    w1 = _open(qtbot, face_model, monkeypatch)
    c1 = w1.paint.controller
    c1.stack.add_layer("Tattoo", pixels=np.dstack([np.full((c1.stack.size,) * 2 + (3,), 90, np.uint8),
                                                   np.full((c1.stack.size,) * 2, 200, np.uint8)]))
    path = c1.recovery_path
    assert path.parent == recovery
    qtbot.waitUntil(lambda: path.exists(), timeout=60_000)    # the autosave, off the GUI thread
    saved = c1.stack.layers[0].to_array()
    # "crash": the first window never closes cleanly; a new session starts
    w2 = _open(qtbot, face_model, monkeypatch)
    qtbot.waitUntil(lambda: w2.paint.recovery_box is not None, timeout=30_000)
    box = w2.paint.recovery_box
    assert "Tattoo" not in box.text() and "paint layers" in box.text()
    box.button(QMessageBox.Yes).click()
    c2 = w2.paint.controller
    qtbot.waitUntil(lambda: len(c2.stack.layers) == 1, timeout=30_000)
    assert c2.stack.layers[0].name == "Tattoo"
    assert np.array_equal(c2.stack.layers[0].to_array(), saved)
    _close(w2)                    # a clean close removes the recovery file
    assert not path.exists()
    w1.paint.controller._autosave.stop()
    _close(w1)


def test_painting_work_stays_off_the_gui_thread(window, qtbot):
    """Rebuilding the texel map (seconds) and projecting a photo run as tasks: the event loop
    keeps turning meanwhile."""
    from PySide6.QtCore import QTimer

    w, c = window, window.paint.controller
    ticks = []
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    c._mesh_changed(w.session.mesh, w.session.vertices)
    assert c.texel_map is None
    qtbot.waitUntil(lambda: c.texel_map is not None, timeout=READY_TIMEOUT_MS)
    took = time.perf_counter() - t0
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 5
    assert gaps.max() < max(1.0, 0.5 * took), f"the GUI stalled {gaps.max():.2f} s of {took:.2f} s"
