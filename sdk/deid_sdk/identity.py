"""Identity encoder at run time: a face's identity (dlib's 128-D face descriptor) on onnxruntime (no dlib, no torch).

    encoder = IdentityEncoder()                           # the shipped dlib_resnet.onnx (see deid_sdk.model_files)
    identity = encoder.encode(image_bgr, landmarks68)     # exact: dlib's compute_face_descriptor(img, shape)
    identities = encoder.encode_crops(crops_bgr)          # fast path from the SDK's 128x128 canonical crops
    identities = encoder.encode_chips(chips_rgb)          # dlib chips, N x 150 x 150 x 3 uint8 RGB

`encode` extracts dlib's own chip (`deid_sdk.chip.extract_dlib_chip`) and matches dlib's descriptor to ~1e-6.

`encode_crops` resamples the canonical crop (padding 0.45, shift 0.12, 128 px) to the chip with the fixed
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

Never writes identities or faces anywhere: everything stays in memory.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from deid_sdk import align
from deid_sdk.chip import CHIP_SIZE, crop_to_dlib_chip_image, extract_dlib_chip
from deid_sdk.model_files import IDENTITY_FILE as MODEL_FILE

IDENTITY_SIZE = 128          # the generator's `identity` input has the same size (models/README.md)


class IdentityEncoder:
    """dlib_face_recognition_resnet_model_v1 on onnxruntime.

    model_path: the ONNX file (default: the shipped dlib_resnet.onnx; checked against its manifest entry on load).
    threads: intra-op threads. backend/providers/precision: as for `deid_sdk.backends.create_session`.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 2, backend: str = "auto",
                 providers: list[str] | None = None, batch_size: int = 64, precision: str = "fp32"):
        from deid_sdk.backends import create_session
        from deid_sdk.model_files import shipped_model

        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if model_path is None:
            model_path = shipped_model(MODEL_FILE)
        elif not Path(model_path).is_file():
            raise FileNotFoundError(f"identity model not found: {model_path} "
                                    f"(pass model_path=None for the shipped {MODEL_FILE})")
        self.model_path = Path(model_path)
        self._session = create_session(self.model_path, backend=backend, threads=int(threads), providers=providers,
                                       precision=precision)
        (self._input,), (self._output,) = self._session.input_names, self._session.output_names
        self.batch_size = int(batch_size)

    def _run(self, chips_nchw: np.ndarray) -> np.ndarray:
        from deid_sdk.errors import check_output

        outputs = []
        for start in range(0, len(chips_nchw), self.batch_size):
            batch = chips_nchw[start:start + self.batch_size]
            result = self._session.run({self._input: batch})[self._output]
            outputs.append(check_output(MODEL_FILE, self._output, result, (len(batch), IDENTITY_SIZE)))
        if not outputs:
            return np.zeros((0, IDENTITY_SIZE), np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def encode_chips(self, chips_rgb: np.ndarray) -> np.ndarray:
        """dlib chips N x 150 x 150 x 3 RGB (uint8, or float 0..255) -> (N, 128) float32."""
        chips_rgb = np.asarray(chips_rgb)
        if chips_rgb.ndim != 4 or chips_rgb.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"expected chips N x {CHIP_SIZE} x {CHIP_SIZE} x 3 RGB, got shape {chips_rgb.shape}")
        if not (chips_rgb.dtype == np.uint8 or np.issubdtype(chips_rgb.dtype, np.floating)):
            raise TypeError(f"expected uint8 (or float 0..255) chips, got {chips_rgb.dtype}")
        return self._run(np.ascontiguousarray(chips_rgb.transpose(0, 3, 1, 2), dtype=np.float32))

    def encode(self, image_bgr: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
        """dlib's compute_face_descriptor(img, shape) for a BGR uint8 image and 68x2 landmarks -> (128,)."""
        if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 \
                or image_bgr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 BGR image, got "
                             f"{getattr(image_bgr, 'shape', type(image_bgr).__name__)} "
                             f"{getattr(image_bgr, 'dtype', '')}")
        chip = extract_dlib_chip(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB), landmarks68)
        return self.encode_chips(chip[None])[0]

    def encode_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """SDK canonical crops N x 128 x 128 x 3 uint8 BGR -> (N, 128) float32 (fast path, see module doc)."""
        crops_bgr = np.asarray(crops_bgr)
        expected = (align.CROP_SIZE, align.CROP_SIZE, 3)
        if crops_bgr.ndim != 4 or crops_bgr.shape[1:] != expected or crops_bgr.dtype != np.uint8:
            raise ValueError(f"expected crops N x {expected[0]} x {expected[1]} x 3 uint8 BGR, "
                             f"got {crops_bgr.shape} {crops_bgr.dtype}")
        if not len(crops_bgr):
            return np.zeros((0, IDENTITY_SIZE), np.float32)
        return self.encode_chips(crop_to_dlib_chip_image(np.ascontiguousarray(crops_bgr[..., ::-1])))
