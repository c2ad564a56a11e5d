"""Lighting presets: a three-point studio rig (key, fill, rim) and image-based lighting from
an equirectangular environment reduced to 9 spherical-harmonic irradiance coefficients."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


@dataclass
class Lighting:
    mode: str = "three_point"                    # "three_point" | "ibl"
    # Directions are in view space (x right, y up, +z toward the camera), toward the light.
    key_dir: np.ndarray = field(default_factory=lambda: _unit([-0.55, 0.6, 0.6]))
    key_col: tuple = (1.0, 0.96, 0.9)
    fill_dir: np.ndarray = field(default_factory=lambda: _unit([0.7, 0.1, 0.5]))
    fill_col: tuple = (0.28, 0.3, 0.36)
    rim_dir: np.ndarray = field(default_factory=lambda: _unit([0.4, 0.5, -0.8]))
    rim_col: tuple = (0.35, 0.38, 0.45)
    ambient: tuple = (0.08, 0.08, 0.1)
    specular: float = 0.12
    shininess: float = 24.0
    sh: np.ndarray = field(default_factory=lambda: np.zeros((9, 3), np.float32))

    @classmethod
    def studio(cls) -> "Lighting":
        return cls()

    @classmethod
    def image_based(cls, equirect: np.ndarray | None = None) -> "Lighting":
        """IBL from an (H,W,3) equirectangular image (uint8 sRGB or float linear), or from a
        built-in soft studio environment when none is given."""
        env = studio_environment() if equirect is None else _to_linear(equirect)
        return cls(mode="ibl", sh=irradiance_sh(env), rim_col=(0.2, 0.22, 0.26))


PRESETS = ("studio", "ibl")


def lighting_preset(name: str) -> Lighting:
    if name == "studio":
        return Lighting.studio()
    if name == "ibl":
        return Lighting.image_based()
    raise ValueError(f"unknown lighting '{name}'; choose one of {', '.join(PRESETS)}")


def _to_linear(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return (img[..., :3].astype(np.float32) / 255.0) ** 2.2
    return img[..., :3].astype(np.float32)


def _equirect_dirs(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit world directions of each pixel (+y up, image centre = +z) and solid angles."""
    theta = (np.arange(h) + 0.5) / h * np.pi                    # polar angle from +y
    phi = (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi
    t, p = np.meshgrid(theta, phi, indexing="ij")
    d = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1)
    dw = np.sin(t) * (np.pi / h) * (2 * np.pi / w)
    return d, dw


def studio_environment(h: int = 32, w: int = 64) -> np.ndarray:
    """Soft-box studio: bright overhead-front panel, dim warm floor, cool sides."""
    d, _ = _equirect_dirs(h, w)
    sky = np.clip(d[..., 1], 0, 1)[..., None] * np.array([0.3, 0.32, 0.36])
    floor = np.clip(-d[..., 1], 0, 1)[..., None] * np.array([0.18, 0.15, 0.12])
    box = np.exp(-12 * (1 - d @ _unit([-0.4, 0.6, 0.7])))[..., None] * np.array([5.0, 4.8, 4.5])
    side = np.exp(-8 * (1 - d @ _unit([0.9, 0.2, -0.3])))[..., None] * np.array([0.5, 0.6, 0.8])
    return (sky + floor + box + side + 0.05).astype(np.float32)


def irradiance_sh(env: np.ndarray) -> np.ndarray:
    """(9,3) SH coefficients of the irradiance (cosine-convolved radiance) of an equirect
    environment, in the basis order used by shaders/common.glsl (Ramamoorthi & Hanrahan)."""
    h, w = env.shape[:2]
    d, dw = _equirect_dirs(h, w)
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    basis = np.stack([
        np.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
        1.092548 * x * z, 0.546274 * (x * x - y * y)], -1)          # (h,w,9)
    coeffs = np.einsum("hwk,hwc,hw->kc", basis, env, dw)
    band = np.array([np.pi] + [2 * np.pi / 3] * 3 + [np.pi / 4] * 5)[:, None]
    # Irradiance divided by pi gives the diffuse reflectance factor for albedo.
    return (coeffs * band / np.pi).astype(np.float32)
