"""Scenes for the one-stage detector: real labelled faces pasted into real photos with known boxes.

Faces: FER2013 crops (real people, 48x48 grey; the face box inside a crop is FER_FACE_BOX,
from the framing core.fer.crop measured) and avatar renders from core.synth (synthetic; their
box is the 68-landmark extent raised by a quarter for the forehead, the same convention).
Backgrounds: the faces68 photos (real scenes) with their annotated face, and any other face
MediaPipe finds in them, painted out (inpainted at a quarter size). Each scene is 640x480 grey
with 1-4 non-overlapping faces from 36 to 360 px wide, each softly blended in through a
feathered ellipse, flipped, lit and blurred at random; then global noise, blur and JPEG loss.

The held-out set (write_detection_set) is built the same way from disjoint sources: FER2013's
val split, avatars of a separate synth-fer run, the 100 faces68 benchmark photos (training uses
faces68_train). Layout: DIR/images/NNNNNN.jpg, DIR/labels.csv (file, label, x, y, w, h, source),
DIR/manifest.json.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .model import FER_CLASSES

SCENE_W, SCENE_H = 640, 480
FER_FACE_BOX = (5.0, 5.0, 38.0, 43.0)   # x, y, w, h of the face inside a 48x48 FER2013 crop
FACE_WIDTH = (36.0, 360.0)              # face box width range in a 640x480 scene
FACES_PER_SCENE = (1, 1, 2, 2, 3, 4)


class DetSetError(ValueError):
    """A missing or malformed detection set; the message is for the user."""


# ---------------------------------------------------------------- backgrounds

def read_pts(path: Path) -> np.ndarray:
    """faces68 .pts -> (68, 2); plain "x y" lines, or the ibug format with a { } block."""
    text = Path(path).read_text()
    if "{" in text:
        text = text.split("{")[1].split("}")[0]
    return np.array(text.split(), np.float32).reshape(-1, 2)


def paint_out(gray: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
    """Inpaint face boxes (x1, y1, x2, y2) from their surroundings (at a quarter size: a face-sized
    hole filled at full size takes seconds, and the fill is smooth anyway)."""
    if not len(boxes):
        return gray
    h, w = gray.shape
    mask = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in boxes:
        cv2.rectangle(mask, (int(max(0, x1)), int(max(0, y1))), (int(min(w - 1, x2)), int(min(h - 1, y2))), 255, -1)
    small = cv2.resize(gray, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask, small.shape[::-1], interpolation=cv2.INTER_NEAREST)
    filled = cv2.resize(cv2.inpaint(small, small_mask, 5, cv2.INPAINT_TELEA), (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255, (0, 0), 3)
    noise = np.random.default_rng(0).normal(0, 4, gray.shape)
    out = gray * (1 - soft) + (filled + noise) * soft
    return np.clip(out, 0, 255).astype(np.uint8)


def pts_face_box(pts: np.ndarray) -> tuple[float, float, float, float]:
    """Generous box around a 68-point face, forehead and hair included (for painting out)."""
    lo, hi = pts.min(0), pts.max(0)
    w, h = hi - lo
    return lo[0] - 0.2 * w, lo[1] - 0.6 * h, hi[0] + 0.2 * w, hi[1] + 0.15 * h


def _photos(folder: Path, limit: int, need_pts: bool):
    """(path, BGR image) of the readable photos of `folder` (with a .pts beside them if asked)."""
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                   and (not need_pts or p.with_suffix(".pts").exists()))
    for p in files[:limit] if limit else files:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            yield p, bgr


def load_backgrounds(folder: Path, limit: int = 0, max_side: int = 800,
                     find_faces: Callable[[np.ndarray], list] | None = None) -> list[np.ndarray]:
    """Grey photos of `folder` with their annotated faces (.pts beside them) painted out, and
    those `find_faces(bgr)` returns ((x1, y1, x2, y2) boxes) too."""
    out = []
    for p, bgr in _photos(folder, limit, need_pts=False):
        boxes = []
        if p.with_suffix(".pts").exists():
            boxes.append(pts_face_box(read_pts(p.with_suffix(".pts"))))
        if find_faces is not None:
            boxes += [tuple(b) for b in find_faces(bgr)]
        gray = paint_out(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), boxes)
        s = max_side / max(gray.shape)
        if s < 1:
            gray = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        out.append(gray)
    return out


def load_face_photos(folder: Path, limit: int = 0, max_side: int = 800,
                     find_faces: Callable[[np.ndarray], list] | None = None) -> list[tuple[np.ndarray, tuple]]:
    """Real photos with their annotated face kept (grey, other faces MediaPipe finds painted
    out) and its box in our convention: the 68 points' extent raised by a quarter for the
    forehead. Their expression is unknown: they teach where faces are, not which expression."""
    out = []
    for p, bgr in _photos(folder, limit, need_pts=True):
        pts = read_pts(p.with_suffix(".pts"))
        lo, hi = pts.min(0), pts.max(0)
        box = (float(lo[0]), float(lo[1] - 0.25 * (hi[1] - lo[1])), float(hi[0]), float(hi[1]))
        others = []
        for b in (find_faces(bgr) if find_faces is not None else []):
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            if not (box[0] < cx < box[2] and box[1] < cy < box[3]):
                others.append(b)
        gray = paint_out(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), others)
        s = min(1.0, max_side / max(gray.shape))
        if s < 1:
            gray = cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        out.append((gray, tuple(v * s for v in box)))
    return out


def _photo_scene(rng: np.random.Generator, photos: list, backgrounds: list) -> tuple[np.ndarray, tuple]:
    """A 640x480 view of a real photo framing its face at a random size and place; where the
    photo does not reach, a background (a mirrored border would repeat the face unlabelled)."""
    gray, (x1, y1, x2, y2) = photos[int(rng.integers(len(photos)))]
    w = float(np.exp(rng.uniform(np.log(FACE_WIDTH[0] * 1.5), np.log(FACE_WIDTH[1]))))
    s = w / (x2 - x1)
    if (y2 - y1) * s > SCENE_H * 0.9:
        s = SCENE_H * 0.9 / (y2 - y1)
    tx = rng.uniform(0, SCENE_W - (x2 - x1) * s) - x1 * s
    ty = rng.uniform(0, SCENE_H - (y2 - y1) * s) - y1 * s
    m = np.array([[s, 0, tx], [0, s, ty]], np.float32)
    img = cv2.warpAffine(gray, m, (SCENE_W, SCENE_H), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT).astype(np.float32)
    cover = cv2.warpAffine(np.ones(gray.shape, np.float32), m, (SCENE_W, SCENE_H), borderMode=cv2.BORDER_CONSTANT)
    if cover.min() < 0.999:
        cover = cv2.GaussianBlur(cover, (0, 0), 4) * cover
        img = img * cover + _background(rng, backgrounds) * (1 - cover)
    box = (x1 * s + tx, y1 * s + ty, x2 * s + tx, y2 * s + ty)
    if rng.random() < 0.5:
        img = img[:, ::-1]
        box = (SCENE_W - box[2], box[1], SCENE_W - box[0], box[3])
    return img * rng.uniform(0.7, 1.25) + rng.uniform(-25, 25), box


# ---------------------------------------------------------------- faces

class FacePool:
    """Grey face patches, the face box inside each (x, y, w, h), class and source name."""

    def __init__(self, source: str):
        self.source = source
        self.patches: list[np.ndarray] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.labels: list[int] = []
        self.indices: list[int] = []   # row of each patch in its source file (FER2013 npz)

    def __len__(self) -> int:
        return len(self.patches)

    def by_class(self) -> list[np.ndarray]:
        lab = np.array(self.labels)
        return [np.flatnonzero(lab == c) for c in range(len(FER_CLASSES))]

    @classmethod
    def from_fer(cls, npz: Path, limit_per_class: int = 0, seed: int = 0) -> "FacePool":
        with np.load(npz, allow_pickle=False) as d:
            images, labels = d["images"], d["labels"].astype(int)
        pool = cls("fer2013")
        rng = np.random.default_rng(seed)
        for c in range(len(FER_CLASSES)):
            idx = np.flatnonzero(labels == c)
            if limit_per_class:
                idx = rng.permutation(idx)[:limit_per_class]
            for i in idx:
                pool.patches.append(images[i])
                pool.boxes.append(FER_FACE_BOX)
                pool.labels.append(c)
                pool.indices.append(int(i))
        return pool

    @classmethod
    def from_synth(cls, folder: Path, margin: float = 0.25) -> "FacePool":
        """A `synth-fer` output folder: kept renders only, cut around their face box."""
        pool = cls("avatar")
        folder = Path(folder)
        with open(folder / "labels.csv", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("kept", "1") != "1" or row["label"] not in FER_CLASSES:
                    continue
                img = cv2.imread(str(folder / "images" / f"{row['file']}.jpg"), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    continue
                x, y, w, h = (float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
                x0, y0 = int(max(0, x - margin * w)), int(max(0, y - margin * h))
                x1, y1 = int(min(img.shape[1], x + w * (1 + margin))), int(min(img.shape[0], y + h * (1 + margin)))
                pool.patches.append(img[y0:y1, x0:x1].copy())
                pool.boxes.append((x - x0, y - y0, w, h))
                pool.labels.append(FER_CLASSES.index(row["label"]))
        return pool


# ---------------------------------------------------------------- scenes

def _background(rng: np.random.Generator, backgrounds: list[np.ndarray],
                size: tuple[int, int] = (SCENE_W, SCENE_H)) -> np.ndarray:
    """A random 4:3-ish piece of a background photo resized to `size` (w, h) (the same draws
    whatever the size)."""
    bg = backgrounds[int(rng.integers(len(backgrounds)))]
    h, w = bg.shape
    fit = min(w / SCENE_W, h / SCENE_H)
    cw, ch = SCENE_W * fit * rng.uniform(0.45, 1.0), SCENE_H * fit * rng.uniform(0.45, 1.0)
    cw, ch = max(cw, ch * 0.75), max(ch, cw * 0.6)             # stay near 4:3
    cw, ch = min(cw, w), min(ch, h)
    x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
    crop = bg[int(y0):int(y0 + ch), int(x0):int(x0 + cw)]
    img = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return img * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30)



def _degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A camera's faults on a float32 scene: sensor noise, sometimes blur, sometimes JPEG
    (the same random draws, in the same order, for every scene kind)."""
    img += rng.normal(0, rng.uniform(0, 6), img.shape).astype(np.float32)
    if rng.random() < 0.2:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
    img = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 90))])
        img = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return img


