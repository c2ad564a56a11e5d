"""Synthetic expression faces (after SynFER): avatars rendered with controlled expressions.

An identity (from the face model's prior, or a real face fitted from a photo) is built once
with its appearance code, hair, eyes and mouth, then rendered many times: a FACS prototype of
a basic emotion (core.expressions.PRESETS) at a random intensity and left/right asymmetry with
small unrelated motion, a head pose, a random light, over a random background, blurred and
noisy. Each render gives the full image, the face box, the 68 landmarks, an aligned 48x48 crop
framed like FER2013 (core.fer.crop), the label, the 53 weights and action-unit intensities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from core.expressions import EXPRESSION_NAMES, INDEX, _both, weights_from_dict

# FER2013's classes and the FACS prototype each is rendered from. Each class uses only the
# blendshapes of its FACS/EMFACS action units (scripts/calibrate_synth_prototypes.py, ALLOWED);
# the intensities were chosen there by coordinate ascent on how the shipped classifier reads
# renders of calibration people (seeds 1000+; the tests use others). What came out:
# angry AU4+5+7+9+10+16 (+15): lowered, furrowed brows, glaring eyes, an open, squared mouth,
#   as in FER2013's shouting faces (the pressed-lips variant, AU23/24, read as sad or neutral);
# disgust AU9+10+6+7+15+17 with the eyes squeezed shut (AU43): with open eyes, or with AU4's
#   lowered brows (not an EMFACS disgust unit), it read as anger;
# fear AU1+2+4+5+20+26 (AU16 dropped); happy AU6+7+12+10+25/26; sad AU1+4+6+15+17+24 with drooping
# lids (AU43) and lowered gaze (AU64); surprise AU1+2+5+26; neutral: lips meeting (a little
# mouthClose: some identities part their lips at rest and bared teeth) and each person's own lids
# relaxed to a natural eye aspect ratio (neutral_lids). Disgust also carries a little AU4.
PROTOTYPES: dict[str, dict[str, float]] = {
    "angry": {"browDown": 1.0, "noseSneer": 1.0, "mouthFrown": 0.25, "eyeWide": 0.5, "mouthUpperUp": 1.0,
              "mouthLowerDown": 1.0, "eyeSquint": 1.0},
    "disgust": {"noseSneer": 1.0, "mouthUpperUp": 0.25, "cheekSquint": 0.8, "eyeSquint": 0.75,
                "mouthFrown": 0.6, "mouthShrugLower": 1.0, "eyeBlink": 1.0, "browDown": 0.25},
    "fear": {"browInnerUp": 1.0, "browOuterUp": 0.25, "browDown": 0.75, "eyeWide": 1.0, "mouthStretch": 0.75,
             "jawOpen": 0.12},
    "happy": {"mouthSmile": 1.0, "cheekSquint": 1.0, "eyeSquint": 1.0, "mouthUpperUp": 1.0, "jawOpen": 0.5},
    "sad": {"browInnerUp": 0.75, "browDown": 0.75, "eyeBlink": 0.75, "eyeLookDown": 1.0, "cheekSquint": 1.0,
            "mouthFrown": 1.0, "mouthShrugLower": 0.8, "mouthPress": 1.0},
    "surprise": {"browInnerUp": 1.0, "browOuterUp": 1.0, "eyeWide": 0.9, "jawOpen": 0.6},
    "neutral": {"eyeSquint": 0.25, "mouthClose": 0.1},     # + the person's relaxed lids (neutral_lids)
}
CLASS_PRESET = {c: c for c in PROTOTYPES}
# Action units as read from the blendshapes (FACS names; the mean of the _L/_R pair)
AU_BLENDSHAPES = {
    "AU1": ("browInnerUp",), "AU2": ("browOuterUp",), "AU4": ("browDown",), "AU5": ("eyeWide",),
    "AU6": ("cheekSquint",), "AU7": ("eyeSquint",), "AU9": ("noseSneer",), "AU10": ("mouthUpperUp",),
    "AU12": ("mouthSmile",), "AU15": ("mouthFrown",), "AU17": ("mouthShrugLower",),
    "AU20": ("mouthStretch",), "AU24": ("mouthPress",), "AU26": ("jawOpen",), "AU45": ("eyeBlink",),
}
SIZE = 256           # full image side
FACE_FILL = 0.55     # face box width / image side, before the random zoom


def _pair(name: str) -> list[int]:
    return [INDEX[n] for n in (f"{name}_L", f"{name}_R", name) if n in INDEX]


# Shapes the small unrelated motion may move when the prototype keeps the jaw closed: not those
# that part the lips (jawOpen 0.08 bares the teeth: at 48x48 a neutral face with a lit gap between its
# lips read as fear or surprise)
_RESTLESS = np.array([not n.startswith(("jawOpen", "mouthLowerDown", "mouthUpperUp", "mouthClose", "mouthFunnel"))
                      for n in EXPRESSION_NAMES], np.float32)


def action_units(weights: np.ndarray) -> dict[str, float]:
    return {au: float(np.mean([weights[i] for n in names for i in _pair(n)])) for au, names in AU_BLENDSHAPES.items()}


# A relaxed open eye's aspect ratio (lid-to-lid height over corner-to-corner width, 68-point
# EAR; ~0.25-0.3 open, ~0.05 shut, Soukupova & Cech 2016). Identities differ in how open their
# eyes are at rest (EAR 0.36-0.48 measured on the mesh at weight 0): one fixed lid setting made
# wide-eyed people stare (read as fear) and narrow-eyed ones look heavy-lidded (read as sad).
NEUTRAL_EAR = 0.33


def eye_aspect(lm: np.ndarray) -> float:
    """Mean eye aspect ratio of both eyes from 68 landmarks (2-D or 3-D)."""
    def one(a: int) -> float:
        p = lm[a:a + 6]
        return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * np.linalg.norm(p[0] - p[3])))
    return (one(36) + one(42)) / 2


def neutral_lids(neutral_lm: np.ndarray, blink_lm: np.ndarray, target: float | None = None) -> float:
    """eyeBlink weight (0..0.6) that brings an identity's eyes at rest to the target aspect
    ratio: `neutral_lm`, `blink_lm` its 68 mesh landmarks at neutral's prototype without and
    with eyeBlink 1 (the lids move linearly in the weight)."""
    e0, e1 = eye_aspect(neutral_lm), eye_aspect(blink_lm)
    if e0 - e1 < 1e-6:
        return 0.0
    return float(np.clip((e0 - (NEUTRAL_EAR if target is None else target)) / (e0 - e1), 0.0, 0.6))


def expression_weights(label: str, rng: np.random.Generator, lids: float | None = None) -> tuple[np.ndarray, dict]:
    """53 weights for one FER class: its prototype scaled by an intensity, made asymmetric, with
    a little unrelated motion (nobody holds the other muscles at exactly zero) and a rare blink.
    `lids`: the person's relaxed eyeBlink for neutral (neutral_lids), else the prototype's."""
    proto = dict(PROTOTYPES[label])
    if label == "neutral" and lids is not None:
        proto["eyeBlink"] = lids
    w = weights_from_dict({k: v for n, x in proto.items() for k, v in _both(n, x).items()})
    intensity = float(rng.uniform(0.7, 1.1)) if label != "neutral" else 0.0
    asym = float(rng.uniform(-0.25, 0.25))
    w = w * (intensity if label != "neutral" else 1.0)     # neutral's prototype is the face at rest
    for i, n in enumerate(EXPRESSION_NAMES):
        if n.endswith("_L"):
            w[i] *= 1 + asym
        elif n.endswith("_R"):
            w[i] *= 1 - asym
    noise = rng.uniform(0.0, 0.08, w.shape) * (w < 0.05)
    w += noise * _RESTLESS if "jawOpen" not in PROTOTYPES[label] else noise
    if rng.random() < 0.08:
        w[_pair("eyeBlink")] = rng.uniform(0.5, 1.0)
    return np.clip(w, 0.0, 1.0).astype(np.float32), {"intensity": intensity, "asymmetry": asym}


def background(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """(size, size, 3) uint8: a colour gradient with blurred shapes and texture, like a room or
    an outdoor backdrop out of focus. Drawn at a quarter of the size (it is blurred anyway)."""
    full, size = size, max(16, size // 4)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    ang = rng.uniform(0, np.pi)
    g = (np.cos(ang) * t[None, :] + np.sin(ang) * t[:, None])
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    img = c0 * (1 - g[..., None]) + c1 * g[..., None]
    for _ in range(int(rng.integers(2, 7))):
        col = rng.uniform(0, 255, 3)
        x, y = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(size // 10, size // 2, 2))
        if rng.random() < 0.5:
            cv2.rectangle(img, (x, y), (x + w, y + h), col.tolist(), -1)
        else:
            cv2.ellipse(img, (x, y), (w // 2, h // 2), float(rng.uniform(0, 180)), 0, 360, col.tolist(), -1)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), float(rng.uniform(0.5, 2)))
    img = cv2.resize(img, (full, full), interpolation=cv2.INTER_LINEAR)
    img += rng.normal(0, rng.uniform(2, 10), img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


class Backdrops:
    """Backgrounds and sensor noise for many shots, cheaply: drawing a background costs ~8 ms
    and a frame of Gaussian noise ~3 ms, a fifth of a shot. The first `pool` shots get new
    backgrounds; later shots reuse one turned/mirrored (8 ways), shifted and re-tinted, and
    noise is a window of one larger noise field."""

    def __init__(self, rng: np.random.Generator, size: int = SIZE, pool: int = 96):
        self.size, self.pool, self.images = size, pool, []
        self.field = rng.standard_normal((2 * size, 2 * size, 3)).astype(np.float32)

    def background(self, rng: np.random.Generator) -> np.ndarray:
        if len(self.images) < self.pool:
            self.images.append(background(rng, self.size))
            return self.images[-1]
        img = np.rot90(self.images[int(rng.integers(len(self.images)))], int(rng.integers(4)))
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = np.roll(img, tuple(int(v) for v in rng.integers(0, self.size, 2)), (0, 1))
        return cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.7, 1.2)), beta=float(rng.uniform(-30, 30)))

    def noise(self, rng: np.random.Generator, sigma: float) -> np.ndarray:
        y, x = (int(v) for v in rng.integers(0, self.size, 2))
        return self.field[y:y + self.size, x:x + self.size] * np.float32(sigma)


def photo_tone(img: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Exposure and contrast like FER2013's photos (float32 RGB in, out): its crops average
    grey 129 with a spread of 54 (std), ours came out at 106 and 37 (rendered skin is dim and
    flat); stock photos are exposed for the face and contrast-boosted. The face (alpha) is
    brought to a random mean and spread drawn around FER2013's."""
    face = alpha[::4, ::4, 0] > 0.5
    if face.sum() < 50:
        return img, 1.0
    grey = img[::4, ::4].mean(2)[face]
    mean, std = float(grey.mean()), float(grey.std())
    k = float(np.clip(rng.uniform(44, 66) / max(std, 1.0), 0.8, 2.2))
    return (img - mean) * k + float(rng.uniform(105, 155)), k


