"""The moderngl renderer shared by the Qt viewport and headless rendering.

    ctx = moderngl.create_context()                     # inside QOpenGLWidget.initializeGL
    r = Renderer(ctx)
    r.set_mesh(vertices, faces, uvs); r.set_texture(rgb)
    ...every frame: r.update_vertices(anim.vertices(weights))
    fbo = ctx.detect_framebuffer(widget.defaultFramebufferObject())
    r.render(fbo, w, h, camera, mode="mesh", view="shaded")

Headless: `Renderer(headless_context())` and `render_image(...)`, or `render_offscreen(...)`.

Extra part meshes (eyes, teeth, hair: core.head.parts.PartMesh) are drawn after the skin in
every mode, depth-tested against it (the sphere tracer writes gl_FragDepth):
    r.set_parts("head", parts)                      # a named group; another group leaves it alone
    ...every frame: r.update_parts("head", pose_parts(parts, weights, head_pose))
    r.set_carves(pose_carves(carves, weights, head_pose))   # skin hidden inside (N <= 4) ellipsoids
"""
from __future__ import annotations

import sys
import threading

import moderngl
import numpy as np

from core.paths import RESOURCES

from .camera import OrbitCamera
from .carve_split import carve_bound, face_columns, near_carve_faces, split_margin
from .geometry import face_incidence, vertex_normals
from .lighting import Lighting
from .neural import generate_glsl, pack_weights, stage_bounds
from .shaders import expand_includes, shader_source

MODES = ("mesh", "sdf", "neural")
VIEWS = ("shaded", "textured", "normals", "wireframe")
_VIEW_KIND = {v: i for i, v in enumerate(VIEWS)}
# Views whose skin light terms are computed per vertex (shaders/mesh.vert) when back faces are
# culled (a vertex cannot know which side of its triangle is seen; open meshes keep per pixel).
VERTEX_LIT_VIEWS = ("shaded", "textured")
CLAY = (0.62, 0.58, 0.55)           # linear albedo of the untextured "shaded" view
SKIN = (224, 180, 155)              # sRGB stand-in when no skin texture is installed
DEFAULT_TEXTURE = RESOURCES / "textures" / "default_skin.png"
BACKGROUND = (0.16, 0.17, 0.19)
MAX_CARVES = 6                      # ellipsoids that hide the skin (shaders loop over u_carves)
PART_TEXTURE_UNIT = 4


_HEADLESS = threading.local()


def headless_context() -> moderngl.Context:
    """One standalone GL context per thread (EGL: no display needed). A GL context is current
    in the thread that made it only, so a worker thread (the app's photo fit) needs its own."""
    _forget_qt_current_context()
    ctx = getattr(_HEADLESS, "ctx", None)
    if ctx is None:
        try:
            ctx = moderngl.create_standalone_context(backend="egl")
        except Exception:  # e.g. macOS or Windows, where there is no EGL
            ctx = moderngl.create_standalone_context()
        _HEADLESS.ctx = ctx
    else:
        # A Qt widget may have made its own context current on this thread since (the studio,
        # GUI tests): GL calls go to the current context, so make ours current again.
        ctx.__enter__()
    return ctx


def _forget_qt_current_context() -> None:
    """If Qt believes one of its contexts is current on this thread, tell it that none is,
    before an EGL context becomes current behind its back. Otherwise, when that Qt context is
    later destroyed (a closed window garbage-collected at any moment), Qt "releases" it and
    libglvnd releases our EGL context instead: every later GL call on this thread fails with
    "cannot create buffer". Qt is looked up, never imported: core runs without it."""
    qtgui = sys.modules.get("PySide6.QtGui")
    if qtgui is None:
        return
    current = qtgui.QOpenGLContext.currentContext()
    if current is not None:
        current.doneCurrent()


def release_current_context() -> bool:
    """Leave no EGL context current on this thread. Through libglvnd a thread has one current
    context at a time across EGL and GLX: while a headless (EGL) context is current, a Qt
    widget's GLX context cannot be made current on the same thread ("QOpenGLWidget: Failed to
    make context current"). The app renders headlessly on worker threads only; code that used
    the GUI thread's headless context (tests, scripts) calls this before showing GL widgets.
    headless_context() makes its context current again on its next use. True if one was."""
    import ctypes
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False
    egl.eglGetCurrentDisplay.restype = ctypes.c_void_p
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    display = egl.eglGetCurrentDisplay()
    if not display:
        return False
    return bool(egl.eglMakeCurrent(display, None, None, None))


def default_texture() -> np.ndarray:
    """resources/textures/default_skin.png, or a flat neutral skin colour if not installed."""
    if DEFAULT_TEXTURE.exists():
        from PIL import Image

        return np.asarray(Image.open(DEFAULT_TEXTURE).convert("RGB"))
    return np.full((4, 4, 3), SKIN, np.uint8)


def _mat(m: np.ndarray) -> bytes:
    return np.asarray(m, np.float32).T.tobytes()  # GLSL wants column-major


def _set(prog: moderngl.Program, name: str, value) -> None:
    """Set a uniform if the compiler kept it (unused ones are optimised away)."""
    # Program.get is a dict lookup; `name in prog` iterates every member (moderngl has no
    # __contains__), which cost about 1 ms a frame over the ~100 uniforms set per frame.
    u = prog.get(name, None)
    if u is None:
        return
    if isinstance(value, bytes):
        u.write(value)
    elif isinstance(value, np.ndarray) and value.ndim == 2 and value.shape[0] == value.shape[1]:
        u.write(_mat(value))
    elif isinstance(value, np.ndarray) and value.ndim == 2:   # vec3 array
        u.write(np.ascontiguousarray(value, np.float32).tobytes())
    elif isinstance(value, (tuple, list, np.ndarray)):
        u.value = tuple(float(x) for x in np.asarray(value).ravel())
    else:
        u.value = value


