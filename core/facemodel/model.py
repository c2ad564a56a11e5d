"""FaceModel: the numpy-facing API over FaceNet (load, codes, SDF, meshes, animation, shaders)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from core.expressions import EXPRESSION_NAMES
from core.paths import MODELS_DIR
from core.safeload import torch_load

from core.meshops import decimate, grid_points, largest_parts, vertex_normals

from . import neck
from .mesh import Animator, Mesh, marching_cubes, split_seams
from .net import NUM_EXPRESSIONS, NUM_ICT_IDENTITY, FaceNet, FaceNetConfig

DEFAULT_PATH = MODELS_DIR / "face_model.pt"
FORMAT = "likeness-facemodel-v1"
_CHUNK = 32768


class ModelLoadError(FileNotFoundError):
    """The model file is missing or not a face model; the message says which and what to do."""


def _neck_cut(d: torch.Tensor, t: torch.Tensor, round_cm: float = 0.0) -> torch.Tensor:
    """Template SDF values `d` at template points `t` intersected with the half-space above the
    neck plane (core.facemodel.neck), so fields end in the same clean cut as meshes.

    `round_cm` > 0 rounds the rim's edge (polynomial smooth max): a sampled grid cannot hold a
    sharp crease, and trilinear interpolation of one turns a rim that meets the plane at a
    grazing angle into saw teeth; a bevel wider than two grid cells interpolates smoothly.
    The smooth max lifts the crease by round_cm / 4, so the rounded field's plane sits that much
    lower: its rim then meets the mesh's exact cut (mesh/SDF silhouette IoU 0.980 -> 0.991)."""
    n = torch.tensor(neck.NECK_NORMAL, dtype=t.dtype)
    below = neck.NECK_OFFSET - t @ n
    if round_cm <= 0:
        return torch.maximum(d, below)
    below = below - round_cm / 4
    h = (round_cm - (d - below).abs()).clamp(min=0) / round_cm
    return torch.maximum(d, below) + h * h * round_cm / 4


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