def random_lighting(rng: np.random.Generator):
    from core.render.lighting import Lighting, _unit
    warm = rng.uniform(0.85, 1.0, 3)
    key = float(rng.uniform(0.7, 1.25))
    return Lighting(key_dir=_unit([rng.uniform(-0.9, 0.9), rng.uniform(-0.2, 0.9), rng.uniform(0.3, 1.0)]),
                    key_col=tuple(float(v) for v in warm * key),
                    fill_dir=_unit([rng.uniform(-0.9, 0.9), rng.uniform(-0.3, 0.5), 0.6]),
                    fill_col=tuple(float(v) for v in rng.uniform(0.1, 0.45) * rng.uniform(0.85, 1.0, 3)),
                    ambient=tuple(float(v) for v in np.full(3, rng.uniform(0.04, 0.16))),
                    specular=float(rng.uniform(0.05, 0.2)))


@dataclass
class Identity:
    """What stays the same across renders of one synthetic person."""
    identity: np.ndarray
    appearance: np.ndarray | None
    hair: object                      # core.head.settings.HairStyle
    eyes: object                      # core.head.settings.EyeSettings
    source: str                       # "prior" or "real:NAME"
    brows: tuple[float, float, float] = (0.8, 0.25, 0.5)   # darkness, thickness, warmth
    eye_shade: float = 0.7            # eyeball brightness (lid and lash shadow; see PersonRenderer)


