"""Face detectors used by the evaluation: CenterFace (the SDK's own) and YuNet (independent of the SDK).

Both return `deid_sdk.detect.Detection` records (box x1,y1,x2,y2; score; 5 points ordered image-left eye,
image-right eye, nose, image-left mouth corner, image-right mouth corner).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from deid_sdk.detect import CenterFaceDetector, Detection

from deid_eval.paths import YUNET_MODEL, require_file

DETECTOR_NAMES = ("centerface", "yunet")


class YuNetDetector:
    """OpenCV's FaceDetectorYN on the YuNet ONNX; the input size follows each frame."""

    def __init__(self, model_path: Path | str = YUNET_MODEL, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3):
        path = require_file(Path(model_path), "YuNet model")
        self._detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, 50)
        self._size: tuple[int, int] = (320, 320)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
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
            detections.append(Detection(box=box, score=float(face[14]),
                                        points=face[4:14].reshape(5, 2).astype(np.float32)))
        return detections


def make_detector(name: str):
    """'centerface' -> the SDK's detector (what the SDK itself uses); 'yunet' -> OpenCV's YuNet."""
    if name == "centerface":
        return CenterFaceDetector()
    if name == "yunet":
        return YuNetDetector()
    raise ValueError(f"detector must be one of {DETECTOR_NAMES}, got {name!r}")


def central_face(detections: list[Detection], width: int, height: int) -> Detection | None:
    """The face an attacker would pick in a portrait photo: the one whose centre is nearest the image centre,
    large faces preferred (distance divided by the box size)."""
    if not detections:
        return None
    centre = np.array([width / 2, height / 2])

    def cost(detection: Detection) -> float:
        box = detection.box
        size = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
        return float(np.linalg.norm((box[:2] + box[2:]) / 2 - centre)) / size

    return min(detections, key=cost)


