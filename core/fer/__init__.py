"""Facial-expression recognition: the FER2013 classifier, aligned crops from tracked
landmarks, open-set "unknown" score, Grad-CAM, per-frame pipeline and overlay drawing."""
from .classifier import DEFAULT_MODEL, ExpressionClassifier, Prediction
from .crop import face_crop
from .model import FER_CLASSES, FerNet, load_models
from .pipeline import CSV_COLUMNS, FaceResult, FerPipeline, primary_result

__all__ = ["primary_result", "ExpressionClassifier", "Prediction", "DEFAULT_MODEL", "face_crop", "FER_CLASSES", "FerNet",
           "load_models", "CSV_COLUMNS", "FaceResult", "FerPipeline"]
