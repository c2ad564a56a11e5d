"""The 2D UV canvas: the painted texture flat, with the mesh's UV wireframe over it.

Wheel zooms about the pointer, right/middle drag (or Space+drag) pans, a double click on the
background fits the texture. Left drag paints with the current tool, Ctrl+click sets the clone
source or the stencil position. It shows the layer stack's composite through a QImage that
wraps the stack's own array (no copy), and repaints only the screen rect of the texels a dab
changed, so a dab costs a small blit, not a full redraw.
"""
from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

WIRE_SIZE = 2048     # the wireframe overlay is drawn once at this size, scaled with the texture


def uv_wireframe(uvs: np.ndarray, faces: np.ndarray, size: int = WIRE_SIZE) -> np.ndarray:
    """(size, size) uint8 coverage of the UV edges (row 0 = v 1)."""
    img = np.zeros((size, size), np.uint8)
    pts = np.empty_like(np.asarray(uvs, np.float32))
    pts[:, 0] = uvs[:, 0] * size
    pts[:, 1] = (1.0 - uvs[:, 1]) * size
    tri = np.round(pts[np.asarray(faces, np.int64)] * 4).astype(np.int32)   # 2 fractional bits
    cv2.polylines(img, list(tri), True, 255, 1, cv2.LINE_AA, shift=2)
    return img


