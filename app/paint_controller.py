"""The texture-painting model of the studio: the avatar's layer stack, the brush and tool, and
the strokes both views drive (the 3D viewport and the UV canvas), plus 3D-painting data built
off the GUI thread and the recovery autosave.

Data flows one way: a view turns pointer events into `begin/continue/end` calls; the stroke
changes the stack; `stack.refresh()` recomposites the dirty tiles and `texture_changed(rects)`
tells every view which texels to re-upload or redraw. Layer and history changes arrive through
the stack's listeners and go out as `layers_changed` / `history_changed`.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QStandardPaths, QTimer, Signal

from core.appearance import base_texture
from core.paint import PRESETS, BrushSettings, PaintError, begin_stroke, fill, pick_colour, stamp_decal
from core.paint.avatar import attach_paint, paint_of
from core.paint.files import load_recovery, save_recovery
from core.paint.maskpaint import MaskStroke
from core.paint.projection import VisibilityCache, blocks, build_texel_map, face_normals, footprint
from core.paint.history import TileStep
from core.paint.stroke import Stencil
from core.paint.undocache import CompositeMemo

log = logging.getLogger(__name__)

TOOLS = ("brush", "eraser", "smudge", "blur", "clone", "fill", "eyedropper", "stencil")
STROKE_TOOLS = ("brush", "eraser", "smudge", "blur", "clone", "stencil")
AUTOSAVE_DELAY_MS = 2000
RECOVERY_NAME = "paint.recovery"
_gc_frozen = False


def recovery_dir() -> Path:
    """Where autosaves go: $LIKENESS_RECOVERY_DIR, else the platform's app-data folder."""
    env = os.environ.get("LIKENESS_RECOVERY_DIR")
    base = Path(env) if env else Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "recovery"
    return base


