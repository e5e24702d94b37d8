"""68-point facial landmarks: dlib's shape predictor from the PyPI package `face-recognition-models`.

The model was trained on iBUG 300-W, whose terms exclude commercial use (see models/README.md).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def face_recognition_models_dir() -> Path:
    # `import face_recognition_models` fails with setuptools >= 81 (pkg_resources), so find it by spec.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "dlib models not found: the PyPI package 'face-recognition-models' is not installed "
            "(pip install face-recognition-models)")
    return Path(spec.origin).parent / "models"


def shape_predictor_path() -> Path:
    path = face_recognition_models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"68-point landmark model missing at {path}: pip install --force-reinstall face-recognition-models")
    return path


class LandmarkPredictor:
    """dlib's 68-point predictor, run inside a detector box."""

    def __init__(self, model_path: str | Path | None = None):
        import dlib

        path = Path(model_path) if model_path is not None else shape_predictor_path()
        if not path.is_file():
            raise FileNotFoundError(f"landmark model not found: {path}")
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as error:
            raise ValueError(f"{path} is not a valid dlib shape predictor ({error})") from error
        self._rectangle = dlib.rectangle

    def predict(self, frame_bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(68, 2) float64 landmarks in frame pixels for a face inside `box` (x1, y1, x2, y2).

        dlib accepts BGR as well as RGB here: the predictor works on intensity only.
        """
        x1, y1, x2, y2 = (int(round(float(v))) for v in box[:4])
        shape = self._predictor(frame_bgr, self._rectangle(x1, y1, x2, y2))
        return np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float64)
