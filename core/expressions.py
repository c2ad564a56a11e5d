"""The 53 ARKit-named expression controls, their grouping by face region and emotion presets.

Presets follow the EMFACS prototypes of the basic emotions (Ekman & Friesen), with each
action unit mapped to the ARKit blendshapes that produce it:
AU1 inner brow raiser -> browInnerUp, AU2 outer brow raiser -> browOuterUp,
AU4 brow lowerer -> browDown, AU5 upper lid raiser -> eyeWide, AU6 cheek raiser -> cheekSquint,
AU7 lid tightener -> eyeSquint, AU9 nose wrinkler -> noseSneer, AU10 upper lip raiser ->
mouthUpperUp, AU12 lip corner puller -> mouthSmile, AU15 lip corner depressor -> mouthFrown,
AU16 lower lip depressor -> mouthLowerDown, AU17 chin raiser -> mouthShrugLower,
AU20 lip stretcher -> mouthStretch, AU23 lip tightener -> mouthPress, AU25/26 lips part,
jaw drop -> jawOpen.
"""
from __future__ import annotations

import numpy as np

# Order matches the ICT FaceKit blendshapes the face model is trained on.
EXPRESSION_NAMES: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L",
    "browOuterUp_R", "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R",
    "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L",
    "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R",
    "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R", "mouthFrown_L",
    "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L", "mouthLowerDown_R",
    "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R",
    "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L",
    "noseSneer_R",
)
NUM_EXPRESSIONS = len(EXPRESSION_NAMES)
INDEX = {name: i for i, name in enumerate(EXPRESSION_NAMES)}

REGIONS: dict[str, tuple[str, ...]] = {
    "brows": tuple(n for n in EXPRESSION_NAMES if n.startswith("brow")),
    "eyes": tuple(n for n in EXPRESSION_NAMES if n.startswith("eye")),
    "cheeks": tuple(n for n in EXPRESSION_NAMES if n.startswith("cheek")),
    "nose": tuple(n for n in EXPRESSION_NAMES if n.startswith("nose")),
    "jaw": tuple(n for n in EXPRESSION_NAMES if n.startswith("jaw")),
    "mouth": tuple(n for n in EXPRESSION_NAMES if n.startswith("mouth")),
}


def _both(name: str, value: float) -> dict[str, float]:
    """A symmetric action: the _L and _R blendshapes of `name`, or `name` itself."""
    if f"{name}_L" in INDEX:
        return {f"{name}_L": value, f"{name}_R": value}
    return {name: value}


def _preset(*parts: tuple[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in parts:
        out.update(_both(name, value))
    return out


PRESETS: dict[str, dict[str, float]] = {
    "neutral": {},
    # AU6 + AU12
    "happy": _preset(("cheekSquint", 0.7), ("mouthSmile", 0.9), ("eyeSquint", 0.3)),
    # AU1 + AU4 + AU15 (+AU17)
    "sad": _preset(("browInnerUp", 0.9), ("browDown", 0.4), ("mouthFrown", 0.8),
                   ("mouthShrugLower", 0.4)),
    # AU1 + AU2 + AU5B + AU26
    "surprised": _preset(("browInnerUp", 0.9), ("browOuterUp", 0.9), ("eyeWide", 0.7),
                         ("jawOpen", 0.5)),
    # AU4 + AU5 + AU7 + AU23
    "angry": _preset(("browDown", 0.9), ("eyeWide", 0.3), ("eyeSquint", 0.5),
                     ("mouthPress", 0.7), ("noseSneer", 0.2)),
    # AU9 + AU10 + AU15 + AU16
    "disgusted": _preset(("noseSneer", 0.9), ("mouthUpperUp", 0.6), ("mouthFrown", 0.5),
                         ("mouthLowerDown", 0.3), ("browDown", 0.3)),
    # AU1 + AU2 + AU4 + AU5 + AU7 + AU20 + AU26
    "afraid": _preset(("browInnerUp", 0.9), ("browOuterUp", 0.5), ("browDown", 0.3),
                      ("eyeWide", 0.8), ("eyeSquint", 0.2), ("mouthStretch", 0.7),
                      ("jawOpen", 0.3)),
}


def weights_from_dict(values: dict[str, float], strict: bool = True) -> np.ndarray:
    """53-vector of weights from {name: value}; unknown names raise ValueError when strict."""
    w = np.zeros(NUM_EXPRESSIONS, np.float32)
    for name, value in values.items():
        if name not in INDEX:
            if strict:
                raise ValueError(f"unknown expression '{name}'; known: {', '.join(EXPRESSION_NAMES)}")
            continue
        w[INDEX[name]] = float(np.clip(value, 0.0, 1.0))
    return w


def parse_expression(text: str) -> np.ndarray:
    """Parse 'jawOpen=0.8,eyeBlink_L=1' or a preset name ('happy') into 53 weights."""
    text = (text or "").strip()
    if not text:
        return np.zeros(NUM_EXPRESSIONS, np.float32)
    if text in PRESETS:
        return weights_from_dict(PRESETS[text])
    values: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"expected NAME=VALUE or a preset ({', '.join(PRESETS)}), got '{item}'")
        name, value = item.split("=", 1)
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"'{value}' is not a number in '{item}'") from None
    return weights_from_dict(values)