def _draw_face(rng: np.random.Generator, pools, weights: np.ndarray):
    """One face for a scene: a pool by its weight, a class uniformly among the pool's classes,
    a patch of that class, mirrored half the time -> (pool, patch index, patch, face box
    (x, y, w, h) inside the patch, class)."""
    pool = pools[int(rng.choice(len(pools), p=weights / weights.sum()))][0]
    per_class = [c for c in pool.by_class() if len(c)]
    i = int(rng.choice(per_class[int(rng.integers(len(per_class)))]))
    patch, (bx, by, bw, bh), label = pool.patches[i], pool.boxes[i], pool.labels[i]
    if rng.random() < 0.5:
        patch, bx = patch[:, ::-1], patch.shape[1] - bx - bw
    return pool, i, patch, (bx, by, bw, bh), label

def _paste(img: np.ndarray, rng: np.random.Generator, patch: np.ndarray, box, target) -> None:
    """Blend `patch` so its face box lands on `target` (x1, y1, x2, y2)."""
    bx, by, bw, bh = box
    s = (target[2] - target[0]) / bw
    ph, pw = patch.shape
    nw, nh = max(2, int(round(pw * s))), max(2, int(round(ph * s)))
    p = cv2.resize(patch, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR).astype(np.float32)
    if rng.random() < 0.35:   # out of focus / motion softness
        p = cv2.GaussianBlur(p, (0, 0), float(rng.uniform(0.5, 1.5) * max(1.0, s / 3)))
    p = (p - p.mean()) * rng.uniform(0.7, 1.3) + p.mean() + rng.uniform(-35, 35)
    ox, oy = target[0] - bx * s, target[1] - by * s            # patch origin in the scene
    mask = np.zeros((nh, nw), np.float32)
    cx, cy = (bx + bw / 2) * s, (by + bh / 2) * s
    cv2.ellipse(mask, (int(cx), int(cy)), (int(bw * s * 0.62), int(bh * s * 0.62)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.08 * bw * s))
    x0, y0 = int(round(ox)), int(round(oy))
    sx0, sy0 = max(0, -x0), max(0, -y0)
    x1, y1 = min(img.shape[1], x0 + nw), min(img.shape[0], y0 + nh)
    if x1 <= x0 + sx0 or y1 <= y0 + sy0:
        return
    region = img[y0 + sy0:y1, x0 + sx0:x1]
    m = mask[sy0:sy0 + region.shape[0], sx0:sx0 + region.shape[1]]
    pp = p[sy0:sy0 + region.shape[0], sx0:sx0 + region.shape[1]]
    img[y0 + sy0:y1, x0 + sx0:x1] = region * (1 - m) + pp * m


