"""`deid calibrate`: the INT8 (Q/DQ) generator from a calibration set made by the SDK's own pipeline.

    deid calibrate --images ../shared/data --out models/deid_generator.int8.onnx

Build-time tool (needs `onnx`; for a data root with faces/lfw_splits.json also the training package, which
leaves out the evaluation identities): see deid_sdk.model_build.calibration_set and deid_sdk.model_build.int8.
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

from deid_sdk.cli.arg_types import non_negative, positive_int


def register(subparsers) -> None:
    from deid_sdk.model_build.int8 import ACTIVATIONS, CALIBRATION_METHODS

    parser = subparsers.add_parser("calibrate", help="quantize the generator to INT8 (Q/DQ) on faces from a folder")
    parser.add_argument("--images", type=Path, required=True,
                        help="folder of images and/or videos (e.g. ../shared/data; its eval identities are left out)")
    parser.add_argument("--out", type=Path, required=True, help="the INT8 ONNX file to write")
    parser.add_argument("--model", type=Path, default=None, help="float generator ONNX (default: the bundled one)")
    parser.add_argument("--count", type=positive_int, default=192, help="images drawn at random (default 192)")
    parser.add_argument("--video-frames", type=non_negative(), default=8,
                        help="frames taken from each video, one a second (default 8)")
    parser.add_argument("--method", choices=CALIBRATION_METHODS, default="minmax",
                        help="activation range calibration (default minmax)")
    parser.add_argument("--activations", choices=ACTIVATIONS, default="uint8",
                        help="uint8 asymmetric (default: the shipped file, fastest on onnxruntime x86 CPUs) or int8 "
                             "symmetric (the form TensorRT accepts)")
    parser.add_argument("--exclude", default="",
                        help="Conv/MatMul nodes to keep in float, comma-separated (mixed precision, measured in "
                             "models/README.md). Default: quantize all")
    parser.add_argument("--seed", type=int, default=0, help="for the random choice of images (default 0)")
    parser.set_defaults(handler=run_calibrate)


def run_calibrate(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk.generator import default_generator_path
    from deid_sdk.model_build.calibration_set import build_calibration_set
    from deid_sdk.model_build.int8 import check_exclude, quantize_generator

    model = args.model or default_generator_path()
    if model is None or not Path(model).is_file():
        raise FileNotFoundError(f"generator model not found: {model}; pass --model")
    if not args.out.parent.is_dir():
        raise FileNotFoundError(f"--out: folder {args.out.parent} does not exist")
    exclude = check_exclude(model, [name.strip() for name in args.exclude.split(",") if name.strip()])
    calibration_set = build_calibration_set(args.images, model, images=args.count, video_frames=args.video_frames,
                                            seed=args.seed)
    if stop.is_set():
        return 0
    quantize_generator(model, args.out, calibration_set, method=args.method, activations=args.activations,
                       exclude=exclude)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {len(calibration_set)} calibration faces, "
          f"{args.method}, {args.activations} activations, kept in float: {','.join(exclude) or 'none'}); "
          "record it in models/manifest.json to ship it")
    return 0
