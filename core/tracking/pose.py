"""Head pose angles from MediaPipe's facial transformation matrix.

The matrix maps the canonical face model (metric, +y up, +z out of the face) into the camera
frame (+x right, +y up, +z toward the camera; non-mirrored image). We decompose its rotation
as R = Rz(roll) @ Ry(yaw) @ Rx(pitch), angles in degrees:
yaw > 0: the face turns toward the image's right (the subject's left);
pitch > 0: the chin goes down (looking down); roll > 0: the head tilts counter-clockwise
as seen in the image. The tracking test checks yaw's sign against a mirrored frame and the
nose position.
"""
from __future__ import annotations

import math

import numpy as np


def euler_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a 4x4 or 3x3 transform (scale removed first)."""
    r = np.asarray(matrix, np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # strip uniform/anisotropic scale
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -r[2, 0]))))
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return yaw, pitch, roll


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = Rz(roll) @ Ry(yaw) @ Rx(pitch) (degrees), the inverse of euler_from_matrix.

    Applied to the avatar (+x its left, +y up, +z toward the viewer) it turns the head the way
    the tracked face turned in the (non-mirrored) image, so the avatar moves like a puppet.
    """
    y, p, r = (math.radians(a) for a in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return rz @ ry @ rx
