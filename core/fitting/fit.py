"""Fit the implicit face model to one photo: camera, head pose, identity and expression.

The model's warp is linear in its codes, so any template point t lands at
    X(t) = t + F(t) W a + G(t) (w - w_rest)
for ICT identity coefficients a (prior N(0, I)) and 53 expression weights w. The fitter
evaluates F and G once at the points it needs (the 468 calibrated MediaPipe landmarks, the
model's 68 landmarks, jaw-contour candidates and the viewport mesh) and then optimises small
tensors with Adam, in three stages:

1. rigid: rotation and translation from MediaPipe's head pose, refined on the landmarks;
2. landmarks: pose, focal length, identity and expression on the landmarks (robust, weighted
   by how consistently the landmarker places each point), plus a silhouette term: the model's
   jaw contour (for each jaw landmark, the outermost point of a strip of surface around the
   jaw under the current pose) against the face outline the landmarker found;
3. photometric: the projected visible mesh samples the photo and is compared with the
   rendered model (a reference skin albedo under 2nd-order spherical-harmonic light fitted
   in closed form each step); gradients reach the geometry through the sample positions and
   the normals. Visibility comes from a depth map rasterised every few steps.
Priors: Gaussian on a, pull toward the landmarker's blendshape estimate on w (kept in [0, 1]),
log-normal on the focal length.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from core.facemodel import FaceModel

from .camera import PinholeCamera
from .correspondence import (NUM_MESH_LANDMARKS, Correspondence, load_correspondence,
                             load_landmark_calibration)

# MediaPipe face-mesh indices of the face outline, from the right ear over the chin to the
# left ear (image left to right for a frontal face), the part below the eyes.
MP_JAW_OUTLINE = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152,
                  377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356)
MP_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
                377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
MP_EYE_OUTER = (33, 263)          # outer eye corners: the image scale
JAW = tuple(range(17))            # Multi-PIE jaw landmarks, the contour-aware ones


class FitError(ValueError):
    """The photo cannot be fitted; the message is meant for the user."""


class FitCancelled(Exception):
    pass


@dataclass
class FitOptions:
    rigid_steps: int = 60
    landmark_steps: int = 220
    photo_steps: int = 100
    identity_prior: float = 2e-5      # x ||a||^2 against mean squared landmark error (IOD units)
    expression_prior: float = 2e-5    # pull toward the landmarker's blendshapes
    expression_l1: float = 1e-5
    focal_prior: float = 1e-3
    silhouette: float = 0.3
    photometric: float = 0.1
    pin_weight: float = 8.0
    robust_scale: float = 0.06        # IOD units: residuals beyond this count less


@dataclass
class FitResult:
    ict: np.ndarray                   # (100,) ICT identity coefficients
    identity: np.ndarray              # model identity code
    expression: np.ndarray            # (53,) weights
    camera: PinholeCamera
    landmarks68: np.ndarray           # (68, 2) the fitted model's landmarks in the photo
    targets: np.ndarray               # (468, 2) landmarker points that were fitted
    pins: dict[int, tuple[float, float]]
    image_size: tuple[int, int]       # (width, height) of the fitted image
    lighting: np.ndarray | None = None  # (9, 3) SH coefficients of the photo's light (linear RGB)
    losses: dict = field(default_factory=dict)
    seconds: float = 0.0
    raw_landmarks68: np.ndarray | None = None   # before the annotation-convention calibration
    geometry: dict = field(default_factory=dict)   # what landmark calibration needs


def rodrigues(r: torch.Tensor) -> torch.Tensor:
    theta = torch.sqrt((r * r).sum() + 1e-12)
    k = r / theta
    z = torch.zeros((), dtype=r.dtype)
    kx = torch.stack([torch.stack([z, -k[2], k[1]]), torch.stack([k[2], z, -k[0]]),
                      torch.stack([-k[1], k[0], z])])
    eye = torch.eye(3, dtype=r.dtype)
    return eye + torch.sin(theta) * kx + (1 - torch.cos(theta)) * (kx @ kx)


def axis_angle(rot: np.ndarray) -> np.ndarray:
    """Inverse of rodrigues for a rotation matrix."""
    rot = np.asarray(rot, np.float64)
    c = np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)
    theta = math.acos(c)
    if theta < 1e-6:
        return np.zeros(3)
    v = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    return v / (2 * math.sin(theta)) * theta


def sh9(n: torch.Tensor) -> torch.Tensor:
    """Real spherical-harmonic basis up to order 2 at unit normals (N, 3) -> (N, 9)."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    one = torch.ones_like(x)
    return torch.stack([0.886 * one, 1.023 * y, 1.023 * z, 1.023 * x, 0.858 * x * y, 0.858 * y * z,
                        0.248 * (3 * z * z - 1), 0.858 * x * z, 0.429 * (x * x - y * y)], 1)


