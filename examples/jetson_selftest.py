#!/usr/bin/env python3
"""What to run first on a Jetson (or any CUDA machine with TensorRT 10): builds the TensorRT engines, checks them
against onnxruntime FP32, and times the camera-free pipeline at 1080p with 1 and 4 faces.

    python3 examples/jetson_selftest.py [--precision fp16] [--frames 60]

1. builds (or finds in the cache) the engines of the generator and identity encoder (`deid build-engine`);
2. PSNR of the engine's image and mask against onnxruntime FP32 on the generator's real inputs (the faces the
   SDK finds in the built-in clip, a public-domain portrait shipped with scikit-image);
3. runs Filter(backend="tensorrt") over that clip at 1920x1080, the portrait once and 2x2, and prints the
   per-stage timings and the frames per second.
Without TensorRT or an NVIDIA GPU it says what is missing and exits with status 1.
"""
import argparse
import sys
import time

import cv2
import numpy as np

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--precision", default="fp16", choices=("fp16", "fp32"),
                    help="Filter(precision=...) and its engines (default fp16; for INT8 see deid build-engine)")
parser.add_argument("--frames", type=int, default=60, help="frames timed per face count (default 60)")
args = parser.parse_args()
if args.frames < 1:
    parser.error(f"--frames must be >= 1, got {args.frames}")

from deid_sdk.backends.tensorrt import CudaRuntime, cached_engine, load_tensorrt  # noqa: E402

try:
    trt = load_tensorrt()
    gpu, capability = CudaRuntime().device()
except (ImportError, RuntimeError) as error:
    sys.exit(f"jetson_selftest: needs an NVIDIA GPU with TensorRT 10 and CUDA: {error}")
print(f"TensorRT {trt.__version__} on {gpu} (sm{capability[0]}{capability[1]})")

from deid_sdk import Filter  # noqa: E402
from deid_sdk.cli.build_engine import models_to_build  # noqa: E402
from deid_sdk.cli.demo_clip import DemoClipSource  # noqa: E402
from deid_sdk.cli.stage_report import stage_table  # noqa: E402
from deid_sdk.generator import Generator  # noqa: E402
from deid_sdk.model_build.calibration_set import record_generator_inputs  # noqa: E402
from deid_sdk.model_build.compare import psnr  # noqa: E402
from deid_sdk.model_files import GENERATOR_FILE, shipped_model  # noqa: E402

for model in models_to_build(None, args.precision):
    start = time.perf_counter()
    engine = cached_engine(model, args.precision, trt=trt)
    print(f"engine {engine.name}: ready in {time.perf_counter() - start:.1f} s")

clip = DemoClipSource(seconds=4.0)
portraits = [frame.image for frame in iter(clip.read, None)]
inputs = record_generator_inputs(((f"clip {n}", image) for n, image in enumerate(portraits[::8])),
                                 shipped_model(GENERATOR_FILE))
generator_file = models_to_build(None, args.precision)[0]


def outputs_of(generator: Generator) -> tuple[np.ndarray, np.ndarray]:
    image, mask = zip(*(generator(feed["crop"], feed["identity"], feed["strength"]) for feed in inputs.feeds(4)))
    return np.concatenate(image), np.concatenate(mask)


reference_image, reference_mask = outputs_of(Generator(shipped_model(GENERATOR_FILE), backend="onnxruntime"))
image, mask = outputs_of(Generator(generator_file, backend="tensorrt", precision=args.precision))
print(f"{generator_file.name} on TensorRT {args.precision} vs onnxruntime FP32, {len(inputs)} faces: image PSNR "
      f"{psnr(reference_image, image, 2.0):.1f} dB, mask PSNR {psnr(reference_mask, mask, 1.0):.1f} dB")


def frame_1080p(portrait: np.ndarray, faces: int) -> np.ndarray:
    if faces == 1:
        return cv2.resize(portrait, (1920, 1080))
    tile = cv2.resize(portrait, (960, 540))
    return np.vstack([np.hstack([tile, tile]), np.hstack([tile, tile])])


with Filter(backend="tensorrt", precision=args.precision) as deid:
    for faces in (1, 4):
        frames = [frame_1080p(portraits[n % len(portraits)], faces) for n in range(args.frames + 5)]
        samples = []
        for number, frame in enumerate(frames):
            deid(frame, inplace=True)
            if number >= 5:  # the first frames allocate and warm the engines up
                samples.append(dict(deid.stats))
        print(f"\n1920x1080, {faces} face(s) per frame:\n{stage_table(samples)}")
