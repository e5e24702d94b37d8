"""`deid bench`: per-stage latency and end-to-end FPS of the Filter on a clip decoded into memory first."""
from __future__ import annotations

import argparse
import threading
import time


def register(subparsers) -> None:
    from deid_sdk.cli.options import add_filter_options

    parser = subparsers.add_parser("bench", help="per-stage latency and end-to-end FPS on a video file")
    parser.add_argument("--input", required=True, help="video file")
    parser.add_argument("--frames", type=int, default=300, help="frames to time (default 300)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames first (default 5)")
    add_filter_options(parser)
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk import Filter
    from deid_sdk.cli.options import filter_kwargs
    from deid_sdk.cli.stage_report import stage_table
    from deid_sdk.io import read_frames

    if args.frames < 1 or args.warmup < 0:
        raise ValueError(f"--frames must be >= 1 and --warmup >= 0, got {args.frames} and {args.warmup}")
    frames = read_frames(args.input, args.frames + args.warmup)
    with Filter(**filter_kwargs(args)) as face_filter:
        for frame in frames[:args.warmup]:
            face_filter(frame)
        samples = []
        start = time.perf_counter()
        for frame in frames[args.warmup:]:
            if stop.is_set():
                break
            face_filter(frame)
            samples.append(dict(face_filter.stats))
        wall = time.perf_counter() - start
        mode = "generator" if face_filter.generator_available else "fallback only (no generator installed)"
    height, width = frames[0].shape[:2]
    print(f"deid bench: {args.input} ({width}x{height}), {len(samples)} frames, {mode}, impl={args.impl}")
    print(stage_table(samples) if samples else "no frames timed")
    if samples:
        print(f"wall clock: {len(samples) / wall:.1f} fps")
    return 0
