"""Face detectors used by the evaluation: CenterFace (the SDK's own) and YuNet on its own model file.

YuNet's loader and decoder live in the SDK (deid_sdk.yunet, the SDK's recall path); the evaluation runs it on
the YuNet file of ../shared/data/models (not the SDK's `yunet.onnx`), with the candidate limit it always used.
Both return `deid_sdk.detect.Detection` records (box x1,y1,x2,y2; score; 5 points ordered image-left eye,
image-right eye, nose, image-left mouth corner, image-right mouth corner).
"""
from __future__ import annotations

import numpy as np
from deid_sdk.detect import CenterFaceDetector, Detection
from deid_sdk.yunet import YuNetDetector as _SDKYuNetDetector

from deid_eval.paths import YUNET_MODEL, require_file

DETECTOR_NAMES = ("centerface", "yunet")


class YuNetDetector(_SDKYuNetDetector):
    """The SDK's YuNet detector on the evaluation's YuNet file (../shared/data/models/yunet_n_640_640.onnx)."""

    def __init__(self, model_path=YUNET_MODEL, score_threshold: float = 0.6, nms_threshold: float = 0.3):
        super().__init__(require_file(model_path, "YuNet model"), score_threshold, nms_threshold, top_k=50)


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


