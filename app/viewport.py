"""The OpenGL viewport: the avatar drawn with core.render through moderngl, shown by a plain widget.

The scene is rendered into the viewport's own framebuffer (an offscreen OpenGL context) and
the rectangle that changed is read back into an image the widget paints. A QOpenGLWidget
would make Qt compose the whole window through OpenGL on every frame, 10-20 ms with software
OpenGL (llvmpipe) whatever changed; here a painted dab costs the scissored render of its screen
box, a read-back and a blit of that box, and the rest of the window stays a raster surface.

Mouse: left drag orbits, right/middle (or Shift+left) drag pans, the wheel zooms, a double
click resets the view. The viewport only reads the document and the FaceSession; it uploads
new vertices when the session re-poses the mesh, so an expression slider repaints at once.
"""
from __future__ import annotations

import functools
import logging
import time

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QOffscreenSurface, QOpenGLContext, QPainter
from PySide6.QtWidgets import QWidget

from core.appearance import avatar_texture
from core.avatar import Avatar
from core.render import OrbitCamera, lighting_preset
from core.tracking.puppet import head_matrix


log = logging.getLogger(__name__)
ORBIT_DEG_PER_PX = 0.4


def default_camera(bounds: tuple[np.ndarray, np.ndarray] | None = None) -> OrbitCamera:
    """The view the app opens on and 'Reset View' returns to: framed on the head."""
    cam = OrbitCamera()
    if bounds is not None:
        cam.frame(*bounds)
    return cam


