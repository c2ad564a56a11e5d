"""Action-unit explanations of an expression (after Belharbi et al., FG 2024).

Each FER class has a codebook of FACS action units; each AU is an ellipse placed from the 68
facial landmarks (sized by the inter-ocular distance, turned with the eye line), blurred, and
the ellipses are max-combined and normalised into an AU heatmap. The map says where a model
*should* look for that expression: it is drawn over the face beside Grad-CAM, and CAM-COS (the
cosine between a class activation map and the AU map) measures how far a classifier agrees.

How strongly each AU acts comes from the tracked blendshapes (ARKit names, MediaPipe scores).
Plain functions on numpy arrays; no Qt, no torch.
"""
from __future__ import annotations

import cv2
import numpy as np

# FACS names of the AUs used here
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser", 2: "outer brow raiser", 4: "brow lowerer", 5: "upper lid raiser",
    6: "cheek raiser", 7: "lid tightener", 9: "nose wrinkler", 10: "upper lip raiser",
    12: "lip corner puller", 15: "lip corner depressor", 16: "lower lip depressor",
    17: "chin raiser", 20: "lip stretcher", 23: "lip tightener", 24: "lip pressor",
    25: "lips part", 26: "jaw drop", 27: "mouth stretch",
}

# Per-expression codebook (Belharbi et al., Table 1; neutral has none)
CODEBOOK: dict[str, tuple[int, ...]] = {
    "happy": (6, 12, 25), "surprise": (1, 2, 5, 26, 27), "fear": (1, 2, 4, 5, 20, 25, 26, 27),
    "angry": (4, 5, 7, 10, 17, 23, 24, 25, 26), "disgust": (9, 10, 16, 17, 25, 26),
    "sad": (1, 4, 6, 15, 17), "neutral": (),
}

# Where each AU acts, as ellipses on the 68-point layout (iBUG order: jaw 0-16, brows 17-26,
# nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67). One entry per ellipse:
# (landmarks averaged for the centre, (dx, dy) offset and (a, b) semi-axes in inter-ocular
# distances, in the face's frame: x toward the subject's left, y down).
_E = tuple[tuple[int, ...], tuple[float, float], tuple[float, float]]
AU_REGIONS: dict[int, tuple[_E, ...]] = {
    1: (((20, 21), (0.0, -0.12), (0.22, 0.16)), ((22, 23), (0.0, -0.12), (0.22, 0.16))),
    2: (((17, 18), (0.0, -0.12), (0.22, 0.16)), ((25, 26), (0.0, -0.12), (0.22, 0.16))),
    4: (((21, 22), (0.0, -0.02), (0.22, 0.14)), ((19, 20), (0.0, 0.0), (0.2, 0.12)),
        ((23, 24), (0.0, 0.0), (0.2, 0.12))),
    5: (((37, 38), (0.0, -0.03), (0.2, 0.1)), ((43, 44), (0.0, -0.03), (0.2, 0.1))),
    6: (((41, 31, 1), (0.0, 0.0), (0.24, 0.18)), ((46, 35, 15), (0.0, 0.0), (0.24, 0.18))),
    7: (((40, 41), (0.0, 0.03), (0.2, 0.09)), ((46, 47), (0.0, 0.03), (0.2, 0.09))),
    9: (((27, 28), (0.0, 0.0), (0.16, 0.2)), ((31, 29), (0.0, 0.0), (0.12, 0.12)),
        ((35, 29), (0.0, 0.0), (0.12, 0.12))),
    10: (((50,), (0.0, -0.04), (0.16, 0.1)), ((52,), (0.0, -0.04), (0.16, 0.1))),
    12: (((48,), (-0.04, -0.02), (0.16, 0.14)), ((54,), (0.04, -0.02), (0.16, 0.14))),
    15: (((48,), (-0.02, 0.12), (0.14, 0.16)), ((54,), (0.02, 0.12), (0.14, 0.16))),
    16: (((56, 57, 58), (0.0, 0.03), (0.22, 0.1)),),
    17: (((57, 8), (0.0, 0.0), (0.22, 0.16)),),
    20: (((48,), (-0.12, 0.04), (0.14, 0.12)), ((54,), (0.12, 0.04), (0.14, 0.12))),
    23: (((51, 62), (0.0, 0.0), (0.26, 0.08)), ((57, 66), (0.0, 0.0), (0.26, 0.08))),
    24: (((62, 66), (0.0, 0.0), (0.3, 0.1)),),
    25: (((62, 66), (0.0, 0.0), (0.22, 0.1)),),
    26: (((66, 8), (0.0, 0.0), (0.26, 0.2)),),
    27: (((62, 66), (0.0, 0.04), (0.3, 0.22)),),
}

# AU intensity from ARKit blendshapes: the mean of the listed names (each with its _L/_R or
# Left/Right pair), then the largest of the alternatives.
AU_BLENDSHAPES: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp",), 2: ("browOuterUp",), 4: ("browDown",), 5: ("eyeWide",),
    6: ("cheekSquint",), 7: ("eyeSquint",), 9: ("noseSneer",), 10: ("mouthUpperUp",),
    12: ("mouthSmile",), 15: ("mouthFrown",), 16: ("mouthLowerDown",), 17: ("mouthShrugLower",),
    20: ("mouthStretch",), 23: ("mouthPucker",), 24: ("mouthPress",), 25: ("jawOpen",),
    26: ("jawOpen",), 27: ("jawOpen",),
}
# AU25-27 all open the mouth: jawOpen is split by how far (lips part, jaw drop, stretch)
_JAW_BANDS = {25: (0.03, 0.2), 26: (0.15, 0.45), 27: (0.45, 0.85)}