@dataclass
class SynthFace:
    image: np.ndarray                 # (SIZE, SIZE, 3) uint8 RGB
    crop: np.ndarray                  # (48, 48) uint8 grey, FER2013 framing
    label: str
    weights: np.ndarray
    aus: dict[str, float]
    box: tuple[float, float, float, float]     # face box x, y, w, h in the image
    landmarks68: np.ndarray            # (68, 2) image pixels
    meta: dict = field(default_factory=dict)


def random_identity(model, appearance_model, rng: np.random.Generator, real: list | None = None) -> Identity:
    """Half the people are real fitted faces (geometry and appearance from a photo) when
    `real` samples (core.appearance.samples.UVSample) are given, the others prior draws."""
    from core.head.settings import HAIR_STYLES, EyeSettings, HairStyle
    browns = np.array([[0.10, 0.07, 0.05], [0.23, 0.15, 0.09], [0.45, 0.30, 0.16], [0.75, 0.6, 0.35],
                       [0.05, 0.05, 0.05], [0.5, 0.2, 0.1]], np.float32)
    hair = HairStyle(style=str(rng.choice(HAIR_STYLES)), length=float(rng.uniform(0.2, 1.0)),
                     hairline=float(rng.uniform(-0.6, 0.6)),
                     colour=tuple(float(v) for v in np.clip(browns[rng.integers(len(browns))] * rng.uniform(0.8, 1.2), 0, 1)),
                     grey=float(rng.uniform(0, 0.6)) if rng.random() < 0.2 else 0.0)
    irises = [(0.35, 0.22, 0.12), (0.2, 0.35, 0.55), (0.3, 0.4, 0.25), (0.15, 0.1, 0.07)]
    eyes = EyeSettings(iris_colour=irises[int(rng.integers(len(irises)))])
    brows = (float(rng.uniform(0.6, 0.95)), float(rng.uniform(0.18, 0.3)), float(rng.uniform(0, 1)))
    if real and rng.random() < 0.5:
        s = real[int(rng.integers(len(real)))]
        code = None
        if appearance_model is not None:
            from core.appearance.model import mirror_index
            code = appearance_model.encode_symmetric(s.linear, s.weight, mirror_index(s.mirror_uv))
        return Identity(np.asarray(s.identity, np.float32), code, hair, eyes, f"real:{s.name}", brows,
                        float(rng.uniform(0.5, 0.8)))
    code = appearance_model.sample(rng, temperature=0.9) if appearance_model is not None else None
    return Identity(model.sample_identity(rng, temperature=0.9), code, hair, eyes, "prior", brows,
                    float(rng.uniform(0.5, 0.8)))
