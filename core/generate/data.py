"""Training faces for text-to-avatar: the ~870 real faces fitted from photos (real geometry with
real appearance: `.cache/appearance/samples/*.npz`) plus identities and appearance codes drawn
from the priors; every one measured (core.generate.attributes), never labelled from its
sampling parameters.

Hair and iris settings are SYNTHETIC for every face (the photo fits carry no hair or iris
model): drawn from a hand-set prior that leans darker with darker measured skin; their
attributes are then measured from the settings like any user's avatar's.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Callable

import numpy as np

from core.head.settings import HAIR_STYLES, EyeSettings, HairStyle

from .attributes import (GEOMETRY, SETTINGS, TEXTURE, GeometryProbe, TextureProbe, measure_geometry,
                         measure_settings)

STYLE_P = np.array([0.07, 0.12, 0.33, 0.21, 0.19, 0.08])
HAIR_PALETTE = {  # sRGB base colours
    "black": (0.05, 0.045, 0.04), "dark brown": (0.14, 0.09, 0.06), "brown": (0.28, 0.18, 0.10),
    "light brown": (0.45, 0.32, 0.20), "blond": (0.78, 0.64, 0.40), "platinum": (0.90, 0.85, 0.72),
    "red": (0.55, 0.20, 0.08), "auburn": (0.38, 0.14, 0.07)}
IRIS_PALETTE = {"dark brown": (0.18, 0.10, 0.05), "brown": (0.33, 0.20, 0.10), "hazel": (0.45, 0.36, 0.18),
                "green": (0.30, 0.45, 0.28), "blue": (0.30, 0.48, 0.70), "grey": (0.50, 0.55, 0.58),
                "light blue": (0.50, 0.68, 0.85)}


def synthetic_hair_eyes(rng: np.random.Generator, ita: float) -> tuple[HairStyle, EyeSettings]:
    light = float(np.clip((ita - 10.0) / 40.0, 0.0, 1.0))   # 0 dark skin .. 1 very light
    names = list(HAIR_PALETTE)
    w = np.array([1.6 - light, 1.5 - 0.5 * light, 1.2, 0.2 + light, 0.1 + 0.9 * light,
                  0.05 + 0.3 * light, 0.05 + 0.4 * light, 0.1 + 0.4 * light])
    base = np.array(HAIR_PALETTE[names[rng.choice(len(names), p=w / w.sum())]])
    colour = np.clip(base * np.exp(rng.normal(0, 0.12, 3)), 0.0, 1.0)
    style = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=STYLE_P))]
    grey = float(rng.uniform(0.3, 1.0)) if rng.random() < 0.12 else 0.0
    hair = HairStyle(style=style, length=float(rng.uniform(0.05, 0.95)),
                     hairline=float(np.clip(rng.normal(0, 0.35), -1, 1)), colour=tuple(colour), grey=grey)
    inames = list(IRIS_PALETTE)
    iw = np.array([1.5 - light, 1.3, 0.4 + 0.3 * light, 0.1 + 0.6 * light, 0.05 + 1.2 * light,
                   0.05 + 0.4 * light, 0.02 + 0.5 * light])
    iris = np.array(IRIS_PALETTE[inames[rng.choice(len(inames), p=iw / iw.sum())]])
    iris = np.clip(iris * np.exp(rng.normal(0, 0.1, 3)), 0.0, 1.0)
    return hair, EyeSettings(iris_colour=tuple(iris), pupil_size=float(rng.uniform(0.35, 0.5)))


def extras_of(hair: HairStyle, eyes: EyeSettings) -> np.ndarray:
    onehot = np.eye(len(HAIR_STYLES))[HAIR_STYLES.index(hair.style)]
    return np.concatenate([onehot, [hair.length, hair.hairline], hair.colour, [hair.grey],
                           eyes.iris_colour]).astype(np.float32)


def natural_hair_colour(rgb) -> tuple[float, float, float]:
    """Hair pigments run from red through orange to yellow: a sampled colour with a clear hue
    outside 0-50 degrees (strong guidance extrapolates in RGB: green or violet hair) takes the
    nearest natural hue, keeping its lightness and saturation."""
    import colorsys
    r, g, b = (float(x) for x in np.clip(rgb, 0.0, 1.0))
    h, ls, s = colorsys.rgb_to_hls(r, g, b)
    deg = h * 360.0
    if s > 0.12 and not deg <= 50.0:
        deg = 50.0 if deg < 200.0 else 0.0
        r, g, b = colorsys.hls_to_rgb(deg / 360.0, ls, s)
    return (float(r), float(g), float(b))


def settings_of(extras: np.ndarray, pupil: float = 0.42) -> tuple[HairStyle, EyeSettings]:
    e = np.asarray(extras, np.float64)
    n = len(HAIR_STYLES)
    style = HAIR_STYLES[int(np.argmax(e[:n]))]
    c = lambda v: tuple(float(x) for x in np.clip(v, 0.0, 1.0))  # noqa: E731
    hair = HairStyle(style=style, length=float(np.clip(e[n], 0, 1)), hairline=float(np.clip(e[n + 1], -1, 1)),
                     colour=c(natural_hair_colour(e[n + 2:n + 5])), grey=float(np.clip(e[n + 5], 0, 1)))
    return hair, EyeSettings(iris_colour=c(e[n + 6:n + 9]), pupil_size=pupil)


def real_samples(folder: str | Path) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(Path(folder) / "*.npz")))


def build_dataset(face_model, appearance, samples_dir: str | Path, n_prior: int, seed: int = 0,
                  progress: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Identity codes, ICT coefficients, appearance codes, hair/iris extras and measured values
    (N, len(SCALARS)) of the real faces followed by n_prior prior samples."""
    rng = np.random.default_rng(seed)
    files = real_samples(samples_dir)
    if not files:
        raise FileNotFoundError(f"no fitted faces in {samples_dir} (run the appearance sample fitting first)")
    ids, apps = [], []
    for i, f in enumerate(files):
        with np.load(f, allow_pickle=False) as d:
            ids.append(d["identity"].astype(np.float32))
            apps.append(appearance.encode(d["linear"], d["weight"]))
        if i % 200 == 0:
            progress(f"encoded {i}/{len(files)} real faces")
    n_real = len(ids)
    for _ in range(n_prior):
        ids.append(face_model.sample_identity(rng))
        apps.append(appearance.sample(rng))
    ids = np.stack(ids).astype(np.float32)
    apps = np.stack(apps).astype(np.float32)
    W = face_model.net.id_encoder.weight.detach().double().numpy()
    ict = np.linalg.solve(W, ids.T.astype(np.float64)).T.astype(np.float32)
    progress("measuring geometry")
    geo = measure_geometry(GeometryProbe(face_model), ids)
    progress("measuring textures")
    tp = TextureProbe(face_model)
    tex = np.stack([tp.measure(appearance.decode_linear(a)) for a in apps])
    extras, sets = [], []
    for k in range(len(ids)):
        hair, eyes = synthetic_hair_eyes(rng, float(tex[k, 0]))
        extras.append(extras_of(hair, eyes))
        sets.append(measure_settings(hair, eyes))
    values = np.concatenate([geo, tex, np.stack(sets)], 1)
    assert values.shape[1] == len(GEOMETRY) + len(TEXTURE) + len(SETTINGS)
    return {"identity": ids, "ict": ict, "appearance": apps, "extras": np.stack(extras),
            "values": values.astype(np.float64), "real": np.arange(len(ids)) < n_real,
            "files": np.array([f.stem for f in files] + [""] * n_prior)}
