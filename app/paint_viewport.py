"""Painting in the 3D viewport: pointer and pen events -> projection-painting strokes.

The viewport hands its mouse and tablet events here while paint mode is on (left button
paints, Alt+left orbits, right/middle pan as always, Ctrl+left sets the clone source or the
stencil position). The pick pass (core.paint.projection.PickRenderer) is drawn in the
viewport's own GL context, once per view: it is redrawn only when the camera, the pose or the
widget size changed since the last one.
"""
from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QEvent, Qt

from core.paint.projection import PickRenderer
from core.paint.tiles import TILE

log = logging.getLogger(__name__)


class ViewportPainter:
    def __init__(self, viewport, controller) -> None:
        self.viewport, self.controller = viewport, controller
        self.enabled = False
        self._picker: PickRenderer | None = None
        self._pick = None
        self._pick_key = None
        self._mesh = None
        self.pick_ms = 0.0
        self._stroking = False
        self._vp_key, self._vp = None, None
        self._tile_box = None

    # ------------------------------------------------------------------ the view's pick
    def _key(self):
        vp, s = self.viewport, self.viewport.session
        cam = vp.camera
        return (cam.yaw, cam.pitch, cam.distance, tuple(np.round(cam.target, 6)), cam.fov,
                vp._pixel_size(), id(s.vertices), id(s.mesh))

    def pick(self):
        """The ViewPick of the current view (drawn now if the view changed); None without a mesh."""
        vp, s = self.viewport, self.viewport.session
        if s.mesh is None or s.vertices is None or vp.ctx is None:
            return None
        key = self._key()
        if key == self._pick_key and self._pick is not None:
            return self._pick
        import time
        t0 = time.perf_counter()
        vp.makeCurrent()
        try:
            if self._picker is None:
                self._picker = PickRenderer(vp.ctx)
            if self._mesh is not s.mesh:
                self._picker.set_mesh(s.mesh.vertices, s.mesh.faces, s.mesh.uvs)
                self._mesh = s.mesh
            w, h = vp._pixel_size()
            self._pick = self._picker.render(s.vertices, vp.camera, w, h)
        finally:
            vp.doneCurrent()
        self._pick_key = key
        self.pick_ms = (time.perf_counter() - t0) * 1000
        return self._pick

    def following(self) -> bool:
        """True while a stroke painted elsewhere (the UV canvas) is in progress."""
        return self.controller.painting and not self._stroking

    def screen_box(self, rects):
        """Pixel box of painted texel rects on screen (the viewport redraws only that)."""
        tm, vp = self.controller.texel_map, self.viewport
        verts = vp.session.vertices
        if tm is None or verts is None or tm.size != self.controller.stack.size or vp.session.mesh is None:
            return None
        if len(tm.faces) != len(vp.session.mesh.faces):
            return None      # the texel map of a previous mesh
        w, h = vp._pixel_size()
        cam = vp.camera
        key = (cam.yaw, cam.pitch, cam.distance, tuple(cam.target), cam.fov, cam.near, cam.far, w, h,
               id(verts), id(tm))
        if key != self._vp_key:     # a new view: the tiles' screen boxes are found again
            self._vp_key, self._vp = key, cam.view_proj(w, h)
            self._tile_box = np.full((tm.size // TILE, tm.size // TILE, 4), np.inf)   # inf: not yet
        boxes = self._tile_box
        want = np.zeros(boxes.shape[:2], bool)
        for y0, y1, x0, x1 in rects:
            want[y0 // TILE:-(-y1 // TILE), x0 // TILE:-(-x1 // TILE)] = True
        new = want & np.isinf(boxes[..., 0])
        if new.any():
            tiles = np.argwhere(new)
            boxes[tiles[:, 0], tiles[:, 1]] = tm.tile_boxes(verts, self._vp, w, h, tiles)
        b = boxes[want]
        b = b[~np.isnan(b[:, 0])]
        if not len(b):
            return None
        return (int(b[:, 0].min()), int(b[:, 1].min()), int(np.ceil(b[:, 2].max())), int(np.ceil(b[:, 3].max())))

    def _pos(self, e) -> tuple[float, float]:
        p, r = e.position(), self.viewport.devicePixelRatioF()
        return p.x() * r, p.y() * r

    # ------------------------------------------------------------------ events
    def wants(self, e) -> bool:
        """Whether a press is a paint press (left button without Alt) in paint mode."""
        return (self.enabled and e.button() == Qt.LeftButton
                and not e.modifiers() & (Qt.AltModifier | Qt.ShiftModifier))

    def press(self, e, pressure: float = 1.0) -> None:
        c = self.controller
        pick = self.pick()
        if pick is None:
            return
        x, y = self._pos(e)
        if e.modifiers() & Qt.ControlModifier:
            t = pick.texel(x, y, c.stack.size)
            if t is not None:
                self.set_source(t)
            return
        self._stroking = c.begin_3d(pick, self.viewport.session.vertices, self.viewport.camera.eye, x, y, pressure)

    def set_source(self, texel) -> None:
        c = self.controller
        if c.tool == "stencil" and c.stencil is not None:
            h, w = c.stencil.image.shape[:2]
            c.stencil.x, c.stencil.y = int(texel[0] - w / 2), int(texel[1] - h / 2)
            c.status.emit(f"Stencil placed at texel ({int(texel[0])}, {int(texel[1])})")
        else:
            c.clone_source = texel
            c.status.emit(f"Clone source set at texel ({int(texel[0])}, {int(texel[1])})")

    def hover(self, e, pressure: float = 1.0) -> None:
        """The brush outline follows the pointer (its size as pen pressure scales it)."""
        if not self.enabled or self.controller.tool in ("fill", "eyedropper"):
            self.viewport.set_cursor(None)
            return
        x, y = self._pos(e)
        b = self.controller.brush
        p = float(np.clip(pressure, 0, 1)) if b.pressure_size else 1.0
        self.viewport.set_cursor((x, y, max(1.0, 0.5 * b.size * p)))

    def move(self, e, pressure: float = 1.0) -> None:
        self.hover(e, pressure)
        if not self.controller.painting or self._pick is None:
            return
        x, y = self._pos(e)
        self.controller.move_3d(self._pick, self.viewport.session.vertices, self.viewport.camera.eye,
                                x, y, pressure)

    def release(self, e) -> None:
        self._stroking = False
        self.controller.end()

    def tablet(self, e) -> bool:
        """QTabletEvent: the pen's pressure drives size and/or opacity (as the brush says)."""
        if not self.enabled:
            return False
        t, p = e.type(), float(e.pressure())
        if t == QEvent.TabletPress and e.button() == Qt.LeftButton:
            self.press(e, p)
        elif t == QEvent.TabletMove:
            self.move(e, p)
        elif t == QEvent.TabletRelease:
            self.release(e)
        else:
            return False
        e.accept()
        return True

    def eyedrop(self, x: float, y: float):
        pick = self.pick()
        t = None if pick is None else pick.texel(x, y, self.controller.stack.size)
        if t is None:
            return None
        from core.paint import pick_colour
        return pick_colour(self.controller.stack, *t, radius=1)

    def project_photo(self, photo: np.ndarray):
        pick = self.pick()
        if pick is None:
            self.controller.status.emit("No face is shown yet")
            return None
        return self.controller.project_photo(pick, self.viewport.session.vertices, self.viewport.camera.eye, photo)

    def release_gl(self) -> None:
        if self._picker is not None:
            self._picker.release()
            self._picker = None
            self._mesh = None
