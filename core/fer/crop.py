"""Face crops for the classifier, aligned from tracked landmarks to look like FER2013.

The target geometry was measured, not guessed: MediaPipe run on 300 FER2013 val images
(upscaled 4x) puts the eye-corner midpoint at (23.9, 18.8), the inter-ocular distance at
17.4 px and the lip centre at (24.0, 37.5) in the 48x48 frame. A similarity transform
(rotation, uniform scale, shift) fitted to both eyes and the mouth maps a tracked face there,
so rolled heads come out upright and the framing matches the training data.
"""
from __future__ import annotations

import cv2
import numpy as np

SIZE = 48
# MediaPipe mesh indices: eye corners (image-left eye 33/133, image-right eye 263/362), inner lips
_EYE_A, _EYE_B, _MOUTH = (33, 133), (263, 362), (13, 14)
_TARGET = np.array([[23.93 - 8.68, 18.8], [23.93 + 8.68, 18.8], [24.05, 37.5]], np.float32)


def alignment_matrix(landmarks: np.ndarray, size: int = SIZE) -> np.ndarray:
    """2x3 similarity transform from image pixels to the size x size crop."""
    pts = landmarks[:, :2]
    src = np.array([pts[list(_EYE_A)].mean(0), pts[list(_EYE_B)].mean(0), pts[list(_MOUTH)].mean(0)],
                   np.float32)
    dst = _TARGET * (size / SIZE)
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if m is None:  # degenerate (collinear) points: fall back to eyes only
        m = cv2.getAffineTransform(np.vstack([src[:2], src[:2].mean(0) + [0, 1]]).astype(np.float32),
                                   np.vstack([dst[:2], dst[:2].mean(0) + [0, 1]]).astype(np.float32))
    return m.astype(np.float32)


def face_crop(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(crop uint8 (size, size) grayscale, 2x3 matrix image->crop)."""
    gray = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    m = alignment_matrix(landmarks, size)
    crop = cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_AREA if _scale(m) < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, m


def _scale(m: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def crop_to_image(heat: np.ndarray, m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Warp a crop-space map (e.g. Grad-CAM) back into the image; zero outside the crop."""
    mi = cv2.invertAffineTransform(m)
    h, w = shape[:2]
    crop_size = heat.shape[0]
    return cv2.warpAffine(cv2.resize(heat.astype(np.float32), (crop_size, crop_size)), mi, (w, h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
