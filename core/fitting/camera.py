"""Pinhole camera of a photo: model space -> camera space -> pixels, and its render camera.

Conventions (OpenGL, like core.render): camera space has x right, y up and the camera looking
down -z; pixel x goes right and pixel y down from the top-left corner. A head at the origin of
model space (cm) is seen as X_cam = R @ X + t with t[2] < 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.render import OrbitCamera
from core.tracking.pose import euler_from_matrix, rotation_matrix


@dataclass
class PinholeCamera:
    width: int
    height: int
    focal: float                   # pixels
    rotation: np.ndarray           # (3, 3) model -> camera
    translation: np.ndarray        # (3,) cm
    near: float = 1.0
    far: float = 1000.0

    @property
    def center(self) -> tuple[float, float]:
        return self.width / 2.0, self.height / 2.0

    @property
    def fov_y(self) -> float:
        return float(np.degrees(2.0 * np.arctan(self.height / 2.0 / self.focal)))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, np.float64) @ np.asarray(self.rotation, np.float64).T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) model points -> (N, 2) pixels."""
        xc = self.to_camera(points)
        cx, cy = self.center
        depth = np.maximum(-xc[:, 2], 1e-6)   # in front of the camera: z < 0
        return np.stack([cx + self.focal * xc[:, 0] / depth, cy - self.focal * xc[:, 1] / depth], 1)

    def model_jacobian(self, points_cam: np.ndarray) -> np.ndarray:
        """(N, 2, 3): d pixel / d model-space position at camera-space points (N, 3)."""
        xc = np.asarray(points_cam, np.float64)
        d = np.maximum(-xc[:, 2], 1e-6)
        jp = np.zeros((len(xc), 2, 3))
        jp[:, 0, 0] = self.focal / d
        jp[:, 0, 2] = self.focal * xc[:, 0] / d ** 2
        jp[:, 1, 1] = -self.focal / d
        jp[:, 1, 2] = -self.focal * xc[:, 1] / d ** 2
        return jp @ np.asarray(self.rotation, np.float64)

    def render_camera(self) -> OrbitCamera:
        """An OrbitCamera at the origin looking down -z with this field of view: render the
        posed vertices (`to_camera`) with it and they land on the photo's pixels."""
        return OrbitCamera(yaw=0.0, pitch=0.0, distance=1.0, target=np.array([0.0, 0.0, -1.0]),
                           fov=self.fov_y, near=self.near, far=self.far)

    def unproject(self, pixels: np.ndarray, window_depth: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) with depth-buffer values in [0, 1] -> model-space points (N, 3)."""
        n, f = self.near, self.far
        zn = 2.0 * np.asarray(window_depth, np.float64) - 1.0
        z_eye = -2.0 * n * f / ((f + n) - zn * (f - n))
        cx, cy = self.center
        px = np.asarray(pixels, np.float64)
        x = (px[:, 0] - cx) / self.focal * -z_eye
        y = -(px[:, 1] - cy) / self.focal * -z_eye
        xc = np.stack([x, y, z_eye], 1)
        return (xc - self.translation) @ np.asarray(self.rotation, np.float64)

    @property
    def yaw_pitch_roll(self) -> tuple[float, float, float]:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        return euler_from_matrix(m)

    @classmethod
    def looking_at_head(cls, width: int, height: int, yaw: float = 0.0, pitch: float = 0.0,
                        roll: float = 0.0, distance: float = 60.0, fov_y: float = 30.0,
                        offset=(0.0, 0.0)) -> "PinholeCamera":
        """A camera `distance` cm in front of a head turned by (yaw, pitch, roll) degrees."""
        focal = height / 2.0 / np.tan(np.radians(fov_y) / 2.0)
        t = np.array([offset[0], offset[1], -distance], np.float64)
        return cls(width, height, float(focal), rotation_matrix(yaw, pitch, roll).astype(np.float64), t)
