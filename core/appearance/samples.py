"""Training samples of the appearance model: real photos seen in the shared UV layout.

Each annotated photo is fitted with the existing fitter, the photo is projected onto the fitted
mesh (core.fitting.texture.observe_photo: visibility, view angle, face outline, shading taken
out) and kept at the model's working resolution as linear-RGB albedo + confidence. One small
npz per photo under a cache folder, so collection resumes and the evaluation re-uses the fits.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

WORK_SIZE = 256          # texels a side of the model's working resolution
OBSERVE_SIZE = 512       # projection resolution before the area-weighted reduction


@dataclass
class UVSample:
    name: str
    linear: np.ndarray    # (S, S, 3) float32 linear RGB albedo (shading removed)
    weight: np.ndarray    # (S, S) float32 confidence in [0, 1]; 0 = not seen
    mirror_uv: np.ndarray  # (S, S, 2) float32 UV of each texel's mirror point
    identity: np.ndarray  # fitted identity code
    expression: np.ndarray
    photo_sha1: str


def reduce_observation(linear: np.ndarray, weight: np.ndarray, size: int = WORK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted reduction: the colour is the confidence-weighted mean of the texels."""
    num = cv2.resize(linear * weight[..., None], (size, size), interpolation=cv2.INTER_AREA)
    den = cv2.resize(weight, (size, size), interpolation=cv2.INTER_AREA)
    lin = num / np.maximum(den, 1e-6)[..., None]
    return np.clip(lin, 0, 1).astype(np.float32), np.clip(den, 0, 1).astype(np.float32)


def photo_sha1(path: str | Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def observe_fitted(image: np.ndarray, fit, face, model, size: int = WORK_SIZE):
    """(linear, weight, mirror_uv) of a fitted photo at `size` (see module doc)."""
    from core.fitting.fit import MP_FACE_OVAL
    from core.fitting.texture import observe_photo

    mesh = model.extract_mesh(fit.identity, fit.expression, resolution=128)
    outline = face.landmarks[list(MP_FACE_OVAL), :2]
    obs = observe_photo(image, fit.camera, mesh, outline, light=fit.lighting, size=OBSERVE_SIZE)
    lin, w = reduce_observation(obs.linear, obs.weight * obs.covered, size)
    muv = cv2.resize(obs.mirror_uv, (size, size), interpolation=cv2.INTER_NEAREST)
    return lin, w, muv


def collect(photos: list[tuple[str, Path, Path]], out_dir: Path, options=None,
            log: Callable[[str], None] = print) -> dict:
    """Fit and observe each (name, image, pts) photo into out_dir/NAME.npz; skips done ones.
    The annotated face is the detection nearest the centre of its .pts points."""
    from core.fitting.evaluate import read_pts
    from core.fitting.fit import FitError
    from core.fitting.photo import PhotoError
    from core.fitting.pipeline import detect_faces
    from core.fitting.pipeline import shared_fitter
    from core.tracking import FaceTracker

    out_dir.mkdir(parents=True, exist_ok=True)
    fitter = shared_fitter()
    tracker = FaceTracker(num_faces=6)
    done = failed = 0
    t_start = time.perf_counter()
    try:
        for i, (name, img_path, pts_path) in enumerate(photos):
            target = out_dir / f"{name}.npz"
            if target.exists() or (out_dir / f"{name}.failed").exists():
                continue
            t0 = time.perf_counter()
            try:
                gt = read_pts(pts_path)
                image, scale, faces = detect_faces(img_path, fitter, tracker=tracker)
                c = gt.mean(0) * scale
                face = min(faces, key=lambda f: np.hypot(f.box[0] + f.box[2] / 2 - c[0],
                                                         f.box[1] + f.box[3] / 2 - c[1]))
                fit = fitter.fit(image, face, options=options)
                lin, w, muv = observe_fitted(image, fit, face, fitter.model)
            except (FitError, PhotoError, ValueError) as exc:
                (out_dir / f"{name}.failed").write_text(str(exc))
                failed += 1
                log(f"{name}: {exc}")
                continue
            tmp = target.with_suffix(".tmp.npz")
            np.savez_compressed(tmp, linear=lin.astype(np.float16), weight=w.astype(np.float16),
                                mirror_uv=muv.astype(np.float16), identity=fit.identity,
                                expression=fit.expression, photo_sha1=np.array(photo_sha1(img_path)))
            tmp.replace(target)
            done += 1
            log(f"[{i + 1}/{len(photos)}] {name} {time.perf_counter() - t0:.1f} s "
                f"(seen {float((w > 0.3).mean()) * 100:.1f}% of texels)")
    finally:
        tracker.close()
    return {"collected": done, "failed": failed, "seconds": time.perf_counter() - t_start}


def load_samples(folder: Path, names: list[str] | None = None) -> list[UVSample]:
    out = []
    files = sorted(folder.glob("*.npz")) if names is None else [folder / f"{n}.npz" for n in names]
    for f in files:
        if not f.exists() or f.name.endswith(".tmp.npz"):
            continue
        with np.load(f, allow_pickle=False) as z:
            out.append(UVSample(f.stem, z["linear"].astype(np.float32), z["weight"].astype(np.float32),
                                z["mirror_uv"].astype(np.float32), z["identity"].astype(np.float32),
                                z["expression"].astype(np.float32), str(z["photo_sha1"])))
    return out