class Viewport(QWidget):
    frame_rendered = Signal(float)  # milliseconds spent rendering the last frame
    frameSwapped = Signal()         # a frame was painted and the window flushed (QOpenGLWidget's name)

    def __init__(self, avatar: Avatar, session, parent=None) -> None:
        super().__init__(parent)
        self.avatar, self.session = avatar, session
        self.ctx = None
        self.renderer = None
        self._glc: QOpenGLContext | None = None      # offscreen context, made on first paint
        self._surface: QOffscreenSurface | None = None
        self._gl_failed = False
        self._blit_only = False
        self._scene_gen = 0                          # counts changes of what the frame shows, but the texture
        self._swap_pending = False
        self._watched = None                         # the window whose flushes we follow
        self._in_update = False
        self._fbo = None
        self._fbo_parts = ()
        self._fbo_size = (0, 0)
        self._pixels: np.ndarray | None = None       # (h, w, 4) the frame, row 0 at the top
        self._image: QImage | None = None            # wraps _pixels
        self.camera = default_camera()
        self.bounds: tuple[np.ndarray, np.ndarray] | None = None
        self.landmarks: np.ndarray | None = None
        self.last_frame_ms = 0.0
        self._has_sdf = False
        self._pending: dict[str, object] = {}  # GPU uploads waiting for the GL context
        self._drag: tuple[Qt.MouseButton, QPointF, bool] | None = None
        # Texture painting (app/paint_viewport.py): paint-mode events go to `painter`; painted
        # texels arrive as rects of `texel_source()` and only those are re-uploaded.
        self.painter = None
        self.texel_source = None
        self._mip_timer = QTimer(self, singleShot=True, interval=400)
        self._mip_timer.timeout.connect(self._rebuild_mipmaps)
        # A frame that only shows new paint redraws just the screen box of the painted texels
        # (scissored; the framebuffer keeps the rest): software GL shades far fewer pixels, and
        # only that box is read back and flushed to the screen.
        self._partial_box: tuple[int, int, int, int] | None = None
        self._partial_full = False
        self._frame_key = None
        self.partial_frames = 0
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self.setAttribute(Qt.WA_NoSystemBackground)
        # While a stroke is painted on the UV canvas, the 3D view follows at most every 50 ms, so
        # the canvas's frames do not wait for 3D redraws.
        self.cursor: tuple[float, float, float] | None = None   # brush outline: x, y, radius (px)
        self._cursor_gl = None
        self._follow = QTimer(self, singleShot=True, interval=50)
        self._follow.timeout.connect(lambda: self._update_partial() if "texels" in self._pending else None)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.StrongFocus)
        self.setMouseTracking(False)
        session.mesh_changed.connect(self._mesh_changed)
        session.vertices_changed.connect(self._vertices_changed)
        session.sdf_changed.connect(lambda g, lo, hi: self._queue("sdf", (g, lo, hi)))
        session.landmarks_changed.connect(self._landmarks_changed)
        if hasattr(session, "hair_changed"):
            session.hair_changed.connect(lambda hair: self._queue("hair", hair))
            session.hair_posed.connect(lambda posed: self._queue("hair_pose", posed))
            session.hair_colour_changed.connect(lambda c, g: self._queue("hair_colour", (c, g)))
        if hasattr(session, "head_changed"):
            session.head_changed.connect(lambda head: self._queue("head", head))
            session.head_posed.connect(lambda posed: self._queue("head_pose", posed))
        for event in ("texture", "appearance", "replaced"):
            avatar.events.connect(event, lambda a: self._queue("texture", avatar_texture(a)))
        avatar.events.connect("view", lambda a: self.update())
        self._queue("texture", avatar_texture(avatar))

    # --- data from the session (GUI thread) -----------------------------------------------------
    def _queue(self, key: str, value) -> None:
        self._pending[key] = value
        self.update()

    def _mesh_changed(self, mesh, vertices) -> None:
        first = self.bounds is None
        self.bounds = self.session.focus or (mesh.vertices.min(axis=0), mesh.vertices.max(axis=0))
        self._pending.pop("vertices", None)
        self._queue("mesh", (mesh, vertices))
        if first:
            self.reset_view()

    def _vertices_changed(self, vertices) -> None:
        self._queue("vertices", vertices)

    def _landmarks_changed(self, landmarks) -> None:
        self.landmarks = landmarks
        self._queue("points", landmarks)

    def upload_texels(self, rects) -> None:
        """Painted texels changed: re-upload only `rects` (None: the whole texture)."""
        if rects is None or self.texel_source is None:
            if self.texel_source is None:
                self._queue("texture", avatar_texture(self.avatar))
            else:
                self._queue("texture_full", True)   # read from texel_source when uploading
            return
        self._pending.setdefault("texels", []).extend(rects)
        box = self.painter.screen_box(rects) if self.painter is not None else None
        if box is None:
            self._partial_full = True
        elif self._partial_box is None:
            self._partial_box = box
        else:
            b = self._partial_box
            self._partial_box = (min(b[0], box[0]), min(b[1], box[1]), max(b[2], box[2]), max(b[3], box[3]))
        if self.painter is not None and self.painter.following():
            if not self._follow.isActive():
                self._follow.start()
            return
        self._update_partial()

    def _update_partial(self) -> None:
        """Ask for a frame of the accumulated partial box only (the whole view without one)."""
        box = self._partial_box
        if box is None or self._partial_full:
            self.update()
            return
        r = self.devicePixelRatioF()
        m = 4   # texture filtering and seam padding reach a little past the painted texels
        self.update(QRect(int((box[0] - m) / r), int((box[1] - m) / r),
                          int(np.ceil((box[2] - box[0] + 2 * m) / r)) + 1,
                          int(np.ceil((box[3] - box[1] + 2 * m) / r)) + 1))

    def set_cursor(self, cursor: tuple[float, float, float] | None) -> None:
        """Show the brush outline at pixel (x, y) with radius r (device pixels); None hides it.
        Only the boxes of the old and new outline are redrawn."""
        if cursor == self.cursor:
            return
        for c in (self.cursor, cursor):
            if c is not None:
                x, y, r = c
                box = (int(x - r - 3), int(y - r - 3), int(x + r + 4), int(y + r + 4))
                b = self._partial_box
                self._partial_box = box if b is None else (min(b[0], box[0]), min(b[1], box[1]),
                                                           max(b[2], box[2]), max(b[3], box[3]))
        self.cursor = cursor
        self._update_partial()

    def _draw_cursor(self, fbo, w: int, h: int) -> None:
        """Two thin rings as triangle strips (dark outside, light inside: visible on skin and
        on the background), in normalised device coordinates."""
        import moderngl
        from core.render.shaders import shader_source
        n = 65
        if self._cursor_gl is None:
            prog = self.ctx.program(vertex_shader=shader_source("paint_cursor.vert"),
                                    fragment_shader=shader_source("paint_cursor.frag"))
            vbo = self.ctx.buffer(reserve=2 * 4 * 2 * n)
            self._cursor_gl = (prog, vbo, self.ctx.vertex_array(prog, [(vbo, "2f", "in_pos")]))
        prog, vbo, vao = self._cursor_gl
        fbo.use()
        self.ctx.viewport = (0, 0, w, h)
        x, y, r = self.cursor
        a = np.linspace(0, 2 * np.pi, n)
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        for colour, r0, r1 in (((0.05, 0.05, 0.05, 1.0), r + 0.5, r + 1.5), ((0.95, 0.95, 0.95, 1.0), r - 0.5, r + 0.5)):
            ring = np.empty((2 * n, 2), np.float32)
            for k, rr in enumerate((r0, r1)):
                ring[k::2, 0] = (x + rr * np.cos(a)) / w * 2 - 1
                ring[k::2, 1] = 1 - (y + rr * np.sin(a)) / h * 2
            vbo.write(ring.tobytes())
            prog["u_colour"].value = colour
            vao.render(moderngl.TRIANGLE_STRIP, vertices=2 * n)
        self.ctx.enable(moderngl.DEPTH_TEST)

    def _key(self) -> tuple:
        c = self.camera
        return (c.yaw, c.pitch, c.distance, tuple(c.target), c.fov, c.near, c.far, self._pixel_size(),
                repr(self.avatar.view), id(self.session.vertices), self._has_sdf)

    def _scissor(self, exposed: QRect) -> tuple[int, int, int, int] | None:
        """GL scissor box (x, y from the bottom, w, h) when this frame only shows new paint (or
        the brush outline): the exposed rect, in device pixels. None: draw the whole view."""
        full = self._partial_full
        self._partial_box, self._partial_full = None, False
        key = self._key()
        same, self._frame_key = key == self._frame_key, key
        if full or not same or set(self._pending) - {"texels"} or exposed.contains(self.rect()):
            return None
        w, h = self._pixel_size()
        r = self.devicePixelRatioF()
        x0, y0 = max(0, int(exposed.left() * r)), max(0, int(exposed.top() * r))
        x1 = min(w, int(np.ceil((exposed.right() + 1) * r)))
        y1 = min(h, int(np.ceil((exposed.bottom() + 1) * r)))
        if x1 <= x0 or y1 <= y0:
            return (0, 0, 0, 0)
        return x0, h - y1, x1 - x0, y1 - y0

    def _rebuild_mipmaps(self) -> None:
        if self.renderer is None:
            return
        self.makeCurrent()
        self.renderer.rebuild_mipmaps()
        self.doneCurrent()
        self.update()

    def reset_view(self) -> None:
        self.camera = default_camera(self.bounds)
        self.update()

    # --- GL -------------------------------------------------------------------------------------
    def _ensure_gl(self) -> bool:
        """Create the offscreen OpenGL context, the moderngl context and the renderer once."""
        if self.ctx is not None:
            return True
        if self._gl_failed:
            return False
        glc = QOpenGLContext(self)          # the default format: 3.3 core (app.main.set_gl_format)
        surface = QOffscreenSurface(self.screen())
        surface.setFormat(glc.format())
        surface.create()
        if not glc.create() or not surface.isValid():
            self._gl_failed = True
            log.error("cannot create an OpenGL context for the viewport")
            return False
        self._glc, self._surface = glc, surface
        if not self.makeCurrent():
            self._gl_failed = True
            log.error("cannot make the viewport's OpenGL context current")
            return False
        try:
            self.initializeGL()
        finally:
            self.doneCurrent()
        return True

    def makeCurrent(self) -> bool:
        """Make the viewport's context current on this thread (GL calls go to it)."""
        if self._glc is None:
            return self._ensure_gl() and self.makeCurrent()
        if self._glc.makeCurrent(self._surface):
            return True
        # libglvnd: one current context a thread across EGL and GLX (core.render explains)
        from core.render.renderer import release_current_context
        return release_current_context() and self._glc.makeCurrent(self._surface)

    def doneCurrent(self) -> None:
        if self._glc is not None:
            self._glc.doneCurrent()

    def initializeGL(self) -> None:
        import moderngl
        from core.render import Renderer

        self.ctx = moderngl.create_context()
        self.renderer = Renderer(self.ctx)
        from core.render.paint_frame import PaintFrame
        self._paint_frame = PaintFrame(self.ctx)
        log.info("OpenGL %s on %s", self.ctx.info.get("GL_VERSION", "?"), self.ctx.info.get("GL_RENDERER", "?"))

    def _target(self, w: int, h: int):
        """The frame's framebuffer (colour + depth) and the image over its read-back pixels."""
        if self._fbo_size != (w, h):
            for obj in (self._fbo, *self._fbo_parts):
                if obj is not None:
                    obj.release()
            colour = self.ctx.renderbuffer((w, h), 4)
            depth = self.ctx.depth_renderbuffer((w, h))
            self._fbo_parts = (colour, depth)
            self._fbo = self.ctx.framebuffer(color_attachments=[colour], depth_attachment=depth)
            self._fbo_size = (w, h)
            self._pixels = np.zeros((h, w, 4), np.uint8)
            self._image = QImage(self._pixels.data, w, h, 4 * w, QImage.Format_RGBX8888)
            self._frame_key = None      # a new framebuffer holds nothing: draw it whole
        return self._fbo

    def _upload(self) -> None:
        r, p = self.renderer, self._pending
        if "mesh" in p:
            mesh, vertices = p.pop("mesh")
            r.set_mesh(vertices, mesh.faces, mesh.uvs, occlusion=getattr(mesh, "occlusion", None))
        if "vertices" in p:
            r.update_vertices(p.pop("vertices"))
        if "texture" in p:
            tex = p.pop("texture")
            p.pop("texels", None)
            # in place, mip levels once changes settle: a slider drag re-decodes every frame
            r.set_texture(tex, mipmaps=False)
            self._mip_timer.start()
        if "texture_full" in p:
            p.pop("texture_full")
            p.pop("texels", None)
            r.set_texture(self.texel_source())
        if "texels" in p:
            src = self.texel_source()
            if not r.update_texture(src, p.pop("texels")):
                r.set_texture(src)
            self._mip_timer.start()
        if "sdf" in p:
            r.set_sdf_grid(*p.pop("sdf"))
            self._has_sdf = True
        if "points" in p:
            r.set_points(p.pop("points"), colour=(0.25, 0.95, 0.45), size=6.0)
        if "head" in p:     # eyes and mouth interior (core.head.build.HeadParts)
            head = p.pop("head")
            r.set_parts("head", None if head is None else head.parts)
            r.set_carves(None)
        if "head_pose" in p and "head" in r.part_groups():
            verts, carves = p.pop("head_pose")
            r.update_parts("head", verts)
            r.set_carves(carves)
        if "hair" in p:
            r.set_hair(p.pop("hair"))
        if "hair_pose" in p:
            r.update_hair(*p.pop("hair_pose"))
        if "hair_colour" in p:
            r.set_hair_colour(*p.pop("hair_colour"))

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def _lighting(name: str):
        return lighting_preset(name)  # the image-based preset projects its environment once

    def _render(self, exposed: QRect) -> QRect:
        """Draw the frame (only the exposed box when nothing but paint changed) and read the
        drawn pixels back. Returns the widget rect that now holds a new frame."""
        t0 = time.perf_counter()
        w, h = self._pixel_size()
        fbo = self._target(w, h)
        scissor = self._scissor(exposed)
        if scissor is not None:
            fbo.scissor = scissor      # applied by fbo.use() in the renderer; clears respect it
            self.partial_frames += 1
        if set(self._pending) - {"texels", "texture", "texture_full"}:
            self._scene_gen += 1       # geometry, parts, hair or points changed: not only the texture
        self._upload()
        view = self.avatar.view
        geometry, mode = self.drawn_as()
        if geometry == "mesh" and self.bounds is None:
            fbo.use()  # nothing to draw yet: just the background
            self.ctx.clear(*view.background, 1.0)
            self._paint_frame.invalidate()
        else:
            lighting = self._lighting(view.lighting)
            paint_mode = (geometry == "mesh" and mode == "textured" and self.painter is not None
                          and self.painter.enabled and not view.show_landmarks)
            # a frame that only shows new paint: repaint the box from the kept lighting
            if not (scissor is not None and paint_mode and self._paint_frame.repaint(
                    self.renderer, fbo, self._fbo_parts[1], scissor, w, h, self.camera, lighting)):
                # the baked field is in the head's rest frame; a puppeteered turn moves its rays
                self.renderer.set_field_pose(head_matrix(self.avatar.head_pose))
                self.renderer.render(fbo, w, h, self.camera, mode=geometry, view=mode,
                                     background=view.background, show_points=view.show_landmarks,
                                     lighting=lighting)
                if scissor is None:
                    if paint_mode:
                        self._paint_frame.keep(fbo, w, h, (self._key(), self._scene_gen))   # before the outline
                    else:
                        self._paint_frame.invalidate()
        if self.cursor is not None and self.painter is not None and self.painter.enabled:
            self._draw_cursor(fbo, w, h)
        x, y, bw, bh = scissor if scissor is not None else (0, 0, w, h)
        if bw > 0 and bh > 0:
            data = fbo.read(viewport=(x, y, bw, bh), components=4, alignment=1)
            self._pixels[h - y - bh:h - y, x:x + bw] = np.frombuffer(data, np.uint8).reshape(bh, bw, 4)[::-1]
        if scissor is not None:
            fbo.scissor = None
            fbo.use()
        self.last_frame_ms = (time.perf_counter() - t0) * 1000
        self.frame_rendered.emit(self.last_frame_ms)
        if scissor is None:
            return self.rect()
        r = self.devicePixelRatioF()
        return QRect(int(x / r), int((h - y - bh) / r), int(np.ceil(bw / r)), int(np.ceil(bh / r)))

    def paintEvent(self, e) -> None:
        drawn = None
        if (self._blit_only and not self._pending and self._partial_box is None and not self._partial_full
                and self._image is not None and self._frame_key == self._key()):
            drawn = self.rect()         # the frame drawn last time, shown whole now
        elif self._ensure_gl() and self.makeCurrent():
            try:
                drawn = self._render(e.rect())
            finally:
                self.doneCurrent()
        p = QPainter(self)
        if drawn is None or self._image is None:
            p.fillRect(e.rect(), QColor(40, 40, 40))
        else:
            r = self.devicePixelRatioF()
            for rect in e.region():
                p.drawImage(QRectF(rect), self._image,
                            QRectF(rect.x() * r, rect.y() * r, rect.width() * r, rect.height() * r))
        p.end()
        self._blit_only = drawn is not None and not e.rect().contains(drawn)
        if self._blit_only:
            self.update()       # a whole new frame for a partial exposure: show all of it
        # The window flushes its backing store to the screen right after this paint pass:
        # frameSwapped follows that flush (eventFilter), or the next event loop turn.
        self._swap_pending = True
        QTimer.singleShot(0, self._swapped)

    def _swapped(self) -> None:
        if self._swap_pending:
            self._swap_pending = False
            self.frameSwapped.emit()

    def showEvent(self, e) -> None:
        win = self.window()
        if win is not self._watched:
            if self._watched is not None:
                self._watched.removeEventFilter(self)
            win.installEventFilter(self)
            self._watched = win
        super().showEvent(e)

    def eventFilter(self, obj, e) -> bool:
        """The window's update request paints and flushes every dirty widget; handle it here
        so frameSwapped can follow the flush at once."""
        if obj is self._watched and e.type() == QEvent.UpdateRequest and not self._in_update:
            self._in_update = True
            try:
                obj.event(e)
            finally:
                self._in_update = False
            self._swapped()
            return True
        return False

    def drawn_as(self) -> tuple[str, str]:
        """(geometry, mode) actually drawn: the SDF shows the mesh until its grid is ready, and a
        distance field has no edges, so SDF + wireframe shows shaded."""
        view = self.avatar.view
        has_sdf = self._has_sdf or "sdf" in self._pending
        geometry = "sdf" if view.geometry == "sdf" and has_sdf else "mesh"
        mode = "shaded" if geometry == "sdf" and view.mode == "wireframe" else view.mode
        return geometry, mode

    def _pixel_size(self) -> tuple[int, int]:
        ratio = self.devicePixelRatioF()
        return max(1, int(round(self.width() * ratio))), max(1, int(round(self.height() * ratio)))

    def render_image(self) -> np.ndarray:
        """The current frame as (H, W, 3) uint8, row 0 at the top (what the user sees), drawn
        whole now with everything pending."""
        if not self.makeCurrent():
            raise RuntimeError("the viewport has no OpenGL context")
        try:
            self._partial_full = True
            self._render(self.rect())
        finally:
            self.doneCurrent()
        self.update()
        return self._pixels[..., :3].copy()

    # --- mouse ----------------------------------------------------------------------------------
    def mousePressEvent(self, e) -> None:
        if self.painter is not None and self.painter.wants(e):
            self._drag = None
            self.painter.press(e)
            return
        pan = e.button() in (Qt.RightButton, Qt.MiddleButton) or bool(e.modifiers() & Qt.ShiftModifier)
        self._drag = (e.button(), e.position(), pan)

    def mouseMoveEvent(self, e) -> None:
        if self._drag is None:
            if self.painter is not None:
                self.painter.move(e)
            return
        _, last, pan = self._drag
        d = e.position() - last
        self._drag = (self._drag[0], e.position(), pan)
        if pan:
            self.camera.pan(d.x() * self.devicePixelRatioF(), d.y() * self.devicePixelRatioF(),
                            self._pixel_size()[1])
        else:
            self.camera.orbit(-d.x() * ORBIT_DEG_PER_PX, d.y() * ORBIT_DEG_PER_PX)
        self.update()

    def mouseReleaseEvent(self, e) -> None:
        if self._drag is None and self.painter is not None:
            self.painter.release(e)
        self._drag = None

    def leaveEvent(self, e) -> None:
        self.set_cursor(None)

    def tabletEvent(self, e) -> None:
        if self.painter is None or not self.painter.tablet(e):
            e.ignore()   # Qt then sends the matching mouse event

    def mouseDoubleClickEvent(self, e) -> None:
        if self.painter is not None and self.painter.enabled and e.button() == Qt.LeftButton:
            return   # a quick second dab, not a view reset
        self.reset_view()

    def wheelEvent(self, e) -> None:
        self.camera.zoom(1.1 ** (e.angleDelta().y() / 120.0))
        self.update()