def srgb_to_linear(c: torch.Tensor) -> torch.Tensor:
    return torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


class LinearPoints:
    """Template points with their identity and expression fields: positions for any codes."""

    def __init__(self, model: FaceModel, template_points: np.ndarray):
        net = model.net
        t = torch.from_numpy(np.ascontiguousarray(template_points, np.float32).reshape(-1, 3))
        with torch.no_grad():
            fid, fex = [], []
            for i in range(0, len(t), 16384):
                f = net.fields(t[i:i + 16384])
                fid.append(f[0])
                fex.append(f[1])
            fid, fex = torch.cat(fid), torch.cat(fex)
            # fold the identity encoder in: fields per ICT coefficient
            self.fa = torch.einsum("ncd,dk->nck", fid, net.id_encoder.weight)
        self.base = t
        self.fex = fex
        self.rest = net.rest_expression

    def __len__(self) -> int:
        return self.base.shape[0]

    def __call__(self, a: torch.Tensor, w: torch.Tensor, index=None) -> torch.Tensor:
        if index is None:
            return self.base + self.fa @ a + self.fex @ (w - self.rest)
        return self.base[index] + self.fa[index] @ a + self.fex[index] @ (w - self.rest)


def _jaw_strips(lm_template: np.ndarray, verts: np.ndarray, per_strip: int = 40,
                inward: float = 0.5, outward: float = 2.0, depth: float = 3.0) -> np.ndarray:
    """For each jaw landmark, template-mesh vertices on a strip that runs from it outward and
    back around the jaw: the one that projects outermost is on the silhouette.
    Returns (17, per_strip + 1, 3), the landmark first; short strips repeat their last point."""
    center = lm_template[17:68, :2].mean(0)   # brows, nose, eyes, mouth
    strips = []
    for j in JAW:
        p = lm_template[j]
        o = np.r_[p[:2] - center, 0.0]
        o /= np.linalg.norm(o) + 1e-9
        normal = np.cross(o, [0.0, 0.0, 1.0])
        normal /= np.linalg.norm(normal) + 1e-9
        d = verts - p
        sel = ((np.abs(d @ normal) < 0.3) & (d @ o > -inward) & (d @ o < outward)
               & (d[:, 2] < 0.5) & (d[:, 2] > -depth))
        idx = np.flatnonzero(sel)
        if len(idx) > per_strip:   # keep an even spread along depth
            idx = idx[np.argsort(d[idx, 2])][np.linspace(0, len(idx) - 1, per_strip).round().astype(int)]
        pts = np.vstack([p[None], verts[idx]])
        strips.append(np.vstack([pts, np.repeat(pts[-1:], per_strip + 1 - len(pts), 0)]))
    return np.stack(strips).astype(np.float32)


