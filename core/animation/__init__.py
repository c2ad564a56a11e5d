"""Animation: clips (per-frame expression weights, head pose, gaze, keys, markers, audio), the
clip file, video -> clip tracking and clip export (GLB animation, MP4, CSV)."""
from .clip import (CHANNELS, GAZE_CHANNELS, POSE_CHANNELS, AudioTrack, Clip, Key, Marker,
                   gaze_from_weights, weights_with_gaze)
from .files import ClipError, clip_from_bytes, clip_to_bytes, load_clip, save_clip

__all__ = ["CHANNELS", "GAZE_CHANNELS", "POSE_CHANNELS", "AudioTrack", "Clip", "Key", "Marker",
           "gaze_from_weights", "weights_with_gaze", "ClipError", "clip_from_bytes", "clip_to_bytes",
           "load_clip", "save_clip"]
