"""Single-image fitting: one photo becomes an animatable, textured avatar."""
from .camera import PinholeCamera
from .fit import FaceFitter, FitCancelled, FitError, FitOptions, FitResult
from .photo import PhotoError, load_photo

__all__ = ["PinholeCamera", "FaceFitter", "FitCancelled", "FitError", "FitOptions", "FitResult",
           "PhotoError", "load_photo"]