class Renderer:
    """Owns the GL resources of one avatar: mesh buffers, textures, SDF grid or network."""

    def __init__(self, ctx: moderngl.Context, samples: int = 0, cull_back_faces: bool = True,
                 fxaa: bool = False):
        self.ctx = ctx
        self.samples = samples          # > 0: draw into an MSAA buffer, then resolve
        self.fxaa = fxaa                # render_image: FXAA pass (core/render/fxaa.py), cheap AA
        self._fxaa = None
        # Meshes extracted from an SDF are closed: culling halves the fragments shaded.
        # Turn it off for open meshes (scans with holes) so their inside shows.
        self.cull_back_faces = cull_back_faces
        self._progs: dict[tuple, moderngl.Program] = {}
        self._vaos: dict[int, moderngl.VertexArray] = {}
        self._fbos: dict[tuple, moderngl.Framebuffer] = {}
        self._mesh: dict | None = None
        self._grid: dict | None = None
        self._neural: dict | None = None
        self._points: dict | None = None
        self._texture: moderngl.Texture | None = None
        self._texture_mean = np.array(SKIN) / 255.0
        self._field_pose = np.eye(4)     # the SDF/neural field's frame -> world (rigid)
        self._parts: dict[str, list[dict]] = {}   # group name -> GL resources of each part
        self._carves = np.zeros((0, 4, 4), np.float32)  # world -> unit ball
        self._hair = None                # core.render.hair_layer.HairLayer, made on first set_hair
        self._hair_points: np.ndarray | None = None   # the hair's vertices, for the draw order
        self._dummy3d = ctx.texture3d((1, 1, 1), 2, np.zeros(2, np.float32).tobytes(), dtype="f4")
        self.set_texture(default_texture())

    # -- programs ---------------------------------------------------------------------------
    # View and lighting mode are compile-time defines: a software rasteriser pays for every
    # branch, so each (view, lighting) pair gets its own program, compiled on first use.
    def _program(self, kind: str, view: str = "shaded", light: int = 0,
                 scene_code: str | None = None, carve: bool = True) -> moderngl.Program:
        key = (kind, view, light, scene_code if kind == "part" else hash(scene_code) if scene_code else None,
               carve)
        if key not in self._progs:
            d = {"VIEW": str(_VIEW_KIND[view]), "LIGHT_MODE": str(light)}
            if kind == "mesh":
                d["CARVE"] = "1" if carve else "0"
                if view == "wireframe":
                    d["WIREFRAME"] = "1"
                if view in VERTEX_LIT_VIEWS and self.cull_back_faces:
                    d["VERTEX_LIGHT"] = "1"
                p = self.ctx.program(
                    vertex_shader=shader_source("mesh.vert", d),
                    geometry_shader=shader_source("mesh_wire.geom") if view == "wireframe" else None,
                    fragment_shader=shader_source("mesh.frag", d))
            elif kind == "sdf":
                code = scene_code or expand_includes('#include "sdf_grid.glsl"')
                p = self.ctx.program(vertex_shader=shader_source("fullscreen.vert"),
                                     fragment_shader=shader_source("sdf_trace.frag", d,
                                                                   replace={"SCENE_CODE": code}))
            elif kind == "part":
                p = self.ctx.program(vertex_shader=shader_source("mesh.vert"),
                                     fragment_shader=shader_source(scene_code or "part.frag", d))
            elif kind == "points":
                p = self.ctx.program(vertex_shader=shader_source("points.vert"),
                                     fragment_shader=shader_source("points.frag"))
            else:
                raise KeyError(kind)
            self._progs[key] = p
        return self._progs[key]

    def _mesh_vao(self, view: str, light: int, ibo: str = "ibo") -> moderngl.VertexArray:
        """The skin's vertex array for a view, drawing the index buffer `ibo`: "ibo" (all
        triangles, no carves set), "ibo_near" (those that may reach a carve: the discarding
        program) or "ibo_far" (the rest). Only "ibo_near" may discard, so everything else has its
        depth tested and written early."""
        key = (view, light, ibo)
        vaos = self._mesh["vaos"]
        if key not in vaos:
            m, prog = self._mesh, self._program("mesh", view, light, carve=ibo == "ibo_near")
            content = [(m["pos"], "3f", "in_pos"), (m["nrm"], "3f", "in_normal"),
                       (m["uv"], "2f", "in_uv"), (m["occ"], "1f", "in_occlusion")]
            vaos[key] = self.ctx.vertex_array(prog, [c for c in content if c[2] in prog],
                                              index_buffer=m[ibo], index_element_size=4)
        return vaos[key]

    # -- data -------------------------------------------------------------------------------
    def set_mesh(self, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray | None = None,
                 normals: np.ndarray | None = None, occlusion: np.ndarray | None = None) -> None:
        """A new mesh (new topology): allocates the buffers that update_vertices rewrites.
        `occlusion` (V,) in [0, 1] darkens cavities (core.render.occlusion; None: none)."""
        self._release_mesh()
        v = np.ascontiguousarray(vertices, np.float32)
        f = np.ascontiguousarray(faces, np.int32)
        if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
            raise ValueError(f"expected vertices (V,3) and faces (F,3), got {v.shape}, {f.shape}")
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError("face indices out of range")
        uv = np.zeros((len(v), 2), np.float32) if uvs is None else np.ascontiguousarray(uvs, np.float32)
        if uv.shape != (len(v), 2):
            raise ValueError(f"uvs must be (V,2) = ({len(v)}, 2), got {uv.shape}")
        incidence = face_incidence(f, len(v))
        n = vertex_normals(v, f, incidence) if normals is None else np.asarray(normals, np.float32)
        ctx = self.ctx
        m = {"count": len(v), "faces": f, "incidence": incidence,
             "pos": ctx.buffer(v.tobytes(), dynamic=True),
             "nrm": ctx.buffer(np.ascontiguousarray(n, np.float32).tobytes(), dynamic=True),
             "uv": ctx.buffer(uv.tobytes()), "ibo": ctx.buffer(f.tobytes()),
             "occ": ctx.buffer(np.ones(len(v), np.float32).tobytes()),
             # the triangles near the carves and the rest (core.render.carve_split), rewritten
             # only when the split changes
             "ibo_near": ctx.buffer(reserve=max(4, f.nbytes), dynamic=True),
             "ibo_far": ctx.buffer(reserve=max(4, f.nbytes), dynamic=True),
             # the far triangles under the hair, drawn after it (core.render.draw_order)
             "ibo_scalp": ctx.buffer(reserve=max(4, f.nbytes), dynamic=True), "under_hair": None,
             "split": None, "verts": v, "version": 0, "margin": split_margin(v, f), "corners": face_columns(f),
             "lo": v.min(0), "hi": v.max(0), "vaos": {}}
        self._mesh = m
        if occlusion is not None:
            self.set_occlusion(occlusion)

    def set_occlusion(self, occlusion: np.ndarray | None) -> None:
        """Per-vertex ambient occlusion of the current mesh (None: open everywhere)."""
        if self._mesh is None:
            raise RuntimeError("set_occlusion before set_mesh")
        n = self._mesh["count"]
        occ = np.ones(n, np.float32) if occlusion is None else np.asarray(occlusion, np.float32).reshape(-1)
        if occ.shape != (n,):
            raise ValueError(f"occlusion must have one value per vertex ({n}), got {occ.shape}")
        self._mesh["occ"].write(np.clip(occ, 0.0, 1.0).tobytes())

    def update_vertices(self, vertices: np.ndarray, normals: np.ndarray | None = None) -> None:
        """New positions for the current topology (every frame): normals are recomputed
        vectorised and both buffers are overwritten in place, never re-allocated."""
        if self._mesh is None:
            raise RuntimeError("update_vertices before set_mesh")
        v = np.ascontiguousarray(vertices, np.float32)
        if v.shape != (self._mesh["count"], 3):
            raise ValueError(f"expected ({self._mesh['count']}, 3) vertices, got {v.shape}")
        if normals is None:
            normals = vertex_normals(v, self._mesh["faces"], self._mesh["incidence"])
        self._mesh["pos"].write(v.tobytes())
        self._mesh["nrm"].write(np.ascontiguousarray(normals, np.float32).tobytes())
        self._mesh["verts"] = v
        self._mesh["version"] += 1

    def set_texture(self, rgb: np.ndarray, mipmaps: bool = True) -> None:
        """(H,W,3|4) uint8 image, row 0 at the top; uv (0,0) is its bottom-left corner.
        `mipmaps=False`: an interactive change (an appearance slider dragged): a texture of the
        same size is rewritten in place and sampled from level 0 until rebuild_mipmaps; building
        the mip chain of a 1024^2 texture takes ~8 ms in software GL, a sixth of a 50 ms budget."""
        img = np.asarray(rgb)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or img.dtype != np.uint8:
            raise ValueError(f"texture must be (H,W,3) uint8, got {img.shape} {img.dtype}")
        if not mipmaps and self.update_texture(img, [(0, img.shape[0], 0, img.shape[1])]):
            self._texture_mean = img[::8, ::8, :3].reshape(-1, 3).mean(0) / 255.0
            return
        img = np.ascontiguousarray(img[::-1, :, :3])
        if self._texture is not None:
            self._texture.release()
        tex = self.ctx.texture((img.shape[1], img.shape[0]), 3, img.tobytes(), alignment=1)
        tex.build_mipmaps()
        tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        self._texture = tex
        self._texture_mean = img.reshape(-1, 3).mean(0) / 255.0

    def texture_size(self) -> tuple[int, int] | None:
        return None if self._texture is None else self._texture.size

    def update_texture(self, rgb: np.ndarray, rects) -> bool:
        """Rewrite only `rects` (y0, y1, x0, x1: rows from the top) of the current texture from
        `rgb` (the whole (H, W, 3) uint8 image). False when the sizes differ (call set_texture).
        Painting uploads the tiles a dab changed, not the whole texture; the mip levels are
        stale until rebuild_mipmaps, so sampling uses level 0 meanwhile."""
        tex = self._texture
        if tex is None or tex.size != (rgb.shape[1], rgb.shape[0]) or rgb.dtype != np.uint8:
            return False
        h = rgb.shape[0]
        for y0, y1, x0, x1 in rects:
            block = np.ascontiguousarray(rgb[y0:y1, x0:x1, :3][::-1])
            tex.write(block.tobytes(), viewport=(x0, h - y1, x1 - x0, y1 - y0), alignment=1)
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        return True

    def rebuild_mipmaps(self) -> None:
        if self._texture is not None:
            self._texture.build_mipmaps()
            self._texture.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)

    def set_sdf_grid(self, grid: np.ndarray, lo, hi, uv_grid: np.ndarray | None = None) -> None:
        """SDF grid indexed [z,y,x] (cm, negative inside) with nodes spanning lo..hi; optional
        (Rz,Ry,Rx,2) uv per node for the textured view."""
        g = np.ascontiguousarray(grid, np.float32)
        if g.ndim != 3 or min(g.shape) < 2:
            raise ValueError(f"SDF grid must be (R,R,R), got {g.shape}")
        self._release("_grid")
        tex = self.ctx.texture3d(g.shape[::-1], 1, g.tobytes(), dtype="f4")
        tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        tex.repeat_x = tex.repeat_y = tex.repeat_z = False
        lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
        res = np.array(g.shape[::-1], np.float32)
        # Rays are clipped to the box around the inside voxels (plus two): fewer steps spent
        # marching through empty grid. Texture lookups still use the full grid's lo..hi.
        inside = np.argwhere(g < 0)[:, ::-1]
        voxel = (hi - lo) / (res - 1)
        if len(inside):
            trace_lo = np.maximum(lo, lo + (inside.min(0) - 2) * voxel)
            trace_hi = np.minimum(hi, lo + (inside.max(0) + 2) * voxel)
        else:
            trace_lo, trace_hi = lo, hi
        self._grid = {"tex": tex, "res": res, "grid_lo": lo, "grid_hi": hi,
                      "lo": trace_lo.astype(np.float32), "hi": trace_hi.astype(np.float32)}
        if uv_grid is not None:
            u = np.ascontiguousarray(uv_grid, np.float32)
            if u.ndim != 4 or u.shape[3] != 2:
                raise ValueError(f"uv grid must be (R,R,R,2), got {u.shape}")
            ut = self.ctx.texture3d(u.shape[2::-1], 2, u.tobytes(), dtype="f4")
            ut.filter = (moderngl.NEAREST, moderngl.NEAREST)  # uv seams must not be blended
            ut.repeat_x = ut.repeat_y = ut.repeat_z = False
            self._grid["uv"] = ut

    def set_neural(self, stages: list[dict], lo=None, hi=None) -> None:
        """The face model's networks evaluated per tracing step in the shader (real GPUs).
        The tracing box defaults to where the first stage's normalised input is in [-1,1]."""
        self._release("_neural")
        weights, _ = pack_weights(stages)
        code = generate_glsl(stages)
        self._program("sdf", "shaded", 0, code)  # compile now: errors show at set time
        tex = self.ctx.texture((weights.shape[1], weights.shape[0]), 1, weights.tobytes(), dtype="f4")
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        blo, bhi = stage_bounds(stages)
        self._neural = {"code": code, "tex": tex,
                        "lo": np.asarray(blo if lo is None else lo, np.float32),
                        "hi": np.asarray(bhi if hi is None else hi, np.float32)}

    def set_parts(self, group: str, parts) -> None:
        """Replace the part meshes of `group` (e.g. "head" for eyes + mouth, "hair"): a list of
        core.head.parts.PartMesh (empty or None removes the group). Buffers are allocated here;
        `update_parts` rewrites positions and normals in place every frame."""
        from core.head.parts import PartMesh

        self._release_parts(group)
        if not parts:
            return
        ctx, out = self.ctx, []
        for part in parts:
            if not isinstance(part, PartMesh):
                raise TypeError(f"set_parts expects PartMesh objects, got {type(part).__name__}")
            v, f = part.vertices, part.faces
            uv = part.uvs if part.uvs is not None else np.zeros((len(v), 2), np.float32)
            incidence = face_incidence(f, len(v))
            n = vertex_normals(v, f, incidence)
            tex = None
            if part.texture is not None:
                img = np.ascontiguousarray(np.asarray(part.texture, np.uint8)[::-1, :, :3])
                tex = ctx.texture((img.shape[1], img.shape[0]), 3, img.tobytes(), alignment=1)
                tex.build_mipmaps()
                tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            out.append({"part": part, "count": len(v), "faces": f, "incidence": incidence,
                        "pos": ctx.buffer(v.tobytes(), dynamic=True),
                        "nrm": ctx.buffer(np.ascontiguousarray(n).tobytes(), dynamic=True),
                        "uv": ctx.buffer(np.ascontiguousarray(uv, np.float32).tobytes()),
                        "ibo": ctx.buffer(f.tobytes()), "tex": tex, "vaos": {}})
        self._parts[group] = out

    def update_parts(self, group: str, vertices) -> None:
        """New positions for every part of `group`, in set_parts order: a list of (V,3) arrays
        (None, or the very array object passed last time, keeps a part's positions: posing
        returns a static part's own array, so it costs nothing). Normals are recomputed."""
        entries = self._parts.get(group)
        if entries is None:
            raise RuntimeError(f"update_parts('{group}') before set_parts")
        if len(vertices) != len(entries):
            raise ValueError(f"expected {len(entries)} vertex arrays for '{group}', got {len(vertices)}")
        for e, v in zip(entries, vertices):
            if v is None or v is e.get("last"):   # unchanged (a part its weights do not move)
                continue
            e["last"] = v
            v = np.ascontiguousarray(v, np.float32)
            if v.shape != (e["count"], 3):
                raise ValueError(f"part {e['part'].name}: expected ({e['count']}, 3) vertices, got {v.shape}")
            e["pos"].write(v.tobytes())
            e["nrm"].write(vertex_normals(v, e["faces"], e["incidence"]).tobytes())

    def part_groups(self) -> list[str]:
        return list(self._parts)

    def set_carves(self, matrices: np.ndarray | None) -> None:
        """Ellipsoids where the skin is not drawn, as (N,4,4) world -> unit-ball matrices
        (core.head.parts.pose_carves); N <= MAX_CARVES; None removes them. The mesh view discards
        skin fragments inside; the SDF views cut the field (max(d, -ellipsoid))."""
        m = np.zeros((0, 4, 4), np.float32) if matrices is None else np.asarray(matrices, np.float32)
        if m.ndim != 3 or m.shape[1:] != (4, 4) or len(m) > MAX_CARVES:
            raise ValueError(f"carves must be (N,4,4) with N <= {MAX_CARVES}, got {m.shape}")
        self._carves = m

    def _carve_uniforms(self, to_world: np.ndarray | None = None) -> dict:
        """u_carves for a shader whose points are in a frame mapped to the world by to_world."""
        m = self._carves if to_world is None else self._carves @ np.asarray(to_world, np.float32)
        pad = np.zeros((MAX_CARVES, 4, 4), np.float32)
        pad[:len(m)] = m
        bound = (0.0, 0.0, 0.0, -1.0)
        if len(m):
            c, reach = carve_bound(m)
            bound = (*c, reach * reach)
        return {"u_num_carves": int(len(m)), "u_carve_bound": bound,
                "u_carves": np.ascontiguousarray(pad.transpose(0, 2, 1)).tobytes()}  # column-major

    def set_hair(self, hair) -> None:
        """The avatar's hair (core.head.hair.HairMesh; None or an empty one: bald), drawn with its
        own strand shader (tangents, alpha-tested strands): before the skin in the mesh view (the
        depth test then skips the scalp under it), after the traced field in the SDF views."""
        if self._hair is None:
            if hair is None:
                return
            from .hair_layer import HairLayer

            self._hair = HairLayer(self.ctx)
        self._hair.set_mesh(hair)
        self._hair_points = None if hair is None or hair.empty else np.asarray(hair.vertices, np.float32)
        if self._mesh is not None:
            self._mesh["under_hair"] = None    # found again on the next frame

    def update_hair(self, vertices: np.ndarray, normals: np.ndarray | None = None,
                    tangents: np.ndarray | None = None) -> None:
        """Posed hair (core.head.hair.pose_hair) for the current hair topology."""
        if self._hair is not None:
            self._hair.update(vertices, normals, tangents)

    def set_hair_colour(self, colour, grey: float) -> None:
        """Hair colour (display RGB) and grey share: uniforms only, no upload."""
        if self._hair is not None:
            self._hair.set_colour(colour, grey)

    def set_field_pose(self, matrix: np.ndarray | None) -> None:
        """Rigid 4x4 transform of the distance field (sdf and neural modes) into the world, e.g.
        a puppeteered head turn; None = identity. Meshes are posed on their vertices instead."""
        m = np.eye(4) if matrix is None else np.asarray(matrix, np.float64).reshape(4, 4)
        self._field_pose = m

    def set_points(self, points: np.ndarray | None, colour=(1.0, 0.35, 0.2), size: float = 6.0) -> None:
        """Optional overlay of 3D points (e.g. 68 landmarks) drawn as dots of `size` pixels."""
        self._release("_points")
        if points is None:
            return
        p = np.ascontiguousarray(points, np.float32).reshape(-1, 3)
        buf = self.ctx.buffer(p.tobytes())
        prog = self._program("points")
        self._points = {"buf": buf, "n": len(p), "colour": colour, "size": float(size),
                        "vao": self.ctx.vertex_array(prog, [(buf, "3f", "in_pos")])}

    def bounds(self, mode: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
        """Box of what `mode` draws (for camera framing)."""
        src = {"mesh": self._mesh, "sdf": self._grid, "neural": self._neural}[mode]
        if src is None:
            raise RuntimeError(f"nothing set for mode '{mode}'")
        return src["lo"], src["hi"]

    # -- drawing ----------------------------------------------------------------------------
    def render(self, target: moderngl.Framebuffer, width: int, height: int, camera: OrbitCamera,
               mode: str = "mesh", view: str = "shaded", background=BACKGROUND,
               lighting: Lighting | None = None, show_points: bool = True) -> None:
        """Draw one frame into `target` (a Qt default framebuffer or an offscreen one)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode '{mode}'; choose one of {', '.join(MODES)}")
        if view not in VIEWS:
            raise ValueError(f"unknown view '{view}'; choose one of {', '.join(VIEWS)}")
        if mode != "mesh" and view == "wireframe":
            raise ValueError("the wireframe view needs mode 'mesh' (a distance field has no edges)")
        ctx, lighting = self.ctx, lighting or Lighting()
        draw_fbo = self._msaa_fbo(width, height) if self.samples > 0 else target
        draw_fbo.use()
        ctx.viewport = (0, 0, width, height)
        bg = tuple(float(c) for c in background)[:3]
        draw_fbo.clear(*bg, 0.0, depth=1.0)          # alpha 0 = background, 1 = avatar
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE | moderngl.BLEND)
        view_m = camera.view_matrix()
        proj = camera.projection_matrix(width / height)
        vp = proj @ view_m
        light = 1 if lighting.mode == "ibl" else 0
        common = {"u_view_rot": view_m[:3, :3], "u_albedo": CLAY, **self._light_uniforms(lighting)}
        if view == "textured" and mode != "mesh" and not (self._grid or {}).get("uv"):
            common["u_albedo"] = self._texture_mean ** 2.2   # no uv: the skin's average colour
        self._texture.use(0)
        hair_uniforms = {**common, "u_view": view_m, "u_proj": proj}
        hair_view = "shaded" if view == "wireframe" else view
        if mode == "mesh":
            # The open skin, then the hair, then the scalp under it: the rasteriser's early depth
            # test then skips the hair behind the face and the scalp under the hair
            # (core.render.draw_order; a software rasteriser pays per fragment).
            self._draw_mesh(view, light, view_m, proj, width, height, common, after_hair=False)
            if self._hair is not None:
                self._hair.draw(hair_view, light, hair_uniforms, _set)
            self._draw_mesh(view, light, view_m, proj, width, height, common, after_hair=True)
        else:
            self._draw_sdf(mode, view, light, camera, vp, width, height, common)
        if self._parts:
            if mode != "mesh" and self._mesh is not None:
                self._skin_depth(draw_fbo, light, view_m, proj, width, height, common)
            self._draw_parts(view, light, view_m, proj, common)
        if self._hair is not None and mode != "mesh":   # the traced field writes its own depth
            self._hair.draw(hair_view, light, hair_uniforms, _set)
        if show_points and self._points is not None:
            ctx.disable(moderngl.DEPTH_TEST)   # landmarks stay visible on top
            ctx.enable(moderngl.PROGRAM_POINT_SIZE)
            prog = self._program("points")
            _set(prog, "u_view_proj", vp)
            _set(prog, "u_point_size", self._points["size"])
            _set(prog, "u_point_col", self._points["colour"])
            self._points["vao"].render(moderngl.POINTS, vertices=self._points["n"])
            ctx.enable(moderngl.DEPTH_TEST)
        if draw_fbo is not target:
            ctx.copy_framebuffer(target, draw_fbo)

    def _draw_mesh(self, view, light, view_m, proj, width, height, common,
                   after_hair: bool | None = None) -> None:
        """The skin's triangles: all of them, or (`after_hair` False / True) those drawn before /
        after the hair."""
        if self._mesh is None:
            raise RuntimeError("mode 'mesh' needs set_mesh first")
        draws = [(ibo, n) for ibo, n, after in self._skin_draws() if after_hair in (None, after)]
        if not draws:
            return
        if self.cull_back_faces:
            self.ctx.enable(moderngl.CULL_FACE)
        uniforms = {**common, "u_view": view_m, "u_proj": proj, "u_viewport": (width, height),
                    "u_wire_col": (0.05, 0.05, 0.06), "u_texture": 0, **self._carve_uniforms()}
        # Only triangles that can reach a carve run the discarding program: a shader that may
        # discard makes a software rasteriser test and write depth late for every fragment.
        for ibo, count in draws:
            vao = self._mesh_vao(view, light, ibo)
            for name, value in uniforms.items():
                _set(vao.program, name, value)
            vao.render(moderngl.TRIANGLES, vertices=count)
        self.ctx.disable(moderngl.CULL_FACE)

    def _skin_draws(self) -> list[tuple[str, int, bool]]:
        """(index buffer, index count, drawn after the hair) to draw the skin with: the
        triangles that may reach a carve (the discarding program), the rest, and of the rest
        those under the hair (drawn after it)."""
        m = self._mesh
        under = self._under_hair()
        if not len(self._carves) and under is None:
            return [("ibo", 3 * len(m["faces"]), False)] if len(m["faces"]) else []
        key = (m["version"], self._carves.tobytes())
        if not len(self._carves):
            near = np.zeros(len(m["faces"]), bool)
        elif m.get("split_key") == key and m["split"] is not None:
            near = m["split"][0]     # a still pose (orbiting, painting): nothing to redo
        else:
            near = near_carve_faces(m["verts"], m["corners"], self._carves, m["margin"])
        m["split_key"] = key
        n_far, n_scalp = self._write_split(near, under)
        draws = (("ibo_far", n_far, False), ("ibo_near", 3 * int(near.sum()), False),
                 ("ibo_scalp", n_scalp, True))
        return [d for d in draws if d[1]]

    def _under_hair(self) -> np.ndarray | None:
        """(F,) bool: skin triangles under the hair (core.render.draw_order), None without hair;
        found once per mesh and hair."""
        m = self._mesh
        if self._hair_points is None:
            return None
        if m["under_hair"] is None:
            from .draw_order import faces_under_hair
            normals = vertex_normals(m["verts"], m["faces"], m["incidence"])
            m["under_hair"] = faces_under_hair(m["verts"], m["faces"], normals, self._hair_points)
        return m["under_hair"]

    def _write_split(self, near: np.ndarray, under: np.ndarray | None) -> tuple[int, int]:
        """Rewrite the index buffers when the split changed; the far and scalp index counts."""
        m = self._mesh
        far = ~near
        scalp = far & under if under is not None else np.zeros_like(near)
        far &= ~scalp
        old = m["split"]
        if old is None or not (np.array_equal(near, old[0]) and np.array_equal(scalp, old[1])):
            m["ibo_near"].write(m["faces"][near].tobytes())
            m["ibo_far"].write(m["faces"][far].tobytes())
            m["ibo_scalp"].write(m["faces"][scalp].tobytes())
            m["split"] = (near, scalp)
        return 3 * int(far.sum()), 3 * int(scalp.sum())

    def _skin_depth(self, fbo, light, view_m, proj, width, height, common) -> None:
        """SDF modes: the parts are depth-tested against the skin *mesh* (carved), drawn into
        the depth buffer only. The baked field's mouth and eye caps are smeared by its warp
        approximation (an opened mouth's cap bulges out of the lips), so its own depth would
        hide the teeth; the mesh is exact and, without colour, costs little."""
        fbo.color_mask = (False, False, False, False)
        fbo.clear(depth=1.0)
        self._draw_mesh("shaded", light, view_m, proj, width, height, common)
        fbo.color_mask = (True, True, True, True)
        fbo.use()   # re-applies the mask to the GL state

    def _draw_parts(self, view, light, view_m, proj, common) -> None:
        """Every part group after the skin, depth-tested against it. The wireframe view shows
        parts shaded (their edges would clutter the face's)."""
        pview = "shaded" if view == "wireframe" else view
        ready: set[int] = set()      # programs whose shared uniforms are set this frame
        for entries in self._parts.values():
            for e in entries:
                part = e["part"]
                prog = self._program("part", pview, light, part.shader)
                key = prog.glo
                if key not in ready:
                    for name, value in {**common, "u_view": view_m, "u_proj": proj,
                                        "u_texture": PART_TEXTURE_UNIT}.items():
                        _set(prog, name, value)
                    ready.add(key)
                if key not in e["vaos"]:
                    content = [(e["pos"], "3f", "in_pos"), (e["nrm"], "3f", "in_normal"),
                               (e["uv"], "2f", "in_uv")]
                    e["vaos"][key] = self.ctx.vertex_array(
                        prog, [c for c in content if c[2] in prog], index_buffer=e["ibo"],
                        index_element_size=4)
                if e["tex"] is not None:
                    e["tex"].use(PART_TEXTURE_UNIT)
                colour = np.asarray(part.colour, np.float32)
                values = {"u_albedo": colour * colour,   # display -> linear, as the skin's texture
                          "u_has_texture": int(e["tex"] is not None),
                          "u_specular": part.specular, "u_shininess": part.shininess,
                          **part.uniforms}
                for name, value in values.items():
                    _set(prog, name, value)
                if part.double_sided:
                    self.ctx.disable(moderngl.CULL_FACE)
                else:
                    self.ctx.enable(moderngl.CULL_FACE)
                e["vaos"][key].render(moderngl.TRIANGLES)
        self.ctx.disable(moderngl.CULL_FACE)

    def _draw_sdf(self, mode, view, light, camera, vp, width, height, common) -> None:
        if mode == "sdf":
            if self._grid is None:
                raise RuntimeError("mode 'sdf' needs set_sdf_grid first")
            g = self._grid
            prog = self._program("sdf", view, light)
            g["tex"].use(1)
            (g.get("uv") or self._dummy3d).use(2)
            voxel = float(np.min((g["hi"] - g["lo"]) / (g["res"] - 1)))
            scale = (g["res"] - 1) / (g["grid_hi"] - g["grid_lo"]) / g["res"]
            extra = {"u_grid": 1, "u_uv_grid": 2, "u_has_uv": int("uv" in g),
                     "u_tc_scale": scale, "u_tc_offset": 0.5 / g["res"] - g["grid_lo"] * scale,
                     "u_uv_lo": g["grid_lo"], "u_uv_hi": g["grid_hi"],
                     "u_grad_h": 0.5 * voxel, "u_step_scale": 1.0, "u_max_steps": 128}
        else:
            if self._neural is None:
                raise RuntimeError("mode 'neural' needs set_neural first")
            g = self._neural
            prog = self._program("sdf", view, light, g["code"])
            g["tex"].use(3)
            extra = {"u_weights": 3, "u_has_uv": 0, "u_grad_h": 0.02, "u_step_scale": 0.8,
                     "u_max_steps": 96}
        for name, value in {**common, **extra, "u_inv_view_proj": np.linalg.inv(vp),
                            "u_model": self._field_pose, "u_model_inv": np.linalg.inv(self._field_pose),
                            "u_view_proj": vp, "u_eye": camera.eye, "u_viewport": (width, height),
                            "u_box_lo": g["lo"], "u_box_hi": g["hi"], "u_texture": 0,
                            "u_pixel_angle": camera.pixel_angle(height),
                            **self._carve_uniforms(self._field_pose)}.items():
            _set(prog, name, value)
        self._empty_vao(prog).render(moderngl.TRIANGLES, vertices=3)

    def _empty_vao(self, prog: moderngl.Program) -> moderngl.VertexArray:
        """Attribute-less VAO for the full-screen triangle, one per program."""
        if prog.glo not in self._vaos:
            self._vaos[prog.glo] = self.ctx.vertex_array(prog, [])
        return self._vaos[prog.glo]

    @staticmethod
    def _light_uniforms(l: Lighting) -> dict:
        return {"u_key_dir": l.key_dir, "u_key_col": l.key_col, "u_fill_dir": l.fill_dir,
                "u_fill_col": l.fill_col, "u_rim_dir": l.rim_dir, "u_rim_col": l.rim_col,
                "u_ambient": l.ambient, "u_specular": l.specular, "u_shininess": l.shininess,
                "u_sh": np.asarray(l.sh, np.float32).reshape(9, 3)}

    # -- offscreen --------------------------------------------------------------------------
    def _msaa_fbo(self, width: int, height: int) -> moderngl.Framebuffer:
        return self._fbo(width, height, self.samples)

    def _fbo(self, width: int, height: int, samples: int) -> moderngl.Framebuffer:
        key = (width, height, samples)
        if key not in self._fbos:
            ctx = self.ctx
            self._fbos[key] = ctx.framebuffer(
                color_attachments=[ctx.renderbuffer((width, height), 4, samples=samples)],
                depth_attachment=ctx.depth_renderbuffer((width, height), samples=samples))
        return self._fbos[key]

    def render_image(self, width: int, height: int, camera: OrbitCamera, depth: bool = False,
                     fxaa_box=None, **kwargs):
        """Render offscreen and read back (H,W,4) uint8, row 0 at the top; alpha is coverage.
        With depth=True also the (H,W) float32 window depth in [0,1] (1 = background; only
        without MSAA). The read waits for the GPU, so timing this call times a whole frame.
        fxaa_box: (x0, y0, x1, y1) pixels holding everything drawn: FXAA filters only there."""
        fbo = src = self._fbo(width, height, 0)
        if self.fxaa:
            if self._fxaa is None:
                from .fxaa import Fxaa
                self._fxaa = Fxaa(self.ctx)
            src = self._fxaa.frame(width, height)
            self.render(src, width, height, camera, **kwargs)
            self._fxaa.resolve(fbo, width, height, fxaa_box, kwargs.get("background", BACKGROUND))
        else:
            self.render(fbo, width, height, camera, **kwargs)
        data = fbo.read(components=4, alignment=1)
        img = np.frombuffer(data, np.uint8).reshape(height, width, 4)[::-1]
        if not depth:
            return img
        z = np.frombuffer(src.read(attachment=-1, components=1, dtype="f4"), np.float32)
        return img, z.reshape(height, width)[::-1]

    # -- cleanup ----------------------------------------------------------------------------
    def _release(self, attr: str) -> None:
        res = getattr(self, attr)
        if res:
            for v in [*res.values(), *res.get("vaos", {}).values()]:
                if isinstance(v, (moderngl.Buffer, moderngl.VertexArray, moderngl.Texture,
                                  moderngl.Texture3D, moderngl.Program)):
                    v.release()
        setattr(self, attr, None)

    def _release_mesh(self) -> None:
        self._release("_mesh")

    def _release_parts(self, group: str) -> None:
        for e in self._parts.pop(group, []):
            for v in [e["pos"], e["nrm"], e["uv"], e["ibo"], e["tex"], *e["vaos"].values()]:
                if v is not None:
                    v.release()

    def release(self) -> None:
        for attr in ("_mesh", "_grid", "_neural", "_points"):
            self._release(attr)
        for group in list(self._parts):
            self._release_parts(group)
        if self._hair is not None:
            self._hair.release()
            self._hair = None
        if self._fxaa is not None:
            self._fxaa.release()
            self._fxaa = None
        for f in self._fbos.values():
            for a in f.color_attachments:
                a.release()
            if f.depth_attachment:
                f.depth_attachment.release()
            f.release()
        self._fbos.clear()
        for vao in self._vaos.values():
            vao.release()
        self._vaos.clear()
        for p in self._progs.values():
            p.release()
        self._progs.clear()
        if self._texture is not None:
            self._texture.release()
        self._dummy3d.release()


def render_offscreen(width: int, height: int, camera: OrbitCamera | None = None, *,
                     mesh: tuple | None = None, texture: np.ndarray | None = None,
                     sdf: tuple | None = None, stages: list[dict] | None = None,
                     points: np.ndarray | None = None, samples: int = 0, hair=None,
                     parts: tuple | None = None, occlusion: np.ndarray | None = None,
                     **render_kwargs) -> np.ndarray:
    """One-shot headless render on the cached EGL context -> (H,W,4) uint8.

    mesh = (vertices, faces[, uvs]); sdf = (grid, lo, hi[, uv_grid]); stages for mode
    'neural'. With no camera, the default 3/4 camera framing the drawn object is used.
    hair = (core.head.hair.HairMesh, 53 weights or None[, head pose]) draws posed hair.
    parts = (list of PartMesh, their posed vertices, (N,4,4) carves or None), e.g.
    (head.parts, *head.pose(weights, head_pose)) for core.head.build.HeadParts.
    occlusion: the mesh's per-vertex ambient occlusion (core.render.occlusion), as the viewport's.
    """
    r = Renderer(headless_context(), samples=samples)
    try:
        if mesh is not None:
            r.set_mesh(*mesh, occlusion=occlusion)
        if texture is not None:
            r.set_texture(texture)
        if sdf is not None:
            r.set_sdf_grid(*sdf)
        if stages is not None:
            r.set_neural(stages)
        if points is not None:
            r.set_points(points)
        if parts is not None and parts[0]:
            r.set_parts("parts", parts[0])
            r.update_parts("parts", parts[1])
            r.set_carves(parts[2] if len(parts) > 2 else None)
        if hair is not None and hair[0] is not None:
            from core.head.hair import pose_hair

            r.set_hair(hair[0])
            r.update_hair(*pose_hair(*hair))
        if camera is None:
            camera = OrbitCamera().frame(*r.bounds(render_kwargs.get("mode", "mesh")))
        return r.render_image(width, height, camera, **render_kwargs)
    finally:
        r.release()