class PaintController(QObject):
    texture_changed = Signal(object)   # list of texel rects refreshed; None: the whole texture
    layers_changed = Signal()
    history_changed = Signal()
    brush_changed = Signal()
    colour_picked = Signal(object)     # (r, g, b)
    status = Signal(str)
    ready_3d = Signal(bool)            # the texel map for 3D painting is (not) ready
    recovered = Signal()

    def __init__(self, avatar, session, runner, parent=None) -> None:
        super().__init__(parent)
        from .workers import TaskRunner
        self.avatar, self.session, self.runner = avatar, session, runner
        self.quiet_runner = TaskRunner(self)   # texel maps and autosaves: not the window's tasks
        self.want_3d = False                   # build the texel map only once 3D painting is wanted
        self._mesh = None
        self.stack = None
        self.brush = replace(PRESETS["Hard round"], size=24.0, colour=(150, 40, 40))   # size: screen px
        self.preset = "Hard round"
        self.tool = "brush"
        self.layer_index = 0
        self.symmetry = False
        self.mirror = None                 # core.paint.MirrorMap (with the texel map)
        self.paint_mask = False            # paint on the current layer's mask
        self.fill_mode, self.fill_tolerance = "island", 24
        self.clone_source: tuple[float, float] | None = None   # texel (x, y)
        self.stencil: Stencil | None = None
        self.texel_map = None
        self._visibility = None
        self._normals_key = None
        self._normals = None
        self._map_task = None
        self._map_gen = 0
        self._stroke = None
        self._gc_paused = False
        self._last_px: tuple[float, float] | None = None
        self._stroke_path = None
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self._autosave.timeout.connect(self.autosave)
        self._autosave_task = None
        self._autosave_again = False
        self.recovery_path = recovery_dir() / RECOVERY_NAME
        self.project_path: Path | None = None
        self._base_cache = None
        self._attach(self._stack_of(avatar))
        avatar.events.connect("replaced", lambda a: self._attach(self._stack_of(a)))
        for event in ("texture", "appearance"):
            avatar.events.connect(event, lambda a: self._base_changed())
        session.mesh_changed.connect(self._mesh_changed)
        if getattr(session, "mesh", None) is not None:
            self._mesh_changed(session.mesh, session.vertices)

    # ------------------------------------------------------------------ the stack
    def _stack_of(self, avatar):
        """The avatar's paint stack; a new one starts without its UV islands, which are
        prepared on a worker (the seam-padding map takes a second at 2048^2) and set after."""
        stack = paint_of(avatar)
        if stack is None:
            # Attached to the avatar only once it has a layer: until then the avatar's texture
            # (appearance sliders, exports) costs nothing extra for someone who never paints.
            from core.paint import LayerStack
            stack = LayerStack(2048)
            stack._coverage_tried = True      # painted_texture must not build it on this thread
        if stack.coverage is None:
            self._prepare_coverage(stack)
        return stack

    def _prepare_coverage(self, stack) -> None:
        from core.paint.avatar import default_coverage
        from core.paint.seams import Padding
        size, depth = stack.size, stack.padding

        def work(ctx):
            cov = default_coverage()
            if cov is None:
                return None
            import cv2
            cov = cv2.resize(np.asarray(cov).astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
            return cov, Padding(cov, depth)

        def done(result) -> None:
            if result is None or stack.coverage is not None or stack.size != size:
                return
            stack.set_coverage(*result)
            if stack is self.stack:
                self.refresh()

        self.quiet_runner.start("UV islands", work, on_done=done, quiet=True)

    def _attach(self, stack) -> None:
        if self.stack is stack:
            return
        if self.stack is not None and self._on_stack in self.stack.listeners:
            self.stack.listeners.remove(self._on_stack)
        self.stack = stack
        self.memo = CompositeMemo(stack)
        self._memo_pending = None
        stack.listeners.append(self._on_stack)
        self._base_cache = None
        self._base_dirty = True
        self.layer_index = max(0, len(stack.layers) - 1)
        self.layers_changed.emit()
        self.history_changed.emit()
        self.texture_changed.emit(None)

    def _on_stack(self, kind: str) -> None:
        if self.stack.layers and paint_of(self.avatar) is not self.stack:
            attach_paint(self.avatar, self.stack)     # saved, exported and rendered from now on
        n = len(self.stack.layers)
        self.layer_index = int(np.clip(self.layer_index, 0, max(0, n - 1)))
        if kind == "layers":
            self.layers_changed.emit()
        self.history_changed.emit()
        self.refresh()
        self.avatar.set_dirty(True)
        if not self._autosave.isActive():   # at most 2 s after the first unsaved change, even
            self._autosave.start()          # while the artist keeps painting

    def refresh(self) -> None:
        """Recomposite the dirty tiles and tell the views which texels changed."""
        if not self.stack.layers:
            self.texture_changed.emit(None)   # the avatar shows its base texture again
            return
        if self._memo_pending is not None:   # undo/redo of a stroke: its saved composite
            step, which = self._memo_pending
            self._memo_pending = None
            rects = self.memo.restore(step, which)
            if rects is not None:
                self.texture_changed.emit(rects)
                return
        self._ensure_base()
        if self._stroke is not None:
            self.memo.capture()
        rects = self.stack.refresh()
        if rects:
            self.texture_changed.emit(rects)

    def _base_changed(self) -> None:
        self._base_cache = None
        self._base_dirty = True
        self.texture_changed.emit(None)

    def _base(self) -> np.ndarray:
        if self._base_cache is None:
            self._base_cache = base_texture(self.avatar)   # decoded once per change
        return self._base_cache

    def _ensure_base(self, force: bool = False) -> None:
        if self._base_dirty and (self.stack.layers or force):
            self.stack.set_base(self._base())   # a new base: everything recomposites
            self._base_dirty = False

    def texture(self) -> np.ndarray:
        """What the avatar shows (base + layers), the array views read: the stack's composite
        (kept up to date tile by tile) or, with no layers, the base."""
        if self.stack.layers:
            self._ensure_base()
            return self.stack.composite()
        return self._base()

    def current_layer(self):
        return self.stack.layers[self.layer_index] if self.stack.layers else None

    def ensure_layer(self) -> None:
        if not self.stack.layers:
            self.stack.add_layer("Paint")
            self.layer_index = 0

    # ------------------------------------------------------------------ settings
    def set_brush(self, **changes) -> None:
        self.brush = self.brush.with_(**changes)
        self.brush_changed.emit()

    def apply_preset(self, name: str) -> None:
        colour = self.brush.colour
        self.brush = PRESETS[name].with_(colour=colour)
        self.preset = name
        self.brush_changed.emit()

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.brush_changed.emit()

    def set_colour(self, rgb) -> None:
        self.set_brush(colour=tuple(int(c) for c in rgb[:3]))

    def set_budget_mb(self, mb: int) -> None:
        self.stack.history.set_budget(int(mb) * 2**20)
        self.history_changed.emit()

    # ------------------------------------------------------------------ strokes (both views)
    @property
    def painting(self) -> bool:
        return self._stroke is not None

    def _begin(self, scale: float):
        """A stroke on the current layer; `scale`: screen pixels per texel (brush size is in
        screen pixels in both views, as in Blender)."""
        self.ensure_layer()
        brush = self.brush.with_(size=max(1.0, self.brush.size / scale))
        sym = self.mirror if self.symmetry else None
        if self.symmetry and sym is None:
            self.enable_3d(True)
            self.status.emit("Symmetry needs the UV mirror map, which is still being prepared")
        if self.paint_mask:
            return MaskStroke(self.stack, self.layer_index, "eraser" if self.tool == "eraser" else "brush", brush)
        offset = None
        if self.tool == "clone":
            if self.clone_source is None:
                raise PaintError("Ctrl+click to set the clone source first.")
            offset = self._clone_offset
        if self.tool == "stencil" and self.stencil is None:
            raise PaintError("Choose a stencil image first (Brush panel).")
        return begin_stroke(self.stack, self.layer_index, self.tool, brush, symmetry=sym,
                            clone_offset=offset, stencil=self.stencil, seed=int(time.time()) & 0xffff)

    def begin_uv(self, x: float, y: float, pressure: float = 1.0, scale: float = 1.0) -> bool:
        """Press on the UV canvas at texel (x, y). One-shot tools act here; returns whether a
        stroke started."""
        if self._one_shot(x, y):
            return False
        try:
            if self.tool == "clone" and self.clone_source is not None:
                self.clone_offset_from(x, y)
            self.refresh()
            self._stroke = self._begin(scale)
        except PaintError as exc:
            self.status.emit(str(exc))
            return False
        self.memo.begin()
        self._pause_gc()
        self._stroke.add_point(x, y, pressure)
        self.refresh()
        return True

    def move_uv(self, x: float, y: float, pressure: float = 1.0) -> None:
        if self._stroke is not None:
            self._stroke.add_point(x, y, pressure)
            self.refresh()

    def end(self) -> None:
        s, self._stroke = self._stroke, None
        self._last_px = None
        self._stroke_path = None
        if s is not None:
            step = s.end()
            self.refresh()
            self.memo.end(step if isinstance(step, TileStep) else None)
        self._resume_gc()

    def _pause_gc(self) -> None:
        """No cyclic garbage collection while a stroke is painted: a full collection of the
        studio's ~370,000 Python objects takes 0.1-0.5 s here, a frozen stroke. What exists at
        the first stroke (models, widgets) is also moved out of later full collections."""
        global _gc_frozen
        if not _gc_frozen:
            gc.freeze()
            _gc_frozen = True
        if gc.isenabled():
            gc.disable()
            self._gc_paused = True

    def _resume_gc(self) -> None:
        if self._gc_paused:
            self._gc_paused = False
            gc.enable()

    def clone_offset_from(self, x: float, y: float) -> None:
        sx, sy = self.clone_source
        self._clone_offset = (int(round(sx - x)), int(round(sy - y)))

    def _one_shot(self, x: float, y: float) -> bool:
        """Fill and eyedropper act once at a texel; True when handled."""
        if self.tool == "eyedropper":
            self._ensure_base(force=True)
            c = pick_colour(self.stack, x, y, radius=1)
            self.set_colour(c)
            self.colour_picked.emit(c)
            self.status.emit(f"Picked colour {c}")
            return True
        if self.tool == "fill":
            try:
                self.ensure_layer()
                fill(self.stack, self.layer_index, x, y, self.brush.colour, mode=self.fill_mode,
                     tolerance=self.fill_tolerance, opacity=self.brush.opacity,
                     symmetry=self.mirror if self.symmetry else None)
            except PaintError as exc:
                self.status.emit(str(exc))
            self.refresh()
            return True
        return False

    def stamp_decal(self, x: float | None = None, y: float | None = None) -> None:
        """Stamp the stencil image whole at texel (x, y) (default: its placed position)."""
        if self.stencil is None:
            self.status.emit("Choose a stencil image first.")
            return
        self.ensure_layer()
        st = self.stencil
        x0 = st.x if x is None else int(x - st.image.shape[1] / 2)
        y0 = st.y if y is None else int(y - st.image.shape[0] / 2)
        try:
            stamp_decal(self.stack, self.layer_index, st.image, x0, y0, opacity=self.brush.opacity,
                        symmetry=self.mirror if self.symmetry else None)
        except PaintError as exc:
            self.status.emit(str(exc))
        self.refresh()

    # ------------------------------------------------------------------ 3D painting
    def enable_3d(self, on: bool = True) -> None:
        """3D painting (or symmetry) is wanted: build the texel map if it is missing."""
        self.want_3d = bool(on)
        if on and self.texel_map is None and self._map_task is None and self._mesh is not None:
            self._mesh_changed(self._mesh, None)

    def _mesh_changed(self, mesh, vertices) -> None:
        """A new mesh topology: rebuild the texel map (and the mirror map) in the background,
        once 3D painting is wanted (seconds of work nobody else needs)."""
        self._mesh = mesh
        self._map_gen += 1
        gen, size = self._map_gen, self.stack.size
        self.texel_map = None
        self.ready_3d.emit(False)
        if not self.want_3d:
            return
        rest, faces, uvs = mesh.vertices, mesh.faces, mesh.uvs
        template = getattr(mesh, "template", None)

        def work(ctx):
            tm = build_texel_map(rest, faces, uvs, size)
            mirror = None
            if template is not None:
                from core.paint.layout import uv_layout
                mirror = uv_layout(mesh, size).mirror
            return gen, tm, mirror

        def done(result) -> None:
            g, tm, mirror = result
            if g != self._map_gen:
                return
            self.texel_map, self.mirror = tm, mirror if mirror is not None else self.mirror
            self._visibility = VisibilityCache(tm)
            self.ready_3d.emit(True)

        task = self.quiet_runner.start("Preparing 3D painting", work, on_done=done, quiet=True)
        task.signals.done.connect(lambda: setattr(self, "_map_task", None) if self._map_task is task else None)
        self._map_task = task

    def normals(self, vertices: np.ndarray) -> np.ndarray:
        key = (id(vertices), vertices.shape)
        if self._normals_key != key:
            self._normals = face_normals(vertices, self.texel_map.faces)
            self._normals_key = key
        return self._normals

    def begin_3d(self, pick, vertices, eye, x: float, y: float, pressure: float = 1.0) -> bool:
        """Press in the 3D viewport at pixel (x, y) with `pick` (core.paint.projection.ViewPick)."""
        if self.texel_map is not None and self.texel_map.size != self.stack.size and self.session.mesh is not None:
            self._mesh_changed(self.session.mesh, self.session.vertices)   # the resolution changed
        if self.texel_map is None:
            self.status.emit("3D painting is getting ready (mapping texels); paint on the UV canvas meanwhile")
            return False
        t = pick.texel(x, y, self.stack.size)
        if t is None:
            return False
        if self.tool in ("eyedropper", "fill"):
            self._one_shot(*t)
            return False
        try:
            if self.tool == "clone" and self.clone_source is not None:
                self.clone_offset_from(*t)
            self.refresh()
            self._stroke = self._begin(1.0)
        except PaintError as exc:
            self.status.emit(str(exc))
            return False
        self.memo.begin()
        self._pause_gc()
        self._stroke_path = self._stroke.path        # spacing, stabiliser, jitter on screen pixels
        self._last_px = None
        self.move_3d(pick, vertices, eye, x, y, pressure)
        return True

    def move_3d(self, pick, vertices, eye, x: float, y: float, pressure: float = 1.0) -> None:
        s = self._stroke
        if s is None or self.texel_map is None:
            return
        b = self.brush
        normals = self.normals(vertices)
        capsule = b.jitter <= 0 and b.spacing <= 0.5 and self.tool in ("brush", "eraser", "clone", "stencil")
        dabs = self._stroke_path.add(x, y, pressure)
        if capsule:
            # Max-accumulated dabs along a straight segment paint what one capsule over it
            # paints: dabs of the same size and pressure merge into the capsule to the last one
            # (one footprint per pointer event instead of one per dab).
            merged = []
            for d in dabs:
                if merged and d.radius == merged[-1].radius and d.pressure == merged[-1].pressure:
                    merged[-1] = d
                else:
                    merged.append(d)
            dabs = merged
        for d in dabs:
            start = self._last_px if capsule else None
            fp = footprint(pick, self.texel_map, vertices, eye, d.x, d.y, d.radius, b.hardness, normals, start,
                           self._visibility)
            self._last_px = (d.x, d.y)
            if fp is None:
                continue
            rows, cols, strength = fp
            if b.pressure_opacity:
                strength = strength * np.float32(d.pressure)
            for y0, x0, block in blocks(rows, cols, strength, self.stack.size):
                s.apply(y0, x0, block)
        self.refresh()

    def project_photo(self, pick, vertices, eye, photo: np.ndarray, name: str = "Projected photo"):
        """Project a photo onto the current view as a new layer, in the background."""
        if self.texel_map is None:
            self.status.emit("3D painting is getting ready; try again in a moment")
            return None
        from core.paint.projection import project_photo
        tm, size = self.texel_map, self.stack.size
        verts = np.array(vertices, np.float32, copy=True)

        def work(ctx):
            ctx.progress(0.1, "Projecting the photo")
            return project_photo(pick, tm, verts, eye, photo, size)

        def done(rgba) -> None:
            if not rgba[..., 3].any():
                self.status.emit("The photo covers no visible part of the face")
                return
            self.stack.add_layer(name, pixels=rgba)
            self.layer_index = len(self.stack.layers) - 1
            self.layers_changed.emit()
            self.status.emit(f"Projected the photo onto the view as layer '{name}'")

        return self.runner.start("Project photo", work, on_done=done,
                                 on_error=lambda m: self.status.emit(m))

    # ------------------------------------------------------------------ history
    def undo(self) -> None:
        if self._stroke is None:
            h = self.stack.history
            self.refresh()
            self._memo_pending = (h.done[-1], "before") if h.done else None
            name = self.stack.undo()
            self._memo_pending = None
            if name:
                self.status.emit(f"Undo {name}")

    def redo(self) -> None:
        if self._stroke is None:
            h = self.stack.history
            self.refresh()
            self._memo_pending = (h.undone[-1], "after") if h.undone else None
            name = self.stack.redo()
            self._memo_pending = None
            if name:
                self.status.emit(f"Redo {name}")

    def goto_history(self, n_done: int) -> None:
        """Undo or redo until `n_done` steps are done (a click in the history list)."""
        h = self.stack.history
        while len(h.done) > n_done and h.can_undo():
            self.stack.undo()
        while len(h.done) < n_done and h.can_redo():
            self.stack.redo()

    # ------------------------------------------------------------------ recovery
    def autosave(self) -> None:
        """Write the layer stack to the recovery file in the background, from a snapshot."""
        if self._stroke is not None:
            self._autosave.start()      # not mid-stroke: the layers are changing
            return
        if self._autosave_task is not None:
            self._autosave_again = True
            return
        from core.paint import LayerStack
        snap = LayerStack(self.stack.size, padding=self.stack.padding)
        snap.layers = [l.snapshot() for l in self.stack.layers]   # copy-on-write: no 16 MB copies here
        path, project = self.recovery_path, self.project_path
        note = {"project": str(project) if project else None, "avatar": self.avatar.name, "saved": time.time()}

        def work(ctx):
            path.parent.mkdir(parents=True, exist_ok=True)
            save_recovery(snap, path)
            _write_note(path, note)
            return path

        def ended() -> None:
            self._autosave_task = None
            if self._autosave_again:
                self._autosave_again = False
                self._autosave.start()

        self._autosave_task = self.quiet_runner.start("Autosave paint", work, quiet=True,
                                                on_error=lambda m: log.warning("%s", m))
        self._autosave_task.signals.done.connect(ended)

    def clear_recovery(self) -> None:
        """After a save or a clean close: nothing to recover."""
        self._autosave.stop()
        for p in (self.recovery_path, _note_path(self.recovery_path)):
            try:
                p.unlink()
            except OSError:
                pass

    def pending_recovery(self) -> dict | None:
        """The note of a recovery file left by a session that did not close cleanly."""
        if not self.recovery_path.exists():
            return None
        try:
            note = json.loads(_note_path(self.recovery_path).read_text())
        except (OSError, ValueError):
            note = {}
        note = note if isinstance(note, dict) else {}
        note.setdefault("saved", self.recovery_path.stat().st_mtime)
        return note

    def recover(self) -> bool:
        """Replace the avatar's layers with the recovery file's (undoable as one step)."""
        try:
            stack = load_recovery(self.recovery_path)
        except PaintError as exc:
            self.status.emit(str(exc))
            return False
        layers = [l for l in stack.layers]
        if stack.size != self.stack.size:
            self.stack.set_resolution(stack.size)
        for i in range(len(self.stack.layers) - 1, -1, -1):
            self.stack.delete_layer(i)
        self.stack.insert_layers(layers, "Recover paint layers")
        self.layer_index = max(0, len(self.stack.layers) - 1)
        self.layers_changed.emit()
        self.recovered.emit()
        self.status.emit(f"Recovered {len(layers)} paint layer(s)")
        return True


def _note_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _write_note(path: Path, note: dict) -> None:
    from core.paint.files import write_atomic
    write_atomic(_note_path(path), json.dumps(note).encode("utf-8"))


__all__ = ["PaintController", "TOOLS", "recovery_dir", "attach_paint", "paint_of"]
