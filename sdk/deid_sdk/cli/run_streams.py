"""`deid run` with several --source/--sink pairs: one process, one set of models, one generator call per tick.

A line per stream and one for the generator's batches; exit status 1 when any stream failed or wrote frames
black (the others still ran to their end).
"""
from __future__ import annotations

import argparse
import sys
import threading


def run_streams_from_args(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk.cli.options import filter_kwargs
    from deid_sdk.cli.run import summary_line
    from deid_sdk.io.streams import run_streams

    report = run_streams(
        list(zip(args.source, args.sink)), filter_options=filter_kwargs(args), stop=stop, audio=args.audio,
        max_frames=args.max_frames, queue_size=args.queue_size, io=args.io, codec=args.codec, crf=args.crf,
        bitrate=args.bitrate, image_fps=args.image_fps, reconnect_attempts=args.reconnect_attempts)
    for result in report.streams:
        if result.error is not None:
            print(f"deid run: {result.source} -> {result.sink} failed: {result.error}", file=sys.stderr)
        elif not args.quiet:
            print(summary_line(result.summary, result.sink), file=sys.stderr)
    batches = report.generator_batches
    if batches and not args.quiet:
        calls, rows = sum(batches.values()), sum(size * count for size, count in batches.items())
        print(f"deid run: {rows} faces in {calls} generator calls ({rows / calls:.1f} a call, at most "
              f"{max(batches)})", file=sys.stderr)
    lost = [result for result in report.streams if result.lost_work]
    if lost and not stop.is_set():
        raise RuntimeError(f"{len(lost)} of {len(report.streams)} streams lost work: "
                           f"{', '.join(result.sink for result in lost)} (logged above)")
    return 0