class FaceFitter:
    """Holds the precomputed fields; `fit()` is thread-safe per call (no shared mutable state
    besides the model's caches)."""

    def __init__(self, model: FaceModel | None = None, correspondence: Correspondence | None = None,
                 max_triangles: int = 30_000):
        self.model = model or FaceModel.load()
        self.corr = correspondence or load_correspondence()
        m = self.model
        tm = m._template_mesh(128, max_triangles)
        self.mesh_faces = tm["faces"]
        self.mesh_vt = tm["vt"]
        self.mesh_uv = None   # per-vertex UV of the unsplit mesh (from the split copy)
        uv = np.zeros((len(tm["vt"]), 2), np.float32)
        uv[tm["src"]] = tm["uv"]
        self.mesh_uv = uv
        lm68 = m.net.landmarks_template.numpy()
        self.lm68_template = lm68
        self.mp = LinearPoints(m, self.corr.template_points)
        self.mp_weight = torch.from_numpy(self.corr.weights())
        strips = _jaw_strips(lm68, tm["vt"])
        self.strip_shape = strips.shape[:2]
        self.strips = LinearPoints(m, strips.reshape(-1, 3))
        self.set_landmark_calibration(load_landmark_calibration())
        self.vertices = LinearPoints(m, tm["vt"])
        # photometric region: front of the face without eyes, brows and mouth
        v = tm["vt"]
        near_feature = np.zeros(len(v), bool)
        for rng_, r in ((range(36, 48), 1.0), (range(17, 27), 0.8), (range(48, 68), 0.7)):
            dd = np.linalg.norm(v[:, None] - lm68[None, list(rng_)], axis=-1).min(1)
            near_feature |= dd < r
        face_front = (v[:, 2] > lm68[:, 2].min() - 1.0) & (v[:, 1] > lm68[8, 1]) & (v[:, 1] < lm68[19, 1] + 3)
        self.skin_mask = face_front & ~near_feature

    def set_landmark_calibration(self, calib: dict | None) -> None:
        """Where the annotation convention of the 68 landmarks (300-W) sits relative to the
        model's landmark points: template offsets (68, 3) for the inner points and an offset of
        the jaw contour points in (outward, along) directions, in inter-ocular units (17, 2)."""
        calib = calib or {}
        self.lm68_offset = np.asarray(calib.get("offsets", np.zeros((68, 3))), np.float32)
        self.jaw_offset = torch.tensor(np.asarray(calib.get("jaw", np.zeros((17, 2))), np.float32))
        self.lm68 = LinearPoints(self.model, self.lm68_template + self.lm68_offset)

    # --- detection ------------------------------------------------------------------------
    @staticmethod
    def detect(image_rgb: np.ndarray, tracker=None, min_face_px: int = 20, method: str = "blazeface",
               detail: np.ndarray | None = None):
        """Faces in the photo, largest first. Raises FitError when there is none usable.
        "blazeface": full-range detector (tiled) + landmarker on upright crops (core.fitting.detect);
        "landmarker": the landmarker alone on the whole photo (the earlier method, for comparison).
        `detail`: the same photo at a higher resolution (a big photo is fitted reduced): faces are
        found and landmarked on its pixels, then given in `image_rgb`'s; a face 40 pixels wide in
        the original would be under 30 after the reduction, too few for the detector."""
        import cv2

        from core.tracking import FaceTracker

        from .detect import DetectorError, find_faces
        own = tracker is None
        tracker = tracker or FaceTracker(num_faces=6, min_detection=0.5, min_presence=0.5)
        try:
            if method == "landmarker":
                faces = tracker.detect(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
            else:
                try:
                    if detail is not None and detail.shape[1] > image_rgb.shape[1]:
                        from .detect import rescale_face
                        k = image_rgb.shape[1] / detail.shape[1]
                        faces = [rescale_face(f, k) for f in find_faces(detail, tracker, min_face=min_face_px / k)]
                    else:
                        faces = find_faces(image_rgb, tracker, min_face=min_face_px)
                except DetectorError as exc:
                    raise FitError(str(exc)) from exc
        finally:
            if own:
                tracker.close()
        faces.sort(key=lambda f: -f.box[2] * f.box[3])
        if not faces:
            raise FitError("No face was found in the photo. Use a photo where a face is clearly "
                           "visible and not heavily occluded.")
        big = [f for f in faces if max(f.box[2], f.box[3]) >= min_face_px]
        if not big:
            raise FitError(f"The face in the photo is too small ({max(faces[0].box[2:]):.0f} pixels across); "
                           f"at least {min_face_px} pixels are needed. Use a closer or larger photo.")
        return big

    # --- fitting --------------------------------------------------------------------------
    def fit(self, *args, **kwargs) -> FitResult:
        """Fit to `face` (a TrackedFace from detect()); see _fit for the arguments. Runs torch
        on one thread: the tensors are small, and a second thread only adds synchronisation
        (and stalls badly when another process has the other core)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._fit(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, image_rgb: np.ndarray, face, pins: dict[int, tuple[float, float]] | None = None,
            options: FitOptions | None = None, progress: Callable[[float, str], None] | None = None,
            cancel: Callable[[], bool] | None = None, initial: FitResult | None = None) -> FitResult:
        """Fit to `face` (a TrackedFace from detect()). `pins` maps Multi-PIE landmark index ->
        pixel position the user placed it at; pinned points override the landmarker there."""
        t_start = time.perf_counter()
        opt = options or FitOptions()
        pins = dict(pins or {})
        h, w = image_rgb.shape[:2]
        report = progress or (lambda f, s: None)
        check = cancel or (lambda: False)

        tgt = torch.from_numpy(face.landmarks[:NUM_MESH_LANDMARKS, :2].astype(np.float32))
        iod = float(np.linalg.norm(face.landmarks[MP_EYE_OUTER[0], :2] - face.landmarks[MP_EYE_OUTER[1], :2]))
        scale = max(iod, 1e-3)
        outline = tgt[list(MP_JAW_OUTLINE)]
        pin_idx = torch.tensor(sorted(pins), dtype=torch.long)
        pin_xy = torch.tensor([pins[k] for k in sorted(pins)], dtype=torch.float32).reshape(-1, 2)
        cx, cy = w / 2.0, h / 2.0

        # --- initial state: MediaPipe's head pose, mean face, its blendshapes
        f0 = 1.4 * max(w, h)
        if initial is not None:
            a = torch.tensor(initial.ict, dtype=torch.float32)
            wexp = torch.tensor(initial.expression, dtype=torch.float32)
            r = torch.tensor(axis_angle(initial.camera.rotation), dtype=torch.float32)
            tr = torch.tensor(initial.camera.translation, dtype=torch.float32)
            logf = torch.tensor(math.log(initial.camera.focal / f0), dtype=torch.float32)
        else:
            a = torch.zeros(100)
            wexp = torch.from_numpy(np.clip(face.weights, 0, 1).astype(np.float32))
            m = np.asarray(face.matrix, np.float64)[:3, :3]
            u, _, vt = np.linalg.svd(m)
            r = torch.tensor(axis_angle(u @ vt), dtype=torch.float32)
            logf = torch.zeros(())
            with torch.no_grad():
                p = self.mp(a, wexp) @ rodrigues(r).T
            # depth from the landmark spread, then x/y from the centroid
            spread_px = float(tgt.std(0).norm())
            spread_cm = float(p[:, :2].std(0).norm())
            d = f0 * spread_cm / max(spread_px, 1e-3)
            mc = tgt.mean(0)
            tr = torch.tensor([(float(mc[0]) - cx) * d / f0 - float(p[:, 0].mean()),
                               -(float(mc[1]) - cy) * d / f0 - float(p[:, 1].mean()), -d], dtype=torch.float32)
        w_prior = torch.from_numpy(np.clip(face.weights, 0, 1).astype(np.float32))

        def project(x: torch.Tensor, rot: torch.Tensor, t: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
            xc = x @ rot.T + t
            dz = (-xc[:, 2]).clamp(min=1.0)
            return torch.stack([cx + f * xc[:, 0] / dz, cy - f * xc[:, 1] / dz], 1), xc

        def robust(e2: torch.Tensor) -> torch.Tensor:
            c2 = opt.robust_scale ** 2
            return 2 * c2 * (torch.sqrt(1 + e2 / c2) - 1)

        def model68(a_, w_, rot, t, f, raw: bool = False) -> torch.Tensor:
            """The model's 68 landmarks in the photo; the jaw ones on the contour (the outermost
            point of each strip) moved by the calibrated jaw offset unless `raw`."""
            px, _ = project(self.lm68(a_, w_), rot, t, f)
            sp, _ = project(self.strips(a_, w_), rot, t, f)
            sp = sp.reshape(*self.strip_shape, 2)
            with torch.no_grad():
                center = px[17:].mean(0)
                o = sp[:, 0] - center
                o = o / o.norm(dim=1, keepdim=True).clamp(min=1e-6)
                pick = torch.argmax(((sp - center) * o[:, None]).sum(-1), 1)
            jaw = sp[torch.arange(len(JAW)), pick]
            if not raw:
                along = torch.stack([-o[:, 1], o[:, 0]], 1)
                iod_px = (px[45] - px[36]).norm().detach()
                jaw = jaw + (self.jaw_offset[:, :1] * o + self.jaw_offset[:, 1:] * along) * iod_px
            return torch.cat([jaw, px[17:]])

        def outline_distance(p: torch.Tensor) -> torch.Tensor:
            """Squared distance of points (N, 2) to the landmarker's jaw outline polyline."""
            a0, b0 = outline[:-1], outline[1:]
            ab = b0 - a0
            tt = (((p[:, None] - a0[None]) * ab[None]).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-6)).clamp(0, 1)
            q = a0[None] + tt[..., None] * ab[None]
            return ((p[:, None] - q) ** 2).sum(-1).min(1).values

        losses: dict[str, float] = {}
        total_steps = opt.rigid_steps + opt.landmark_steps + opt.photo_steps
        step_no = 0

        def landmark_loss(a_, w_, r_, t_, lf_, with_shape: bool) -> torch.Tensor:
            rot, f = rodrigues(r_), f0 * torch.exp(lf_)
            px, _ = project(self.mp(a_, w_), rot, t_, f)
            e2 = ((px - tgt) ** 2).sum(1) / scale ** 2
            loss = (self.mp_weight * robust(e2)).sum() / self.mp_weight.sum()
            if len(pin_idx) or (with_shape and opt.silhouette > 0):
                m68 = model68(a_, w_, rot, t_, f)
                if len(pin_idx):
                    loss = loss + opt.pin_weight * (((m68[pin_idx] - pin_xy) ** 2).sum(1) / scale ** 2).mean()
                if with_shape and opt.silhouette > 0:
                    free = [j for j in JAW if j not in pins]
                    if free:
                        loss = loss + opt.silhouette * robust(outline_distance(m68[free]) / scale ** 2).mean()
            loss = loss + opt.focal_prior * lf_ ** 2
            if with_shape:
                loss = (loss + opt.identity_prior * (a_ ** 2).sum()
                        + opt.expression_prior * ((w_ - w_prior) ** 2).sum() + opt.expression_l1 * w_.abs().sum())
            return loss

        # --- stage 1: rigid
        r, tr = r.clone().requires_grad_(True), tr.clone().requires_grad_(True)
        adam = torch.optim.Adam([{"params": [r], "lr": 0.02}, {"params": [tr], "lr": 0.5}])
        for i in range(opt.rigid_steps):
            adam.zero_grad()
            loss = landmark_loss(a, wexp, r, tr, logf, False)
            loss.backward()
            adam.step()
            step_no += 1
            if i % 20 == 0:
                report(step_no / total_steps, "fitting head pose")
                if check():
                    raise FitCancelled()
        losses["rigid"] = float(loss.detach())

        # --- stage 2: landmarks + silhouette, everything free
        a = a.clone().requires_grad_(True)
        wexp = wexp.clone().requires_grad_(True)
        logf = logf.clone().requires_grad_(True)
        groups = [{"params": [r], "lr": 0.01}, {"params": [tr], "lr": 0.3}, {"params": [logf], "lr": 0.02},
                  {"params": [a], "lr": 0.05}, {"params": [wexp], "lr": 0.02}]
        adam = torch.optim.Adam(groups)
        base_lr = [g["lr"] for g in groups]
        for i in range(opt.landmark_steps):
            k = 0.5 * (1 + math.cos(math.pi * i / opt.landmark_steps))
            for g, lr in zip(adam.param_groups, base_lr):
                g["lr"] = lr * (0.1 + 0.9 * k)
            adam.zero_grad()
            loss = landmark_loss(a, wexp, r, tr, logf, True)
            loss.backward()
            adam.step()
            with torch.no_grad():
                wexp.clamp_(0, 1)
            step_no += 1
            if i % 20 == 0:
                report(step_no / total_steps, "fitting shape and expression")
                if check():
                    raise FitCancelled()
        losses["landmarks"] = float(loss.detach())

        # --- stage 3: photometric refinement
        lighting = None
        if opt.photo_steps > 0 and opt.photometric > 0:
            def tick(i: int) -> None:
                if i % 20 == 0:
                    report((step_no + i) / total_steps, "fitting shading")
                    if check():
                        raise FitCancelled()
            lighting = self._photometric(image_rgb, a, wexp, r, tr, logf, f0, cx, cy, landmark_loss, opt,
                                         tick, losses)
        with torch.no_grad():
            rot, f = rodrigues(r), f0 * torch.exp(logf)
            lm_px = model68(a, wexp, rot, tr, f).numpy()
            raw_px = model68(a, wexp, rot, tr, f, raw=True).numpy()
            lm_cam = (self.lm68(a, wexp) @ rot.T + tr).numpy()
            o = raw_px[:17] - lm_px[17:].mean(0)
            o /= np.linalg.norm(o, axis=1, keepdims=True) + 1e-9
            geometry = {"lm68_camera": lm_cam, "jaw_out": o, "iod_px": float(np.linalg.norm(lm_px[45] - lm_px[36]))}
        a_np = a.detach().numpy().astype(np.float32)
        cam = PinholeCamera(w, h, float(f), rot.numpy().astype(np.float64), tr.detach().numpy().astype(np.float64))
        report(1.0, "fitted")
        return FitResult(ict=a_np, identity=self.model.encode_ict(a_np), expression=wexp.detach().numpy().copy(),
                         camera=cam, landmarks68=lm_px.astype(np.float32), targets=tgt.numpy(), pins=pins,
                         image_size=(w, h), lighting=lighting, losses=losses, raw_landmarks68=raw_px, geometry=geometry,
                         seconds=time.perf_counter() - t_start)

    def _photometric(self, image_rgb, a, wexp, r, tr, logf, f0, cx, cy, landmark_loss, opt, tick, losses):
        """Shading term on the visible skin; returns the fitted SH light (9, 3)."""
        from .raster import camera_depth
        h, w = image_rgb.shape[:2]
        img = srgb_to_linear(torch.from_numpy(np.array(image_rgb, np.float32)) / 255.0).permute(2, 0, 1)[None]
        albedo_ref = _reference_albedo(self.mesh_uv)
        faces = torch.from_numpy(self.mesh_faces.astype(np.int64))
        # pose stays where the landmarks put it: shading refines the shape (identity) and,
        # gently, the expression
        adam = torch.optim.Adam([{"params": [a], "lr": 0.01}, {"params": [wexp], "lr": 0.003}])
        light = None
        for i in range(opt.photo_steps):
            if i % 20 == 0:   # visibility from a depth map of the current fit
                with torch.no_grad():
                    rot = rodrigues(r)
                    f = float(f0 * torch.exp(logf))
                    vc = (self.vertices(a, wexp) @ rot.T + tr).numpy()
                    cam = PinholeCamera(w, h, f, np.eye(3), np.zeros(3))
                    zbuf = camera_depth(cam, vc, self.mesh_faces)
                    n = _vertex_normals(torch.from_numpy(vc), faces)
                    px = cam.project(vc)   # vc is in camera space: cam has R = I, t = 0
                    xi = np.clip(np.round(px).astype(int), [0, 0], [w - 1, h - 1])
                    inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
                    visible = inside & (np.abs(zbuf[xi[:, 1], xi[:, 0]] - vc[:, 2]) < 0.3)
                    facing = (n.numpy() * -vc / np.linalg.norm(vc, axis=1, keepdims=True)).sum(1) > 0.35
                    vis = np.flatnonzero(visible & facing & self.skin_mask)
                    # only the triangles around the visible skin take part (normals stay exact)
                    sub_faces = self.mesh_faces[np.isin(self.mesh_faces, vis).any(1)]
                    sub_v = np.unique(sub_faces)
                    remap = np.full(len(self.mesh_vt), -1, np.int64)
                    remap[sub_v] = np.arange(len(sub_v))
                    local_faces = torch.from_numpy(remap[sub_faces])
                    sub_idx = torch.from_numpy(sub_v)
                    local_vis = torch.from_numpy(remap[vis])
                    rho = albedo_ref[torch.from_numpy(vis)]
                if len(vis) < 200:
                    break
            tick(i)
            adam.zero_grad()
            with torch.no_grad():   # the pose is fixed in this stage
                rot, f = rodrigues(r), f0 * torch.exp(logf)
            vc = self.vertices(a, wexp, sub_idx) @ rot.T + tr
            n = _vertex_normals(vc, local_faces)[local_vis]
            p = vc[local_vis]
            dz = (-p[:, 2]).clamp(min=1.0)
            u = cx + f * p[:, 0] / dz
            vv = cy - f * p[:, 1] / dz
            grid = torch.stack([u / w * 2 - 1, vv / h * 2 - 1], 1)[None, None]
            obs = torch.nn.functional.grid_sample(img, grid, align_corners=False)[0, :, 0].T   # (N, 3)
            basis = sh9(n)
            # closed-form light: obs ~ rho * (basis @ L), per channel
            design = basis[:, :, None] * rho[:, None, :]          # (N, 9, 3)
            lights = []
            for c in range(3):
                A = design[:, :, c]
                lights.append(torch.linalg.solve(A.T @ A + 1e-3 * torch.eye(9), A.T @ obs[:, c]))
            light = torch.stack(lights, 1)                        # (9, 3)
            pred = rho * (basis @ light)
            photo = torch.sqrt(((pred - obs) ** 2).sum(1) + 1e-4).mean()
            loss = landmark_loss(a, wexp, r, tr, logf, True) + opt.photometric * photo
            loss.backward()
            adam.step()
            with torch.no_grad():
                wexp.clamp_(0, 1)
        if light is not None:
            losses["photometric"] = float(photo.detach())
            return light.detach().numpy().astype(np.float32)
        return None


def _vertex_normals(v: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    t = v[faces]
    fn = torch.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0], dim=1)
    n = torch.zeros_like(v).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, 0))
    return n / n.norm(dim=1, keepdim=True).clamp(min=1e-9)


_ALBEDO_CACHE: dict[int, torch.Tensor] = {}


def _reference_albedo(uv: np.ndarray) -> torch.Tensor:
    """Linear-RGB albedo of the default skin texture at per-vertex UVs (the photometric prior)."""
    key = id(uv)
    if key not in _ALBEDO_CACHE:
        from core.render.renderer import default_texture
        tex = default_texture().astype(np.float32) / 255.0
        th, tw = tex.shape[:2]
        xi = np.clip((uv[:, 0] * (tw - 1)).round().astype(int), 0, tw - 1)
        yi = np.clip(((1 - uv[:, 1]) * (th - 1)).round().astype(int), 0, th - 1)
        c = tex[yi, xi, :3]
        _ALBEDO_CACHE.clear()
        _ALBEDO_CACHE[key] = srgb_to_linear(torch.from_numpy(c))
    return _ALBEDO_CACHE[key]
