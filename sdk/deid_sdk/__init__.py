"""deid_sdk: live face de-identification for video.

    from deid_sdk import Filter
    with Filter() as f:
        out = f(frame)          # HxWx3 uint8 BGR -> same shape and dtype, faces replaced
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Filter", "__version__"]


def __getattr__(name: str):
    # Import lazily so `import deid_sdk` stays cheap (onnxruntime, dlib load only when a Filter is made).
    if name == "Filter":
        from deid_sdk.filter import Filter
        return Filter
    raise AttributeError(f"module 'deid_sdk' has no attribute {name!r}")
