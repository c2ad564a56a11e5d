"""Measured fitting quality: landmark error on annotated photos, surface error on synthetic ones.

Annotated photos: a folder of NAME.jpg|png + NAME.pts (68 points, Multi-PIE order, as in
../shared/faces68). The error of a photo is the mean distance of the fitted model's 68
landmarks to the annotation divided by the outer-eye-corner distance (points 36 and 45);
a photo whose error is above 10% counts as a failure. When a photo holds several faces, the
one whose box best overlaps the annotation's is fitted (the annotation says which face is
meant); a photo where it is not found counts as a failure.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .fit import FaceFitter, FitError, FitOptions, FitResult
from .photo import PhotoError

FAILURE_NME = 0.10
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_pts(path: str | Path) -> np.ndarray:
    """68 'x y' points from a .pts file (plain rows, or the iBUG version/n_points/{ } format)."""
    rows = []
    for line in Path(path).read_text().splitlines():
        parts = line.replace(",", " ").split()
        if len(parts) == 2:
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except ValueError:
                continue
    if len(rows) != 68:
        raise ValueError(f"{path}: expected 68 points, found {len(rows)}")
    return np.array(rows, np.float64)


def annotated_photos(folder: str | Path) -> list[tuple[str, Path, Path]]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of NAME.jpg + NAME.pts files")
    out = []
    for img in sorted(folder.iterdir()):
        if img.suffix.lower() in IMAGE_SUFFIXES and img.with_suffix(".pts").is_file():
            out.append((img.stem, img, img.with_suffix(".pts")))
    if not out:
        raise FileNotFoundError(f"{folder} holds no NAME.jpg/.png with a matching NAME.pts")
    return out


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    iod = np.linalg.norm(gt[36] - gt[45])
    return float(np.linalg.norm(pred - gt, axis=1).mean() / max(iod, 1e-9))


@dataclass
class PhotoFit:
    name: str
    fit: FitResult | None
    gt: np.ndarray
    seconds: float
    error: str = ""


def annotated_face(faces: list, gt: np.ndarray, scale: float = 1.0, min_iou: float = 0.2):
    """The detected face the annotation means: the best overlap of a face's box (its detection
    box or its landmark extent) with the box of the 68 points; None when none overlaps enough
    (the annotated face was not found)."""
    from core.tracking.ids import iou
    lo, hi = gt.min(0) * scale, gt.max(0) * scale
    ref = (float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))

    def overlap(f) -> float:
        det = f.extra.get("detection")
        return max(iou(f.box, ref), iou(det.box, ref) if det is not None else 0.0)
    best = max(faces, key=overlap, default=None)
    return best if best is not None and overlap(best) >= min_iou else None


def fit_annotated(fitter: FaceFitter, folder: str | Path, options: FitOptions | None = None,
                  limit: int | None = None, tracker=None, method: str = "blazeface",
                  log: Callable[[str], None] = print) -> list[PhotoFit]:
    """Fit every annotated photo (the face the annotation marks when there are several; a
    photo where that face is not found is a failure); time per photo covers reading,
    detection and fitting. `method` is FaceFitter.detect's."""
    from core.tracking import FaceTracker
    own = tracker is None
    tracker = tracker or FaceTracker(num_faces=6)
    out = []
    try:
        for i, (name, img_path, pts_path) in enumerate(annotated_photos(folder)[:limit]):
            gt = read_pts(pts_path)
            t0 = time.perf_counter()
            try:
                from .pipeline import detect_faces
                img, scale, faces = detect_faces(img_path, fitter, tracker=tracker, method=method)
                face = annotated_face(faces, gt, scale)
                if face is None:
                    raise FitError(f"the annotated face was not among the {len(faces)} face(s) found")
                fit = fitter.fit(img, face, options=options)
                if scale != 1.0:   # back to the annotation's pixels
                    fit.landmarks68 = fit.landmarks68 / scale
                    fit.raw_landmarks68 = fit.raw_landmarks68 / scale
                    fit.geometry["iod_px"] /= scale
                fit.geometry["scale"] = scale
                out.append(PhotoFit(name, fit, gt, time.perf_counter() - t0))
            except (FitError, PhotoError) as exc:
                out.append(PhotoFit(name, None, gt, time.perf_counter() - t0, str(exc)))
            if (i + 1) % 10 == 0:
                log(f"fitted {i + 1} photos")
    finally:
        if own:
            tracker.close()
    return out


