"""The studio window under Xvfb with pytest-qt, on the real face model and renderer."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui
MESH_TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot, face_model, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from app.main_window import MainWindow

    # A test must never hang on a modal dialog: fail loudly if one would open unexpectedly.
    def unexpected(*args, **kwargs):
        raise AssertionError(f"unexpected message box: {args[1:3]}")

    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, unexpected)
    w = MainWindow(face_model)
    w.resize(1280, 800)
    with qtbot.waitSignal(w.mesh_ready, timeout=MESH_TIMEOUT_MS):
        w.show()
    qtbot.waitExposed(w)
    yield w
    w.avatar.set_dirty(False)  # closing must not prompt
    w.close()
    w.runner.wait(30_000)
    w.deleteLater()


def frontal(w):
    """A fixed frontal camera framing the head, so tests know where the face is."""
    from app.viewport import default_camera

    cam = default_camera(w.viewport.bounds)
    cam.yaw, cam.pitch = 0.0, 0.0
    w.viewport.camera = cam
    return cam


def grab(w) -> np.ndarray:
    w.viewport.repaint()
    return w.viewport.render_image().astype(np.int16)


def box(points: np.ndarray, pad: float, w: int, h: int) -> tuple[slice, slice]:
    x0, y0 = np.floor(points[:, :2].min(0) - pad).astype(int)
    x1, y1 = np.ceil(points[:, :2].max(0) + pad).astype(int)
    return slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))


def test_window_opens_and_screenshot(window, tmp_path):
    from PIL import Image

    path = window.screenshot(tmp_path / "window.png")
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[:2] == (window.height(), window.width())
    vp = window.viewport
    top_left = vp.mapTo(window, vp.rect().topLeft())
    region = img[top_left.y():top_left.y() + vp.height(), top_left.x():top_left.x() + vp.width()]
    bg = np.array(window.avatar.view.background) * 255
    face = np.abs(region.astype(float) - bg).sum(-1) > 30
    assert 0.05 < face.mean() < 0.9, "the viewport should show the head over the background"
    assert window.windowTitle().startswith("Default")
    assert len(window.expression_panel.sliders) == 53
    assert window.statusBar().isVisible()


def test_jaw_open_changes_mouth_not_forehead(window, qtbot, face_model):
    cam = frontal(window)
    before = grab(window)
    h, w = before.shape[:2]
    slider = window.expression_panel.sliders["jawOpen"]
    slider.setValue(slider.maximum())          # the user drags jawOpen to 1
    assert window.avatar.weight("jawOpen") == 1.0
    after = grab(window)
    lm0 = cam.project(face_model.landmarks(window.avatar.identity, np.zeros(53, np.float32)), w, h)
    lm1 = cam.project(face_model.landmarks(window.avatar.identity, window.avatar.expression), w, h)
    mouth = box(np.r_[lm0[48:68], lm1[48:68]], 4, w, h)
    brows = lm0[17:27]
    eye_to_brow = lm0[36:48, 1].mean() - brows[:, 1].mean()
    top = brows[:, 1].min()
    forehead = (slice(int(top - 2.0 * eye_to_brow), int(top - 0.6 * eye_to_brow)),
                slice(int(lm0[19, 0]), int(lm0[24, 0])))
    diff = np.abs(after - before).sum(-1)
    if os.environ.get("LIKENESS_TEST_DUMP"):  # look at what the test compares
        from PIL import Image, ImageDraw
        out = Image.fromarray(np.concatenate([before, after, np.repeat(np.minimum(diff, 255)[..., None], 3, -1)], 1).astype(np.uint8))
        d = ImageDraw.Draw(out)
        for ys, xs in (mouth, forehead):
            for k in range(3):
                d.rectangle([xs.start + k * w, ys.start, xs.stop + k * w, ys.stop], outline=(255, 0, 0))
        out.save(os.environ["LIKENESS_TEST_DUMP"])
    assert diff[forehead].size > 50 and diff[mouth].size > 50
    assert (diff[mouth] > 24).mean() > 0.05, "opening the jaw must change the mouth region"
    assert (diff[forehead] > 24).mean() < 0.01, "opening the jaw must leave the forehead alone"


def test_headless_render_equals_viewport(window, qtbot):
    from core.appearance import avatar_texture
    from core.render import render_offscreen

    qtbot.waitUntil(lambda: not window.session.busy, timeout=60_000)   # the hair is built too
    cam = frontal(window)
    window.avatar.set_weight("mouthSmile_L", 0.8)
    for mode in ("textured", "shaded"):
        window.avatar.set_view(mode=mode)
        shown = grab(window)
        h, w = shown.shape[:2]
        s = window.session
        headless = render_offscreen(w, h, cam, mesh=(s.vertices, s.mesh.faces, s.mesh.uvs),
                                    texture=avatar_texture(window.avatar), mode="mesh", view=mode,
                                    hair=(s.hair, window.avatar.expression),
                                    parts=(s.head.parts, *s.head.pose(window.avatar.expression)),
                                    occlusion=getattr(s.mesh, "occlusion", None),
                                    background=window.avatar.view.background)[..., :3].astype(np.int16)
        diff = np.abs(shown - headless)
        assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8, (mode, diff.mean(), diff.max())


def test_expression_panel_presets_filter_reset(window):
    from core.expressions import PRESETS, REGIONS, parse_expression

    panel = window.expression_panel
    assert [b.title().lower() for b in panel._groups.values()] == list(REGIONS)
    v0 = window.session.vertices.copy()
    idx = panel.presets.findText("happy")
    panel.presets.activated.emit(idx)
    assert np.array_equal(window.avatar.expression, parse_expression("happy"))
    assert panel.sliders["mouthSmile_L"].value() == round(PRESETS["happy"]["mouthSmile_L"] * 1000)
    assert not np.allclose(window.session.vertices, v0), "the mesh follows the preset at once"
    assert window.avatar.dirty and window.isWindowModified()
    panel.filter.setText("blink")
    visible = [n for n, s in panel.sliders.items() if not s.isHidden()]
    assert visible == ["eyeBlink_L", "eyeBlink_R"]
    assert panel._groups["mouth"].isHidden()
    panel.filter.setText("")
    assert not panel._groups["mouth"].isHidden()
    panel.reset_button.click()
    assert not window.avatar.expression.any()
    assert all(s.value() == 0 for s in panel.sliders.values())
    np.testing.assert_allclose(window.session.vertices, v0, atol=1e-5)


def test_expression_posing_is_fast(window):
    w = np.zeros(53, np.float32)
    times = []
    for k in range(20):
        w[26] = k / 20
        t0 = time.thread_time()      # the GUI thread's own CPU time: a busy machine does not count
        window.avatar.set_expression(w)
        times.append(time.thread_time() - t0)
    assert np.median(times) < 0.010 * 3  # Animator.vertices <= 10 ms, plus the viewport upload


def test_identity_change_runs_off_the_gui_thread(window, qtbot):
    from PySide6.QtCore import QTimer

    panel = window.identity_panel
    v0 = window.session.vertices.copy()
    ticks = []
    timer = QTimer(interval=20, timeout=lambda: ticks.append(time.perf_counter()))
    timer.start()
    with qtbot.waitSignal(window.session.mesh_changed, timeout=MESH_TIMEOUT_MS):
        panel.sliders[0].setValue(panel.sliders[0].maximum())   # +3 sigma
        # the extraction (not a quiet helper left from an earlier step) shows progress and cancel
        qtbot.waitUntil(lambda: any(not t.quiet for t in window.runner.running), timeout=5000)
        assert window.progress.isVisible() and window.cancel_button.isVisible()
    # a fast mesh may arrive within a few ticks: go on measuring while the hair and head parts
    # for the new identity are built, so the gaps cover all of the rebuild
    qtbot.waitUntil(lambda: not window.session.busy, timeout=MESH_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(ticks) > 5, timeout=30_000)
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 5 and gaps.max() < 0.5, f"GUI froze for {gaps.max():.2f} s"
    assert window.session.vertices.shape != v0.shape or not np.allclose(window.session.vertices, v0)
    code = window.avatar.identity
    assert code[0] == pytest.approx(panel.mean[0] + 3 * panel.std[0], rel=1e-4)


def test_export_from_window(window, qtbot, tmp_path):
    from core.export import read_glb_json

    task = window.export_to(tmp_path / "head.glb")
    with qtbot.waitSignal(task.signals.done, timeout=MESH_TIMEOUT_MS):
        pass
    gltf = read_glb_json(tmp_path / "head.glb")
    assert len(gltf["meshes"][0]["primitives"][0]["targets"]) == 53


def test_save_open_and_unsaved_prompt(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window.avatar.set_weight("jawOpen", 0.4)
    window.avatar.set_view(mode="wireframe")
    assert window.save_to(tmp_path / "ada.likeness")
    assert not window.avatar.dirty and window.windowTitle().startswith("ada.likeness")
    # Unsaved changes + New: Cancel keeps everything, Discard starts over.
    window.avatar.set_weight("jawOpen", 0.9)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Cancel)
    window.new_project()
    assert window.avatar.weight("jawOpen") == pytest.approx(0.9)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: QMessageBox.Discard)
    with qtbot.waitSignal(window.session.mesh_changed, timeout=MESH_TIMEOUT_MS):
        window.new_project()
    assert window.avatar.weight("jawOpen") == 0 and window.path is None
    # Open the saved project in the background.
    with qtbot.waitSignal(window.session.mesh_changed, timeout=MESH_TIMEOUT_MS):
        window.open_path(tmp_path / "ada.likeness")
    assert window.avatar.weight("jawOpen") == pytest.approx(0.4)
    assert window.avatar.view.mode == "wireframe" and window.mode_actions["wireframe"].isChecked()


def test_damaged_project_shows_clear_message(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    bad = tmp_path / "broken.likeness"
    bad.write_bytes(b"\x00garbage")
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append((title, text)))
    before = window.avatar.identity
    window.open_path(bad)
    qtbot.waitUntil(lambda: bool(shown), timeout=10_000)
    assert shown[0][0] == "Cannot open project" and "not a zip" in shown[0][1]
    assert np.array_equal(window.avatar.identity, before)  # nothing lost


def test_view_modes_and_landmarks(window, qtbot):
    frontal(window)
    images = {}
    for mode in ("shaded", "textured", "normals", "wireframe"):
        window.mode_actions[mode].trigger()
        assert window.avatar.view.mode == mode
        images[mode] = grab(window)
    for a in images:
        for b in images:
            if a < b:
                assert np.abs(images[a] - images[b]).mean() > 1, (a, b)
    with qtbot.waitSignal(window.session.landmarks_changed, timeout=30_000):
        window.landmarks_action.trigger()
    with_points = grab(window)
    assert window.avatar.view.show_landmarks and np.abs(with_points - images["wireframe"]).sum() > 0
    window.avatar.set_view(background=(1.0, 1.0, 1.0))
    assert grab(window)[2, 2].tolist() == [255, 255, 255]


def test_head_pose_turns_the_head(window, qtbot):
    """A live head pose (puppeteering) turns the mesh about the neck; yaw > 0 turns the face
    toward +x (the avatar's left); it is not saved and does not dirty the project."""
    base = window.session.vertices.copy()
    window.avatar.set_dirty(False)
    window.avatar.set_head_pose((30.0, 0.0, 0.0))
    turned = window.session.vertices
    nose = np.argmax(base[:, 2])                       # the most frontal vertex
    assert turned[nose, 0] > base[nose, 0] + 3.0       # moved several cm toward +x
    assert np.allclose(np.linalg.norm(turned - [0, -2, -1], axis=1),
                       np.linalg.norm(base - [0, -2, -1], axis=1), atol=1e-3)  # a rotation
    assert not window.avatar.dirty
    window.avatar.set_head_pose((0.0, 0.0, 0.0))
    assert np.allclose(window.session.vertices, base)


def test_lighting_choice_changes_shading(window):
    frontal(window)
    window.mode_actions["shaded"].trigger()
    window.lighting_actions["studio"].trigger()
    studio = grab(window)
    window.lighting_actions["ibl"].trigger()
    assert window.avatar.view.lighting == "ibl"
    ibl = grab(window)
    assert np.abs(studio - ibl).mean() > 1  # the head is lit differently; the background is not
    assert studio[2, 2].tolist() == ibl[2, 2].tolist()


def test_main_screenshot_without_display(tmp_path, face_model):
    """`python main.py --screenshot` on a headless machine starts its own Xvfb."""
    from app.xvfb import VirtualDisplay

    if not VirtualDisplay.available():
        pytest.skip("Xvfb not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = tmp_path / "shot.png"
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, str(root / "main.py"), "--screenshot", str(out), "--quit-after", "150"],
                          env=env, cwd=root, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "virtual display" in proc.stderr and out.stat().st_size > 10_000


def test_no_display_and_no_xvfb_exits_with_message(monkeypatch, capsys):
    from app import xvfb

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setattr(xvfb.sys, "platform", "linux")
    monkeypatch.setattr(xvfb.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exc:
        xvfb.ensure_display()
    assert exc.value.code == 2
    assert "Xvfb is not installed" in capsys.readouterr().err


def test_texture_loads_and_reloads_when_painted(window, qtbot, tmp_path):
    from PIL import Image

    path = tmp_path / "skin.png"
    Image.fromarray(np.full((64, 64, 3), (200, 40, 40), np.uint8)).save(path)
    frontal(window)
    assert window.load_texture(path)
    assert window.avatar.view.mode == "textured" and window.avatar.texture[0, 0].tolist() == [200, 40, 40]
    red = grab(window)
    Image.fromarray(np.full((64, 64, 3), (40, 40, 200), np.uint8)).save(path)  # the artist saves
    qtbot.waitUntil(lambda: window.avatar.texture[0, 0].tolist() == [40, 40, 200], timeout=10_000)
    blue = grab(window)
    h, w = red.shape[:2]
    centre = (slice(h // 2 - 20, h // 2 + 20), slice(w // 2 - 20, w // 2 + 20))
    assert red[centre][..., 0].mean() > red[centre][..., 2].mean()
    assert blue[centre][..., 2].mean() > blue[centre][..., 0].mean()


def test_sdf_view(window, qtbot):
    frontal(window)
    window.avatar.set_view(mode="shaded")
    mesh_img = grab(window)
    with qtbot.waitSignal(window.session.sdf_changed, timeout=MESH_TIMEOUT_MS):
        window.geometry_actions["sdf"].trigger()
    assert window.viewport.drawn_as() == ("sdf", "shaded")
    sdf_img = grab(window)
    bg = np.array(window.avatar.view.background) * 255
    covered = lambda img: (np.abs(img - bg).sum(-1) > 30).mean()
    # The ray-marched distance field and the extracted mesh show the same head.
    assert abs(covered(sdf_img) - covered(mesh_img)) < 0.05
    window.geometry_actions["mesh"].trigger()
    assert window.viewport.drawn_as() == ("mesh", "shaded")


def test_export_cancel_writes_nothing(window, qtbot, tmp_path):
    task = window.export_to(tmp_path / "head.glb")
    assert window.cancel_button.isVisible()
    with qtbot.waitSignal(task.signals.cancelled, timeout=MESH_TIMEOUT_MS):
        window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.runner.running, timeout=MESH_TIMEOUT_MS)
    assert not window.cancel_button.isVisible()
    assert list(tmp_path.iterdir()) == []


def _mouse(widget, kind, pos, button, buttons, modifiers=None):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(*pos)
    event = QMouseEvent(kind, p, widget.mapToGlobal(p), button, buttons, modifiers or Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def test_mouse_orbit_pan_zoom_reset(window):
    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    vp = window.viewport
    cam = vp.camera
    yaw, pitch, dist, target = cam.yaw, cam.pitch, cam.distance, cam.target.copy()
    before = grab(window)
    # Left drag: orbit.
    _mouse(vp, QEvent.MouseButtonPress, (200, 200), Qt.LeftButton, Qt.LeftButton)
    _mouse(vp, QEvent.MouseMove, (260, 220), Qt.NoButton, Qt.LeftButton)
    _mouse(vp, QEvent.MouseButtonRelease, (260, 220), Qt.LeftButton, Qt.NoButton)
    assert vp.camera.yaw != yaw and vp.camera.pitch != pitch
    assert np.abs(grab(window) - before).mean() > 1
    # Right drag: pan moves the target, not the angles.
    yaw2 = vp.camera.yaw
    _mouse(vp, QEvent.MouseButtonPress, (200, 200), Qt.RightButton, Qt.RightButton)
    _mouse(vp, QEvent.MouseMove, (240, 200), Qt.NoButton, Qt.RightButton)
    _mouse(vp, QEvent.MouseButtonRelease, (240, 200), Qt.RightButton, Qt.NoButton)
    assert vp.camera.yaw == yaw2 and not np.allclose(vp.camera.target, target)
    # Wheel forward: zoom in.
    wheel = QWheelEvent(QPointF(200, 200), QPointF(vp.mapToGlobal(QPoint(200, 200))), QPoint(0, 0),
                        QPoint(0, 240), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False)
    QApplication.sendEvent(vp, wheel)
    assert vp.camera.distance < dist
    # Reset View (menu action, Home) returns to the start.
    vp.reset_view()
    assert (vp.camera.yaw, vp.camera.pitch, vp.camera.distance) == pytest.approx((yaw, pitch, dist))
    np.testing.assert_allclose(vp.camera.target, target)


def test_hair_panel_edits_the_avatar_and_the_view(window, qtbot):
    """The Hair dock: style rebuilds the hair off the GUI thread, a colour preset and grey are
    uniforms, bald removes it (tests/test_hair.py covers the geometry and pixels)."""
    panel, session = window.hair_panel, window.session
    qtbot.waitUntil(lambda: session.hair is not None, timeout=60_000)   # the default short hair

    def shown(style):
        return not session._hair_job.busy and session._hair_key is not None and session._hair_key[0] == style

    panel.style_combo.setCurrentIndex(panel.style_combo.findData("long"))
    assert window.avatar.hair.style == "long"
    qtbot.waitUntil(lambda: shown("long"), timeout=60_000)
    window.viewport.repaint()                        # uploads the long hair
    layer = window.viewport.renderer._hair
    assert layer is not None and not layer.empty
    before = grab(window)
    panel.preset_buttons["White"].click()
    assert window.avatar.hair.colour == pytest.approx((0.92, 0.92, 0.90))
    after = grab(window)                             # a uniform: no rebuild
    assert layer.colour == pytest.approx((0.92, 0.92, 0.90)) and shown("long")
    assert (after.sum(-1) > before.sum(-1) + 60).mean() > 0.02, "white hair brightens the view"
    panel.grey.setValue(40)
    assert window.avatar.hair.grey == pytest.approx(0.4)
    panel.length.setValue(90)
    qtbot.waitUntil(lambda: window.avatar.hair.length == pytest.approx(0.9), timeout=5_000)
    panel.style_combo.setCurrentIndex(panel.style_combo.findData("bald"))
    qtbot.waitUntil(lambda: shown("bald") and session.hair is None, timeout=60_000)
    window.viewport.repaint()
    assert layer.empty and not panel.length.isEnabled()


def test_damaged_files_show_the_message_and_keep_the_document(window, qtbot, tmp_path, monkeypatch):
    """Issue 30: opening damaged projects (a paint layer PNG cut short in a format-3 file, a
    fuzzer-found zlib stream error) shows one message each; the open avatar stays as it was."""
    import io
    import zipfile

    from PySide6.QtWidgets import QMessageBox

    from core.avatar import Avatar
    from core.paint.avatar import attach_paint
    from core.paint.layers import LayerStack
    from core.project import save_project

    window.avatar.set_weight("jawOpen", 0.35)
    window.avatar.set_name("Current")
    identity, expression = window.avatar.identity.copy(), window.avatar.expression.copy()
    path_before, dirty_before, title_before = window.path, window.avatar.dirty, window.windowTitle()
    # A valid project for this face model (so the paint layers are what fails), then damaged.
    other = Avatar(identity + 0.5, name="Other")
    stack = LayerStack(1024)
    px = np.zeros((1024, 1024, 4), np.uint8)
    px[100:200, 100:200] = (200, 30, 30, 255)
    stack.add_layer("Freckles", pixels=px)
    attach_paint(other, stack)
    good = save_project(other, tmp_path / "good.likeness")
    src = zipfile.ZipFile(good)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in src.namelist():
            data = src.read(n)
            zf.writestr(n, data[:len(data) // 3] if n == "paint/layer_000.png" else data)
    damaged = tmp_path / "painted.likeness"
    damaged.write_bytes(buf.getvalue())
    shown = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append((title, text)))
    fixture = Path(__file__).parent / "fixtures" / "fuzz" / "project__zlib_invalid_distance_code.likeness"
    for i, p in enumerate((damaged, fixture)):
        window.open_path(p)
        qtbot.waitUntil(lambda: len(shown) > i, timeout=30_000)
        title, text = shown[i]
        assert title == "Cannot open project" and p.name in text and "damaged" in text, text
        assert "Error" not in text.split(":")[0]          # a sentence, not an exception's name
        window.runner.wait(10_000)
        assert np.array_equal(window.avatar.identity, identity)
        assert np.array_equal(window.avatar.expression, expression)
        assert window.avatar.name == "Current" and window.path == path_before
        assert window.avatar.dirty == dirty_before and window.windowTitle() == title_before
    assert "paint/layer_000.png" in shown[0][1]
