"""Draw FER results on a BGR frame: box, label + confidence, probability bars, optional
landmarks and Grad-CAM heatmap. Pure OpenCV so the headless CLI and the Qt panel share it."""
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
                 heatmap: bool = False, bars: bool = True) -> np.ndarray:
    out = image.copy()
    if heatmap:
        for r in results:
            if r.heatmap is not None:
                _blend_heat(out, crop_to_image(r.heatmap, r.crop_matrix, out.shape))
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
    return out


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
