"""File > New from photo: detect faces, fit one, let the user correct landmarks and refit.

The dialog is a view over one piece of state: the photo's detected faces, the chosen face, the
user's pins (landmark index -> image pixel) and the latest fit (core.fitting.pipeline). Work
(read, detect, fit + render) runs as `TaskRunner` tasks on one worker thread; results come back
as signals, and a result that is not from the newest request is dropped. Dragging a landmark
writes a pin; the pin recolours the point; Refit sends the pins to the fitter.

Coordinates: scene units are pixels of the fitted image (`PhotoAvatar.image`), the same pixels
the fitter's landmarks and pins use, so items sit at fit positions without any conversion.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QPointF, QRectF, Qt, QThreadPool, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (QComboBox, QDialog, QFileDialog, QGraphicsEllipseItem, QGraphicsItem,
                               QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView,
                               QHBoxLayout, QLabel, QProgressBar, QPushButton, QSizePolicy, QSlider,
                               QVBoxLayout, QWidget)

from .workers import Task, TaskRunner

log = logging.getLogger(__name__)

PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png);;All files (*)"
NUM_LANDMARKS = 68
FIT_COLOR = QColor(0, 230, 90)
PIN_COLOR = QColor(255, 210, 0)
FACE_PAD = 1.9        # the face view shows this many face-box sizes around the face
_REGIONS = ((17, "jaw"), (22, "right brow"), (27, "left brow"), (36, "nose"), (42, "right eye"),
            (48, "left eye"), (68, "mouth"))


def landmark_name(k: int) -> str:
    """'Landmark 31 (nose)': 1-based as in the 300-W / Multi-PIE charts users look up."""
    region = next(name for end, name in _REGIONS if k < end)
    return f"Landmark {k + 1} ({region})"


def to_pixmap(rgb: np.ndarray) -> QPixmap:
    rgb = np.ascontiguousarray(rgb[..., :3], np.uint8)
    h, w = rgb.shape[:2]
    return QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy())


def blend(photo: np.ndarray, render: np.ndarray, opacity: float) -> np.ndarray:
    """The render (H, W, 4; alpha = coverage) over the photo at `opacity`, uint8 RGB."""
    a = render[..., 3:4].astype(np.uint16) * round(255 * opacity) // 255
    out = (photo.astype(np.uint16) * (255 - a) + render[..., :3].astype(np.uint16) * a) // 255
    return out.astype(np.uint8)


_POOL: QThreadPool | None = None


def photo_pool() -> QThreadPool:
    """Photo work runs on one long-lived thread: the fitter's and renderer's GL context (one per
    thread, core.render.headless_context) is made once, and a superseded fit has stopped before
    the next one starts."""
    global _POOL
    if _POOL is None:
        _POOL = QThreadPool(QCoreApplication.instance())
        _POOL.setMaxThreadCount(1)
        _POOL.setExpiryTimeout(-1)
    return _POOL


@dataclass
class Fitted:
    """What a fit task hands back: the pipeline's result and a shaded render with its camera."""
    result: object            # core.fitting.pipeline.PhotoAvatar
    render: np.ndarray        # (H, W, 4)