class FaceModel:
    def __init__(self, net: FaceNet, meta: dict | None = None):
        self.net = net.eval().float()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.meta = dict(meta or {})
        self._template_cache: dict[tuple[int, int], dict[str, np.ndarray]] = {}
        self._bake_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # --- files --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "FaceModel":
        p = Path(path) if path is not None else DEFAULT_PATH
        if not p.is_file():
            raise ModelLoadError(f"face model not found at {p}; train one with "
                                 f"`python main.py train-face-model` or restore resources/models/face_model.pt")
        try:
            blob = torch_load(p)
            if not isinstance(blob, dict) or blob.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            cfg = FaceNetConfig.from_dict(blob["config"])
            state = {k: v.float() for k, v in blob["state"].items()}
            # Build on the meta device first: a damaged config (a tiny voxel, a huge width) must
            # not allocate anything before its shapes are checked against the stored tensors.
            with torch.device("meta"):
                shapes = {k: tuple(v.shape) for k, v in FaceNet(cfg).state_dict().items()}
            if shapes != {k: tuple(v.shape) for k, v in state.items()}:
                raise ValueError("the stored tensors do not match the stored configuration")
            net = FaceNet(cfg)
            net.load_state_dict(state)
        except ModelLoadError:
            raise
        except Exception as exc:  # truncated file, pickle payload, wrong keys or shapes
            first = str(exc).splitlines()[0][:200] if str(exc) else "unreadable"
            raise ModelLoadError(f"{p} is not a readable face model ({type(exc).__name__}: {first}); "
                                 f"re-train with `python main.py train-face-model`") from exc
        return cls(net, blob.get("meta", {}))

    def save(self, path: str | os.PathLike, half: bool = True) -> int:
        """Write weights (float16 when `half`) + config; returns the file size in bytes."""
        # Small tensors (box scale, rest pose, landmarks, biases) stay float32: they are what
        # fixes positions to the last 0.01 mm and cost nothing.
        state = {k: (v.half() if half and v.is_floating_point() and v.numel() >= 4096 else v).contiguous()
                 for k, v in self.net.state_dict().items()}
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        torch.save({"format": FORMAT, "config": self.net.cfg.to_dict(), "state": state,
                    "meta": self.meta}, tmp)
        tmp.replace(p)
        return p.stat().st_size

    # --- shapes and codes ---------------------------------------------------------------------
    @property
    def identity_dim(self) -> int:
        return self.net.cfg.identity_dim

    @property
    def expression_names(self) -> tuple[str, ...]:
        return EXPRESSION_NAMES

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return _f32(self.net.cfg.lo), _f32(self.net.cfg.hi)

    @property
    def rest_expression(self) -> np.ndarray:
        """The pose of canonical space (lips slightly parted); expression=None means neutral."""
        return self.net.rest_expression.numpy().copy()

    def mean_identity(self) -> np.ndarray:
        return np.zeros(self.identity_dim, np.float32)

    def sample_identity(self, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """A draw from the Gaussian identity prior N(0, W W^T), scaled by `temperature`."""
        return self.encode_ict(rng.standard_normal(NUM_ICT_IDENTITY) * temperature)

    def encode_ict(self, coeffs: np.ndarray) -> np.ndarray:
        a = _f32(coeffs).reshape(-1)
        if a.shape[0] > NUM_ICT_IDENTITY:
            raise ValueError(f"expected at most {NUM_ICT_IDENTITY} ICT identity coefficients, got {a.shape[0]}")
        a = np.pad(a, (0, NUM_ICT_IDENTITY - a.shape[0]))  # missing trailing modes are zero
        with torch.no_grad():
            return self.net.encode_identity(torch.from_numpy(a)).numpy()

    def expression_code(self, weights: np.ndarray | None) -> np.ndarray:
        with torch.no_grad():
            return self.net.encode_expression(torch.from_numpy(self._weights(weights))).numpy()

    def _weights(self, expression: np.ndarray | None) -> np.ndarray:
        if expression is None:
            return np.zeros(NUM_EXPRESSIONS, np.float32)
        w = _f32(expression).reshape(-1)
        if w.shape[0] != NUM_EXPRESSIONS:
            raise ValueError(f"expected {NUM_EXPRESSIONS} expression weights, got {w.shape[0]}")
        return w

    def _codes(self, identity: np.ndarray, expression: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        z = _f32(identity).reshape(-1)
        if z.shape[0] != self.identity_dim:
            raise ValueError(f"expected an identity code of {self.identity_dim} values, got {z.shape[0]}")
        dw = self._weights(expression) - self.rest_expression
        return torch.from_numpy(z), torch.from_numpy(dw)

    # --- SDF ----------------------------------------------------------------------------------
    def sdf(self, points: np.ndarray, identity: np.ndarray, expression: np.ndarray | None = None) -> np.ndarray:
        """Signed distance (cm, negative inside) of face (identity, expression) at points (N, 3)."""
        z, dw = self._codes(identity, expression)
        x = torch.from_numpy(_f32(points).reshape(-1, 3))
        out = []
        with torch.no_grad():
            for i in range(0, len(x), _CHUNK):
                t = self.net.pull_back(x[i:i + _CHUNK], z, dw)
                out.append(_neck_cut(self.net.template_sdf(t), t))
        return torch.cat(out).numpy() if out else np.zeros(0, np.float32)

    def template_points(self, points: np.ndarray, identity: np.ndarray,
                        expression: np.ndarray | None = None) -> np.ndarray:
        """Where points of face (identity, expression) sit in the shared template space."""
        z, dw = self._codes(identity, expression)
        x = torch.from_numpy(_f32(points).reshape(-1, 3))
        with torch.no_grad():
            return torch.cat([self.net.pull_back(x[i:i + _CHUNK], z, dw)
                              for i in range(0, len(x), _CHUNK)]).numpy()

    def uv_at(self, points: np.ndarray, identity: np.ndarray, expression: np.ndarray | None = None) -> np.ndarray:
        """UV (N, 2) of surface points: the same template point gets the same UV for every face."""
        return self.template_uv(self.template_points(points, identity, expression))

    def template_uv(self, template_points: np.ndarray) -> np.ndarray:
        logits, uvs = self._template_fields(_f32(template_points))[2:]
        return uvs[np.arange(len(uvs)), logits.argmax(1)].clip(0, 1)

    def _template_fields(self, xt: np.ndarray) -> tuple[np.ndarray, ...]:
        outs = []
        with torch.no_grad():
            for i in range(0, len(xt), _CHUNK):
                outs.append([o.numpy() for o in self.net.fields(torch.from_numpy(xt[i:i + _CHUNK]))])
        return tuple(np.concatenate([o[k] for o in outs]) for k in range(4))

    # --- meshes -------------------------------------------------------------------------------
    def _template_mesh(self, resolution: int, max_triangles: int | None = None) -> dict[str, np.ndarray]:
        """Marching cubes of the template SDF + identity-independent fields at its vertices (cached).

        Tiny disconnected parts (sign specks near the neck cut) are dropped; `max_triangles`
        decimates once here, in template space, so every identity shares the lighter topology.
        """
        key = (int(resolution), int(max_triangles or 0))
        if key not in self._template_cache:
            lo, hi = self.bounds
            vt, faces = marching_cubes(self._template_grid(resolution), lo, hi)
            vt, faces = largest_parts(vt, faces)
            if max_triangles:
                vt, faces = decimate(vt, faces, max_triangles)
            vt, faces, cap_info = self._cut_neck(vt, faces)
            fid, fex, logits, uvs = self._template_fields(vt)
            # The cap's vertices follow a smooth blend of the rim's warp (core.facemodel.neck).
            rim, n_new, blend, n_cap = cap_info
            for a in (fid, fex, logits, uvs):
                a[-n_new:] = np.einsum("mr,r...->m...", blend, a[rim])
            # One UV chart per triangle (its corners' mean logits); vertices split along seams.
            tri_chart = logits[faces].mean(1).argmax(1)
            tri_chart[-n_cap:] = neck.CAP_CHART
            src, chart, new_faces = split_seams(faces, tri_chart, len(vt))
            cap = chart == neck.CAP_CHART
            # One skin colour on the cap: the UV of the rim's back-most point (neck skin).
            back = rim[np.argmin(vt[rim, 2])]
            cap_uv = uvs[back, logits[back].argmax()]
            uv = uvs[src, np.where(cap, 0, chart)]
            uv[cap] = cap_uv
            if len(self._template_cache) >= 3:  # viewport, export and evaluation meshes at most
                self._template_cache.pop(next(iter(self._template_cache)))
            self._template_cache[key] = dict(
                vt=vt, faces=faces, fid=fid.astype(np.float32), fex=fex.astype(np.float32),
                src=src, split_faces=new_faces, uv=uv.clip(0, 1).astype(np.float32),
                n_cap=n_cap, cap=cap)
        return self._template_cache[key]

    @staticmethod
    def _cut_neck(vt: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
        """Clip below the neck plane (core.facemodel.neck) and close the rim with a flat cap whose
        vertices come last; returns (vertices, faces with the cap's triangles last,
        (rim vertex ids, number of cap vertices, (cap, rim) blend weights, cap triangle count))."""
        vt, faces = neck.clip_mesh(vt, faces)
        vt, faces = largest_parts(vt, faces)
        rim = max(neck.boundary_loops(faces), key=len)
        new, cap, blend = neck.cap_mesh(vt, rim)
        return (np.concatenate([vt, new]), np.concatenate([faces, cap]),
                (rim, len(new), blend, len(cap)))

    def _template_grid(self, resolution: int) -> np.ndarray:
        pts = torch.from_numpy(grid_points(*self.bounds, resolution).reshape(-1, 3))
        with torch.no_grad():
            return self.net.template_sdf(pts).reshape(resolution, resolution, resolution).numpy()

    def extract_mesh(self, identity: np.ndarray, expression: np.ndarray | None = None,
                     resolution: int = 128, max_triangles: int | None = None) -> Mesh:
        """The zero level of sdf(., identity, expression) with per-vertex UVs and normals.

        `max_triangles` caps the triangle count by quadric decimation (the viewport uses it to
        keep a software rasteriser above 60 fps); None keeps the full marching-cubes mesh.

        Marching cubes runs once in template space (cached); the warp is linear in the codes, so
        the face's surface is that mesh mapped through it: t + F(t) z + G(t) (w - w_rest).
        """
        z, dw = self._codes(identity, expression)
        tm = self._template_mesh(int(resolution), max_triangles)
        v = tm["vt"] + np.einsum("vcd,d->vc", tm["fid"], z.numpy()) + np.einsum("vce,e->vc", tm["fex"], dw.numpy())
        # Normals of the skin without the cap, so the rim keeps a crisp edge; the cap's own copies
        # take the cap's normal.
        n_cap, cap, src = tm["n_cap"], tm["cap"], tm["src"]
        n = vertex_normals(v, tm["faces"][:-n_cap])[src]
        n[cap] = vertex_normals(v[src], tm["split_faces"][-n_cap:])[cap]
        return Mesh(v[src], tm["split_faces"], tm["uv"], n, template=tm["vt"][src],
                    expression=self._weights(expression).copy())

    def animator(self, mesh: Mesh, identity: np.ndarray) -> Animator:
        """Per-vertex animation of `mesh` (extracted for `identity`) under any 53 weights."""
        w0 = mesh.expression if mesh.expression is not None else np.zeros(NUM_EXPRESSIONS, np.float32)
        fex = self._cached_expression_field(mesh)
        if fex is None:
            xt = mesh.template if mesh.template is not None else self.template_points(mesh.vertices, identity, w0)
            fex = self._template_fields(_f32(xt))[1]               # (V, 3, 53)
        offsets = np.ascontiguousarray(fex.transpose(2, 0, 1))     # (53, V, 3)
        neutral = mesh.vertices - np.einsum("e,evc->vc", _f32(w0), offsets)
        return Animator(neutral, offsets)

    def _cached_expression_field(self, mesh: Mesh) -> np.ndarray | None:
        """The expression field at a mesh's vertices if it came from the cached template mesh."""
        if mesh.template is None:
            return None
        for tm in self._template_cache.values():
            if len(tm["src"]) == len(mesh.template) and np.array_equal(tm["vt"][tm["src"]], mesh.template):
                return tm["fex"][tm["src"]]
        return None

    def landmarks(self, identity: np.ndarray, expression: np.ndarray | None = None) -> np.ndarray:
        """The 68 Multi-PIE landmarks on the surface of face (identity, expression)."""
        z, dw = self._codes(identity, expression)
        with torch.no_grad():
            t = self.net.landmarks_template
            return (t + self.net.displacement(t, z, dw)).numpy().astype(np.float32)

    # --- volumes for rendering ----------------------------------------------------------------
    def _baked_displacement(self, z: torch.Tensor, dw: torch.Tensor, res: int = 48) -> torch.Tensor:
        """Displacement t -> Phi(t) - t on a coarse template-space grid (3, R, R, R) [z, y, x]."""
        if res not in self._bake_cache:
            pts = torch.from_numpy(grid_points(*self.bounds, res).reshape(-1, 3))
            with torch.no_grad():
                h = torch.cat([self.net.features(pts[i:i + _CHUNK]) for i in range(0, len(pts), _CHUNK)])
            self._bake_cache = {res: (h, pts)}
        h, _ = self._bake_cache[res]
        net = self.net
        with torch.no_grad():
            wid = net.head_id.weight.reshape(3, -1, h.shape[1])
            wex = net.head_ex.weight.reshape(3, NUM_EXPRESSIONS, h.shape[1])
            w = torch.einsum("cdh,d->ch", wid, z) + torch.einsum("ceh,e->ch", wex, dw)
            b = net.head_id.bias.reshape(3, -1) @ z + net.head_ex.bias.reshape(3, -1) @ dw
            d = h @ w.T + b
        return d.T.reshape(3, res, res, res)

    def _volume_template_points(self, identity, expression, resolution: int) -> torch.Tensor:
        """Template points of every node of an R^3 grid over the box, via the baked warp."""
        from .net import grid_sample3
        z, dw = self._codes(identity, expression)
        disp = self._baked_displacement(z, dw)
        x = torch.from_numpy(grid_points(*self.bounds, resolution).reshape(-1, 3))
        t = x.clone()
        with torch.no_grad():
            for _ in range(6):
                t = x - grid_sample3(disp, self.net.norm(t))
        return t

    def sdf_grid(self, identity: np.ndarray, expression: np.ndarray | None = None,
                 resolution: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """SDF sampled on an R^3 grid over bounds, indexed [z, y, x], for baked-SDF rendering.

        Uses a 48^3 bake of the warp, so it is a rendering approximation of sdf() (exact where
        the warp is smooth; within ~1 mm at the lips and eyelids).
        """
        t = self._volume_template_points(identity, expression, resolution)
        with torch.no_grad():
            lo, hi = self.bounds
            cell = float((hi - lo).max()) / (resolution - 1)
            g = torch.cat([_neck_cut(self.net.template_sdf(t[i:i + 262144]), t[i:i + 262144],
                                     round_cm=3.0 * cell) for i in range(0, len(t), 262144)])
        return g.reshape(resolution, resolution, resolution).numpy(), lo, hi

    def uv_grid(self, identity: np.ndarray, expression: np.ndarray | None = None,
                resolution: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """UV (R, R, R, 2) on the same grid layout as sdf_grid (meaningful near the surface)."""
        t = self._volume_template_points(identity, expression, resolution).numpy()
        lo, hi = self.bounds
        return self.template_uv(t).reshape(resolution, resolution, resolution, 2), lo, hi

    def shader_networks(self, identity: np.ndarray, expression: np.ndarray | None = None) -> list[dict]:
        """MLP stages that evaluate a compact distillation of sdf() in GLSL (see shader_spec.py)."""
        from .shader_spec import stages_from_net
        z, _ = self._codes(identity, expression)
        code = np.concatenate([z.numpy(), self.expression_code(expression)])
        stages = stages_from_net(self.net, code)
        stages[-1]["clip_plane"] = [*neck.NECK_NORMAL.tolist(), neck.NECK_OFFSET]  # the neck cut
        return stages
