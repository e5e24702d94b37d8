"""68-point facial landmarks: dlib's shape predictor from the PyPI package `face-recognition-models`.

The model was trained on iBUG 300-W, whose terms exclude commercial use (see models/README.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deid_sdk.errors import ModelError
from deid_sdk.model_files import verified_package_file

MODEL_FILE = "shape_predictor_68_face_landmarks.dat"


def centerface_box_to_dlib_box(box: np.ndarray) -> np.ndarray:
    """Map a CenterFace box (forehead to chin) to the tighter box dlib's predictor was trained with.

    The offsets are the mean relation between the two detectors' boxes on LFW faces; with them the mean
    landmark error against dlib's own pipeline drops from 0.067 to 0.052 inter-ocular distances (median 0.015).
    """
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    width, height = x2 - x1, y2 - y1
    return np.array([x1 - 0.036 * width, y1 + 0.176 * height, x1 + 1.034 * width, y1 + 0.966 * height])


class LandmarkPredictor:
    """dlib's 68-point predictor, run inside a detector box."""

    def __init__(self, model_path: str | Path | None = None):
        import dlib

        path = Path(model_path) if model_path is not None else verified_package_file(
            "face_recognition_models", "models", MODEL_FILE, distribution="face-recognition-models")
        if not path.is_file():
            raise FileNotFoundError(f"landmark model not found: {path}")
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as error:
            raise ValueError(f"{path} is not a valid dlib shape predictor ({error})") from error
        self._rectangle = dlib.rectangle

    def predict(self, frame_bgr: np.ndarray, box: np.ndarray, box_style: str = "centerface") -> np.ndarray:
        """(68, 2) float64 landmarks in frame pixels for the face in `box` (x1, y1, x2, y2).

        `box_style="centerface"` adapts a CenterFace box first; "dlib" takes the box as is.
        dlib accepts BGR as well as RGB here: the predictor works on intensity only.
        """
        if box_style == "centerface":
            box = centerface_box_to_dlib_box(box)
        elif box_style != "dlib":
            raise ValueError(f"box_style must be 'centerface' or 'dlib', got {box_style!r}")
        x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
        try:
            shape = self._predictor(frame_bgr, self._rectangle(x1, y1, x2, y2))
        except RuntimeError as error:  # dlib reports its failures as RuntimeError
            raise ModelError(MODEL_FILE, f"inference failed: {error}") from error
        return np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float64)
