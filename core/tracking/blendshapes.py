"""MediaPipe's 52 tracked blendshapes -> our 53 ICT-ordered expression weights.

MediaPipe Face Landmarker outputs '_neutral' followed by 51 ARKit coefficients (no
tongueOut), with ARKit names ('eyeBlinkLeft'). ARKit's 'Left' is the *subject's* left. Our
ICT FaceKit '_L' is the subject's left too: the eyeBlink_L / mouthSmile_L / browDown_L deltas
sit at +x in the FaceKit mesh, whose +z points at the viewer, i.e. on the subject's left
(the right side of a non-mirrored image). So Left -> _L and Right -> _R with no swap; the
tracking test checks this on a real clip (the eye that closes more on the image's right side
must raise eyeBlink_L). ARKit's unsplit browInnerUp and cheekPuff drive both of our halves.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from core.expressions import EXPRESSION_NAMES, INDEX

MEDIAPIPE_BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)


def arkit_to_ours(name: str) -> tuple[str, ...]:
    """Our expression names driven by one ARKit/MediaPipe name ('' for _neutral)."""
    if name == "_neutral":
        return ()
    if name in INDEX:  # unsplit in both: jawOpen, and the directional jawLeft/mouthRight etc.
        return (name,)
    if name.endswith("Left"):
        return (name[:-4] + "_L",)
    if name.endswith("Right"):
        return (name[:-5] + "_R",)
    if f"{name}_L" in INDEX:  # browInnerUp, cheekPuff: one ARKit control, two ICT halves
        return (f"{name}_L", f"{name}_R")
    raise KeyError(f"no expression for blendshape {name!r}")


# (our index, mediapipe index) pairs, built once
_PAIRS = np.array([(INDEX[ours], mp_i) for mp_i, name in enumerate(MEDIAPIPE_BLENDSHAPES)
                   for ours in arkit_to_ours(name)], dtype=np.int64)
assert sorted(_PAIRS[:, 0].tolist()) == list(range(len(EXPRESSION_NAMES))), "mapping must cover all 53"


def to_expression_weights(blendshapes: Sequence[float] | Mapping[str, float]) -> np.ndarray:
    """52 MediaPipe scores (in MEDIAPIPE_BLENDSHAPES order, or a name->score dict) -> (53,) float32
    weights in core.expressions.EXPRESSION_NAMES order, clipped to [0, 1]."""
    if isinstance(blendshapes, Mapping):
        scores = np.array([blendshapes.get(n, 0.0) for n in MEDIAPIPE_BLENDSHAPES], np.float32)
    else:
        scores = np.asarray(blendshapes, np.float32)
        if scores.shape != (len(MEDIAPIPE_BLENDSHAPES),):
            raise ValueError(f"expected {len(MEDIAPIPE_BLENDSHAPES)} blendshape scores, got {scores.shape}")
    out = np.zeros(len(EXPRESSION_NAMES), np.float32)
    out[_PAIRS[:, 0]] = scores[_PAIRS[:, 1]]
    return np.clip(out, 0.0, 1.0)
