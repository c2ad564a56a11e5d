"""Measured fitting quality: landmark error on annotated photos, surface error on synthetic ones.

Annotated photos: a folder of NAME.jpg|png + NAME.pts (68 points, Multi-PIE order, as in
../shared/faces68). The error of a photo is the mean distance of the fitted model's 68
landmarks to the annotation divided by the outer-eye-corner distance (points 36 and 45);
a photo whose error is above 10% counts as a failure. When a photo holds several faces, the
one nearest the annotation is fitted (the annotation says which face is meant).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .fit import FaceFitter, FitError, FitOptions, FitResult
from .photo import PhotoError, load_photo

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


def fit_annotated(fitter: FaceFitter, folder: str | Path, options: FitOptions | None = None,
                  limit: int | None = None, tracker=None,
                  log: Callable[[str], None] = print) -> list[PhotoFit]:
    """Fit every annotated photo; time per photo covers reading, detection and fitting."""
    from core.tracking import FaceTracker
    own = tracker is None
    tracker = tracker or FaceTracker(num_faces=6)
    out = []
    try:
        for i, (name, img_path, pts_path) in enumerate(annotated_photos(folder)[:limit]):
            gt = read_pts(pts_path)
            t0 = time.perf_counter()
            try:
                img, scale = load_photo(img_path)
                faces = fitter.detect(img, tracker)
                c = gt.mean(0) * scale
                face = min(faces, key=lambda f: np.hypot(f.box[0] + f.box[2] / 2 - c[0], f.box[1] + f.box[3] / 2 - c[1]))
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
    cam = fit.camera
    xc = g["lm68_camera"].astype(np.float64)
    d = np.maximum(-xc[:, 2], 1e-6)
    jp = np.zeros((68, 2, 3))
    jp[:, 0, 0] = cam.focal / d
    jp[:, 0, 2] = cam.focal * xc[:, 0] / d ** 2
    jp[:, 1, 1] = -cam.focal / d
    jp[:, 1, 2] = -cam.focal * xc[:, 1] / d ** 2
    scale = fit.geometry.get("scale", 1.0)
    out = fit.raw_landmarks68.astype(np.float64).copy()
    out[17:] += np.einsum("kij,jl,kl->ki", jp[17:], cam.rotation, calib["offsets"][17:].astype(np.float64)) / scale
    o = g["jaw_out"]
    along = np.stack([-o[:, 1], o[:, 0]], 1)
    j = calib["jaw"].astype(np.float64)
    out[:17] += (j[:, :1] * o + j[:, 1:] * along) * g["iod_px"]
    return out