# --- graphics items ----------------------------------------------------------------------------
class LandmarkItem(QGraphicsEllipseItem):
    """A draggable landmark; a fixed size on screen whatever the zoom."""
    RADIUS = 4.5      # screen pixels, when the face is large enough on screen

    def __init__(self, index: int, moved: Callable[[int, QPointF], None]) -> None:
        super().__init__()
        self.set_radius(self.RADIUS)
        self.index = index
        self._moved = moved
        self._syncing = False
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemSendsGeometryChanges
                      | QGraphicsItem.ItemIgnoresTransformations)
        self.setCursor(Qt.SizeAllCursor)
        self.setToolTip(f"{landmark_name(index)}: drag it to where it belongs, then Refit")
        self.setZValue(2)
        self.set_pinned(False)

    def set_pinned(self, pinned: bool) -> None:
        color = PIN_COLOR if pinned else FIT_COLOR
        self.setBrush(QBrush(color))
        self.setPen(QPen(QColor(0, 0, 0, 200) if pinned else QColor(0, 60, 20, 180), 1.2))
        self.setScale(1.35 if pinned else 1.0)
        self.setZValue(3 if pinned else 2)

    def set_radius(self, r: float) -> None:
        self.setRect(-r, -r, 2 * r, 2 * r)

    def place(self, x: float, y: float) -> None:
        """Move without counting as a user edit."""
        self._syncing = True
        try:
            self.setPos(float(x), float(y))
        finally:
            self._syncing = False

    def itemChange(self, change, value):
        scene = self.scene()
        if change == QGraphicsItem.ItemPositionChange and scene is not None:
            r = scene.sceneRect()   # keep points on the photo
            return QPointF(min(max(value.x(), r.left()), r.right()), min(max(value.y(), r.top()), r.bottom()))
        if change == QGraphicsItem.ItemPositionHasChanged and not self._syncing:
            self._moved(self.index, value)
        return super().itemChange(change, value)


class FaceBoxItem(QGraphicsRectItem):
    """A detected face's box; clicking an unchosen one chooses it."""

    def __init__(self, index: int, box, chosen: Callable[[int], None]) -> None:
        x, y, w, h = (float(v) for v in box)
        super().__init__(x, y, w, h)
        self.index = index
        self._chosen = chosen
        self.setZValue(1)
        self.setToolTip(f"Face {index + 1}: click to fit this face")
        self.set_current(False)

    def set_current(self, current: bool) -> None:
        pen = QPen(QColor(255, 255, 255, 170) if current else QColor(90, 170, 255), 1.5,
                   Qt.SolidLine if current else Qt.DashLine)
        pen.setCosmetic(True)
        self.setPen(pen)
        self.setCursor(Qt.ArrowCursor if current else Qt.PointingHandCursor)
        self.setAcceptedMouseButtons(Qt.NoButton if current else Qt.LeftButton)

    def mousePressEvent(self, event) -> None:
        self._chosen(self.index)
        event.accept()


class PhotoView(QGraphicsView):
    """Shows a scene framed on a rectangle (kept framed on resize); wheel zooms, drag pans."""
    zoomed = Signal()

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None) -> None:
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.Antialiasing | QPainter.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setBackgroundBrush(QColor(38, 40, 46))
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self._frame = QRectF()

    def frame(self, rect: QRectF) -> None:
        self._frame = QRectF(rect)
        if not rect.isEmpty():
            self.fitInView(rect, Qt.KeepAspectRatio)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.frame(self._frame)
        self.zoomed.emit()

    def wheelEvent(self, event) -> None:
        f = 1.0015 ** event.angleDelta().y()
        self.scale(f, f)
        self.zoomed.emit()


