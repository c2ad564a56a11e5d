"""Expression wrinkles drawn over a render, from its projected 68 landmarks.

The face model moves the skin but has no wrinkles, and FACS describes several action units
by their furrows: AU4 (brow lowerer) by vertical lines between the brows, AU9 (nose wrinkler)
by creases across the root of the nose, AU1+2 by horizontal lines over the forehead, AU6, 9,
10 and 12 by a deepened nasolabial fold. At 48x48 these shadows are much of what tells anger
and disgust apart from a neutral face. Each is a soft dark stroke whose strength follows its
action unit's intensity, placed relative to the landmarks so it follows pose and shape.
"""
from __future__ import annotations

import cv2
import numpy as np


def _strokes(lm: np.ndarray, aus: dict[str, float]) -> list[tuple[np.ndarray, float, float]]:
    """(points (k, 2), strength 0..1, width as a fraction of the eye distance) per stroke."""
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    d = float(np.linalg.norm(eye_r - eye_l))
    across = (eye_r - eye_l) / max(d, 1e-6)
    down = np.array([-across[1], across[0]])
    if down[1] < 0:
        down = -down
    out = []
    glabella = (lm[21] + lm[22]) / 2
    a4 = aus.get("AU4", 0.0)
    for side in (-1, 1):      # AU4: two vertical furrows between the brows
        top = glabella + side * 0.09 * d * across - 0.12 * d * down
        out.append((np.stack([top, top + 0.28 * d * down + side * 0.02 * d * across]), a4, 0.045))
    a9 = aus.get("AU9", 0.0)
    root = lm[27] + 0.05 * d * down
    for k in range(2):        # AU9: creases across the root of the nose
        c = root + k * 0.09 * d * down
        out.append((np.stack([c - 0.17 * d * across, c + 0.17 * d * across]), a9, 0.04))
    a12 = max(aus.get("AU12", 0.0), aus.get("AU10", 0.0), a9, aus.get("AU6", 0.0) * 0.6)
    for wing, corner, side in ((31, 48, -1), (35, 54, 1)):   # nasolabial folds
        start = lm[wing] + side * 0.12 * d * across - 0.05 * d * down
        end = lm[corner] + side * 0.14 * d * across + 0.05 * d * down
        mid = (start + end) / 2 + side * 0.06 * d * across
        out.append((np.stack([start, mid, end]), a12, 0.05))
    lift = min(aus.get("AU1", 0.0), 1.0) * 0.6 + min(aus.get("AU2", 0.0), 1.0) * 0.4
    for k in range(3):        # AU1+2: horizontal forehead lines
        y = glabella - (0.28 + 0.13 * k) * d * down
        out.append((np.stack([y - 0.45 * d * across, y - 0.02 * d * down, y + 0.45 * d * across]),
                    lift * (1 - 0.2 * k), 0.035))
    return out


def add_wrinkles(rgb: np.ndarray, lm: np.ndarray, aus: dict[str, float], depth: float = 0.45) -> np.ndarray:
    """Darken (H, W, 3) uint8 `rgb` along the active action units' furrows (in place and returned).
    `depth`: how dark a full-intensity furrow's centre gets (0.45 = 45% darker)."""
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.float32)
    d = float(np.linalg.norm(lm[42:48].mean(0) - lm[36:42].mean(0)))
    sigma = max(0.6, 0.02 * d)
    lo, hi = np.array([w, h], np.float64), np.zeros(2)
    for pts, strength, width in _strokes(lm, aus):
        if strength < 0.05:
            continue
        px = max(1, round(width * d))
        cv2.polylines(mask, [np.round(pts * 4).astype(np.int32)], False, float(min(strength, 1.0)), px,
                      cv2.LINE_AA, shift=2)
        lo, hi = np.minimum(lo, pts.min(0) - px), np.maximum(hi, pts.max(0) + px)
    if (hi <= lo).any():
        return rgb
    # blur and shade only the box round the strokes (a third of the frame): beyond the blur's
    # reach (4 sigma) the mask is zero, so the result is the full-frame one
    m = int(np.ceil(4 * sigma)) + 3
    x0, y0 = (max(0, int(v) - m) for v in lo)
    x1, y1 = min(w, int(hi[0]) + m + 1), min(h, int(hi[1]) + m + 1)
    if x1 <= x0 or y1 <= y0:
        return rgb
    sub = cv2.GaussianBlur(mask[y0:y1, x0:x1], (0, 0), sigma)
    shade = 1.0 - depth * np.clip(sub, 0, 1)
    box = rgb[y0:y1, x0:x1]
    box[:] = (box.astype(np.float32) * shade[..., None]).astype(np.uint8)
    return rgb
