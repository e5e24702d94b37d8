"""CPU latency of the generator per face: FP32 vs INT8 vs FP16 files on onnxruntime, batch 1 and 4.

    python benchmarks/generator_precision.py [--rounds 30] [--threads 2] [--int8 FILE [--int8 FILE2 ...]]

Rounds are interleaved (each round runs every file and batch once, in turn), so a change of machine load hits
all of them alike; prints the median milliseconds per face and the ratio to FP32 at the same batch size.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from deid_sdk.generator import Generator
    from deid_sdk.model_files import shipped_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", type=Path, action="append", default=None,
                        help="INT8 file(s), repeatable (default: the shipped deid_generator.int8.onnx)")
    args = parser.parse_args(argv)
    int8_files = args.int8 or [shipped_model("deid_generator.int8.onnx")]
    files = {"fp32": shipped_model("deid_generator.onnx"),
             **{("int8" if len(int8_files) == 1 else f"int8 #{k + 1}"): path for k, path in enumerate(int8_files)},
             "fp16": shipped_model("deid_generator.fp16.onnx")}
    generators = {name: Generator(path, threads=args.threads) for name, path in files.items()}
    rng = np.random.default_rng(0)
    batches = {size: (np.tanh(rng.normal(0, 0.5, (size, 3, 128, 128))).astype(np.float32),
                      rng.normal(0, 0.1, (size, 128)).astype(np.float32), np.ones((size, 1), np.float32))
               for size in (1, 4)}
    for generator in generators.values():  # warm-up: first runs allocate
        for batch in batches.values():
            generator(*batch)
    samples = {(name, size): [] for name in generators for size in batches}
    for _ in range(args.rounds):
        for size, batch in batches.items():
            for name, generator in generators.items():
                start = time.perf_counter()
                generator(*batch)
                samples[name, size].append((time.perf_counter() - start) * 1000 / size)
    print(f"generator ms per face, median of {args.rounds} interleaved rounds, {args.threads} threads")
    for size in batches:
        reference = np.median(samples["fp32", size])
        for name in generators:
            median = np.median(samples[name, size])
            print(f"  batch {size}  {name}: {median:6.2f} ms/face  ({median / reference:.2f}x fp32)  "
                  f"{files[name].name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
