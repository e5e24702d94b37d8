"""Inference backends behind one interface (`InferenceSession.run(dict) -> dict`), and the one way every model
of the SDK is loaded: `create_session` checks the file against its manifest entry (sha256) first.

`backend="auto"` picks the best one available and logs the choice once. Today that is onnxruntime; a TensorRT
backend (Jetson) plugs in here. A failure while running raises `deid_sdk.errors.ModelError`.
"""
from __future__ import annotations

import logging
from pathlib import Path

from deid_sdk.backends.base import InferenceSession

log = logging.getLogger("deid_sdk")
BACKENDS = ("auto", "onnxruntime")
_announced: set[tuple[str, str]] = set()


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    return backend


def create_session(model_path: str | Path, backend: str = "auto", threads: int = 2,
                   providers: list[str] | None = None) -> InferenceSession:
    from deid_sdk.model_files import verify_checksum

    check_backend(backend)
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    verify_checksum(model_path)
    from deid_sdk.backends.onnxruntime import OnnxRuntimeSession

    session = OnnxRuntimeSession(model_path, threads=threads, providers=providers)
    key = (model_path.name, session.provider)
    if key not in _announced:
        _announced.add(key)
        log.info("%s: backend onnxruntime (%s), precision %s", model_path.name, session.provider, session.precision)
    return session


__all__ = ["BACKENDS", "InferenceSession", "check_backend", "create_session"]