def _overlaps(box, boxes, pad: float = 0.1) -> bool:
    for b in boxes:
        w, h = (b[2] - b[0]) * pad, (b[3] - b[1]) * pad
        if box[0] < b[2] + w and box[2] > b[0] - w and box[1] < b[3] + h and box[3] > b[1] - h:
            return True
    return False


def compose(rng: np.random.Generator, backgrounds: list[np.ndarray], pools: Sequence[tuple[FacePool, float]],
            photos: list | None = None, photo_share: float = 0.0, faces_per_scene: Sequence[int] | None = None,
            picked: list | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One scene: (480, 640) uint8 grey, boxes (k, 5) class, x1, y1, x2, y2, source per face.
    With `photo_share`, that share of scenes is a real photo's face (class -1: expression
    unknown) with 0-2 pasted faces beside it. `faces_per_scene` overrides FACES_PER_SCENE (the
    choices drawn from); `picked`, if given, receives (pool, patch index) per face, None for a
    photo's own face (for per-face targets such as a teacher's probabilities)."""
    weights = np.array([w for _, w in pools], np.float64)
    boxes, sources = [], []
    if photos and rng.random() < photo_share:
        img, box = _photo_scene(rng, photos, backgrounds)
        img = np.ascontiguousarray(img)
        boxes.append((-1, *box))
        sources.append("photo")
        if picked is not None:
            picked.append(None)
        n = int(rng.integers(0, 3))
    else:
        img = np.ascontiguousarray(_background(rng, backgrounds))
        n = int(rng.choice(FACES_PER_SCENE if faces_per_scene is None else faces_per_scene))
    lo, hi = np.log(FACE_WIDTH[0]), np.log(FACE_WIDTH[1] / (1 + 0.5 * (n - 1)))
    for _ in range(n):
        pool, i, patch, (bx, by, bw, bh), label = _draw_face(rng, pools, weights)
        w = float(np.exp(rng.uniform(lo, hi)))
        h = w * bh / bw
        if h > SCENE_H * 0.95:
            w, h = w * SCENE_H * 0.95 / h, SCENE_H * 0.95
        for _ in range(12):
            x1, y1 = rng.uniform(0, SCENE_W - w), rng.uniform(0, SCENE_H - h)
            target = (x1, y1, x1 + w, y1 + h)
            if not _overlaps(target, [b[1:] for b in boxes]):
                _paste(img, rng, np.ascontiguousarray(patch), (bx, by, bw, bh), target)
                boxes.append((label, *target))
                sources.append(pool.source)
                if picked is not None:
                    picked.append((pool, i))
                break
    img = _degrade(img, rng)
    arr = np.array(boxes, np.float32).reshape(-1, 5)
    return img, arr, sources


# ---------------------------------------------------------------- held-out set on disk

def write_detection_set(out: Path, n: int, seed: int, backgrounds: list[np.ndarray],
                        pools: Sequence[tuple[FacePool, float]], note: str = "") -> dict:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DetSetError(f"{out} is not empty; choose a new folder")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, per_class, per_source = [], [0] * len(FER_CLASSES), {}
    for i in range(n):
        img, boxes, sources = compose(rng, backgrounds, pools)
        name = f"{i:06d}.jpg"
        cv2.imwrite(str(out / "images" / name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        for (c, x1, y1, x2, y2), src in zip(boxes, sources):
            rows.append([name, FER_CLASSES[int(c)], f"{x1:.1f}", f"{y1:.1f}", f"{x2 - x1:.1f}", f"{y2 - y1:.1f}", src])
            per_class[int(c)] += 1
            per_source[src] = per_source.get(src, 0) + 1
    with open(out / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "label", "x", "y", "w", "h", "source"])
        w.writerows(rows)
    manifest = {"images": n, "faces": len(rows), "per_class": dict(zip(FER_CLASSES, per_class)),
                "per_source": per_source, "seed": seed, "size": [SCENE_W, SCENE_H], "note": note}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def read_detection_set(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """-> [(image path, boxes (k, 5) class, x1, y1, x2, y2)], every image of images/ listed."""
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not folder.is_dir():
        raise DetSetError(f"detection set not found: {folder}")
    if not labels.is_file() or not (folder / "images").is_dir():
        raise DetSetError(f"{folder} is not a detection set: it needs images/ and labels.csv "
                          f"(file, label, x, y, w, h); make one with scripts/train_detector.py --make-set")
    gts: dict[str, list] = {p.name: [] for p in sorted((folder / "images").iterdir())
                            if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    try:
        with open(labels, newline="") as fh:
            for k, row in enumerate(csv.DictReader(fh)):
                if row["file"] not in gts:
                    raise DetSetError(f"{labels} row {k + 2}: image {row['file']!r} is not in images/")
                if row["label"] not in FER_CLASSES:
                    raise DetSetError(f"{labels} row {k + 2}: unknown label {row['label']!r}")
                x, y, w, h = (float(row[c]) for c in ("x", "y", "w", "h"))
                if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
                    raise DetSetError(f"{labels} row {k + 2}: bad box {x}, {y}, {w}, {h}")
                gts[row["file"]].append([FER_CLASSES.index(row["label"]), x, y, x + w, y + h])
    except (KeyError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise DetSetError(f"{labels}: expected columns file, label, x, y, w, h ({exc})") from exc
    except ValueError as exc:
        if isinstance(exc, DetSetError):
            raise
        raise DetSetError(f"{labels}: a box value is not a number ({exc})") from exc
    if not gts:
        raise DetSetError(f"{folder}/images holds no images")
    return [(folder / "images" / f, np.array(b, np.float32).reshape(-1, 5)) for f, b in gts.items()]


# ---------------------------------------------------------------- face-heavy mosaics (training)

MOSAIC_GRIDS = ((2, 2), (3, 2), (3, 3), (4, 3), (4, 4))


def mosaic(rng: np.random.Generator, backgrounds: list[np.ndarray], pools: Sequence[tuple[FacePool, float]],
           picked: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A face-heavy training scene: a grid of cells (2x2 to 4x4), each a piece of a background
    with one labelled face filling 30-80% of the cell's width. Many labelled faces per picture
    give the class head far more signal per step than open scenes (1-4 faces) at the same cost.
    -> (480, 640) uint8 grey, boxes (k, 5); `picked` as for compose."""
    weights = np.array([w for _, w in pools], np.float64)
    gx, gy = MOSAIC_GRIDS[int(rng.integers(len(MOSAIC_GRIDS)))]
    cw, ch = SCENE_W // gx, SCENE_H // gy
    img = np.zeros((SCENE_H, SCENE_W), np.float32)
    boxes = []
    for cy in range(gy):
        for cx in range(gx):
            # a piece of a background at the scale of a full scene (the 4:3 crop's width,
            # shrunk to the cell's share of the frame), so the texture scale matches open scenes
            zoom = float(rng.uniform(1.0, 2.0))
            bw_, bh_ = int(cw * zoom), int(ch * zoom)
            big = _background(rng, backgrounds, (max(cw, min(SCENE_W, bw_)), max(ch, min(SCENE_H, bh_))))
            y0 = int(rng.integers(0, big.shape[0] - ch + 1))
            x0 = int(rng.integers(0, big.shape[1] - cw + 1))
            cell = np.ascontiguousarray(big[y0:y0 + ch, x0:x0 + cw])
            pool, i, patch, (bx, by, bw, bh), label = _draw_face(rng, pools, weights)
            w = float(np.exp(rng.uniform(np.log(max(FACE_WIDTH[0], 0.3 * cw)), np.log(0.8 * cw))))
            h = w * bh / bw
            if h > 0.9 * ch:
                w, h = w * 0.9 * ch / h, 0.9 * ch
            fx, fy = rng.uniform(0, cw - w), rng.uniform(0, ch - h)
            _paste(cell, rng, np.ascontiguousarray(patch), (bx, by, bw, bh), (fx, fy, fx + w, fy + h))
            img[cy * ch:(cy + 1) * ch, cx * cw:(cx + 1) * cw] = cell
            boxes.append((label, cx * cw + fx, cy * ch + fy, cx * cw + fx + w, cy * ch + fy + h))
            if picked is not None:
                picked.append((pool, i))
    img = _degrade(img, rng)
    return img, np.array(boxes, np.float32).reshape(-1, 5)
