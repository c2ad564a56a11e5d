"""Bridges the document (core.avatar.Avatar) and the face model for the views.

It observes the avatar: an identity change extracts a new mesh off the GUI thread (1-3 s, the
latest request wins), an expression change re-poses the current mesh on the GUI thread
(Animator.vertices takes a few ms), and SDF mode recomputes the SDF grid in the background.
Views listen to its Qt signals; they never call the face model themselves.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from core.avatar import Avatar
from core.render.scene import VIEWPORT_MAX_TRIANGLES
from core.tracking.puppet import posed_head

from .workers import LatestWins, TaskRunner

log = logging.getLogger(__name__)


def _occlusion(mesh) -> np.ndarray | None:
    """The mesh's cavities (core.render.occlusion; drawn on this worker thread's own headless
    context); None where no headless GL exists: the viewport then lights them as open skin."""
    from core.render.occlusion import mesh_occlusion

    try:
        return mesh_occlusion(mesh.vertices, mesh.faces, mesh.normals)
    except Exception as exc:  # noqa: BLE001  (no EGL: a missing shade, not a failed mesh)
        log.warning("no ambient occlusion for the mesh: %s", exc)
        return None


class FaceSession(QObject):
    mesh_changed = Signal(object, object)   # Mesh (identity, neutral), posed vertices (V, 3)
    vertices_changed = Signal(object)       # posed vertices (V, 3)
    sdf_changed = Signal(object, object, object)  # grid[z, y, x], lo, hi
    landmarks_changed = Signal(object)      # (68, 3) or None
    hair_changed = Signal(object)           # core.head.hair.HairMesh (None: bald), then hair_posed
    hair_posed = Signal(object)             # (vertices, normals, tangents) of the posed hair
    hair_colour_changed = Signal(object, float)   # display RGB, grey share
    head_changed = Signal(object)           # core.head.build.HeadParts (eyes, mouth), then head_posed
    head_posed = Signal(object)             # (list of posed part vertices, (N,4,4) carves)
    status = Signal(str)

    def __init__(self, model, avatar: Avatar, runner: TaskRunner, resolution: int = 128,
                 sdf_resolution: int = 96, max_triangles: int | None = VIEWPORT_MAX_TRIANGLES,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model, self.avatar, self.runner = model, avatar, runner
        self.resolution, self.sdf_resolution = resolution, sdf_resolution
        self.max_triangles = max_triangles
        self.mesh = None
        self.animator = None
        self.vertices: np.ndarray | None = None
        self.pose_ms = 0.0
        self.focus: tuple[np.ndarray, np.ndarray] | None = None  # box the camera frames: the head
        # Background work, one task of each kind at a time, the newest request winning
        self._mesh_job = LatestWins(self.rebuild_mesh)
        self._sdf_job = LatestWins(self.rebuild_sdf)
        self._lm_job = LatestWins(self._update_landmarks)
        self._head_job = LatestWins(self.rebuild_head)
        self._hair_job = LatestWins(self.rebuild_hair)
        self._anim_cache: tuple[np.ndarray, np.ndarray] | None = None  # (template points, offsets)
        self.hair = None            # HairMesh fitted to self.mesh (None: bald or not built yet)
        self.head = None            # HeadParts (eyes, teeth, mouth cavity) of the current identity
        self.head_pose_ms = 0.0
        self._hair_key = None       # geometry of the hair shown (colour changes need no rebuild)
        # Slider drags fire many identity changes; wait for a short pause before extracting.
        self._identity_timer = QTimer(self, singleShot=True, interval=120, timeout=self.rebuild_mesh)
        self._sdf_timer = QTimer(self, singleShot=True, interval=60, timeout=self.rebuild_sdf)
        ev = avatar.events
        ev.connect("identity", lambda a: self._identity_timer.start())
        ev.connect("expression", lambda a: self._expression_changed())
        ev.connect("head_pose", lambda a: self._head_pose_changed())
        ev.connect("replaced", lambda a: self.rebuild_mesh())
        ev.connect("view", lambda a: self._view_changed())
        ev.connect("hair", lambda a: self._hair_settings_changed())
        ev.connect("eyes", lambda a: self.rebuild_head())

    # --- state --------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.mesh is not None and not self._mesh_job.busy and not self._identity_timer.isActive()

    @property
    def busy(self) -> bool:
        return any(j.busy for j in (self._mesh_job, self._sdf_job, self._lm_job, self._hair_job, self._head_job))

    # --- mesh ---------------------------------------------------------------------------------
    def rebuild_mesh(self) -> None:
        self._identity_timer.stop()
        gen = self._mesh_job.claim()   # None: runs again with the newest identity when this one ends
        if gen is None:
            return
        identity, res, model = self.avatar.identity, self.resolution, self.model
        max_tris = self.max_triangles

        cached = self._anim_cache

        def work(ctx):
            ctx.progress(0.1, "Extracting mesh")
            t0 = time.perf_counter()
            mesh = model.extract_mesh(identity, None, resolution=res, max_triangles=max_tris)
            ctx.check()
            ctx.progress(0.6, "Preparing animation")
            anim = _reuse_animator(cached, mesh) or model.animator(mesh, identity)
            focus = head_box(np.asarray(model.landmarks(identity, None), np.float32), mesh.vertices)
            mesh.occlusion = _occlusion(mesh)
            return gen, mesh, anim, focus, time.perf_counter() - t0

        self.status.emit("Building face mesh…")
        self._mesh_job.task = self.runner.start(
            "Mesh extraction", work, on_done=self._mesh_done, on_end=self._mesh_task_ended,
            on_cancel=lambda: log.warning("Mesh extraction cancelled: the view still shows the previous identity"))

    def _mesh_done(self, result) -> None:
        gen, mesh, anim, focus, seconds = result
        if gen != self._mesh_job.gen:
            return
        self.mesh, self.animator, self.focus = mesh, anim, focus
        if getattr(mesh, "template", None) is not None and hasattr(anim, "morph_targets"):
            self._anim_cache = (mesh.template, anim.morph_targets())
        self.vertices = self._pose()
        log.info("Mesh ready: %d vertices, %d triangles in %.2f s", len(mesh.vertices), len(mesh.faces), seconds)
        self.mesh_changed.emit(mesh, self.vertices)
        self.rebuild_head()
        self.rebuild_hair()
        self._update_landmarks()
        if self.avatar.view.geometry == "sdf":
            self.rebuild_sdf()

    def _mesh_task_ended(self) -> None:
        if not self._mesh_job.ended():
            self.status.emit("Ready")

    def _pose(self) -> np.ndarray:
        t0 = time.perf_counter()
        v = posed_head(np.asarray(self.animator.vertices(self.avatar.expression), np.float32),
                       self.avatar.head_pose)
        self.pose_ms = (time.perf_counter() - t0) * 1000
        return v

    def _expression_changed(self) -> None:
        if self.animator is not None:
            self.vertices = self._pose()
            self.vertices_changed.emit(self.vertices)
        self._pose_head()
        self._pose_hair()
        self._update_landmarks()
        if self.avatar.view.geometry == "sdf":
            self._sdf_timer.start()

    def _head_pose_changed(self) -> None:
        """A turn of the head is rigid: re-pose the mesh and landmarks; the SDF view applies it
        as a transform of the baked field (no re-bake)."""
        if self.animator is not None:
            self.vertices = self._pose()
            self.vertices_changed.emit(self.vertices)
        self._pose_head()
        self._pose_hair()
        self._update_landmarks()

    # --- eyes and mouth interior ----------------------------------------------------------------
    def rebuild_head(self) -> None:
        """Build the eyes and mouth interior of the current identity and eye settings off the
        GUI thread (~0.1 s); newest request wins."""
        gen = self._head_job.claim()
        if gen is None:
            return
        identity, eyes = self.avatar.identity, self.avatar.eyes

        def work(ctx):
            from core.head.build import build_head_parts

            return gen, build_head_parts(identity, eyes)

        def done(result):
            if result[0] != self._head_job.gen:
                return
            self.head = result[1]
            self.head_changed.emit(self.head)
            self._pose_head()

        self._head_job.task = self.runner.start(
            "Eyes and mouth", work, on_done=done, on_error=lambda m: log.error("Eyes and mouth interior: %s", m),
            on_end=self._head_job.ended, quiet=True)

    def _pose_head(self) -> None:
        """Pose the eyes (gaze), the jaw's parts and the carves with the weights and head pose."""
        if self.head is None:
            return
        t0 = time.perf_counter()
        posed = self.head.pose(self.avatar.expression, self.avatar.head_pose)
        self.head_pose_ms = (time.perf_counter() - t0) * 1000
        self.head_posed.emit(posed)

    # --- hair ---------------------------------------------------------------------------------
    def _hair_settings_changed(self) -> None:
        from core.head.hair import geometry_key

        hair = self.avatar.hair
        if geometry_key(hair) == self._hair_key and not self._hair_job.busy:
            self.hair_colour_changed.emit(hair.colour, hair.grey)   # uniforms only
        else:
            self.rebuild_hair()

    def rebuild_hair(self) -> None:
        """Fit the avatar's hair to the current mesh off the GUI thread (a new style builds its
        template once, ~0.3-1.5 s; a new identity only re-anchors it, ~0.1 s); newest wins."""
        if self.mesh is None:
            return
        gen = self._hair_job.claim()
        if gen is None:
            return
        from core.head.hair import build_hair, geometry_key

        model, style, mesh, anim = self.model, self.avatar.hair, self.mesh, self.animator

        def work(ctx):
            ctx.progress(0.2, "Building hair")
            t0 = time.perf_counter()
            hair = build_hair(model, style, mesh, anim)
            return gen, style, hair, time.perf_counter() - t0

        def done(result):
            gen_, style_, hair, seconds = result
            if gen_ != self._hair_job.gen or mesh is not self.mesh:
                return
            self.hair, self._hair_key = (None if hair.empty else hair), geometry_key(style_)
            log.info("Hair '%s' ready: %d triangles in %.2f s", style_.style, len(hair.faces), seconds)
            self.hair_changed.emit(self.hair)
            self._pose_hair()
            cur = self.avatar.hair
            if geometry_key(cur) == self._hair_key:
                self.hair_colour_changed.emit(cur.colour, cur.grey)

        self._hair_job.task = self.runner.start("Hair", work, on_done=done, on_end=self._hair_job.ended,
                                                quiet=True)

    def _pose_hair(self) -> None:
        if self.hair is None:
            return
        from core.head.hair import pose_hair

        self.hair_posed.emit(pose_hair(self.hair, self.avatar.expression, self.avatar.head_pose))

    # --- SDF and landmarks --------------------------------------------------------------------
    def _view_changed(self) -> None:
        if self.avatar.view.geometry == "sdf" and self._sdf_job.gen == 0:
            self.rebuild_sdf()
        self._update_landmarks()

    def rebuild_sdf(self) -> None:
        self._sdf_timer.stop()
        gen = self._sdf_job.claim()
        if gen is None:
            return
        model, res = self.model, self.sdf_resolution
        identity, expression = self.avatar.identity, self.avatar.expression

        def work(ctx):
            ctx.progress(0.1, "Evaluating SDF grid")
            t0 = time.perf_counter()
            grid = tuple(model.sdf_grid(identity, expression, res))
            return (gen, time.perf_counter() - t0) + grid

        def done(result):
            if result[0] == self._sdf_job.gen:
                log.info("SDF grid %d³ ready in %.2f s", res, result[1])
                self.sdf_changed.emit(*result[2:])

        self._sdf_job.task = self.runner.start("SDF grid", work, on_done=done, on_end=self._sdf_job.ended)

    def _update_landmarks(self) -> None:
        """Landmarks take the network ~0.1 s: computed in the background, newest request wins."""
        if not self.avatar.view.show_landmarks:
            self.landmarks_changed.emit(None)
            return
        if self._lm_job.claim() is None:
            return
        model, identity, expression = self.model, self.avatar.identity, self.avatar.expression

        def done(lm):
            if self.avatar.view.show_landmarks:
                self.landmarks_changed.emit(lm)

        pose = self.avatar.head_pose
        self._lm_job.task = self.runner.start(
            "Landmarks", lambda ctx: posed_head(np.asarray(model.landmarks(identity, expression), np.float32), pose),
            on_done=done, on_end=self._lm_job.ended, quiet=True)


