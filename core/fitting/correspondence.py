"""Where each of MediaPipe's 468 face-mesh landmarks sits on the face model's template.

The table is calibrated, not hand-made: `calibrate()` photographs ICT FaceKit faces of random
identity, expression and pose (core.fitting.synthetic), runs the landmarker on each, lifts every
detected landmark onto the known surface through the depth buffer, pulls it back into the
model's template space and takes the per-landmark median. The spread of those template points
says how consistently the landmarker places each point; the fit weighs points by it.
`scripts/calibrate_landmarks.py` writes resources/models/landmark_correspondence.npz.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.paths import MODELS_DIR
from core.safeload import npz_load

DEFAULT_PATH = MODELS_DIR / "landmark_correspondence.npz"
CALIBRATION68_PATH = MODELS_DIR / "landmarks68_calibration.npz"
NUM_MESH_LANDMARKS = 468        # MediaPipe's face mesh without the 10 iris points
FORMAT = "likeness-landmark-correspondence-v1"


@dataclass
class Correspondence:
    template_points: np.ndarray   # (468, 3) template-space points (cm)
    spread: np.ndarray            # (468,) robust spread of the calibration points (cm)
    valid: np.ndarray             # (468,) share of calibration photos where the point hit the face
    meta: dict

    def weights(self, floor_cm: float = 0.15) -> np.ndarray:
        """Per-landmark fitting weight: consistent points count more, off-surface ones not at all."""
        w = 1.0 / (self.spread ** 2 + floor_cm ** 2)
        w = w / np.median(w)
        return np.where(self.valid > 0.5, w, 0.0).astype(np.float32)

    def save(self, path: str | Path = DEFAULT_PATH) -> Path:
        path = Path(path)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, template_points=self.template_points.astype(np.float32),
                            spread=self.spread.astype(np.float32), valid=self.valid.astype(np.float32),
                            meta=np.array(json.dumps({"format": FORMAT, **self.meta})))
        tmp.replace(path)
        return path


def load_correspondence(path: str | Path | None = None) -> Correspondence:
    p = Path(path) if path else DEFAULT_PATH
    if not p.is_file():
        raise FileNotFoundError(f"landmark correspondence table not found at {p}; "
                                f"rebuild it with `python scripts/calibrate_landmarks.py`")
    try:
        with npz_load(p, 16 << 20) as d:   # np.load after a zip-bomb check
            meta = json.loads(str(d["meta"]))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            pts, spread, valid = (np.asarray(d[k], np.float32) for k in ("template_points", "spread", "valid"))
        n = len(pts)
        if pts.shape != (n, 3) or spread.shape != (n,) or valid.shape != (n,) or not 0 < n <= 4096 \
                or not all(np.all(np.isfinite(a)) for a in (pts, spread, valid)):
            raise ValueError("arrays of the wrong shape or with non-finite values")
    except Exception as exc:  # zip/npy/JSON damage, missing keys: one clear message
        raise ValueError(f"{p} is not a readable landmark correspondence table ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); rebuild it with `python scripts/calibrate_landmarks.py`") from None
    return Correspondence(pts, spread, valid, meta)


def calibrate(model, data, tracker, photos: int = 120, seed: int = 0, size: int = 512,
              log: Callable[[str], None] = print) -> Correspondence:
    """Median template point of every MediaPipe landmark over `photos` synthetic ICT photos."""
    import cv2

    from core.facemodel.data import sample_expression
    from core.facemodel.geometry import MeshDistance

    from .camera import PinholeCamera
    from .synthetic import IctPhotographer

    rng = np.random.default_rng([seed, 31337])
    ph = IctPhotographer(data)
    pts = np.full((photos, NUM_MESH_LANDMARKS, 3), np.nan, np.float32)
    t0, used = time.time(), 0
    try:
        for i in range(photos):
            a = rng.standard_normal(100).astype(np.float32)
            w = sample_expression(rng) * rng.uniform(0, 1) if rng.random() < 0.6 else np.zeros(53, np.float32)
            cam = PinholeCamera.looking_at_head(size, size, yaw=rng.uniform(-35, 35), pitch=rng.uniform(-15, 15),
                                                roll=rng.uniform(-10, 10), distance=rng.uniform(50, 70),
                                                fov_y=rng.uniform(20, 40), offset=rng.uniform(-2, 2, 2))
            shot = ph.render(a, w, cam)
            faces = tracker.detect(cv2.cvtColor(shot.image, cv2.COLOR_RGB2BGR))
            if len(faces) != 1:
                continue
            lm = faces[0].landmarks[:NUM_MESH_LANDMARKS, :2]
            xi = np.clip(np.round(lm).astype(int), 0, size - 1)
            d = shot.depth[xi[:, 1], xi[:, 0]]
            hit = d < 1.0
            world = cam.unproject(lm[hit], d[hit])
            tp = model.template_points(world, model.encode_ict(a), w)
            pts[i, hit] = tp
            used += 1
            if (i + 1) % 20 == 0:
                log(f"calibration photo {i + 1}/{photos}: {used} usable, {time.time() - t0:.0f} s")
    finally:
        ph.close()
    valid = np.isfinite(pts[..., 0]).sum(0) / max(used, 1)
    med = np.nanmedian(np.where(np.isfinite(pts), pts, np.nan), axis=0)
    dev = np.linalg.norm(pts - med[None], axis=-1)
    spread = 1.4826 * np.nanmedian(dev, axis=0)
    # snap onto the template surface (the median of surface points lies slightly inside it)
    tm = model._template_mesh(128)
    _, snapped, _ = MeshDistance(tm["vt"], tm["faces"]).query(np.nan_to_num(med))
    meta = {"photos": photos, "usable": used, "seed": seed, "size": size,
            "seconds": round(time.time() - t0, 1), "median_spread_cm": float(np.nanmedian(spread))}
    log(f"calibrated on {used}/{photos} photos in {meta['seconds']} s; median spread "
        f"{meta['median_spread_cm'] * 10:.2f} mm")
    return Correspondence(snapped.astype(np.float32), np.nan_to_num(spread, nan=9.0).astype(np.float32),
                          valid.astype(np.float32), meta)


# ---------------------------------------------------------------------------------------------
# The 68 landmarks' annotation convention. The model's 68 points are ICT FaceKit's landmark
# vertices; photo annotations (300-W / iBUG) put brows, the mouth and above all the jaw contour
# elsewhere. From fits to annotated photos, learn a template offset per inner landmark and an
# offset of each jaw contour point in (outward, along-the-contour) directions.

def load_landmark_calibration(path: str | Path | None = None) -> dict | None:
    """{"offsets": (68, 3), "jaw": (17, 2), "meta": {...}} or None when absent (zero offsets)."""
    p = Path(path) if path else CALIBRATION68_PATH
    if not p.is_file():
        return None
    try:
        with npz_load(p, 16 << 20) as d:   # np.load after a zip-bomb check
            out = {"offsets": d["offsets"].astype(np.float32), "jaw": d["jaw"].astype(np.float32),
                   "meta": json.loads(str(d["meta"]))}
        if out["offsets"].shape != (68, 3) or out["jaw"].shape != (17, 2) or not isinstance(out["meta"], dict) \
                or not (np.all(np.isfinite(out["offsets"])) and np.all(np.isfinite(out["jaw"]))):
            raise ValueError("arrays of the wrong shape or with non-finite values")
    except Exception as exc:  # zip/npy/JSON damage, missing keys: one clear message
        raise ValueError(f"{p} is not a readable 68-landmark calibration ({type(exc).__name__}: "
                         f"{str(exc)[:200]}); rebuild it with `python scripts/calibrate_landmarks68.py`") from None
    return out


def save_landmark_calibration(calib: dict, path: str | Path | None = None) -> Path:
    p = Path(path) if path else CALIBRATION68_PATH
    tmp = p.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, offsets=np.asarray(calib["offsets"], np.float32),
                        jaw=np.asarray(calib["jaw"], np.float32), meta=np.array(json.dumps(calib.get("meta", {}))))
    tmp.replace(p)
    return p


def learn_landmark_calibration(fits: list, annotations: list[np.ndarray], focal_of=None,
                               ridge: float = 0.05, outlier_iod: float = 0.25) -> dict:
    """Least-squares calibration from uncalibrated fits (FitResult with raw_landmarks68 and
    geometry) and their (68, 2) annotations. Inner points: a template offset per landmark through
    the projection Jacobian (warp Jacobian taken as identity); jaw: median residual along the
    contour's outward and tangent directions, in inter-ocular units."""
    offsets = np.zeros((68, 3), np.float64)
    jaw = np.zeros((17, 2), np.float64)
    jaw_res: list[list[np.ndarray]] = [[] for _ in range(17)]
    ata = np.zeros((68, 3, 3))
    atb = np.zeros((68, 3))
    for fit, gt in zip(fits, annotations):
        g = fit.geometry
        iod = max(g["iod_px"], 1e-6)
        res = (np.asarray(gt, np.float64) - fit.raw_landmarks68) / iod
        # (68, 2, 3): pixels per unit template offset (warp Jacobian ~ identity), in IOD units
        jac = fit.camera.model_jacobian(g["lm68_camera"]) / iod / g.get("scale", 1.0)
        ok = np.linalg.norm(res, axis=1) < outlier_iod
        for k in range(17, 68):
            if ok[k]:
                ata[k] += jac[k].T @ jac[k]
                atb[k] += jac[k].T @ res[k]
        o = g["jaw_out"]
        along = np.stack([-o[:, 1], o[:, 0]], 1)
        for j in range(17):
            if ok[j]:
                jaw_res[j].append(np.array([res[j] @ o[j], res[j] @ along[j]]))
    n = max(len(fits), 1)
    for k in range(17, 68):
        lam = ridge * np.trace(ata[k]) / 3 + 1e-9
        offsets[k] = np.linalg.solve(ata[k] + lam * np.eye(3), atb[k])
    for j in range(17):
        if jaw_res[j]:
            jaw[j] = np.median(np.stack(jaw_res[j]), 0)
    return {"offsets": offsets.astype(np.float32), "jaw": jaw.astype(np.float32),
            "meta": {"photos": n, "ridge": ridge}}