# The MediaPipe face-mesh vertex (of 468) nearest each of the 68 iBUG points: for every point the
# vertex with the smallest median distance over 60 faces68_train photos (the benchmark faces68
# not used). Median distance 5.3% of the inter-ocular distance (eyes 2.7%, mouth 3.2%, jaw 9.4%).
MP_TO_68: tuple[int, ...] = (
    127, 227, 177, 215, 172, 169, 149, 148, 152, 400, 378, 365, 397, 435, 401, 447, 356, # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 383,                                       # brows
    168, 197, 195, 4, 75, 97, 2, 326, 460,                                               # nose
    33, 159, 158, 155, 153, 144, 382, 385, 387, 263, 390, 374,                           # eyes
    61, 73, 37, 11, 267, 304, 291, 321, 314, 17, 84, 181,                                # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,                                                   # inner lips
)


def landmarks68_from_mediapipe(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG-style points from MediaPipe's (468 or 478, >=2) face mesh."""
    lm = np.asarray(landmarks, np.float32)
    if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
        raise ValueError(f"expected MediaPipe face-mesh landmarks (468+, 2+), got {lm.shape}")
    return lm[list(MP_TO_68), :2].copy()


def _face_frame(lm68: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit x axis along the eye line (toward the subject's left) and the inter-ocular distance."""
    right_eye, left_eye = lm68[36:42].mean(0), lm68[42:48].mean(0)
    axis = left_eye - right_eye
    iod = float(np.linalg.norm(axis))
    if not np.isfinite(iod) or iod < 1e-6:
        raise ValueError("degenerate landmarks: the eyes coincide")
    return axis / iod, iod


def au_heatmap(lm68: np.ndarray, aus, shape: tuple[int, int], blur: float = 0.08) -> np.ndarray:
    """(H, W) float32 in [0, 1]: the AUs' ellipses from the (68, 2) landmarks (pixels of an image of
    `shape`), each scaled by its weight, blurred (sigma `blur` inter-ocular distances) and
    max-combined. `aus`: iterable of AU numbers, or a dict AU -> weight (0..1)."""
    weights = dict(aus) if isinstance(aus, dict) else {int(a): 1.0 for a in aus}
    h, w = int(shape[0]), int(shape[1])
    out = np.zeros((h, w), np.float32)
    lm = np.asarray(lm68, np.float32)[:, :2]
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    ex, iod = _face_frame(lm)
    ey = np.array([-ex[1], ex[0]], np.float32)          # down in the face's frame
    angle = float(np.degrees(np.arctan2(ex[1], ex[0])))
    sigma = max(0.5, blur * iod)
    for au, weight in weights.items():
        if weight <= 0 or au not in AU_REGIONS:
            continue
        layer = np.zeros((h, w), np.float32)
        for idx, (dx, dy), (a, b) in AU_REGIONS[au]:
            c = lm[list(idx)].mean(0) + (dx * ex + dy * ey) * iod
            cv2.ellipse(layer, (int(round(c[0] * 16)), int(round(c[1] * 16))),
                        (max(1, int(a * iod * 16)), max(1, int(b * iod * 16))), angle, 0, 360,
                        1.0, -1, cv2.LINE_AA, 4)
        layer = cv2.GaussianBlur(layer, (0, 0), sigma)
        np.maximum(out, layer * float(min(1.0, weight)), out=out)
    peak = float(out.max())
    return out / peak * max(min(1.0, max(weights.values(), default=0.0)), 0.0) if peak > 0 else out


def expression_heatmap(lm68: np.ndarray, expression: str, shape: tuple[int, int],
                       intensities: dict[int, float] | None = None) -> np.ndarray:
    """The AU map of `expression`'s codebook; with `intensities`, each AU weighted by how much it
    acts (so a faint smile gives a faint map). Neutral (no AUs) gives zeros."""
    if expression not in CODEBOOK:
        raise ValueError(f"unknown expression '{expression}'; choose one of {', '.join(CODEBOOK)}")
    aus = CODEBOOK[expression]
    if intensities is None:
        return au_heatmap(lm68, aus, shape)
    return au_heatmap(lm68, {a: intensities.get(a, 0.0) for a in aus}, shape)


def au_intensities(blendshapes: dict[str, float]) -> dict[int, float]:
    """AU -> 0..1 from ARKit-named blendshape scores (MediaPipe's or our 53 weights by name)."""
    def score(name: str) -> float:
        pair = [blendshapes[n] for n in (f"{name}Left", f"{name}Right", f"{name}_L", f"{name}_R", name)
                if n in blendshapes]
        return float(np.mean(pair)) if pair else 0.0

    out = {}
    for au, names in AU_BLENDSHAPES.items():
        v = max(score(n) for n in names)
        if au in _JAW_BANDS:
            lo, hi = _JAW_BANDS[au]
            v = float(np.clip((v - lo) / (hi - lo), 0.0, 1.0))
        out[au] = float(np.clip(v, 0.0, 1.0))
    return out


def active_aus(intensities: dict[int, float], threshold: float = 0.3) -> list[tuple[int, str, float]]:
    """(AU, name, intensity) of the AUs above `threshold`, strongest first."""
    act = [(au, AU_NAMES[au], v) for au, v in intensities.items() if v >= threshold]
    return sorted(act, key=lambda t: -t[2])


def cam_cos(cam: np.ndarray, au_map: np.ndarray) -> float:
    """Cosine similarity between a class activation map and an AU map of the same shape
    (CAM-COS); 0 when either is empty."""
    a = np.asarray(cam, np.float64).ravel()
    b = np.asarray(au_map, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"maps differ in size: {np.shape(cam)} vs {np.shape(au_map)}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