class UVCanvas(QWidget):
    painted = Signal()          # a paint event finished (latency measurements wait on it)

    def __init__(self, controller, session, parent=None) -> None:
        super().__init__(parent)
        self.controller, self.session = controller, session
        self.scale = 0.25                   # screen pixels per texel
        self.offset = QPointF(0, 0)         # screen position of texel (0, 0)
        self.show_wire = True
        self._fitted = False
        self._image: QImage | None = None
        self._image_src = None
        self._wire: QImage | None = None
        self._wire_buf = None
        self._pan: QPointF | None = None
        self._space = False
        self._cursor: QPointF | None = None
        self.setMinimumSize(256, 256)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self.setToolTip("UV canvas: left drag paints, wheel zooms, right/middle drag pans, "
                        "Ctrl+click sets the clone source / stencil position")
        controller.texture_changed.connect(self.texels_changed)
        controller.brush_changed.connect(self.update)
        from .workers import TaskRunner
        self._runner = TaskRunner(self)
        self._wire_mesh = None              # (uvs, faces) whose wireframe is still to draw
        self._wire_gen = 0
        session.mesh_changed.connect(lambda mesh, v: self.set_wireframe(mesh.uvs, mesh.faces))
        if getattr(session, "mesh", None) is not None:
            self.set_wireframe(session.mesh.uvs, session.mesh.faces)

    # ------------------------------------------------------------------ content
    def set_wireframe(self, uvs, faces) -> None:
        """Draw the UV wireframe of a new mesh, on a worker and only once the canvas is shown
        (an identity change must not cost the GUI thread tens of milliseconds for a hidden panel)."""
        self._wire_mesh = (np.asarray(uvs), np.asarray(faces))
        self._wire_gen += 1
        if self.isVisible():
            self._draw_wire()

    def showEvent(self, e) -> None:
        if self._wire_mesh is not None:
            self._draw_wire()

    def _draw_wire(self) -> None:
        (uvs, faces), self._wire_mesh = self._wire_mesh, None
        gen = self._wire_gen
        self._runner.start("UV wireframe", lambda ctx: uv_wireframe(uvs, faces), quiet=True,
                           on_done=lambda cov: self._set_wire(cov) if gen == self._wire_gen else None)

    def _set_wire(self, cov: np.ndarray) -> None:
        argb = np.zeros(cov.shape + (4,), np.uint8)         # premultiplied BGRA (little endian)
        a = (cov.astype(np.uint16) * 110 // 255).astype(np.uint8)
        argb[..., 0] = argb[..., 1] = argb[..., 2] = (a.astype(np.uint16) * 235 // 255).astype(np.uint8)
        argb[..., 3] = a
        self._wire_buf = argb
        self._wire = QImage(argb.data, cov.shape[1], cov.shape[0], cov.shape[1] * 4,
                            QImage.Format_ARGB32_Premultiplied)
        self.update()

    def _texture_image(self) -> QImage:
        """A QImage over the texture array the avatar shows (shares its memory)."""
        src = self.controller.texture()
        if src is not self._image_src:
            src = np.ascontiguousarray(src)
            self._image_src = src
            h, w = src.shape[:2]
            self._image = QImage(src.data, w, h, w * 3, QImage.Format_RGB888)
        return self._image

    def texels_changed(self, rects) -> None:
        if rects is None:
            self._image_src = None
            self.update()
            return
        size = self.controller.stack.size
        k = self.scale * (self._image.width() / size if self._image is not None else 1.0)
        region = None
        for y0, y1, x0, x1 in rects:
            r = QRectF(self.offset.x() + x0 * k, self.offset.y() + y0 * k, (x1 - x0) * k, (y1 - y0) * k)
            r = r.toAlignedRect().adjusted(-1, -1, 1, 1)
            region = r if region is None else region.united(r)
        if self._image is None or self._image_src is not self.controller.texture():
            self._image_src = None
            self.update()
        elif region is not None:
            self.update(region)

    # ------------------------------------------------------------------ geometry
    def fit(self) -> None:
        s = min(self.width(), self.height())
        size = self.controller.stack.size
        self.scale = s / size
        self.offset = QPointF((self.width() - s) / 2, (self.height() - s) / 2)
        self._fitted = True
        self.update()

    def to_texel(self, p: QPointF) -> tuple[float, float]:
        return (p.x() - self.offset.x()) / self.scale, (p.y() - self.offset.y()) / self.scale

    def to_screen(self, x: float, y: float) -> QPointF:
        return QPointF(self.offset.x() + x * self.scale, self.offset.y() + y * self.scale)

    def zoom(self, factor: float, about: QPointF) -> None:
        new = float(np.clip(self.scale * factor, 0.05, 32.0))
        tx, ty = self.to_texel(about)
        self.scale = new
        self.offset = QPointF(about.x() - tx * new, about.y() - ty * new)
        self.update()

    def resizeEvent(self, e) -> None:
        if not self._fitted or e.oldSize().width() <= 0:
            self.fit()

    # ------------------------------------------------------------------ drawing
    def paintEvent(self, e) -> None:
        p = QPainter(self)
        clip = e.rect()
        p.fillRect(clip, QColor(38, 40, 44))
        img = self._texture_image()
        size = self.controller.stack.size
        k = img.width() / size                       # the shown image may be the (smaller) base
        target = QRectF(self.offset.x(), self.offset.y(), size * self.scale, size * self.scale)
        # only the source texels under the exposed rect: a dab redraws a few hundred pixels
        vis = target.intersected(QRectF(clip))
        if not vis.isEmpty():
            sx = (vis.x() - self.offset.x()) / self.scale * k
            sy = (vis.y() - self.offset.y()) / self.scale * k
            src = QRectF(sx, sy, vis.width() / self.scale * k, vis.height() / self.scale * k)
            # smooth minification only for whole repaints: a dab's or an undo's small region redraws fast
            p.setRenderHint(QPainter.SmoothPixmapTransform, self.scale * k < 1.0 and clip == self.rect()
                            and not self.controller.painting)
            p.drawImage(vis, img, src)
            if self.show_wire and self._wire is not None:
                kw = self._wire.width() / size
                wsrc = QRectF(src.x() / k * kw, src.y() / k * kw, src.width() / k * kw, src.height() / k * kw)
                p.drawImage(vis, self._wire, wsrc)
        c = self.controller
        if c.clone_source is not None and c.tool == "clone":
            p.setPen(QPen(QColor(80, 200, 255), 1.5))
            q = self.to_screen(*c.clone_source)
            p.drawLine(q + QPointF(-6, 0), q + QPointF(6, 0))
            p.drawLine(q + QPointF(0, -6), q + QPointF(0, 6))
        if self._cursor is not None and c.tool not in ("fill", "eyedropper"):
            p.setPen(QPen(QColor(255, 255, 255, 160), 1))
            r = c.brush.size / 2
            p.drawEllipse(self._cursor, r, r)
        p.end()
        self.painted.emit()

    # ------------------------------------------------------------------ input
    def _press(self, pos: QPointF, mods, pressure: float) -> None:
        x, y = self.to_texel(pos)
        if mods & Qt.ControlModifier:
            c = self.controller
            if c.tool == "stencil" and c.stencil is not None:
                h, w = c.stencil.image.shape[:2]
                c.stencil.x, c.stencil.y = int(x - w / 2), int(y - h / 2)
            else:
                c.clone_source = (x, y)
            self.update()
            return
        self.controller.begin_uv(x, y, pressure, self.scale)

    def mousePressEvent(self, e) -> None:
        if e.button() in (Qt.RightButton, Qt.MiddleButton) or (e.button() == Qt.LeftButton and self._space):
            self._pan = e.position()
            return
        if e.button() == Qt.LeftButton:
            self._press(e.position(), e.modifiers(), 1.0)

    def mouseMoveEvent(self, e) -> None:
        old = self._cursor
        self._cursor = e.position()
        if self._pan is not None:
            d = e.position() - self._pan
            self._pan = e.position()
            self.offset += d
            self.update()
            return
        if self.controller.painting:
            x, y = self.to_texel(e.position())
            self.controller.move_uv(x, y, 1.0)
        self._update_cursor(old)

    def _update_cursor(self, old) -> None:
        r = int(self.controller.brush.size / 2) + 3
        for q in (old, self._cursor):
            if q is not None:
                self.update(QRect(int(q.x()) - r, int(q.y()) - r, 2 * r, 2 * r))

    def mouseReleaseEvent(self, e) -> None:
        if self._pan is not None:
            self._pan = None
            return
        self.controller.end()

    def leaveEvent(self, e) -> None:
        old, self._cursor = self._cursor, None
        self._update_cursor(old)

    def mouseDoubleClickEvent(self, e) -> None:
        if e.button() in (Qt.RightButton, Qt.MiddleButton):
            self.fit()

    def wheelEvent(self, e) -> None:
        self.zoom(1.15 ** (e.angleDelta().y() / 120.0), e.position())

    def keyPressEvent(self, e) -> None:
        if e.key() == Qt.Key_Space and not e.isAutoRepeat():
            self._space = True
        elif e.key() == Qt.Key_F:
            self.fit()
        else:
            super().keyPressEvent(e)

    def keyReleaseEvent(self, e) -> None:
        if e.key() == Qt.Key_Space and not e.isAutoRepeat():
            self._space = False
        else:
            super().keyReleaseEvent(e)

    def tabletEvent(self, e) -> None:
        t = e.type()
        if t == QEvent.TabletPress and e.button() == Qt.LeftButton:
            self._press(e.position(), e.modifiers(), float(e.pressure()))
        elif t == QEvent.TabletMove:
            self._cursor = e.position()
            if self.controller.painting:
                x, y = self.to_texel(e.position())
                self.controller.move_uv(x, y, float(e.pressure()))
        elif t == QEvent.TabletRelease:
            self.controller.end()
        else:
            e.ignore()
            return
        e.accept()
