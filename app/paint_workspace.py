"""The texture-painting workspace of the main window: the controller, the UV canvas, the Brush,
Layers and History docks, the Paint menu (undo/redo, paint mode, import/export), and the
recovery offer after a crash. Installed by MainWindow with one call, so the window's own
code stays about documents and views."""
from __future__ import annotations

import datetime
import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QFrame, QMessageBox, QScrollArea

from core.paint import PaintError

from .paint_controller import PaintController
from .paint_viewport import ViewportPainter
from .panels.brush_panel import BrushPanel
from .panels.layers_panel import HistoryPanel, LayersPanel
from .uv_canvas import UVCanvas

log = logging.getLogger(__name__)


class PaintWorkspace:
    def __init__(self, window) -> None:
        self.window = w = window
        self.controller = c = PaintController(w.avatar, w.session, w.runner, w)
        c.project_path = w.path
        self.canvas = UVCanvas(c, w.session)
        self.brush_panel = BrushPanel(c)
        self.layers_panel = LayersPanel(c)
        self.history_panel = HistoryPanel(c)
        self.canvas_dock = w._dock("UV Canvas", self.canvas, Qt.RightDockWidgetArea)
        scroll = QScrollArea(widgetResizable=True, frameShape=QFrame.NoFrame)
        scroll.setWidget(self.brush_panel)   # a tall panel: it scrolls rather than stretch the window
        self.brush_dock = w._dock("Brush", scroll, Qt.LeftDockWidgetArea)
        if hasattr(w, "identity_dock"):
            w.tabifyDockWidget(w.identity_dock, self.brush_dock)   # the left column, a tab
        self.layers_dock = w._dock("Layers", self.layers_panel, Qt.RightDockWidgetArea)
        self.history_dock = w._dock("History", self.history_panel, Qt.RightDockWidgetArea)
        w.tabifyDockWidget(self.layers_dock, self.history_dock)
        self.layers_dock.raise_()
        self.docks = (self.canvas_dock, self.brush_dock, self.layers_dock, self.history_dock)
        for d in self.docks:
            d.hide()    # Window > Texture Painting shows them
        self.painter = ViewportPainter(w.viewport, c)
        w.viewport.painter = self.painter
        w.viewport.texel_source = c.texture
        c.texture_changed.connect(w.viewport.upload_texels)
        c.status.connect(lambda s: w.statusBar().showMessage(s, 4000))
        self.brush_panel.paint_mode_toggled.connect(self.set_paint_mode)
        self.brush_panel.project_photo_requested.connect(self.project_photo)
        self.layers_panel.import_requested.connect(self.import_dialog)
        self._build_menu()
        self.recovery_box: QMessageBox | None = None
        QTimer.singleShot(0, self.offer_recovery)

    # ------------------------------------------------------------------ menu
    def _build_menu(self) -> None:
        w = self.window
        m = w.menuBar().addMenu("&Paint")
        self.undo_action = w._action(m, "&Undo Paint", self.controller.undo, QKeySequence.Undo)
        self.redo_action = w._action(m, "&Redo Paint", self.controller.redo, QKeySequence.Redo)
        m.addSeparator()
        self.workspace_action = w._action(m, "&Texture Painting Workspace", self.show_workspace,
                                          "Ctrl+Shift+P", checkable=True,
                                          tip="Show the UV canvas and the brush, layers and history panels")
        self.paint_mode_action = w._action(m, "Paint in the &3D View", self.set_paint_mode, "P", checkable=True,
                                           tip="Left drag paints on the avatar; Alt+left drag orbits")
        m.addSeparator()
        w._action(m, "&Import Image or PSD as Layers…", self.import_dialog)
        w._action(m, "Project a &Photo onto the View…", self.brush_panel.choose_photo)
        w._action(m, "Export &Flattened Texture…", lambda: self.export_dialog("flat"))
        w._action(m, "Export &Layers as PNGs…", lambda: self.export_dialog("layers"))
        w._action(m, "Export Layered &PSD…", lambda: self.export_dialog("psd"))
        self.controller.history_changed.connect(self._sync_actions)
        self._sync_actions()

    def _sync_actions(self) -> None:
        h = self.controller.stack.history
        self.undo_action.setEnabled(h.can_undo())
        self.redo_action.setEnabled(h.can_redo())

    def show_workspace(self, on: bool = True) -> None:
        for d in self.docks:
            d.setVisible(on)
        self.workspace_action.setChecked(on)
        if on:
            self.brush_dock.raise_()
            self.layers_dock.raise_()
            self.window.resizeDocks([self.canvas_dock, self.layers_dock], [460, 300], Qt.Vertical)
            self.window.resizeDocks([self.canvas_dock], [460], Qt.Horizontal)
        if on and self.avatar_view_mode() != "textured":
            self.window.avatar.set_view(mode="textured")
        self.set_paint_mode(on)

    def avatar_view_mode(self) -> str:
        return self.window.avatar.view.mode

    def set_paint_mode(self, on: bool) -> None:
        self.painter.enabled = bool(on)
        if on:
            self.controller.enable_3d(True)
        self.paint_mode_action.setChecked(bool(on))
        cb = self.brush_panel.paint_mode
        cb.blockSignals(True)
        cb.setChecked(bool(on))
        cb.blockSignals(False)
        vp = self.window.viewport
        vp.setCursor(Qt.CrossCursor if on else Qt.ArrowCursor)
        vp.setMouseTracking(bool(on))      # the brush outline follows the pointer
        if not on:
            vp.set_cursor(None)

    # ------------------------------------------------------------------ files
    def import_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self.window, "Import as layers", self.window._dir(),
                                              "Images and PSD (*.png *.jpg *.jpeg *.psd)")
        if name:
            self.import_file(Path(name))

    def import_file(self, path: Path) -> bool:
        from core.paint.files import import_image_layer
        from core.paint.psd import import_psd
        st = self.controller.stack
        try:
            if path.suffix.lower() == ".psd":
                layers, notes = import_psd(st, path)
                note = "; ".join(notes)
            else:
                _, note = import_image_layer(st, path)
        except PaintError as exc:
            QMessageBox.warning(self.window, "Cannot import", str(exc))
            return False
        self.controller.layer_index = len(st.layers) - 1
        self.controller.layers_changed.emit()
        if note:
            self.controller.status.emit(note)
        return True

    def export_dialog(self, kind: str) -> None:
        w = self.window
        if kind == "layers":
            d = QFileDialog.getExistingDirectory(w, "Export layers into", w._dir())
            if d:
                self.export(kind, Path(d))
            return
        filt = "Photoshop (*.psd)" if kind == "psd" else "PNG (*.png)"
        suffix = ".psd" if kind == "psd" else ".png"
        name, _ = QFileDialog.getSaveFileName(w, "Export", str(Path(w._dir()) / f"{w.avatar.name}{suffix}"), filt)
        if name:
            self.export(kind, Path(name))

    def export(self, kind: str, path: Path):
        """Export in the background from a snapshot of the layers."""
        from core.paint import LayerStack
        from core.paint.files import export_flattened, export_layers
        from core.paint.psd import export_psd
        st = self.controller.stack
        snap = LayerStack(st.size, base=st.base, coverage=st.coverage, padding=st.padding)
        snap.layers = [l.copy() for l in st.layers]
        fn = {"flat": export_flattened, "layers": export_layers, "psd": export_psd}[kind]
        return self.window.runner.start(f"Export {kind}", lambda ctx: fn(snap, path),
                                        on_done=lambda r: log.info("Exported %s", path),
                                        on_error=lambda m: QMessageBox.warning(self.window, "Export failed", m))

    def project_photo(self, path: str):
        from core.paint.files import read_image
        try:
            img = read_image(path)
        except PaintError as exc:
            QMessageBox.warning(self.window, "Cannot read the photo", str(exc))
            return None
        return self.painter.project_photo(img[..., :3])

    # ------------------------------------------------------------------ document life
    def saved(self, path: Path) -> None:
        self.controller.project_path = path
        self.controller.clear_recovery()

    def closed(self) -> None:
        """A clean close: the layers were saved or discarded on purpose."""
        self.controller.clear_recovery()
        self.window.viewport.painter = None
        self.painter.enabled = False

    def offer_recovery(self) -> None:
        """Non-blocking: a session that crashed left a recovery file; offer its layers."""
        note = self.controller.pending_recovery()
        if note is None:
            return
        when = datetime.datetime.fromtimestamp(float(note.get("saved") or 0)).strftime("%Y-%m-%d %H:%M")
        where = note.get("project") or note.get("avatar") or "an unsaved avatar"
        box = QMessageBox(QMessageBox.Question, "Recover painting?",
                          f"Likeness closed without saving the paint layers of {where} "
                          f"(autosaved {when}).\n\nRestore those layers onto the current avatar?",
                          QMessageBox.Yes | QMessageBox.Discard, self.window)
        box.setWindowModality(Qt.WindowModal)
        box.finished.connect(lambda r: self._recovery_answer(box.standardButton(box.clickedButton())))
        self.recovery_box = box
        box.open()

    def _recovery_answer(self, button) -> None:
        self.recovery_box = None
        if button == QMessageBox.Yes:
            if self.controller.recover():
                self.show_workspace(True)
        else:
            self.controller.clear_recovery()
