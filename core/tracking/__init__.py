"""Face tracking: MediaPipe Face Landmarker (478 landmarks, 52 blendshapes, head pose) with
stable face ids, the mapping of tracked blendshapes to our 53 expression weights, and the
puppet state (calibration, smoothing) that turns them into the avatar's expression and head pose."""
from .blendshapes import MEDIAPIPE_BLENDSHAPES, arkit_to_ours, to_expression_weights
from .ids import FaceIdAssigner, iou
from .pose import euler_from_matrix
from .puppet import Puppet, head_matrix, posed_head
from .tracker import FaceTracker, TrackedFace, TrackerError, default_model_path

__all__ = ["FaceTracker", "TrackedFace", "TrackerError", "default_model_path", "MEDIAPIPE_BLENDSHAPES",
           "arkit_to_ours", "to_expression_weights", "FaceIdAssigner", "iou", "euler_from_matrix",
           "Puppet", "head_matrix", "posed_head"]
