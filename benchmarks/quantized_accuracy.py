"""FP16 and INT8 models against FP32 on held-out aligned crops (the 300 LFW eval identities, never calibrated on).

    python benchmarks/quantized_accuracy.py [--int8 models/deid_generator.int8.onnx ...] [--limit 300]

The crops, identities and strengths are the generator's real inputs: each eval identity's first photo through a
Filter (deid_sdk.model_build.calibration_set.record_generator_inputs). Prints, per generator file, the PSNR of
its image (peak-to-peak 2, the [-1, 1] range) and mask (peak 1) against the FP32 file's, and for the FP16
identity encoder the largest absolute difference of its descriptor to the FP32 one (dlib's same-person
threshold is 0.6 in Euclidean distance).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from deid_sdk.model_build.compare import psnr

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def held_out_inputs(data_root: Path, limit: int | None, model: Path):
    from deid_sdk.model_build.calibration_set import record_generator_inputs

    splits = json.loads((data_root / "faces" / "lfw_splits.json").read_text())
    photos = [sorted((data_root / "faces" / "lfw" / name).glob("*.jpg"))[0]
              for name in sorted(splits["eval_identities"])][:limit]
    return record_generator_inputs(((str(p), cv2.imread(str(p), cv2.IMREAD_COLOR)) for p in photos), model)


def generator_outputs(model: Path, inputs, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    from deid_sdk.generator import Generator

    generator = Generator(model)
    images, masks = zip(*(generator(feed["crop"], feed["identity"], feed["strength"])
                          for feed in inputs.feeds(batch_size)))
    return np.concatenate(images), np.concatenate(masks)


def main(argv: list[str] | None = None) -> int:
    from deid_sdk.identity import IdentityEncoder
    from deid_sdk.model_files import shipped_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fp32", type=Path, default=None, help="reference generator (default: the bundled one)")
    parser.add_argument("--int8", type=Path, action="append", default=None,
                        help="INT8 generator(s) (default: the shipped deid_generator.int8.onnx)")
    parser.add_argument("--limit", type=int, default=None, help="first N eval identities only (default: all 300)")
    parser.add_argument("--data-root", type=Path, default=DATA_ROOT)
    args = parser.parse_args(argv)
    fp32 = args.fp32 or shipped_model("deid_generator.onnx")
    others = [shipped_model("deid_generator.fp16.onnx")] + (args.int8 or [shipped_model("deid_generator.int8.onnx")])
    inputs = held_out_inputs(args.data_root, args.limit, fp32)
    print(f"{len(inputs)} held-out faces (LFW eval identities, first photo each)")
    reference_image, reference_mask = generator_outputs(fp32, inputs)
    for model in others:
        image, mask = generator_outputs(model, inputs)
        per_face = [psnr(a, b, 2.0) for a, b in zip(reference_image, image)]
        print(f"{model.name}: image PSNR {psnr(reference_image, image, 2.0):.1f} dB (worst face "
              f"{min(per_face):.1f}), mask PSNR {psnr(reference_mask, mask, 1.0):.1f} dB, max |image diff| "
              f"{np.abs(reference_image - image).max():.3f}")
    crops_bgr = np.stack([np.clip(np.rint((crop.transpose(1, 2, 0) + 1) * 127.5), 0, 255).astype(np.uint8)[..., ::-1]
                          for crop in inputs.crops])
    descriptors = {name: IdentityEncoder(shipped_model(name)).encode_crops(crops_bgr)
                   for name in ("dlib_resnet.onnx", "dlib_resnet.fp16.onnx")}
    difference = descriptors["dlib_resnet.fp16.onnx"] - descriptors["dlib_resnet.onnx"]
    print(f"dlib_resnet.fp16.onnx: descriptor max |diff| {np.abs(difference).max():.2e}, largest Euclidean distance "
          f"to FP32 {np.linalg.norm(difference, axis=1).max():.2e} ({len(crops_bgr)} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
