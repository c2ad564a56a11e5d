"""Draw FER results on a BGR frame: box, label + confidence, probability bars, optional
landmarks, Grad-CAM heatmap and action-unit map (core.fer.au) with the active AUs named. Pure
OpenCV so the headless CLI and the Qt panel share it."""
from __future__ import annotations

import cv2
import numpy as np

from .crop import crop_to_image
from .model import FER_CLASSES
from .pipeline import FaceResult

# one colour per class (BGR), used for the box and the bars
COLORS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160),
          "happy": (40, 200, 240), "sad": (200, 120, 40), "surprise": (240, 200, 40),
          "neutral": (180, 180, 180)}


def draw_results(image: np.ndarray, results: list[FaceResult], landmarks: bool = False,
                 heatmap: bool = False, bars: bool = True, aus: bool = False) -> np.ndarray:
    out = image.copy()
    if heatmap:
        for r in results:
            if r.heatmap is not None:
                _blend_heat(out, crop_to_image(r.heatmap, r.crop_matrix, out.shape))
    au_lists = {id(r): _draw_aus(out, r) for r in results} if aus else {}
    scale = max(0.4, min(out.shape[:2]) / 900)
    for r in results:
        x, y, w, h = (int(round(v)) for v in r.face.box)
        color = COLORS[r.label]
        cv2.rectangle(out, (x, y), (x + w, y + h), color, max(1, int(2 * scale * 1.5)))
        text = f"#{r.face.face_id} {r.label} {r.confidence:.0%}"
        if r.unknown > 0.9:
            text += " (unfamiliar)"
        _label(out, text, (x, max(0, y - 4)), color, scale)
        if landmarks:
            for px, py in r.face.landmarks[:, :2].astype(int):
                cv2.circle(out, (int(px), int(py)), 1, (0, 255, 0), -1, cv2.LINE_AA)
        if bars:
            _bars(out, r.probs, (x + w + 6, y), scale)
        for i, (au, name, v) in enumerate(au_lists.get(id(r), [])[:5]):
            cv2.putText(out, f"AU{au} {name} {v:.2f}", (x, y + h + int((i + 1) * 22 * scale)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def au_map(result: FaceResult, shape: tuple[int, int], roi: tuple[int, int, int, int] | None = None
           ) -> tuple[np.ndarray, list[tuple[int, str, float]]]:
    """The AU heatmap of the result's predicted expression (its codebook's AUs weighted by the
    tracked blendshapes), in image pixels (or in `roi` = x0, y0, x1, y1), and the active AUs."""
    from core.tracking import MEDIAPIPE_BLENDSHAPES

    from .au import active_aus, au_intensities, expression_heatmap, landmarks68_from_mediapipe

    inten = au_intensities(dict(zip(MEDIAPIPE_BLENDSHAPES, map(float, result.face.blendshapes))))
    lm = landmarks68_from_mediapipe(result.face.landmarks)
    if roi is not None:
        lm = lm - np.array(roi[:2], np.float32)
        shape = (roi[3] - roi[1], roi[2] - roi[0])
    return expression_heatmap(lm, result.label, shape, inten), active_aus(inten)


def _draw_aus(img: np.ndarray, r: FaceResult) -> list[tuple[int, str, float]]:
    """Blend the AU map over the face (computed only around it) and return the active AUs."""
    x, y, w, h = r.face.box
    H, W = img.shape[:2]
    x0, y0 = max(0, int(x - 0.3 * w)), max(0, int(y - 0.3 * h))
    x1, y1 = min(W, int(x + 1.3 * w)), min(H, int(y + 1.3 * h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return []
    heat, active = au_map(r, img.shape[:2], (x0, y0, x1, y1))
    roi = img[y0:y1, x0:x1]      # a view: blending writes into img
    _blend_heat(roi, heat)
    return active


def _label(img, text, org, color, scale) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    y = max(th + base, y)
    cv2.rectangle(img, (x, y - th - base), (x + tw + 2, y + 2), color, -1)
    cv2.putText(img, text, (x + 1, y - base // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _bars(img, probs, org, scale) -> None:
    x, y = org
    bh, bw = max(8, int(14 * scale)), int(70 * scale) + 20
    text_w = cv2.getTextSize("surp 0.00", cv2.FONT_HERSHEY_SIMPLEX, scale * 0.8, 1)[0][0] + 6
    if x + bw + text_w > img.shape[1]:  # no room right of the box: keep bars and text in the frame
        x = max(0, img.shape[1] - bw - text_w)
    for i, (name, p) in enumerate(zip(FER_CLASSES, probs)):
        yy = y + i * (bh + 2)
        if yy + bh >= img.shape[0]:
            break
        cv2.rectangle(img, (x, yy), (x + bw, yy + bh), (40, 40, 40), -1)
        cv2.rectangle(img, (x, yy), (x + int(bw * float(p)), yy + bh), COLORS[name], -1)
        cv2.putText(img, f"{name[:4]} {p:.2f}", (x + bw + 3, yy + bh - 2), cv2.FONT_HERSHEY_SIMPLEX,
                    scale * 0.8, (255, 255, 255), 1, cv2.LINE_AA)


def _blend_heat(img: np.ndarray, heat: np.ndarray) -> None:
    mask = heat > 0.05
    if not mask.any():
        return
    colored = cv2.applyColorMap((np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    alpha = (0.45 * np.clip(heat, 0, 1))[..., None]
    img[mask] = (img[mask] * (1 - alpha[mask]) + colored[mask] * alpha[mask]).astype(np.uint8)
