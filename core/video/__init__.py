"""Video sources behind one interface: webcam by index, video file, image file or image folder.

    with open_source("0") as src:          # or "clip.mp4", "face.jpg", "photos/"
        for frame in src:                   # Frame(image=BGR uint8, index, timestamp_s)
            ...
        src.status                          # SourceStatus(state, message)

Images are BGR (OpenCV's order) everywhere in this package; core.tracking converts to RGB.
"""
from .frame import Frame, SourceState, SourceStatus
from .sources import (CameraSource, ImageSource, VideoFileSource, VideoSource, VideoSourceError,
                      open_source)

__all__ = ["Frame", "SourceState", "SourceStatus", "VideoSource", "CameraSource", "VideoFileSource",
           "ImageSource", "VideoSourceError", "open_source"]
