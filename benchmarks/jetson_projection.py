"""Jetson projection: the generator's, detector's and privacy guard's (SFace) operations and memory traffic per 1080p frame, counted from
the ONNX files, turned into expected milliseconds and FPS on Orin Nano and AGX Orin (a roofline with stated
utilisation factors; docs/jetson.md explains every assumption).

    python benchmarks/jetson_projection.py [--compute-utilisation 0.25] [--bandwidth-utilisation 0.6]

Counted per model (onnx shape inference at the frame's shapes): multiply-accumulates of Conv, ConvTranspose,
MatMul and Gemm (2 operations each), weight bytes at the engine's precision, and activation bytes (every
tensor a layer writes, written once and read once; pointwise activations, BatchNormalization and residual Add
are taken as fused into the layer before them, as TensorRT fuses them).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

FRAME = (1080, 1920)
INPUT_MULTIPLE = 32  # the detector pads its input to a multiple of 32 (deid_sdk.detect)
BYTES = {"fp16": 2, "int8": 1}
FUSED = ("Relu", "LeakyRelu", "Sigmoid", "Tanh", "BatchNormalization", "Add")  # into the layer before them


@dataclass(frozen=True)
class Board:
    name: str
    int8_tops: float      # dense INT8 tera-operations per second of the GPU
    fp16_tflops: float    # dense FP16 (tensor cores): half the INT8 rate on Ampere
    bandwidth_gbs: float  # LPDDR5, shared with the CPU


BOARDS = (Board("Orin Nano 8GB", 20.0, 10.0, 68.0), Board("AGX Orin 64GB", 85.0, 42.5, 204.8))


@dataclass
class Cost:
    operations: float     # per inference
    weights: int          # parameters of the counted layers
    activation_elements: int

    def bytes(self, precision: str) -> float:
        return (self.weights + 2 * self.activation_elements) * BYTES[precision]


def model_cost(path, input_shapes: dict[str, tuple[int, ...]]) -> Cost:
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for tensor in model.graph.input:
        if tensor.name in input_shapes:
            for dim, value in zip(tensor.type.tensor_type.shape.dim, input_shapes[tensor.name]):
                dim.Clear()
                dim.dim_value = value
    model = shape_inference.infer_shapes(model, data_prop=True)
    shapes = {info.name: tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
              for info in [*model.graph.value_info, *model.graph.input, *model.graph.output]}
    shapes |= {init.name: tuple(init.dims) for init in model.graph.initializer}
    floats = {info.name for info in [*model.graph.value_info, *model.graph.output]
              if info.type.tensor_type.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    operations, weights, activations = 0.0, 0, 0
    for node in model.graph.node:
        if node.op_type in ("Constant", "Cast", "Shape", "Gather", "Unsqueeze", "Reshape", "Flatten"):
            continue  # weight casts and shape arithmetic: no traffic in an engine (folded at build time)
        if node.op_type in FUSED or node.output[0] not in floats:
            continue  # fused, or integer shape arithmetic
        output = shapes.get(node.output[0])
        if not output or 0 in output:
            raise ValueError(f"{path}: no inferred shape for {node.op_type} output {node.output[0]}")
        activations += int(np.prod(output))
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = shapes[node.input[1]]
            weights += int(np.prod(weight))
            if node.op_type == "Conv":  # weight (Cout, Cin/g, kh, kw): a MAC per weight per output pixel
                operations += 2 * output[0] * int(np.prod(weight)) * output[2] * output[3]
            else:  # weight (Cin, Cout/g, kh, kw): a MAC per weight per input pixel
                source = shapes[node.input[0]]
                operations += 2 * source[0] * int(np.prod(weight)) * source[2] * source[3]
        elif node.op_type in ("MatMul", "Gemm"):
            left, right = shapes[node.input[0]], shapes[node.input[1]]
            weights += int(np.prod(right))
            operations += 2 * int(np.prod(left)) * right[-1]
    return Cost(operations, weights, activations)


def detector_input(width: int) -> tuple[int, int]:
    height = round(FRAME[0] * width / FRAME[1])
    pad = lambda size: -(-size // INPUT_MULTIPLE) * INPUT_MULTIPLE  # noqa: E731
    return pad(height), pad(width)


def milliseconds(cost: Cost, board: Board, precision: str, compute: float, bandwidth: float) -> float:
    rate = (board.int8_tops if precision == "int8" else board.fp16_tflops) * 1e12 * compute
    return 1e3 * max(cost.operations / rate, cost.bytes(precision) / (board.bandwidth_gbs * 1e9 * bandwidth))


def main(argv: list[str] | None = None) -> int:
    from deid_sdk.model_files import shipped_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compute-utilisation", type=float, default=0.25,
                        help="fraction of the peak rate small-batch convolutions reach (default 0.25)")
    parser.add_argument("--bandwidth-utilisation", type=float, default=0.6,
                        help="fraction of the peak memory bandwidth reached (default 0.6)")
    parser.add_argument("--cpu-ms-per-face", type=float, default=4.0,
                        help="dlib landmarks per face on the ARM cores, not on the GPU (default 4.0: 2.2 ms measured "
                             "on the x86 dev machine, ~1.8x slower assumed on Cortex-A78AE)")
    parser.add_argument("--guard-runs-per-face", type=float, default=0.23,
                        help="SFace runs per face per frame (default 0.23: privacy='default' checks every 5th frame "
                             "and refreshes the input embedding every 30; privacy='strict': 1.03)")
    parser.add_argument("--fixed-ms", type=float, default=2.0,
                        help="per frame: detector pre/post-processing, warp and blend kernels, launches (default 2)")
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if value <= 0 or (name.endswith("utilisation") and value > 1):
            parser.error(f"--{name.replace('_', '-')}: expected a value in (0, 1] for a fraction, > 0 otherwise, "
                         f"got {value}")

    generator = {faces: model_cost(shipped_model("deid_generator.onnx"),
                                   {"crop": (faces, 3, 128, 128), "identity": (faces, 128), "strength": (faces, 1)})
                 for faces in (1, 4)}
    detectors = {width: model_cost(shipped_model("centerface.onnx"), {"input.1": (1, 3, *detector_input(width))})
                 for width in (FRAME[1], 640)}
    guard = model_cost(shipped_model("sface.onnx"), {"data": (1, 3, 112, 112)})
    print("counted from the ONNX files (per inference):")
    for faces, cost in generator.items():
        print(f"  generator, {faces} face(s): {cost.operations / 1e9:7.2f} GOP, {cost.weights / 1e6:.2f} M weights, "
              f"{cost.activation_elements / 1e6:6.2f} M activation elements")
    for width, cost in detectors.items():
        height, padded = detector_input(width)
        print(f"  detector {padded}x{height} ({'full 1080p' if width == FRAME[1] else f'detect_width={width}'}): "
              f"{cost.operations / 1e9:7.2f} GOP, {cost.weights / 1e6:.2f} M weights, "
              f"{cost.activation_elements / 1e6:6.2f} M activation elements")
    print(f"  privacy guard (SFace), 1 face: {guard.operations / 1e9:7.2f} GOP, {guard.weights / 1e6:.2f} M weights, "
          f"{guard.activation_elements / 1e6:6.2f} M activation elements")
    print(f"\nprojection at 1920x1080 (compute utilisation {args.compute_utilisation}, bandwidth utilisation "
          f"{args.bandwidth_utilisation}, {args.guard_runs_per_face} guard runs per face, landmarks {args.cpu_ms_per_face} ms/face on the CPU, {args.fixed_ms} ms "
          "fixed per frame, stages in sequence):")
    print(f"  {'board':<14} {'precision':<9} {'detector':<16} {'faces':>5} {'detect ms':>9} {'generator ms':>12} "
          f"{'guard ms':>8} {'frame ms':>8} {'FPS':>6}")
    for board in BOARDS:
        for precision in ("fp16", "int8"):
            for width, detector in detectors.items():
                for faces, cost in generator.items():
                    detect = milliseconds(detector, board, precision, args.compute_utilisation,
                                          args.bandwidth_utilisation)
                    generate = milliseconds(cost, board, precision, args.compute_utilisation,
                                            args.bandwidth_utilisation)
                    check = faces * args.guard_runs_per_face * milliseconds(
                        guard, board, precision, args.compute_utilisation, args.bandwidth_utilisation)
                    frame = detect + generate + check + args.cpu_ms_per_face * faces + args.fixed_ms
                    label = "full 1080p" if width == FRAME[1] else f"width {width}"
                    print(f"  {board.name:<14} {precision:<9} {label:<16} {faces:>5} {detect:>9.1f} {generate:>12.1f} "
                          f"{check:>8.1f} {frame:>8.1f} {1e3 / frame:>6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
