"""Orbit camera: yaw/pitch/distance around a target, perspective projection, mouse helpers.

Conventions: world +y up, +z toward the viewer; yaw=0, pitch=0 looks at the face from the
front (camera on +z), positive yaw moves the camera to the subject's left (toward +x),
positive pitch lifts it. Matrices are numpy row-major, applied as M @ [x, y, z, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def perspective(fov_y_deg: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / np.tan(np.radians(fov_y_deg) / 2.0)
    return np.array([
        [f / aspect, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
        [0, 0, -1, 0],
    ], np.float64)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    f = np.asarray(target, np.float64) - eye
    f /= np.linalg.norm(f)
    s = np.cross(f, up)
    if np.linalg.norm(s) < 1e-8:  # looking straight up or down
        s = np.cross(f, (0.0, 0.0, -1.0))
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


@dataclass
class OrbitCamera:
    yaw: float = 25.0            # degrees
    pitch: float = 8.0           # degrees
    distance: float = 70.0       # cm from target
    target: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 0.0]))
    fov: float = 30.0            # vertical, degrees
    near: float = 1.0
    far: float = 1000.0

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, np.float64).copy()

    # -- geometry --------------------------------------------------------------------------
    @property
    def eye(self) -> np.ndarray:
        y, p = np.radians(self.yaw), np.radians(self.pitch)
        offset = np.array([np.sin(y) * np.cos(p), np.sin(p), np.cos(y) * np.cos(p)])
        return self.target + self.distance * offset

    def view_matrix(self) -> np.ndarray:
        return look_at(self.eye, self.target)

    def projection_matrix(self, aspect: float) -> np.ndarray:
        return perspective(self.fov, aspect, self.near, self.far)

    def view_proj(self, width: int, height: int) -> np.ndarray:
        return self.projection_matrix(width / height) @ self.view_matrix()

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N,3) world points -> (N,3) pixel x (right), pixel y (down, row index), depth [0,1]."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        clip = np.c_[p, np.ones(len(p))] @ self.view_proj(width, height).T
        ndc = clip[:, :3] / clip[:, 3:4]
        return np.c_[(ndc[:, 0] + 1) * 0.5 * width, (1 - ndc[:, 1]) * 0.5 * height,
                     ndc[:, 2] * 0.5 + 0.5]

    def pixel_angle(self, height: int) -> float:
        """Angle subtended by one pixel at the image centre (radians)."""
        return float(np.radians(self.fov) / height)

    # -- framing and mouse -----------------------------------------------------------------
    def frame(self, lo: np.ndarray, hi: np.ndarray, margin: float = 1.1) -> "OrbitCamera":
        """Aim at the centre of the box lo..hi and back off until its bounding sphere fits."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        self.target = (lo + hi) / 2
        radius = np.linalg.norm(hi - lo) / 2
        self.distance = float(margin * radius / np.sin(np.radians(self.fov) / 2))
        self.near, self.far = max(0.1, self.distance - 4 * radius), self.distance + 4 * radius
        return self

    def orbit(self, d_yaw: float, d_pitch: float) -> None:
        """Turn around the target by degrees; pitch stops short of the poles."""
        self.yaw = (self.yaw + d_yaw) % 360.0
        self.pitch = float(np.clip(self.pitch + d_pitch, -89.0, 89.0))

    def zoom(self, factor: float) -> None:
        """factor > 1 moves closer (e.g. 1.1 per wheel notch)."""
        self.distance = float(np.clip(self.distance / factor, 5.0, 2000.0))

    def pan(self, dx_px: float, dy_px: float, viewport_height: int) -> None:
        """Slide the target so the content follows a mouse drag of (dx, dy) pixels."""
        v = self.view_matrix()
        right, up = v[0, :3], v[1, :3]
        cm_per_px = 2 * self.distance * np.tan(np.radians(self.fov) / 2) / viewport_height
        self.target = self.target - right * dx_px * cm_per_px + up * dy_px * cm_per_px
