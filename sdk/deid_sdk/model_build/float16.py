"""FP16 models for FP16 hardware (TensorRT on Jetson, GPUs): weights and computation in float16, the inputs and
outputs still float32, so the SDK feeds and reads them exactly as the float32 file (models/README.md contract).

Derived at build time from the float32 model (`python -m deid_sdk.model_build`: entries `*.fp16.onnx`), not
committed: the conversion is deterministic and the files are as large as their source. The accuracy against
float32 is measured by `benchmarks/quantized_accuracy.py` (models/README.md).

InstanceNormalization stays float32, a precaution: its mean of squared activations can exceed float16's range
(65504) where the activations are large. onnxruntime's CPU provider has no float16 Conv on x86 and runs these
files in float32 (inserting Casts), so their float16 arithmetic error shows only on FP16 hardware.
"""
from __future__ import annotations

from pathlib import Path

# Ops kept in float32 (onnxruntime's converter puts a Cast on each side).
FLOAT32_OPS = ("InstanceNormalization",)


def to_float16(source: Path, destination: Path) -> None:
    """Write the float16 form of the float32 (or float16-stored, float32-compute) ONNX model `source`."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from deid_sdk.model_build.onnx_edit import checked, float32_weights, sort_topologically

    model = onnx.load(str(source))
    float32_weights(model)
    half = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(FLOAT32_OPS))
    sort_topologically(half)
    destination.write_bytes(checked(half))
