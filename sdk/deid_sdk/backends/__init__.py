"""Inference backends behind one interface (`InferenceSession.run(dict) -> dict`).

`backend="auto"` picks the best one available and logs the choice once. Today that is onnxruntime;
TensorRT (Jetson) and torch backends plug in here.
"""
from __future__ import annotations

import logging
from pathlib import Path

from deid_sdk.backends.base import InferenceSession

log = logging.getLogger("deid_sdk")
BACKENDS = ("auto", "onnxruntime")
_announced: set[tuple[str, str]] = set()


def create_session(model_path: str | Path, backend: str = "auto", threads: int = 2) -> InferenceSession:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"model file not found: {model_path}")
    from deid_sdk.backends.onnxruntime import OnnxRuntimeSession

    session = OnnxRuntimeSession(model_path, threads=threads)
    key = (model_path.name, session.provider)
    if key not in _announced:
        _announced.add(key)
        log.info("%s: backend onnxruntime (%s), precision %s", model_path.name, session.provider, session.precision)
    return session


__all__ = ["BACKENDS", "InferenceSession", "create_session"]
