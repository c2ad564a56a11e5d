"""Attributes MEASURED on an avatar: its neutral mesh (landmarks and fixed vertex sets of the
face model's template), its albedo texture (UV regions found from the landmarks' UVs) and its
hair and eye settings. Captions, the prompt reading and the evaluation all speak in these.

Geometry is linear in the identity code (the face model's warp is linear in the codes), so the
landmarks and the few measured vertices are an affine map of the code computed once; measuring
thousands of faces is a few matrix products. Values are in cm (geometry), CIELAB (colour) or
plain numbers; `AttributeScale` turns them into z-scores of the training distribution
(rank-based, so skewed measures such as freckle contrast behave).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.head.settings import HAIR_STYLES, EyeSettings, HairStyle

# name, words a user might use for the attribute (first is the caption noun), high word, low word
GEOMETRY = ("face_length", "face_width", "jaw_width", "chin", "cheekbones", "forehead",
            "nose_length", "nose_width", "nose_bridge", "lip_thickness", "mouth_width",
            "eye_size", "eye_spacing", "ears", "head_size")
TEXTURE = ("skin_tone", "lip_colour", "cheek_colour", "facial_hair", "freckles",
           "brow_thickness", "brow_darkness")
SETTINGS = ("hair_length", "hair_lightness", "hair_redness", "grey_hair", "eye_lightness",
            "eye_blueness")
SCALARS = GEOMETRY + TEXTURE + SETTINGS
INDEX = {n: i for i, n in enumerate(SCALARS)}
# families for the per-family accuracy figure
FAMILY = {**{n: "shape" for n in ("face_length", "face_width", "jaw_width", "chin", "cheekbones",
                                  "forehead", "head_size")},
          **{n: "nose" for n in ("nose_length", "nose_width", "nose_bridge")},
          **{n: "mouth" for n in ("lip_thickness", "mouth_width", "lip_colour")},
          **{n: "eyes" for n in ("eye_size", "eye_spacing", "eye_lightness", "eye_blueness")},
          "ears": "ears",
          **{n: "skin" for n in ("skin_tone", "cheek_colour", "freckles", "facial_hair")},
          **{n: "brows" for n in ("brow_thickness", "brow_darkness")},
          **{n: "hair" for n in ("hair_length", "hair_lightness", "hair_redness", "grey_hair")}}


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_lab(lin: np.ndarray) -> np.ndarray:
    """Linear sRGB (..., 3) in [0, 1] -> CIELAB (D65)."""
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = np.asarray(lin, np.float64) @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(np.maximum(xyz, 1e-12)), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], -1)


def ita_degrees(lab: np.ndarray) -> np.ndarray:
    """Individual typology angle: arctan((L* - 50) / b*); > 55 very light ... < -30 dark."""
    return np.degrees(np.arctan2(lab[..., 0] - 50.0, np.maximum(lab[..., 2], 1e-3)))


class GeometryProbe:
    """Affine maps identity code -> 68 landmarks and -> the measured vertex sets."""

    def __init__(self, model) -> None:
        d = model.identity_dim
        z0 = np.zeros(d, np.float32)
        self.lm0 = model.landmarks(z0).astype(np.float64)
        eye = np.eye(d, dtype=np.float32)
        self.lmB = np.stack([model.landmarks(e) - self.lm0 for e in eye]).astype(np.float64)  # (D, 68, 3)
        mesh0 = model.extract_mesh(z0, resolution=64)
        v0 = mesh0.vertices.astype(np.float64)
        lm = self.lm0
        # vertex sets chosen once on the mean head (the template's vertices move with identity)
        brow_y = lm[17:27, 1].mean()
        nose_y = lm[33, 1]
        side = np.abs(v0[:, 0])
        band = (v0[:, 1] > nose_y - 3.0) & (v0[:, 1] < brow_y + 2.0) & (v0[:, 2] < lm[0, 2])
        ear_l = np.nonzero(band & (v0[:, 0] > 0) & (side > side[band].max() - 1.5))[0]
        ear_r = np.nonzero(band & (v0[:, 0] < 0) & (side > side[band].max() - 1.5))[0]
        top = np.argsort(-v0[:, 1])[:40]                          # crown
        midline = np.nonzero((side < 0.8) & (v0[:, 2] > lm[27, 2] - 4.0)
                             & (v0[:, 1] > brow_y + 2.0))[0]       # front of the forehead
        self.sets = {"ear_l": ear_l, "ear_r": ear_r, "top": top, "fore": midline,
                     "all": np.arange(0, len(v0), 7)}
        idx = np.unique(np.concatenate(list(self.sets.values())))
        self._where = {k: np.searchsorted(idx, v) for k, v in self.sets.items()}
        self.v0 = v0[idx]
        self.vB = np.stack([model.extract_mesh(e, resolution=64).vertices[idx] - v0[idx] for e in eye]
                           ).astype(np.float64)                      # (D, n, 3)

    def landmarks(self, ids: np.ndarray) -> np.ndarray:
        return self.lm0[None] + np.einsum("bd,dlc->blc", ids, self.lmB)

    def vertices(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        v = self.v0[None] + np.einsum("bd,dnc->bnc", ids, self.vB)
        return {k: v[:, w] for k, w in self._where.items()}


def _dist(lm: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(lm[:, a] - lm[:, b], axis=-1)


def measure_geometry(probe: GeometryProbe, ids: np.ndarray) -> np.ndarray:
    """(B, len(GEOMETRY)) in cm for identity codes (B, D) at the neutral expression."""
    ids = np.atleast_2d(np.asarray(ids, np.float64))
    lm = probe.landmarks(ids)
    vs = probe.vertices(ids)
    face_w = _dist(lm, 0, 16)
    brow = lm[:, 17:27].mean(1)
    ear = 0.5 * (np.ptp(vs["ear_l"][..., 1], axis=1) + np.ptp(vs["ear_r"][..., 1], axis=1))
    allv = vs["all"]
    head = np.cbrt(np.ptp(allv[..., 0], 1) * np.ptp(allv[..., 1], 1) * np.ptp(allv[..., 2], 1))
    out = {
        "face_length": _dist(lm, 27, 8),
        "face_width": face_w,
        "jaw_width": _dist(lm, 4, 12) / face_w,                    # square vs tapered jaw
        "chin": lm[:, 57, 1] - lm[:, 8, 1],                        # lower lip to chin tip
        "cheekbones": _dist(lm, 1, 15) - 0.5 * (face_w + _dist(lm, 3, 13)),
        "forehead": vs["top"][..., 1].mean(1) - brow[:, 1],
        "nose_length": _dist(lm, 27, 33),
        "nose_width": _dist(lm, 31, 35),
        "nose_bridge": lm[:, 28, 2] - 0.5 * (lm[:, 39, 2] + lm[:, 42, 2]),
        "lip_thickness": _dist(lm, 51, 62) + _dist(lm, 66, 57),
        "mouth_width": _dist(lm, 48, 54),
        "eye_size": 0.5 * (_dist(lm, 36, 39) + _dist(lm, 42, 45))
        + 0.5 * (_dist(lm, 37, 41) + _dist(lm, 43, 47)),
        "eye_spacing": _dist(lm, 39, 42),
        "ears": ear,
        "head_size": head,
    }
    return np.stack([out[n] for n in GEOMETRY], 1)


class TextureProbe:
    """UV regions (cheeks, lips, brows, forehead, beard area) rasterised from landmark UVs."""

    def __init__(self, model, size: int = 256) -> None:
        self.size = size
        lm0 = model.landmarks(np.zeros(model.identity_dim, np.float32))
        uv = model.uv_at(lm0, np.zeros(model.identity_dim, np.float32))
        px = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], 1)   # row 0 = v 1

        def poly(idx) -> np.ndarray:
            m = np.zeros((size, size), np.uint8)
            cv2.fillPoly(m, [np.round(px[list(idx)]).astype(np.int32)], 1)
            return m.astype(bool)

        def disc(centre: np.ndarray, r: float) -> np.ndarray:
            m = np.zeros((size, size), np.uint8)
            cv2.circle(m, tuple(int(round(c)) for c in centre), max(1, int(round(r))), 1, -1)
            return m.astype(bool)

        eye_r = np.linalg.norm(px[36] - px[39])
        cheek = disc(px[[2, 31, 41]].mean(0), 0.45 * eye_r) | disc(px[[14, 35, 46]].mean(0), 0.45 * eye_r)
        lips = poly(range(48, 60)) & ~poly(range(60, 68))
        brows = np.zeros((size, size), bool)
        fore = np.zeros((size, size), bool)
        for a, b in ((17, 22), (22, 27)):
            p = px[a:b]
            h = 0.22 * np.linalg.norm(px[36] - px[39])
            brows |= poly(list(range(a, b))) | self._band(p, h, size)
            fore |= self._band(p - np.array([0.0, 3.0 * h]), h, size)
        fore &= ~brows
        chin = poly([5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59])
        upper = poly([31, 32, 33, 34, 35, 54, 53, 52, 51, 50, 49, 48])
        self.regions = {"cheeks": cheek, "lips": lips, "brows": brows, "forehead": fore,
                        "beard": chin | upper}
        nose = poly([27, 31, 32, 33, 34, 35])
        self.regions["freckle"] = cheek | nose

    @staticmethod
    def _band(p: np.ndarray, h: float, size: int) -> np.ndarray:
        m = np.zeros((size, size), np.uint8)
        cv2.polylines(m, [np.round(p).astype(np.int32)], False, 1, max(1, int(round(2 * h))))
        return m.astype(bool)

    def measure(self, linear: np.ndarray) -> np.ndarray:
        """(len(TEXTURE),) for one (S, S, 3) linear-RGB albedo."""
        lin = linear if linear.shape[0] == self.size else cv2.resize(linear, (self.size, self.size))
        lab = linear_to_lab(np.clip(lin, 0, 1))
        mean = {k: lab[m].mean(0) for k, m in self.regions.items()}
        L = lab[..., 0].astype(np.float32)
        detail = L - cv2.GaussianBlur(L, (0, 0), 2.0)
        brow_L = lab[self.regions["brows"], 0]
        thresh = mean["forehead"][0] - 6.0
        return np.array([
            ita_degrees(mean["cheeks"]),
            mean["lips"][1],                                         # lip redness a*
            mean["cheeks"][1],                                       # cheek redness a*
            mean["cheeks"][0] - mean["beard"][0],                    # darker beard area
            float(np.std(detail[self.regions["freckle"]])),
            float((brow_L < thresh).mean()),                         # dark brow fraction
            mean["forehead"][0] - mean["brows"][0],                  # brow contrast
        ])


def measure_settings(hair: HairStyle, eyes: EyeSettings) -> np.ndarray:
    """(len(SETTINGS),): hair length in cm of drape (style range x length), hair and iris
    colour in CIELAB of their linear colour."""
    base = {"bald": 0.0, "buzz": 0.3, "short": 4.0, "medium": 12.0, "long": 30.0, "tied": 20.0}
    span = {"bald": 0.0, "buzz": 1.0, "short": 6.0, "medium": 14.0, "long": 25.0, "tied": 15.0}
    length = base[hair.style] + span[hair.style] * hair.length
    grey = hair.grey if hair.style != "bald" else 0.0
    hc = np.asarray(hair.colour) * (1 - grey) + grey * 0.75
    hl = linear_to_lab(_srgb_to_linear(hc))
    il = linear_to_lab(_srgb_to_linear(np.asarray(eyes.iris_colour)))
    return np.array([length, hl[0], hl[1], grey, il[0], -il[2]])


@dataclass
class AttributeScale:
    """Rank-based z-scores against a reference sample (the training faces): z = probit(rank)."""
    sorted_values: np.ndarray      # (N, A) each column sorted

    @classmethod
    def fit(cls, values: np.ndarray) -> "AttributeScale":
        return cls(np.sort(np.asarray(values, np.float64), 0))

    def z(self, values: np.ndarray) -> np.ndarray:
        from scipy.special import ndtri
        v = np.atleast_2d(values)
        n = self.sorted_values.shape[0]
        out = np.empty(v.shape)
        for j in range(v.shape[1]):
            col = self.sorted_values[:, j]
            lo = np.searchsorted(col, v[:, j], "left")
            hi = np.searchsorted(col, v[:, j], "right")
            out[:, j] = (0.5 * (lo + hi) + 0.5) / (n + 1)
        return ndtri(np.clip(out, 0.5 / (n + 1), 1 - 0.5 / (n + 1)))


__all__ = ["GEOMETRY", "TEXTURE", "SETTINGS", "SCALARS", "INDEX", "FAMILY", "HAIR_STYLES",
           "GeometryProbe", "TextureProbe", "AttributeScale", "measure_geometry",
           "measure_settings", "linear_to_lab", "ita_degrees"]
