"""Hard, in-the-wild-like fitting cases made from annotated photos, to develop detection against
(AFW itself is kept for acceptance). Writes NAME.jpg + NAME.pts folders under .cache/ (never
committed: they are derived from ../shared photos), one per kind:

  small     the face 30-60 px wide on a 2000-2600 px canvas whose background is another photo
  crowd     2-6 photos pasted on a background photo; the annotation kept for one of them
  rotated   the photo turned in-plane by +-45..90 degrees (canvas grown, nothing cut)
  profile   tight-ish crops of the most turned faces (yaw from the landmarks' asymmetry)
  dark      low light (gamma, dimmed), blur, sensor noise and strong JPEG compression

    python scripts/make_wild_cases.py [--faces ../shared/faces68_train] [--out .cache/wild] [--n 25]

Then: python main.py eval-fit --faces .cache/wild/small [--detector landmarker]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("small", "crowd", "rotated", "profile", "dark")


def write_case(folder: Path, name: str, image_rgb: np.ndarray, pts: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.jpg"), cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    rows = "\n".join(f"{x:.2f} {y:.2f}" for x, y in pts)
    (folder / f"{name}.pts").write_text(f"version: 1\nn_points: 68\n{{\n{rows}\n}}\n")


def face_box(pts: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = pts.min(0), pts.max(0)
    return float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])


def cut_face(img: np.ndarray, pts: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The face with `margin` box sizes around it (clipped to the photo), points shifted."""
    x, y, w, h = face_box(pts)
    s = max(w, h)
    x0, y0 = int(max(0, x - margin * s)), int(max(0, y - margin * s))
    x1, y1 = int(min(img.shape[1], x + w + margin * s)), int(min(img.shape[0], y + h + margin * s))
    return img[y0:y1, x0:x1], pts - [x0, y0]


def background(img: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_CUBIC)


def paste(canvas: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    """Paste with a feathered edge (no hard rectangle for a detector to latch onto)."""
    h, w = patch.shape[:2]
    m = np.ones((h, w), np.float32)
    f = max(2, min(h, w) // 10)
    ramp = np.minimum(np.arange(w)[None, :], np.arange(w)[::-1][None, :]).astype(np.float32)
    rampy = np.minimum(np.arange(h)[:, None], np.arange(h)[::-1][:, None]).astype(np.float32)
    m = np.clip(np.minimum(ramp, rampy) / f, 0, 1)[..., None]
    region = canvas[y:y + h, x:x + w].astype(np.float32)
    canvas[y:y + h, x:x + w] = (patch * m + region * (1 - m)).astype(np.uint8)


def scaled(img: np.ndarray, pts: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = img.shape[:2]
    out = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return out, pts * [out.shape[1] / w, out.shape[0] / h]


def yaw_score(pts: np.ndarray) -> float:
    """0 frontal .. 0.5 profile: how far the nose tip sits from the middle of the jaw span."""
    x0, x16, nose = pts[0, 0], pts[16, 0], pts[30, 0]
    return abs((nose - x0) / max(x16 - x0, 1e-6) - 0.5)


def make(kind: str, photos: list, rng: np.random.Generator, n: int, out: Path) -> None:
    from core.fitting.evaluate import read_pts
    load = lambda p: cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)  # noqa: E731
    if kind == "profile":
        scored = sorted(photos, key=lambda p: -yaw_score(read_pts(p[2])))
        chosen = scored[:n]
    else:
        chosen = [photos[i] for i in rng.choice(len(photos), n, replace=False)]
    for k, (name, img_path, pts_path) in enumerate(chosen):
        img, pts = load(img_path), read_pts(pts_path)
        other = load(photos[int(rng.integers(len(photos)))][1])
        if kind == "small":
            face, fp = cut_face(img, pts, 0.35)
            target = rng.uniform(30, 60)
            face, fp = scaled(face, fp, target / face_box(fp)[2])
            W = int(rng.uniform(2000, 2600))
            H = int(W * rng.uniform(0.6, 0.8))
            canvas = background(other, W, H)
            x, y = int(rng.integers(0, W - face.shape[1])), int(rng.integers(0, H - face.shape[0]))
            paste(canvas, face, x, y)
            write_case(out / kind, f"{kind}_{k:03d}_{name}", canvas, fp + [x, y])
        elif kind == "crowd":
            count = int(rng.integers(2, 7))
            others = [photos[int(i)] for i in rng.choice(len(photos), count - 1, replace=False)]
            members = [(img, pts)] + [(load(p[1]), read_pts(p[2])) for p in others]
            cols = int(np.ceil(np.sqrt(count)))
            rows = int(np.ceil(count / cols))
            cell = int(rng.uniform(300, 420))
            W, H = cols * cell + 40, rows * cell + 40
            canvas = background(other, W, H)
            order = rng.permutation(count)
            keep = None
            for slot, m in enumerate(order):
                face, fp = cut_face(*members[m], 0.4)
                face, fp = scaled(face, fp, rng.uniform(0.35, 0.8) * cell / max(face.shape[:2]))
                cx, cy = 20 + (slot % cols) * cell, 20 + (slot // cols) * cell
                x = cx + int(rng.integers(0, cell - face.shape[1] + 1))
                y = cy + int(rng.integers(0, cell - face.shape[0] + 1))
                paste(canvas, face, x, y)
                if m == 0:
                    keep = fp + [x, y]
            write_case(out / kind, f"{kind}_{k:03d}_{name}", canvas, keep)
        elif kind == "rotated":
            ang = float(rng.uniform(45, 90) * rng.choice([-1, 1]))
            h, w = img.shape[:2]
            m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
            c, s = abs(m[0, 0]), abs(m[0, 1])
            W, H = int(h * s + w * c), int(h * c + w * s)
            m[:, 2] += [W / 2 - w / 2, H / 2 - h / 2]
            rot = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            write_case(out / kind, f"{kind}_{k:03d}_{name}", rot, pts @ m[:, :2].T + m[:, 2])
        elif kind == "profile":
            face, fp = cut_face(img, pts, float(rng.uniform(0.25, 0.6)))
            write_case(out / kind, f"{kind}_{k:03d}_{name}", face, fp)
        elif kind == "dark":
            x = (img.astype(np.float32) / 255.0) ** rng.uniform(1.6, 2.4) * rng.uniform(0.25, 0.5)
            x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(1.5, 3.5)))
            x = x + rng.normal(0, rng.uniform(0.01, 0.03), x.shape).astype(np.float32)
            x = (np.clip(x, 0, 1) * 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 45))])
            x = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            write_case(out / kind, f"{kind}_{k:03d}_{name}", x, pts)


def main() -> None:
    from core.fitting.evaluate import annotated_photos
    from core.paths import shared_path
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default=None, help="annotated photos (default ../shared/faces68_train)")
    ap.add_argument("--out", default=".cache/wild")
    ap.add_argument("--n", type=int, default=25, help="cases per kind")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    photos = annotated_photos(shared_path("faces68_train", args.faces, "annotated photos"))
    out = Path(args.out)
    for i, kind in enumerate(args.kinds.split(",")):
        if kind not in KINDS:
            sys.exit(f"error: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        make(kind, photos, np.random.default_rng([args.seed, i]), args.n, out)
        print(f"{kind}: {args.n} cases in {out / kind}")


if __name__ == "__main__":
    main()