def head_box(landmarks: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box of the head around the 68 face landmarks (face width w: the skull reaches ~0.9 w
    above the brows and behind the face), clipped to the mesh, so the view frames the head
    rather than the whole extracted surface (shoulders, neck)."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    w = float(hi[0] - lo[0])
    box_lo = np.array([lo[0] - 0.3 * w, lo[1] - 0.35 * w, lo[2] - 1.0 * w])
    box_hi = np.array([hi[0] + 0.3 * w, hi[1] + 0.9 * w, hi[2] + 0.1 * w])
    vlo, vhi = vertices.min(axis=0), vertices.max(axis=0)
    return np.maximum(box_lo, vlo).astype(np.float32), np.minimum(box_hi, vhi).astype(np.float32)


def _reuse_animator(cached, mesh):
    """The model's expression field depends only on a vertex's template-space position, so a
    new identity extracted from the same template mesh has the same 53 offsets: reuse them
    instead of re-evaluating the field (seconds for a 100k-vertex head)."""
    if cached is None or getattr(mesh, "template", None) is None:
        return None
    template, offsets = cached
    if template.shape != mesh.template.shape or not np.array_equal(template, mesh.template):
        return None
    from core.facemodel import Animator

    w0 = getattr(mesh, "expression", None)
    w0 = np.zeros(len(offsets), np.float32) if w0 is None else np.asarray(w0, np.float32)
    return Animator(mesh.vertices - np.einsum("e,evc->vc", w0, offsets), offsets)