def summarize(fits: list[PhotoFit], landmarks: Callable[[PhotoFit], np.ndarray] | None = None) -> dict:
    """Mean NME, failure rate (a photo that could not be fitted is a failure), time per photo."""
    get = landmarks or (lambda pf: pf.fit.landmarks68)
    errs = np.array([nme(get(pf), pf.gt) if pf.fit is not None else np.inf for pf in fits])
    finite = errs[np.isfinite(errs)]
    return {"photos": len(fits), "fitted": int(np.isfinite(errs).sum()),
            "found_rate": float(np.isfinite(errs).mean()) if len(fits) else float("nan"),
            "nme_mean": float(finite.mean()) if len(finite) else float("nan"),
            "nme_median": float(np.median(finite)) if len(finite) else float("nan"),
            "failure_rate": float((errs > FAILURE_NME).mean()),
            "seconds_per_photo": float(np.mean([pf.seconds for pf in fits]))}


def cross_validated_landmarks(fits: list[PhotoFit], folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Each photo's calibrated 68 landmarks with a calibration learned without that photo."""
    from .correspondence import learn_landmark_calibration
    ok = [i for i, pf in enumerate(fits) if pf.fit is not None]
    order = np.random.default_rng(seed).permutation(ok)
    out: list[np.ndarray | None] = [None] * len(fits)
    for k in range(folds):
        test = set(order[k::folds].tolist())
        train = [i for i in ok if i not in test]
        calib = learn_landmark_calibration([fits[i].fit for i in train], [fits[i].gt for i in train])
        for i in test:
            out[i] = apply_landmark_calibration(fits[i].fit, calib)
    return out


def apply_landmark_calibration(fit: FitResult, calib: dict) -> np.ndarray:
    """A raw (uncalibrated) fit's 68 landmarks under `calib`, to first order (as learned)."""
    g = fit.geometry
    jac = fit.camera.model_jacobian(g["lm68_camera"])
    out = fit.raw_landmarks68.astype(np.float64).copy()
    out[17:] += np.einsum("kij,kj->ki", jac[17:], calib["offsets"][17:].astype(np.float64)) / g.get("scale", 1.0)
    o = g["jaw_out"]
    along = np.stack([-o[:, 1], o[:, 0]], 1)
    j = calib["jaw"].astype(np.float64)
    out[:17] += (j[:, :1] * o + j[:, 1:] * along) * g["iod_px"]
    return out


SYNTHETIC_STREAM = 515151   # spawn key of the synthetic fitting benchmark (not the calibration's)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt))
    r = u @ d @ vt
    s = float(np.trace(np.diag(sig) @ d) / (a ** 2).sum(1).mean()) if with_scale else 1.0
    return s, r, md - s * r @ ms


def align_to_gt(data, gt: np.ndarray, vertices: np.ndarray, iterations: int = 6,
                with_scale: bool = True) -> np.ndarray:
    """ICP of a predicted head onto the GT skin over the ICT face region (similarity when
    with_scale: a single photo does not fix the head's absolute size or distance)."""
    from core.facemodel.geometry import MeshDistance
    md = MeshDistance(gt, data.topo.tris)
    v = vertices.astype(np.float64)
    sub = v[:: max(1, len(v) // 6000)]
    for _ in range(iterations):
        dist, cp, tri = md.query(sub)
        keep = data.topo.tri_face[tri] & (dist < max(1.0, np.percentile(dist, 90)))
        s, r, t = umeyama(sub[keep], cp[keep], with_scale)
        v = s * v @ r.T + t
        sub = s * sub @ r.T + t
    return v


def synthetic_surface(fitter: FaceFitter, data, samples: int = 20, seed: int = 0, size: int = 512,
                      options: FitOptions | None = None, tracker=None,
                      log: Callable[[str], None] = print) -> dict:
    """Fit photos rendered from ICT identities/expressions/poses drawn from a stream nothing
    else uses; surface error (mm, both ways over the ICT face region) of the fitted face in the
    head's own frame, beside the mean face's (identity 0, neutral) as the baseline."""
    from core.facemodel.data import sample_expression
    from core.facemodel.evaluate import surface_distances
    from core.tracking import FaceTracker

    from .camera import PinholeCamera
    from .synthetic import IctPhotographer

    rng = np.random.default_rng([seed, SYNTHETIC_STREAM])
    own = tracker is None
    tracker = tracker or FaceTracker(num_faces=2)
    ph = IctPhotographer(data)
    model = fitter.model
    mean_mesh = model.extract_mesh(model.mean_identity(), None, 128)
    fitted, baseline, raw, secs, missed = [], [], [], [], 0
    try:
        for i in range(samples):
            a = rng.standard_normal(100).astype(np.float32)
            w = sample_expression(rng) * np.float32(rng.uniform(0.3, 1.0))
            cam = PinholeCamera.looking_at_head(size, size, yaw=rng.uniform(-30, 30), pitch=rng.uniform(-12, 12),
                                                roll=rng.uniform(-8, 8), distance=rng.uniform(50, 65),
                                                fov_y=rng.uniform(22, 35))
            shot = ph.render(a, w, cam)
            t0 = time.perf_counter()
            try:
                faces = fitter.detect(shot.image, tracker)
            except FitError:
                missed += 1
                continue
            fit = fitter.fit(shot.image, faces[0], options=options)
            secs.append(time.perf_counter() - t0)
            mesh = model.extract_mesh(fit.identity, fit.expression, 128)
            gt = shot.vertices
            d = surface_distances(data, gt, mesh.vertices, mesh.faces, np.random.default_rng(i))
            b = surface_distances(data, gt, mean_mesh.vertices, mean_mesh.faces, np.random.default_rng(i))
            da = surface_distances(data, gt, align_to_gt(data, gt, mesh.vertices), mesh.faces,
                                   np.random.default_rng(i))
            ba = surface_distances(data, gt, align_to_gt(data, gt, mean_mesh.vertices), mean_mesh.faces,
                                   np.random.default_rng(i))
            raw.append((d.mean() * 10.0, b.mean() * 10.0))
            fitted.append(da * 10.0)
            baseline.append(ba * 10.0)
            if (i + 1) % 5 == 0:
                log(f"synthetic {i + 1}/{samples}: fitted {np.mean([x.mean() for x in fitted]):.2f} mm, "
                    f"mean face {np.mean([x.mean() for x in baseline]):.2f} mm")
    finally:
        ph.close()
        if own:
            tracker.close()
    per_f = np.array([x.mean() for x in fitted])
    per_b = np.array([x.mean() for x in baseline])
    raw_a = np.array(raw).reshape(-1, 2)
    return {"samples": samples, "detected": len(fitted), "missed": missed, "alignment": "similarity ICP",
            "surface_mean_mm": float(per_f.mean()) if len(per_f) else float("nan"),
            "surface_p95_mm": float(np.percentile(np.concatenate(fitted), 95)) if fitted else float("nan"),
            "baseline_mean_face_mm": float(per_b.mean()) if len(per_b) else float("nan"),
            "better_than_baseline": float((per_f < per_b).mean()) if len(per_f) else float("nan"),
            "unaligned_surface_mean_mm": float(raw_a[:, 0].mean()) if len(raw_a) else float("nan"),
            "unaligned_baseline_mm": float(raw_a[:, 1].mean()) if len(raw_a) else float("nan"),
            "seconds_per_fit": float(np.mean(secs)) if secs else float("nan")}


def calibration_study(fitter: FaceFitter, folder: str | Path, options: FitOptions | None = None,
                      folds: int = 5, log: Callable[[str], None] = print) -> dict:
    """Fit the folder without any landmark-convention calibration, then report the error raw,
    cross-validated (each photo with a calibration learned on the other folds: the honest
    figure), and with a calibration learned on all photos (returned as "calibration")."""
    from .correspondence import learn_landmark_calibration
    saved = (fitter.lm68_offset.copy(), fitter.jaw_offset.clone())
    fitter.set_landmark_calibration(None)
    try:
        fits = fit_annotated(fitter, folder, options=options, log=log)
    finally:
        fitter.set_landmark_calibration({"offsets": saved[0], "jaw": saved[1].numpy()})
    ok = [pf for pf in fits if pf.fit is not None]
    cv = cross_validated_landmarks(fits, folds=folds)
    calib = learn_landmark_calibration([pf.fit for pf in ok], [pf.gt for pf in ok])
    idx = {id(pf): i for i, pf in enumerate(fits)}
    return {"fits": fits, "calibration": calib,
            "raw": summarize(fits, lambda pf: pf.fit.raw_landmarks68),
            "cross_validated": summarize(fits, lambda pf: cv[idx[id(pf)]]),
            "in_sample": summarize(fits, lambda pf: apply_landmark_calibration(pf.fit, calib))}
