"""Benchmark of the identity encoder: embeddings per second at batch 1 and 64.

    python -m deid_train.bench_identity [--weights dlib_resnet_f16.npz] [--threads 2] [--batches 1 64]

Rows: onnxruntime (CPU), PyTorch on CPU (fp32), and on CUDA when available (fp32, bf16 autocast, both
channels_last); dlib's own compute_face_descriptor as a reference when dlib is installed. `--weights` takes the
.dat or the compact .npz (`python -m deid_sdk.dlib_format --compact`) for machines without face-recognition-models.
Inputs are random 0..255 chips: the network's cost does not depend on the content.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _rate(run, batch: int, min_seconds: float, min_repeats: int = 3) -> float:
    """Embeddings per second: median over repeats after one warm-up call."""
    run()
    times = []
    started = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - started < min_seconds:
        tick = time.perf_counter()
        run()
        times.append(time.perf_counter() - tick)
        if len(times) >= 200:
            break
    return batch / float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=None, help=".dat or compact .npz (default: installed package)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for onnxruntime and torch")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum measuring time per row")
    parser.add_argument("--no-dlib", action="store_true", help="skip dlib's own descriptor")
    args = parser.parse_args(argv)

    import torch

    from deid_sdk.dlib_format import default_model_path, load_weights
    from deid_sdk.identity import IdentityEncoder
    from deid_sdk.model_build.dlib_resnet import build
    from deid_train.identity_net import DlibResNet

    torch.set_num_threads(args.threads)
    weights = load_weights(args.weights)
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, int, float]] = []

    with tempfile.TemporaryDirectory() as folder:
        onnx_path = Path(folder) / "dlib_resnet.onnx"
        build(args.weights or default_model_path(), onnx_path)
        encoder = IdentityEncoder(onnx_path, threads=args.threads)
        for batch in args.batches:
            chips = rng.uniform(0, 255, (batch, 150, 150, 3)).astype(np.float32)
            rows.append(("onnxruntime", f"CPU x{args.threads} fp32", batch,
                         _rate(lambda: encoder.encode_chips(chips), batch, args.seconds)))

    net = DlibResNet(weights)
    for batch in args.batches:
        chips = torch.from_numpy(rng.uniform(0, 255, (batch, 3, 150, 150)).astype(np.float32))
        with torch.inference_mode():
            rows.append(("torch", f"CPU x{args.threads} fp32", batch, _rate(lambda: net(chips), batch, args.seconds)))

    if torch.cuda.is_available():
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
        gpu_net = DlibResNet(weights).to(device, memory_format=torch.channels_last)
        for batch in args.batches:
            chips = (torch.rand(batch, 3, 150, 150, device=device) * 255).contiguous(memory_format=torch.channels_last)
            for precision in ("fp32", "bf16"):
                def run():
                    with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16"):
                        gpu_net(chips)
                    torch.cuda.synchronize()
                rows.append(("torch", f"{name} {precision} channels_last", batch, _rate(run, batch, args.seconds)))

    if not args.no_dlib:
        try:
            import dlib

            recognizer = dlib.face_recognition_model_v1(str(default_model_path()))
            chip = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
            rows.append(("dlib", "CPU (its own threads)", 1,
                         _rate(lambda: recognizer.compute_face_descriptor(chip), 1, args.seconds)))
        except (ImportError, FileNotFoundError) as error:
            print(f"(dlib reference skipped: {error})")

    print(f"{'engine':<12} {'device':<44} {'batch':>5} {'embeddings/s':>13} {'ms/embedding':>13}")
    for engine, device_name, batch, rate in rows:
        print(f"{engine:<12} {device_name:<44} {batch:>5} {rate:>13.1f} {1000 / rate:>13.2f}")


if __name__ == "__main__":
    main()
