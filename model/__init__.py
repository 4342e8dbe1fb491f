"""Absolute focus quality of microscope images (Yang et al. 2018), TensorFlow 2.

>>> from model import predict
>>> result = predict(image)                       # doctest: +SKIP
>>> result.predicted_level, result.certainties["aggregate"]  # doctest: +SKIP

TensorFlow is imported only when the model is first used.
"""
from .constants import NUM_LEVELS, PATCH_SIZE
from .inference import FocusResult, best_plane, predict, predict_planes
from .predictor import ModelError, load_model
from .scaling import ImageError, to_model_scale

__all__ = ["predict", "predict_planes", "best_plane", "FocusResult", "load_model", "ModelError",
           "ImageError", "to_model_scale", "NUM_LEVELS", "PATCH_SIZE"]
