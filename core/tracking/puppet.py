"""Puppeteering: a tracked face's 53 weights and head pose -> what the avatar shows.

`Puppet` holds the live state between frames: the calibrated neutral (weights and head pose of
the user's resting face) and exponential smoothing. `posed_head` / `head_matrix` turn the
avatar's points (or its baked distance field) by a head pose. Plain numpy, no Qt: the webcam
panel owns a Puppet and writes its output through the document's setters; bench/fer.py runs the
same path to measure camera frame -> avatar frame.
"""
from __future__ import annotations

import numpy as np

from .pose import rotation_matrix

# The head turns about a point near the top of the spine (cm; between and below the ears).
HEAD_PIVOT = np.array([0.0, -2.0, -1.0], np.float32)


def head_matrix(head_pose: np.ndarray) -> np.ndarray:
    """4x4 rigid transform of the head pose (yaw, pitch, roll degrees) about HEAD_PIVOT."""
    m = np.eye(4)
    r = rotation_matrix(*(float(a) for a in head_pose))
    m[:3, :3] = r
    m[:3, 3] = HEAD_PIVOT - r @ HEAD_PIVOT
    return m


def posed_head(points: np.ndarray, head_pose: np.ndarray | None) -> np.ndarray:
    """Points of the avatar turned by its head pose (yaw, pitch, roll degrees) about HEAD_PIVOT;
    None or zeros: the points themselves."""
    if head_pose is None or not np.any(head_pose):
        return points
    r = rotation_matrix(*(float(a) for a in head_pose)).astype(np.float32)
    return (points - HEAD_PIVOT) @ r.T + HEAD_PIVOT


class Puppet:
    """Calibration and smoothing of tracked weights (53) and head pose (yaw, pitch, roll).

    `update(raw_weights, raw_pose)` takes one tracked frame; `weights` and `pose` are what the
    avatar should show. Calibrating neutral makes the current face the zero point: weights are
    rescaled so that 1 stays reachable, and the pose becomes relative to the resting pose (a
    camera that sees the user from an angle still gives a front-facing avatar).
    `smoothing` in [0, 1): the share of the previous output kept each frame (0 = raw).
    """

    def __init__(self, smoothing: float = 0.5):
        self.smoothing = float(smoothing)
        self.neutral: np.ndarray | None = None
        self.neutral_pose = np.zeros(3, np.float32)
        self.last_raw_weights: np.ndarray | None = None
        self.last_raw_pose: np.ndarray | None = None
        self._weights: np.ndarray | None = None
        self._pose: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the smoothing history (a new stream starts); the calibration stays."""
        self._weights = None
        self._pose = None

    def apply_neutral(self, weights: np.ndarray) -> np.ndarray:
        """Subtract the calibrated neutral, clip to [0, 1] and rescale so 1 stays reachable."""
        w = np.asarray(weights, np.float32)
        if self.neutral is None:
            return np.clip(w, 0.0, 1.0)
        n = self.neutral
        return np.clip((w - n) / np.maximum(1.0 - n, 1e-3), 0.0, 1.0)

    def calibrate(self) -> bool:
        """Take the last tracked face as neutral; False when no face has been tracked yet."""
        if self.last_raw_weights is None:
            return False
        self.neutral = self.last_raw_weights.copy()
        self._weights = self.apply_neutral(self.last_raw_weights)
        if self.last_raw_pose is not None:
            self.neutral_pose = self.last_raw_pose.copy()
        self._pose = np.zeros(3, np.float32)
        return True

    def update(self, raw_weights: np.ndarray, raw_pose: np.ndarray | None = None) -> None:
        a = self.smoothing
        self.last_raw_weights = np.asarray(raw_weights, np.float32).copy()
        target = self.apply_neutral(self.last_raw_weights)
        self._weights = target if self._weights is None else a * self._weights + (1.0 - a) * target
        if raw_pose is not None:
            self.last_raw_pose = np.asarray(raw_pose, np.float32).copy()
            rel = self.last_raw_pose - self.neutral_pose
            self._pose = rel if self._pose is None else a * self._pose + (1.0 - a) * rel

    def follow(self, face) -> None:
        """update() from one `TrackedFace`: its 53 weights and its (yaw, pitch, roll)."""
        self.update(face.weights, (face.yaw, face.pitch, face.roll))

    @property
    def weights(self) -> np.ndarray | None:
        """The 53 weights to show (calibrated, smoothed); None before the first face."""
        return None if self._weights is None else self._weights.copy()

    @property
    def pose(self) -> np.ndarray | None:
        """(yaw, pitch, roll) degrees to show, relative to the neutral pose; None before any pose."""
        return None if self._pose is None else self._pose.copy()
