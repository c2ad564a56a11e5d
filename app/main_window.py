"""The studio window: viewport in the middle, expression / identity / log docks, menus, status bar."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QKeySequence
from PySide6.QtWidgets import (QColorDialog, QDockWidget, QFileDialog, QLabel, QMainWindow,
                               QMessageBox, QProgressBar, QToolButton, QWidget)

from core.avatar import VIEW_MODES, Avatar, default_avatar, load_texture
from core.export import EXPORT_SUFFIXES, export_avatar
from core.paths import RESOURCES
from core.project import SUFFIX, ProjectError, load_project, save_project

from .face_session import FaceSession
from .panels.appearance_panel import AppearancePanel
from .panels.expression_panel import ExpressionPanel
from .panels.hair_panel import HairPanel
from .panels.identity_panel import IdentityPanel
from .panels.log_panel import LogPanel
from .panels.webcam_panel import WebcamPanel
from .panels.timeline_panel import TimelinePanel
from .panels.listen_panel import ListenPanel
from .paint_workspace import PaintWorkspace
from .photo_dialog import PHOTO_FILTER, PhotoDialog
from .viewport import Viewport
from .workers import TaskRunner

log = logging.getLogger(__name__)
PROJECT_FILTER = f"Likeness project (*{SUFFIX})"
APP_NAME = "Likeness"


def _appearance_model():
    """The shipped texture model, or None (the panel says so; avatars show the default skin)."""
    from core.appearance import AppearanceModelError, shared_model
    try:
        return shared_model()
    except AppearanceModelError as exc:
        log.warning("%s", exc)
        return None


def _take_paint(avatar: Avatar, other: Avatar | None) -> None:
    """The document takes over another's paint layers (Open, New, New from Photo): the paint
    stack hangs on the Avatar object, which replace_with keeps."""
    from core.paint.avatar import attach_paint, paint_of
    attach_paint(avatar, None if other is None else paint_of(other))


class MainWindow(QMainWindow):
    mesh_ready = Signal()  # the first mesh is on screen (used by --screenshot and tests)

    def __init__(self, model, avatar: Avatar | None = None, path: Path | None = None,
                 resolution: int = 128) -> None:
        super().__init__()
        self.model = model
        self.avatar = avatar or default_avatar(model)
        self.path: Path | None = path
        self.runner = TaskRunner(self)
        self.photo_dialog: PhotoDialog | None = None
        self.session = FaceSession(model, self.avatar, self.runner, resolution=resolution, parent=self)
        self.setWindowIcon(QIcon(str(RESOURCES / "icons" / "likeness.svg")))
        self.resize(1440, 900)

        self.viewport = Viewport(self.avatar, self.session, self)
        self.setCentralWidget(self.viewport)
        self.expression_panel = ExpressionPanel(self.avatar)
        self.identity_panel = IdentityPanel(self.avatar, model)
        self.log_panel = LogPanel()
        self.expression_dock = self._dock("Expression", self.expression_panel, Qt.RightDockWidgetArea)
        self.identity_dock = self._dock("Identity", self.identity_panel, Qt.LeftDockWidgetArea)
        self.hair_panel = HairPanel(self.avatar)
        self.hair_dock = self._dock("Hair", self.hair_panel, Qt.LeftDockWidgetArea)
        self.tabifyDockWidget(self.identity_dock, self.hair_dock)
        self.appearance_panel = AppearancePanel(self.avatar, _appearance_model())
        self.appearance_dock = self._dock("Appearance", self.appearance_panel, Qt.LeftDockWidgetArea)
        self.tabifyDockWidget(self.identity_dock, self.appearance_dock)
        self.identity_dock.raise_()
        self.log_dock = self._dock("Log", self.log_panel, Qt.BottomDockWidgetArea)
        self.webcam_panel = WebcamPanel(self.avatar)
        self.webcam_dock = self._dock("Webcam", self.webcam_panel, Qt.RightDockWidgetArea)
        self.webcam_dock.hide()  # opened from View or Window > Webcam
        self.webcam_dock.visibilityChanged.connect(self._webcam_shown)
        self.webcam_panel.status_changed.connect(lambda s: log.info("Webcam: %s", s)
                                                 if s.startswith(("error", "recorded")) else None)
        # Animation clips: curves, playhead, keys, recording (issue 26); opened from Window > Timeline
        self.timeline_panel = TimelinePanel(self.avatar, self.runner, model)
        self.timeline_dock = self._dock("Timeline", self.timeline_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.log_dock, self.timeline_dock)
        self.log_dock.raise_()
        self.timeline_panel.status_changed.connect(lambda s: log.info("Timeline: %s", s)
                                                   if s.startswith(("error", "exported", "recorded")) else None)
        self.listen_panel = ListenPanel(self.avatar, self.runner)
        self.listen_dock = self._dock("Listener", self.listen_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.log_dock, self.listen_dock)
        self.log_dock.raise_()
        self.listen_panel.status_changed.connect(lambda s: log.info("Listener: %s", s))
        # Text to avatar (issue 25): Window > Generate; picking goes through the unsaved-changes prompt
        from app.panels.generate_panel import GeneratePanel
        self.generate_panel = GeneratePanel(self.avatar, self.runner)
        self.generate_dock = self._dock("Generate", self.generate_panel, Qt.LeftDockWidgetArea)
        self.tabifyDockWidget(self.identity_dock, self.generate_dock)
        self.identity_dock.raise_()
        self.generate_panel.picked.connect(self.use_generated)
        self.generate_panel.status_changed.connect(lambda s: log.info("Generate: %s", s))
        # Expression captions of a video or of the current clip (issue 28): Window > Caption
        from app.panels.caption_panel import CaptionPanel
        self.caption_panel = CaptionPanel(self.runner, lambda: self.timeline_panel.clip)
        self.caption_dock = self._dock("Caption", self.caption_panel, Qt.BottomDockWidgetArea)
        self.tabifyDockWidget(self.log_dock, self.caption_dock)
        self.log_dock.raise_()
        self.caption_panel.status_changed.connect(lambda s: log.info("Caption: %s", s))
        self.resizeDocks([self.expression_dock, self.identity_dock], [380, 300], Qt.Horizontal)
        self.resizeDocks([self.log_dock], [130], Qt.Vertical)
        self._build_status_bar()
        self._build_menus()
        self.paint = PaintWorkspace(self)   # texture painting: UV canvas, brush/layers/history docks

        ev = self.avatar.events
        ev.connect("dirty", lambda a: self._update_title())
        ev.connect("name", lambda a: self._update_title())
        ev.connect("view", lambda a: self._sync_view_actions())
        ev.connect("replaced", lambda a: (self._sync_view_actions(), self.viewport.reset_view()))
        self.session.status.connect(lambda s: self.statusBar().showMessage(s, 3000))
        self.session.mesh_changed.connect(self._first_mesh)
        self.viewport.frame_rendered.connect(self._frame_time)
        self.runner.changed.connect(self._tasks_changed)
        self.runner.progress.connect(self._task_progress)
        # Artists paint the UV texture in another program: reload it whenever they save.
        self.texture_path: Path | None = None
        self.texture_watcher = QFileSystemWatcher(self)
        self.texture_watcher.fileChanged.connect(lambda p: QTimer.singleShot(300, self._reload_texture))
        self.setAcceptDrops(True)
        self._update_title()
        self._sync_view_actions()
        self._mesh_shown = False
        self.session.rebuild_mesh()
        log.info("Likeness started: face model with %d identity dims, %d expressions",
                 np.asarray(model.mean_identity()).size, len(model.expression_names))

    # --- construction ---------------------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self, objectName=f"{title.lower()}_dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.frame_label = QLabel("frame — ms")
        self.frame_label.setToolTip("Render time of the last frame / time to pose the mesh")
        self.progress = QProgressBar(maximumWidth=180, maximum=0, textVisible=False)
        self.cancel_button = QToolButton(text="Cancel", toolTip="Cancel the background work")
        self.cancel_button.clicked.connect(self.runner.cancel_all)
        self.task_label = QLabel()
        for w in (self.task_label, self.progress, self.cancel_button):
            sb.addPermanentWidget(w)
            w.hide()
        sb.addPermanentWidget(self.frame_label)

    def _action(self, menu, text: str, slot, shortcut=None, checkable=False, tip="") -> QAction:
        a = QAction(text, self, checkable=checkable, statusTip=tip)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _build_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&New", self.new_project, QKeySequence.New, tip="Start over from the default avatar")
        self._action(f, "New from &Photo…", lambda: self.new_from_photo(), "Ctrl+Shift+N",
                     tip="Fit the face model to a photo: a new avatar with that face and its texture")
        self._action(f, "&Open…", self.open_dialog, QKeySequence.Open)
        self._action(f, "&Save", self.save, QKeySequence.Save)
        self._action(f, "Save &As…", self.save_as, QKeySequence.SaveAs)
        f.addSeparator()
        self._action(f, "Load &Texture…", self.load_texture_dialog, tip="Use a painted UV texture (PNG/JPEG)")
        self._action(f, "&Export…", self.export_dialog, "Ctrl+E", tip="Export GLB (with ARKit morph targets) or OBJ")
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence.Quit)

        v = mb.addMenu("&View")
        self.mode_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for i, mode in enumerate(VIEW_MODES):
            a = self._action(v, mode.capitalize(), lambda c=False, m=mode: self.avatar.set_view(mode=m),
                             f"{i + 1}", checkable=True)
            group.addAction(a)
            self.mode_actions[mode] = a
        v.addSeparator()
        self.geometry_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for geom, label, key in (("mesh", "Mesh", "M"), ("sdf", "SDF (ray-marched)", "F")):
            a = self._action(v, label, lambda c=False, g=geom: self.avatar.set_view(geometry=g), key, checkable=True)
            group.addAction(a)
            self.geometry_actions[geom] = a
        v.addSeparator()
        self.lighting_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for light, label in (("studio", "Studio Lighting (key, fill, rim)"), ("ibl", "Image-Based Lighting")):
            a = self._action(v, label, lambda c=False, l=light: self.avatar.set_view(lighting=l), checkable=True)
            group.addAction(a)
            self.lighting_actions[light] = a
        v.addSeparator()
        self.landmarks_action = self._action(v, "Show &Landmarks", lambda c: self.avatar.set_view(show_landmarks=c),
                                             "L", checkable=True)
        self._action(v, "&Background Colour…", self.choose_background)
        self._action(v, "&Reset View", self.viewport.reset_view, "Home")
        v.addSeparator()
        for dock in (self.expression_dock, self.identity_dock, self.hair_dock, self.log_dock, self.webcam_dock):
            v.addAction(dock.toggleViewAction())

        win = mb.addMenu("&Window")
        self.webcam_action = self.webcam_dock.toggleViewAction()
        self.webcam_action.setShortcut(QKeySequence("Ctrl+Shift+W"))
        self.webcam_action.setStatusTip("Live face tracking, expression recognition, recording and puppeteering")
        win.addAction(self.webcam_action)
        self.timeline_action = self.timeline_dock.toggleViewAction()
        self.timeline_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        self.timeline_action.setStatusTip("Animation clips: play, scrub, key, smooth, trim, record, export")
        win.addAction(self.timeline_action)
        win.addAction(self.listen_dock.toggleViewAction())
        self.generate_action = self.generate_dock.toggleViewAction()
        self.generate_action.setShortcut(QKeySequence("Ctrl+Shift+G"))
        self.generate_action.setStatusTip("Text to avatar: generate candidates from a prompt, edit by text")
        win.addAction(self.generate_action)
        win.addAction(self.caption_dock.toggleViewAction())

        h = mb.addMenu("&Help")
        self._action(h, "&About Likeness", self.about)
        self._action(h, "&Mouse Controls", lambda: QMessageBox.information(
            self, "Mouse controls", "Left drag: orbit\nRight or middle drag (or Shift+left): pan\n"
            "Wheel: zoom\nDouble-click or Home: reset view"))

    # --- status ---------------------------------------------------------------------------------
    def _webcam_shown(self, visible: bool) -> None:
        if visible and not self.webcam_dock.isFloating():  # give the video most of the column
            self.resizeDocks([self.expression_dock, self.webcam_dock], [260, 640], Qt.Vertical)

    def _update_title(self) -> None:
        name = self.path.name if self.path else self.avatar.name
        self.setWindowTitle(f"{name}[*] — {APP_NAME}")
        self.setWindowModified(self.avatar.dirty)

    def _sync_view_actions(self) -> None:
        view = self.avatar.view
        self.mode_actions[view.mode].setChecked(True)
        self.geometry_actions[view.geometry].setChecked(True)
        self.landmarks_action.setChecked(view.show_landmarks)
        self.lighting_actions[view.lighting].setChecked(True)

    def _frame_time(self, render_ms: float) -> None:
        self.frame_label.setText(f"frame {render_ms:5.1f} ms · pose {self.session.pose_ms:4.1f} ms")

    def _tasks_changed(self) -> None:
        shown = [t for t in self.runner.running if not t.quiet]
        for w in (self.task_label, self.progress, self.cancel_button):
            w.setVisible(bool(shown))
        if shown:
            self.task_label.setText(", ".join(t.title for t in shown))
            self.progress.setMaximum(0)

    def _task_progress(self, title: str, fraction: float, text: str) -> None:
        if not self.progress.isVisible():
            return
        self.task_label.setText(f"{text or title}")
        self.progress.setMaximum(100)
        self.progress.setValue(int(fraction * 100))

    def _first_mesh(self, *args) -> None:
        if not self._mesh_shown:
            self._mesh_shown = True
            # Let the viewport paint the new mesh before announcing it.
            QTimer.singleShot(0, self.viewport.update)
            QTimer.singleShot(50, self.mesh_ready.emit)

    # --- documents ------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """True when it is fine to discard the document (saved, or the user said so)."""
        if not self.avatar.dirty:
            return True
        answer = QMessageBox.warning(
            self, APP_NAME, f"'{self.avatar.name}' has unsaved changes. Save them first?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def new_project(self) -> None:
        if self.maybe_save():
            self.path = None
            _take_paint(self.avatar, None)
            self.avatar.replace_with(default_avatar(self.model))
            self._update_title()
            log.info("New project")

    def new_from_photo(self, photo: str | Path | None = None, **dialog_options) -> PhotoDialog | None:
        """Open the photo dialog (asking for a photo unless given); the document is replaced
        only when the user creates the avatar, after the unsaved-changes prompt."""
        if photo is None:
            photo, _ = QFileDialog.getOpenFileName(self, "New from photo", self._dir(), PHOTO_FILTER)
            if not photo:
                return None
        if self.photo_dialog is not None:   # one at a time; a fresh one for the new photo
            self.photo_dialog.reject()
        dialog = PhotoDialog(self, confirm=self.maybe_save, **dialog_options)
        dialog.accepted.connect(lambda: self._photo_accepted(dialog))
        dialog.finished.connect(lambda r: self._photo_closed(dialog))
        self.photo_dialog = dialog
        dialog.open()
        log.info("New from photo: %s", photo)
        dialog.load(photo)
        return dialog

    def _photo_accepted(self, dialog: PhotoDialog) -> None:
        result = dialog.result
        if result is None:
            return
        self.path = None
        _take_paint(self.avatar, result.avatar)
        self.avatar.replace_with(result.avatar)
        self._update_title()
        log.info("New avatar '%s' from %s (face %d of %d, %d moved landmarks)", result.avatar.name,
                 dialog.photo.name if dialog.photo else "a photo", result.face_index + 1,
                 len(result.faces), len(result.fit.pins))

    def use_generated(self, avatar: Avatar) -> bool:
        """Replace the document by a generated avatar, after the unsaved-changes prompt."""
        if not self.maybe_save():
            return False
        self.path = None
        _take_paint(self.avatar, avatar)
        self.avatar.replace_with(avatar)
        self._update_title()
        log.info("New avatar '%s' from text", avatar.name)
        return True

    def _photo_closed(self, dialog: PhotoDialog) -> None:
        if self.photo_dialog is dialog:
            self.photo_dialog = None
        # A cancelled fit stops at its next check; delete the dialog once its task is over.
        if dialog.busy:
            dialog.idle.connect(dialog.deleteLater)
        else:
            dialog.deleteLater()

    def open_dialog(self) -> None:
        if not self.maybe_save():
            return
        name, _ = QFileDialog.getOpenFileName(self, "Open project", self._dir(), PROJECT_FILTER)
        if name:
            self.open_path(Path(name))

    def open_path(self, path: Path) -> None:
        """Read a project in the background; on success it replaces the document."""
        dim = np.asarray(self.model.mean_identity()).size

        def done(avatar: Avatar) -> None:
            self.path = path
            _take_paint(self.avatar, avatar)
            self.avatar.replace_with(avatar)
            self._update_title()
            log.info("Opened %s", path)

        def failed(message: str) -> None:
            log.error("%s", message)
            QMessageBox.critical(self, "Cannot open project", message.split(": ", 1)[-1])

        self.runner.start("Opening project", lambda ctx: load_project(path, identity_dim=dim),
                          on_done=done, on_error=failed)

    def save(self) -> bool:
        return self.save_to(self.path) if self.path else self.save_as()

    def save_as(self) -> bool:
        start = str(self.path or Path(self._dir()) / f"{self.avatar.name}{SUFFIX}")
        name, _ = QFileDialog.getSaveFileName(self, "Save project", start, PROJECT_FILTER)
        if not name:
            return False
        path = Path(name)
        if path.suffix != SUFFIX:
            path = path.with_name(path.name + SUFFIX)
        return self.save_to(path)

    def save_to(self, path: Path) -> bool:
        try:
            if self.avatar.name in ("Untitled", "Default") or (self.path and self.avatar.name == self.path.stem):
                self.avatar.set_name(path.stem)
            save_project(self.avatar, path)
        except ProjectError as exc:
            log.error("%s", exc)
            QMessageBox.critical(self, "Cannot save project", str(exc))
            return False
        self.path = path
        self.avatar.set_dirty(False)
        self.paint.saved(path)
        self._update_title()
        self.statusBar().showMessage(f"Saved {path}", 4000)
        log.info("Saved %s", path)
        return True

    def load_texture_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Load texture", self._dir(), "Images (*.png *.jpg *.jpeg)")
        if name:
            self.load_texture(Path(name))

    def load_texture(self, path: Path) -> bool:
        try:
            self.avatar.set_texture(load_texture(path))
        except ValueError as exc:
            QMessageBox.critical(self, "Cannot load texture", str(exc))
            return False
        if self.avatar.view.mode != "textured":
            self.avatar.set_view(mode="textured")
        if self.texture_watcher.files():
            self.texture_watcher.removePaths(self.texture_watcher.files())
        self.texture_path = path
        self.texture_watcher.addPath(str(path))
        log.info("Texture loaded from %s (reloaded automatically when the file changes)", path)
        return True

    def _reload_texture(self) -> None:
        path = self.texture_path
        if path is None or not path.exists():
            return
        try:
            self.avatar.set_texture(load_texture(path))
            log.info("Texture reloaded from %s", path)
        except ValueError as exc:  # caught mid-write: the next change event retries
            log.warning("%s", exc)
        if str(path) not in self.texture_watcher.files():
            self.texture_watcher.addPath(str(path))  # editors that replace the file drop the watch

    # Drag and drop: a .likeness opens, an image becomes the texture.
    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and Path(urls[0].toLocalFile()).suffix.lower() in (
                SUFFIX, ".png", ".jpg", ".jpeg"):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        path = Path(event.mimeData().urls()[0].toLocalFile())
        if path.suffix.lower() == SUFFIX:
            if self.maybe_save():
                self.open_path(path)
        else:
            self.load_texture(path)

    def export_dialog(self) -> None:
        start = str(Path(self._dir()) / f"{self.avatar.name}.glb")
        name, chosen = QFileDialog.getSaveFileName(
            self, "Export avatar", start, "glTF binary with ARKit morph targets (*.glb);;Wavefront OBJ (*.obj)")
        if name:
            path = Path(name)
            if path.suffix.lower() not in EXPORT_SUFFIXES:
                path = path.with_name(path.name + (".obj" if "obj" in chosen else ".glb"))
            self.export_to(path)

    def export_to(self, path: Path):
        """Export in the background; returns the Task (tests wait on it)."""
        a = self.avatar   # a snapshot: the export runs while the user goes on editing
        avatar = Avatar(a.identity, a.expression, a.texture, a.name, appearance=a.appearance,
                        eyes=a.eyes, hair=a.hair)
        mesh = self.session.mesh if self.session.ready else None  # reuse when identity is current

        def work(ctx):
            return export_avatar(avatar, path, self.model, resolution=self.session.resolution,
                                 progress=ctx.progress, cancelled=lambda: ctx.cancelled, mesh=mesh)

        def failed(message: str) -> None:
            log.error("%s", message)
            QMessageBox.critical(self, "Export failed", message)

        return self.runner.start(
            "Export", work, on_done=lambda files: log.info("Exported %s", ", ".join(map(str, files))),
            on_error=failed, on_cancel=lambda: log.info("Export cancelled"))

    def choose_background(self) -> None:
        r, g, b = self.avatar.view.background
        color = QColorDialog.getColor(QColor.fromRgbF(r, g, b), self, "Background colour")
        if color.isValid():
            self.avatar.set_view(background=(color.redF(), color.greenF(), color.blueF()))

    def about(self) -> None:
        from core.project import FORMAT_VERSION, app_version
        QMessageBox.about(self, "About Likeness",
                          f"<b>Likeness</b> {app_version()}<br>A studio for creating and animating 3D face "
                          f"avatars.<br>53 ARKit expressions · project format {FORMAT_VERSION}<br>"
                          f"Face model: {np.asarray(self.model.mean_identity()).size}-D identity latent.")

    def _dir(self) -> str:
        return str(self.path.parent) if self.path else str(Path.cwd())

    def closeEvent(self, event) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.webcam_panel.shutdown()
        self.timeline_panel.shutdown()
        self.listen_panel.shutdown()
        dialog = self.photo_dialog
        if dialog is not None:
            dialog.reject()   # cancels its fit, which stops at its next check
            dialog.runner.wait(5000)
        self.runner.cancel_all()
        self.runner.wait(5000)
        self.log_panel.detach()
        self.paint.closed()
        event.accept()

    # --- screenshots ----------------------------------------------------------------------------
    def screenshot(self, path: str | Path) -> Path:
        """Save the whole window, viewport included, as an image."""
        path = Path(path)
        pix = self.grab()
        if not pix.save(str(path)):
            raise OSError(f"cannot write screenshot {path}")
        return path
