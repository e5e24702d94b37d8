"""Inference backends behind one interface (`InferenceSession.run(dict) -> dict`), and the one way every model
of the SDK is loaded: `create_session` checks the file against its manifest entry (sha256) first.

`backend="auto"` resolves TensorRT -> onnxruntime's CUDA provider -> onnxruntime CPU and logs the choice (and
why) once per model. TensorRT runs the per-face models (generator, identity encoder: a batch axis of 1..8
faces); the detector, whose input follows the frame size, runs on onnxruntime. A failure while running raises
`deid_sdk.errors.ModelError`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from deid_sdk.backends.base import InferenceSession

log = logging.getLogger("deid_sdk")
BACKENDS = ("auto", "onnxruntime", "tensorrt")
CUDA_PROVIDER, CPU_PROVIDER = "CUDAExecutionProvider", "CPUExecutionProvider"
_announced: set[tuple[str, str]] = set()


def check_backend(backend: str) -> str:
    """A known backend; "tensorrt" also needs TensorRT installed (raises with what to install)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if backend == "tensorrt":
        from deid_sdk.backends.tensorrt import load_tensorrt

        load_tensorrt()
    return backend


def resolve_backend(backend: str, per_face: bool = True) -> tuple[str, list[str], str]:
    """(backend, onnxruntime providers, why) for an asked backend: the resolution order of "auto"."""
    import onnxruntime

    from deid_sdk.backends.tensorrt import tensorrt_available

    check_backend(backend)
    cuda = CUDA_PROVIDER in onnxruntime.get_available_providers()
    onnxruntime_choice = ([CUDA_PROVIDER, CPU_PROVIDER], "onnxruntime has the CUDA provider") if cuda else \
        ([CPU_PROVIDER], "onnxruntime has no CUDA provider")
    if backend == "onnxruntime":
        return "onnxruntime", [CPU_PROVIDER], "asked for onnxruntime (CPU)"
    if not per_face:
        return "onnxruntime", onnxruntime_choice[0], f"input follows the frame size; {onnxruntime_choice[1]}"
    if backend == "tensorrt":
        return "tensorrt", [], "asked for tensorrt"
    if tensorrt_available():
        return "tensorrt", [], "auto: TensorRT is installed"
    return "onnxruntime", onnxruntime_choice[0], f"auto: TensorRT is not installed; {onnxruntime_choice[1]}"


def create_session(model_path: str | Path, backend: str = "auto", threads: int = 2,
                   providers: list[str] | None = None, precision: str = "fp32",
                   per_face: bool = True) -> InferenceSession:
    """precision: what a TensorRT engine is built with ("fp32", "fp16", "int8", "best"); onnxruntime runs the
    file as it is. per_face=False for a model whose input follows the frame size (onnxruntime only)."""
    from deid_sdk.model_files import verify_checksum

    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    verify_checksum(model_path)
    if providers is not None:
        resolved, why = "onnxruntime", f"providers {providers} given"
    else:
        resolved, providers, why = resolve_backend(backend, per_face)
    if resolved == "tensorrt":
        from deid_sdk.backends.tensorrt import TensorRTSession

        session = TensorRTSession(model_path, precision=precision)
        where = session.engine_path.name
    else:
        from deid_sdk.backends.onnxruntime import OnnxRuntimeSession

        session = OnnxRuntimeSession(model_path, threads=threads, providers=providers)
        where = session.provider
    key = (model_path.name, resolved)
    if key not in _announced:
        _announced.add(key)
        log.info("%s: backend %s (%s; %s), precision %s", model_path.name, resolved, where, why, session.precision)
    return session


__all__ = ["BACKENDS", "InferenceSession", "check_backend", "create_session", "resolve_backend"]