# --- the dialog --------------------------------------------------------------------------------
class PhotoDialog(QDialog):
    """Photo -> fitted avatar. `result` is the latest PhotoAvatar; `accepted` means "use it".

    `confirm` runs before accepting (the main window's unsaved-changes prompt); `options` and
    `texture_size` go to core.fitting.pipeline.reconstruct (tests use a shorter fit).
    """
    fitted = Signal(object)     # PhotoAvatar: a fit finished and is shown
    failed = Signal(str)        # a message for the user, shown in the dialog
    idle = Signal()             # no task is running any more

    def __init__(self, parent: QWidget | None = None, photo: str | Path | None = None, *,
                 confirm: Callable[[], bool] | None = None, options=None, texture_size: int = 1024) -> None:
        super().__init__(parent)
        self.setWindowTitle("New from photo")
        self.resize(1180, 760)
        self.confirm = confirm
        self.options, self.texture_size = options, texture_size
        self.runner = TaskRunner(self, pool=photo_pool())
        self.task: Task | None = None
        # state (views below only display it)
        self.photo: Path | None = None
        self.image: np.ndarray | None = None      # the photo as read (upright, maybe reduced)
        self.detected: tuple[np.ndarray, float, list] | None = None
        self.face_index = 0
        self.pins: dict[int, tuple[float, float]] = {}
        self.result = None             # PhotoAvatar of the chosen face, or None
        self.render: np.ndarray | None = None
        self.error = ""

        self._build()
        self._sync_controls()
        if photo is not None:
            self.load(photo)

    # --- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.photo_label = QLabel("No photo", textInteractionFlags=Qt.TextSelectableByMouse)
        self.photo_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        choose = QPushButton("Choose photo…")
        choose.clicked.connect(self.choose_photo)
        self.face_combo = QComboBox(sizeAdjustPolicy=QComboBox.AdjustToContents)
        self.face_combo.setToolTip("Which face to fit (you can also click a face's box on the photo)")
        self.face_combo.activated.connect(self.choose_face)
        self.faces_label = QLabel()
        top = QHBoxLayout()
        top.addWidget(choose)
        top.addWidget(self.photo_label, 1)
        top.addWidget(self.faces_label)
        self.face_chooser = QWidget()
        row = QHBoxLayout(self.face_chooser)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Face:"))
        row.addWidget(self.face_combo)
        top.addWidget(self.face_chooser)

        self.left_scene, self.right_scene = QGraphicsScene(self), QGraphicsScene(self)
        self.left_pixmap, self.right_pixmap = QGraphicsPixmapItem(), QGraphicsPixmapItem()
        for scene, item in ((self.left_scene, self.left_pixmap), (self.right_scene, self.right_pixmap)):
            item.setTransformationMode(Qt.SmoothTransformation)
            scene.addItem(item)
        self.left_view, self.right_view = PhotoView(self.left_scene), PhotoView(self.right_scene)
        self.landmark_items: list[LandmarkItem] = []
        for k in range(NUM_LANDMARKS):
            item = LandmarkItem(k, self._landmark_moved)
            item.setVisible(False)
            self.left_scene.addItem(item)
            self.landmark_items.append(item)
        self.face_items: list[FaceBoxItem] = []
        # Both views show the same part of the photo: the right one follows the left one.
        self.left_view.zoomed.connect(lambda: self._follow(self.left_view, self.right_view))
        self.left_view.zoomed.connect(self._size_points)
        self.right_view.zoomed.connect(lambda: self._follow(self.right_view, self.left_view))
        for a, b in ((self.left_view, self.right_view), (self.right_view, self.left_view)):
            a.horizontalScrollBar().valueChanged.connect(b.horizontalScrollBar().setValue)
            a.verticalScrollBar().valueChanged.connect(b.verticalScrollBar().setValue)

        views = QHBoxLayout()
        for title, view in (("Landmarks — drag a wrong one to where it belongs", self.left_view),
                            ("The fitted face over the photo", self.right_view)):
            col = QVBoxLayout()
            col.addWidget(QLabel(f"<b>{title}</b>"))
            col.addWidget(view, 1)
            views.addLayout(col, 1)

        self.message = QLabel(wordWrap=True, textInteractionFlags=Qt.TextSelectableByMouse)
        self.message.hide()   # only errors are shown here
        self.progress = QProgressBar(maximum=100)
        self.progress_label = QLabel()
        self.stop_button = QPushButton("Cancel fit")
        self.stop_button.setToolTip("Stop the detection or fit that is running")
        self.stop_button.clicked.connect(self.cancel_work)
        busy = QHBoxLayout()
        busy.addWidget(self.progress, 1)
        busy.addWidget(self.progress_label, 1)
        busy.addWidget(self.stop_button)

        self.refit_button = QPushButton("Refit")
        self.refit_button.setToolTip("Fit again, holding the moved (yellow) landmarks where you put them")
        self.refit_button.clicked.connect(self.refit)
        self.reset_button = QPushButton("Reset landmarks")
        self.reset_button.setToolTip("Forget the moved landmarks (Refit then fits without them)")
        self.reset_button.clicked.connect(self.reset_landmarks)
        self.whole_button = QPushButton("Whole photo", checkable=True)
        self.whole_button.setToolTip("Show the whole photo instead of the chosen face")
        self.whole_button.toggled.connect(lambda on: self._frame_views())
        self.opacity = QSlider(Qt.Horizontal, minimum=0, maximum=100, value=60, maximumWidth=140)
        self.opacity.setToolTip("How strongly the fitted face covers the photo on the right")
        self.opacity.valueChanged.connect(lambda v: self._show_overlay())
        self.create_button = QPushButton("Create avatar", default=True)
        self.create_button.setToolTip("Replace the current avatar with this one")
        self.create_button.clicked.connect(self.create_avatar)
        close = QPushButton("Cancel")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for w in (self.refit_button, self.reset_button, self.whole_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("Overlay"))
        buttons.addWidget(self.opacity)
        buttons.addSpacing(16)
        buttons.addWidget(self.create_button)
        buttons.addWidget(close)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(views, 1)
        layout.addWidget(self.message)
        layout.addLayout(busy)
        layout.addLayout(buttons)

    # --- user actions --------------------------------------------------------------------------
    def choose_photo(self) -> None:
        start = str(self.photo.parent) if self.photo else str(Path.cwd())
        name, _ = QFileDialog.getOpenFileName(self, "New from photo", start, PHOTO_FILTER)
        if name:
            self.load(name)

    def load(self, photo: str | Path) -> Task:
        """Read the photo, then find its faces (the photo shows meanwhile), then fit the largest."""
        from core.fitting import load_photo

        self.photo = Path(photo)
        self.image, self.detected, self.result, self.render, self.face_index = None, None, None, None, 0
        self.pins = {}
        self._show_photo()
        path = self.photo
        return self._start("Reading the photo", lambda ctx: load_photo(path), self._loaded)

    def _loaded(self, loaded: tuple[np.ndarray, float]) -> None:
        from core.fitting.pipeline import detect_faces

        self.image = loaded[0]
        self._show_photo()
        path = self.photo
        self._start("Finding faces", lambda ctx: detect_faces(loaded, source=path), self._detected)

    def choose_face(self, index: int) -> None:
        if self.detected is None or not 0 <= index < len(self.detected[2]):
            return
        if index == self.face_index and (self.result is not None or self.task is not None):
            return  # already fitted or being fitted
        self.face_index = index
        self.result, self.render, self.pins = None, None, {}
        self._show_faces()
        self._show_fit()
        self.fit()

    def fit(self) -> Task | None:
        """Fit the chosen face with the current pins, starting from the last fit if there is one."""
        from core.fitting.pipeline import reconstruct, render_fit

        if self.detected is None:
            return None
        photo, detected, face, pins = self.photo, self.detected, self.face_index, dict(self.pins)
        initial = self.result.fit if self.result is not None else None
        options, size = self.options, self.texture_size

        def work(ctx) -> Fitted:
            result = reconstruct(photo, face_index=face, pins=pins, detected=detected, initial=initial,
                                 options=options, texture_size=size, progress=ctx.progress,
                                 cancel=lambda: ctx.cancelled)
            ctx.check()
            ctx.progress(0.97, "rendering the fit")
            return Fitted(result, render_fit(result, "shaded"))

        return self._start("Fitting", work, self._fit_done)

    def refit(self) -> Task | None:
        return self.fit()

    def reset_landmarks(self) -> None:
        self.pins = {}
        self._show_fit()
        self._sync_controls()

    def cancel_work(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.progress_label.setText("cancelling…")

    def create_avatar(self) -> None:
        if self.result is None or self.task is not None:
            return
        if self.confirm is not None and not self.confirm():
            return  # e.g. the user cancelled the save prompt: keep the dialog and its fit
        self.accept()

    def done(self, r: int) -> None:
        self.cancel_work()   # closing never leaves a fit running for nothing
        super().done(r)

    @property
    def busy(self) -> bool:
        return self.task is not None

    # --- tasks ---------------------------------------------------------------------------------
    def _start(self, title: str, work, on_done: Callable[[object], None]) -> Task:
        if self.task is not None:
            self.task.cancel()
        self.error = ""
        self.message.clear()
        self.message.hide()
        task = None

        def current() -> bool:   # results of a superseded task are dropped
            return task is self.task

        task = self.runner.start(
            title, work, quiet=True,
            on_done=lambda value: current() and on_done(value),
            on_error=lambda msg: current() and self._failed(msg.removeprefix(f"{title} failed: ")),
            on_cancel=lambda: current() and self._cancelled())
        task.signals.progress.connect(lambda f, s: current() and self._progress(f, s))
        task.signals.done.connect(lambda: self._task_over(task))
        self.task = task
        self.progress.setValue(0)
        self.progress.setMaximum(0)     # busy until the first progress report
        self.progress_label.setText(title.lower() + "…")
        self._sync_controls()
        return task

    def _task_over(self, task: Task) -> None:
        if task is self.task:
            self.task = None
            self._sync_controls()
            self.idle.emit()

    def _progress(self, fraction: float, text: str) -> None:
        self.progress.setMaximum(100)
        self.progress.setValue(round(100 * fraction))
        self.progress_label.setText(text)

    def _detected(self, detected) -> None:
        self.detected = detected
        _, scale, faces = detected
        n = len(faces)
        self.faces_label.setText("1 face found" if n == 1 else f"{n} faces found: choose one here or click its box")
        self.face_combo.clear()
        for i, f in enumerate(faces):
            size = f"{f.box[2] / scale:.0f}×{f.box[3] / scale:.0f} px"
            self.face_combo.addItem(f"Face {i + 1}{' (largest)' if i == 0 else ''}, {size}")
        self._show_faces()
        log.info("Photo %s: %d face(s) found", self.photo, n)
        self.fit()

    def _fit_done(self, fitted: Fitted) -> None:
        self.result, self.render = fitted.result, fitted.render
        fit = fitted.result.fit
        self.pins = dict(fit.pins)
        self._show_fit()
        self.progress.setValue(100)
        self.progress_label.setText(f"fitted in {fit.seconds:.1f} s"
                                    + (f" with {len(fit.pins)} moved landmark(s)" if fit.pins else ""))
        log.info("Fitted face %d of %s in %.1f s (%d pinned landmarks)", self.face_index + 1,
                 self.photo.name if self.photo else "the photo", fit.seconds, len(fit.pins))
        self.fitted.emit(fitted.result)

    def _failed(self, message: str) -> None:
        self.error = message
        self.message.setText(f'<span style="color:#e05050"><b>Cannot make an avatar from this photo.</b> '
                             f'{_escape(message)}</span>')
        self.message.show()
        self.progress_label.setText("")
        self.progress.setMaximum(100)
        self.progress.setValue(0)
        log.warning("New from photo: %s", message)
        self.failed.emit(message)

    def _cancelled(self) -> None:
        self.progress.setMaximum(100)
        self.progress.setValue(0)
        self.progress_label.setText("cancelled" + (" — the previous fit is kept" if self.result else ""))

    # --- views of the state --------------------------------------------------------------------
    def _landmark_moved(self, k: int, pos: QPointF) -> None:
        self.pins[k] = (float(pos.x()), float(pos.y()))
        self.landmark_items[k].set_pinned(True)
        self._sync_controls()

    def _show_photo(self) -> None:
        name = str(self.photo) if self.photo else "No photo"
        self.photo_label.setText(name)
        self.photo_label.setToolTip(name)
        image = self.image
        if image is None:
            self.faces_label.clear()
            self.face_combo.clear()
            for pix in (self.left_pixmap, self.right_pixmap):
                pix.setPixmap(QPixmap())
        else:
            pixmap = to_pixmap(image)
            self.left_pixmap.setPixmap(pixmap)
            self.right_pixmap.setPixmap(pixmap)
            rect = QRectF(0, 0, image.shape[1], image.shape[0])
            self.left_scene.setSceneRect(rect)
            self.right_scene.setSceneRect(rect)
        self._show_faces()
        self._show_fit()
        self._frame_views()

    def _show_faces(self) -> None:
        for item in self.face_items:
            self.left_scene.removeItem(item)
        self.face_items = []
        faces = self.detected[2] if self.detected else []
        if len(faces) > 1:   # a single face needs no box to choose it by
            for i, f in enumerate(faces):
                item = FaceBoxItem(i, f.box, self.choose_face)
                item.set_current(i == self.face_index)
                self.left_scene.addItem(item)
                self.face_items.append(item)
        if faces:
            self.face_combo.setCurrentIndex(self.face_index)
        self._frame_views()

    def _show_fit(self) -> None:
        """Landmark items at the fit (pinned ones where the user put them) and the overlay."""
        fit = self.result.fit if self.result is not None else None
        for k, item in enumerate(self.landmark_items):
            item.setVisible(fit is not None)
            if fit is not None:
                item.place(*(self.pins[k] if k in self.pins else fit.landmarks68[k]))
            item.set_pinned(k in self.pins)
        self._show_overlay()

    def _show_overlay(self) -> None:
        image = self.image
        if image is None:
            return
        if self.result is not None and self.render is not None:
            image = blend(image, self.render, self.opacity.value() / 100.0)
        self.right_pixmap.setPixmap(to_pixmap(image))

    def _frame_views(self) -> None:
        image = self.image
        if image is None:
            return
        faces = self.detected[2] if self.detected else []
        rect = QRectF(0, 0, image.shape[1], image.shape[0])
        if not self.whole_button.isChecked() and faces:
            x, y, w, h = (float(v) for v in faces[self.face_index].box)
            side = max(w, h) * FACE_PAD
            rect = QRectF(x + w / 2 - side / 2, y + h / 2 - side / 2, side, side).intersected(rect)
        self.left_view.frame(rect)
        self.right_view.frame(rect)
        self._size_points()

    def _size_points(self) -> None:
        """Points keep their screen size, but shrink when the face is small on screen (whole
        photo, zoomed out) so that 68 of them do not cover it."""
        if self.detected is None:
            return
        box = self.detected[2][self.face_index].box
        on_screen = max(box[2], box[3]) * self.left_view.transform().m11()
        r = min(max(on_screen / 50.0, 1.8), LandmarkItem.RADIUS)
        for item in self.landmark_items:
            item.set_radius(r)

    def _follow(self, source: PhotoView, target: PhotoView) -> None:
        if target.transform() != source.transform():
            target.setTransform(source.transform())
        target.horizontalScrollBar().setValue(source.horizontalScrollBar().value())
        target.verticalScrollBar().setValue(source.verticalScrollBar().value())

    def _sync_controls(self) -> None:
        busy, have = self.task is not None, self.result is not None
        self.stop_button.setEnabled(busy)
        # Also after a cancelled or failed fit: the way to try again without re-reading the photo.
        self.refit_button.setEnabled(self.detected is not None and not busy)
        n = len(self.pins)
        self.refit_button.setText(f"Refit ({n} moved)" if n else "Refit" if have else "Fit")
        self.reset_button.setEnabled(bool(self.pins) and not busy)
        self.create_button.setEnabled(have and not busy)
        self.face_combo.setEnabled(self.detected is not None and len(self.detected[2]) > 1)
        self.face_chooser.setVisible(self.detected is not None)
        for item in self.landmark_items:
            item.setEnabled(not busy)   # pins are read when a fit starts; edits during it would be lost


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
