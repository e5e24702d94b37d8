"""Per-layer sensitivity of the INT8 generator's leak: all layers quantized but one, for each layer in turn.

    python benchmarks/int8_sensitivity.py [--images ../shared/data] [--nodes NAME,NAME] [--faces 128]

The calibration set is `deid calibrate`'s (same folder, count and seed); the leak probe and the sweep are
deid_sdk.model_build.int8_sensitivity (its docstring says what the figure means and what it was found to miss).
Prints one row per layer kept in float: the probe's leak figure next to FP32's, and the image / mask PSNR.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    from deid_sdk.generator import default_generator_path
    from deid_sdk.model_build.calibration_set import build_calibration_set
    from deid_sdk.model_build.int8 import ACTIVATIONS, CALIBRATION_METHODS
    from deid_sdk.model_build.int8_sensitivity import DEFAULT_PROBE_FACES, LeakProbe, sensitivity_sweep

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=DATA_ROOT)
    parser.add_argument("--count", type=int, default=192, help="calibration images (as deid calibrate)")
    parser.add_argument("--faces", type=int, default=DEFAULT_PROBE_FACES, help="calibration faces the probe scores")
    parser.add_argument("--nodes", default="", help="comma-separated layers to sweep (default: all)")
    parser.add_argument("--method", choices=CALIBRATION_METHODS, default="minmax")
    parser.add_argument("--activations", choices=ACTIVATIONS, default="uint8")
    args = parser.parse_args(argv)
    model = default_generator_path()
    calibration_set = build_calibration_set(args.images, model, images=args.count)
    probe = LeakProbe(model, calibration_set, faces=args.faces)
    print(f"leak probe: {len(probe)} calibration faces, FP32 leak {probe.reference.leak:.4f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="deid_sweep_") as folder:
        sensitivity_sweep(model, calibration_set, probe, Path(folder), args.method, args.activations,
                          nodes=[n.strip() for n in args.nodes.split(",") if n.strip()] or None,
                          log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
