"""INT8 generator with explicit Q/DQ nodes (QuantizeLinear/DequantizeLinear): the form TensorRT 10 consumes
(its implicit calibrators are deprecated since 10.1) and the form onnxruntime runs with int8 kernels on CPUs.

    deid calibrate --images ../shared/data --out models/deid_generator.int8.onnx

onnxruntime's static quantization (`quantize_static`, QDQ format) of the Conv and MatMul inputs: weights int8
symmetric per output channel, activations per tensor (see ACTIVATIONS), scales from the calibration set of
`deid_sdk.model_build.calibration_set` (the generator's real run-time inputs). Why onnxruntime and not NVIDIA
ModelOpt's ONNX PTQ: models/README.md ("INT8").
"""
from __future__ import annotations

import tempfile
from pathlib import Path

# The calibration methods offered (onnxruntime's names): MinMax takes each tensor's full range, Percentile
# clips the top 0.01% of values, Entropy minimises the KL divergence of the histogram (TensorRT's method).
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# The ops carrying the compute; the normalisations, activations and reshapes between them stay float.
QUANTIZED_OPS = ("Conv", "MatMul")


def check_method(method: str) -> str:
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(map(repr, CALIBRATION_METHODS))}, "
                         f"got {method!r}")
    return method


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over a CalibrationSet, one face per feed."""

    def __init__(self, calibration_set):
        self._feeds = iter(calibration_set.feeds(batch_size=1))

    def get_next(self):
        return next(self._feeds, None)


def quantizable_node_names(model_path: Path) -> list[str]:
    """The names of the nodes quantized (QUANTIZED_OPS), in graph order: what `exclude` may name."""
    import onnx

    return [node.name for node in onnx.load(str(model_path)).graph.node if node.op_type in QUANTIZED_OPS]


def check_exclude(model_path: Path, exclude) -> list[str]:
    """`exclude` as a list if every name is a quantizable node of the model, else raise naming the valid ones."""
    names = quantizable_node_names(model_path)
    unknown = [name for name in exclude if name not in names]
    if unknown:
        raise ValueError(f"exclude: no {'/'.join(QUANTIZED_OPS)} node named {', '.join(map(repr, unknown))} in "
                         f"{model_path}; expected names among: {', '.join(names)}")
    return list(exclude)


# Activations: "int8" symmetric (zero point 0: the only form TensorRT accepts) or "uint8" asymmetric (the form
# onnxruntime's x86 int8 kernels are fastest with; TensorRT rejects it). Weights are int8 symmetric either way.
ACTIVATIONS = ("int8", "uint8")


def quantize_generator(source: Path, destination: Path, calibration_set, method: str = "minmax",
                       activations: str = "uint8", exclude=(), calibration_cache: Path | None = None) -> None:
    """Write the Q/DQ INT8 form of the generator ONNX `source` (float32 or float16-stored weights).

    exclude: names of Conv/MatMul nodes to keep in float (mixed precision, see model_build.int8_sensitivity).
    calibration_cache: a JSON file of the activation ranges, written on first use and then read instead of
    calibrating again (for many quantizations of one model with one set and method).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from deid_sdk.model_build.onnx_edit import float32_weights

    check_method(method)
    if activations not in ACTIVATIONS:
        raise ValueError(f"activations must be one of {', '.join(map(repr, ACTIVATIONS))}, got {activations!r}")
    check_exclude(source, exclude)
    if not len(calibration_set):
        raise ValueError("the calibration set is empty")
    calibrate_method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                        "entropy": CalibrationMethod.Entropy}[method]
    with tempfile.TemporaryDirectory(prefix="deid_int8_") as scratch:
        float32_path, prepared_path = Path(scratch) / "float32.onnx", Path(scratch) / "prepared.onnx"
        model = onnx.load(str(source))
        float32_weights(model)  # the quantizer reads float32 initializers, not Casts of float16 ones
        onnx.save(model, str(float32_path))
        quant_pre_process(str(float32_path), str(prepared_path), skip_symbolic_shape=True)
        quantize_static(str(prepared_path), str(destination), _Reader(calibration_set),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8 if activations == "int8" else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=calibrate_method,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=list(exclude),
                        calibration_cache_path=calibration_cache,
                        extra_options={"ActivationSymmetric": activations == "int8", "WeightSymmetric": True})
    onnx.checker.check_model(str(destination))
