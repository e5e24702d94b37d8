"""`deid build-engine`: build and cache the TensorRT engines of the per-face models ahead of the first run.

    deid build-engine --precision fp16            # the generator and identity encoder Filter(precision=...) loads
    deid build-engine --precision int8 --model gen.int8sym.onnx

Engines land in the cache `backend="tensorrt"` reads ($DEID_ENGINE_DIR or ~/.cache/deid_sdk/engines), named by
model sha256, TensorRT version, GPU and precision. INT8 needs symmetric Q/DQ (`deid calibrate --activations int8`):
TensorRT rejects the shipped uint8 file.
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

PRECISIONS = ("fp16", "int8", "best")


def register(subparsers) -> None:
    parser = subparsers.add_parser("build-engine", help="build the TensorRT engines (Jetson / NVIDIA GPU)")
    parser.add_argument("--precision", choices=PRECISIONS, required=True,
                        help="fp16, int8 (a Q/DQ model) or best (FP16 and INT8 kernels, as trtexec --best)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a generator ONNX (default: the bundled generator and identity encoder of the precision)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="engine folder (default: $DEID_ENGINE_DIR or "
                                                                     "~/.cache/deid_sdk/engines)")
    parser.set_defaults(handler=run_build_engine)


def models_to_build(model: Path | None, precision: str) -> list[Path]:
    """The ONNX files Filter(precision=...) loads (best: the FP32 ones), or the one given; checked to exist."""
    from deid_sdk.model_files import GENERATOR_FILES, IDENTITY_FILES, shipped_model

    if model is not None:
        if not model.is_file():
            raise FileNotFoundError(f"--model: {model} not found")
        return [model]
    if precision == "int8":
        raise ValueError("--precision int8 needs --model: a generator with symmetric int8 Q/DQ "
                         "(deid calibrate --activations int8 --out FILE); TensorRT rejects the shipped uint8 file")
    files = "fp32" if precision == "best" else precision
    return [shipped_model(GENERATOR_FILES[files]), shipped_model(IDENTITY_FILES[files])]


def run_build_engine(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk.backends.onnxruntime import OnnxRuntimeSession
    from deid_sdk.backends.tensorrt import cached_engine, load_tensorrt
    from deid_sdk.generator import check_generator_contract
    from deid_sdk.model_files import verify_checksum

    models = models_to_build(args.model, args.precision)
    if args.model is not None:  # a user's generator: the contract before minutes of building
        session = OnnxRuntimeSession(args.model)
        check_generator_contract(args.model, session.input_names, session.output_names, session.shapes)
    trt = load_tensorrt()
    for model in models:
        if stop.is_set():
            return 0
        verify_checksum(model)
        engine = cached_engine(model, args.precision, args.cache_dir, trt)
        print(f"{model.name}: {engine} ({engine.stat().st_size / 1e6:.1f} MB)")
    return 0
