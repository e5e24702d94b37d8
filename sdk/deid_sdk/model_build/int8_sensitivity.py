"""A per-layer sensitivity sweep of the INT8 generator: which layer, kept in float, lowers the leak most.

    python benchmarks/int8_sensitivity.py [--images ../shared/data]

Quantization weakens the small, adversarial part of the generator's output (the part aimed at recognizers),
so the INT8 file's PSNR can look fine while it leaks more. The leak probe measures that directly on the
calibration faces (never the evaluation identities): the generator's output blended into its crop by its mask,
embedded by SFace (the SDK's privacy-guard recognizer) at the crop's canonical five points, against the
embedding of the input crop. Its figure, the mean cosine similarity, is lower for a more private model.

The sweep quantizes all layers but one, for each layer in turn (onnxruntime's `nodes_to_exclude`, one
calibration shared by all runs). Finding (models/README.md "INT8"): this crop-level probe does not see the leak
that quick_eval measures on full photos (fully quantized, its figure is *below* FP32's), so it cannot choose the
layers; `deid calibrate --exclude NAMES` takes the choice measured with quick_eval instead. Build-time only.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from deid_sdk.model_build.compare import psnr

DEFAULT_PROBE_FACES = 128


def crop_five_points() -> np.ndarray:
    """The five points (eyes, nose tip, mouth corners; image-left first) of the mean face in a canonical crop."""
    from deid_sdk.align import MEAN_FACE, apply_affine, normalized_to_crop

    def mean_of(indices):  # MEAN_FACE starts at landmark 17
        return MEAN_FACE[np.asarray(indices) - 17].mean(axis=0)

    points = np.stack([mean_of(range(36, 42)), mean_of(range(42, 48)), mean_of([30]), mean_of([48]), mean_of([54])])
    return apply_affine(normalized_to_crop(), points)


def _bgr_uint8(chw_rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((chw_rgb.transpose(1, 2, 0) + 1) * 127.5), 0, 255).astype(np.uint8)[..., ::-1]


@dataclass
class LeakFigures:
    leak: float          # mean SFace cosine of the blended output to its input crop (lower: more private)
    image_psnr: float    # of the generator's image against FP32's, dB
    mask_psnr: float


class LeakProbe:
    """The FP32 generator's outputs and the input embeddings on a set of calibration faces, to score others."""

    def __init__(self, float_model: Path, calibration_set, faces: int = DEFAULT_PROBE_FACES, threads: int = 2):
        from deid_sdk.sface import SFaceRecognizer

        self.threads = threads
        step = max(1, len(calibration_set) // faces)  # spread over the images and the clips alike
        picked = list(range(0, len(calibration_set), step))[:faces]
        self.feed = {"crop": np.stack([calibration_set.crops[i] for i in picked]),
                     "identity": np.stack([calibration_set.identities[i] for i in picked]),
                     "strength": np.asarray([calibration_set.strengths[i] for i in picked], np.float32)[:, None]}
        self.recognizer = SFaceRecognizer(threads=threads, backend="onnxruntime")
        self.points = crop_five_points()
        self.input_embeddings = self._embed(self.feed["crop"])
        self.reference_image, self.reference_mask = self._run(float_model)
        self.reference = self.score_outputs(self.reference_image, self.reference_mask)

    def __len__(self) -> int:
        return len(self.feed["crop"])

    def _embed(self, crops_rgb: np.ndarray) -> np.ndarray:
        from deid_sdk.align import align_five_points

        return self.recognizer.embed_aligned(np.stack([align_five_points(_bgr_uint8(c), self.points)
                                                       for c in crops_rgb]))

    def _run(self, model: Path) -> tuple[np.ndarray, np.ndarray]:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        images, masks = [], []
        for start in range(0, len(self), 8):
            image, mask = session.run(["image", "mask"], {k: v[start:start + 8] for k, v in self.feed.items()})
            images.append(image)
            masks.append(mask)
        return np.concatenate(images), np.concatenate(masks)

    def per_face_leak(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        blended = masks * images + (1 - masks) * self.feed["crop"]
        return np.sum(self._embed(blended) * self.input_embeddings, axis=1)

    def score_outputs(self, images: np.ndarray, masks: np.ndarray) -> LeakFigures:
        return LeakFigures(float(self.per_face_leak(images, masks).mean()),
                           psnr(self.reference_image, images, 2.0), psnr(self.reference_mask, masks, 1.0))

    def score(self, model: Path) -> LeakFigures:
        return self.score_outputs(*self._run(model))


@dataclass
class SweepRow:
    node: str               # kept in float; "" for the model with every layer quantized
    figures: LeakFigures


def sensitivity_sweep(float_model: Path, calibration_set, probe: LeakProbe, folder: Path, method: str = "minmax",
                      activations: str = "uint8", nodes: list[str] | None = None,
                      log: Callable[[str], None] = print) -> list[SweepRow]:
    """The leak with every layer quantized (first row), then with all but each of `nodes` (default: every
    quantizable one, in graph order) in turn. `folder`: scratch space; the calibration ranges computed for the
    first row (`folder`/ranges.json) serve all the others."""
    from deid_sdk.model_build.int8 import check_exclude, quantizable_node_names, quantize_generator

    rows = []
    for node in ["", *(check_exclude(float_model, nodes) if nodes else quantizable_node_names(float_model))]:
        candidate = Path(folder) / "candidate.onnx"
        quantize_generator(float_model, candidate, calibration_set, method=method, activations=activations,
                           exclude=[node] if node else [], calibration_cache=Path(folder) / "ranges.json")
        rows.append(SweepRow(node, probe.score(candidate)))
        log(f"  float: {node or '(none)':28s} leak {rows[-1].figures.leak:.4f} (FP32 {probe.reference.leak:.4f}), "
            f"image PSNR {rows[-1].figures.image_psnr:.1f} dB, mask {rows[-1].figures.mask_psnr:.1f} dB")
    return rows
