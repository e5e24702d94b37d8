#!/usr/bin/env python3
"""De-identify a CCTV stream around the clock: RTSP in; a recording or an RTSP stream out.

    python examples/rtsp_cctv.py rtsp://camera/stream cctv.mkv
    python examples/rtsp_cctv.py rtsp://camera/stream rtsp://mediamtx:8554/deid   # publish to an RTSP server

A dropped stream is reopened with growing waits (0.5 s, 1 s, 2 s, ... 10 s); nothing is written meanwhile.
Ctrl-C or SIGTERM (systemd stop) closes the recording cleanly. .mkv survives even a power cut.
"""
import argparse
import signal
import threading

from deid_sdk.cli.progress import Progress
from deid_sdk.io import run_pipeline

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("source", help="rtsp://user:password@camera/stream (or any source URI)")
parser.add_argument("sink", nargs="?", default="cctv.mkv",
                    help="file or rtsp://server:8554/path (default: cctv.mkv)")
parser.add_argument("--reconnect-attempts", type=int, default=None, help="give up after N reconnects (default: never)")
parser.add_argument("--detect-width", type=int, default=960, help="detector input width (wide CCTV frames, small faces)")
args = parser.parse_args()

stop = threading.Event()
for number in (signal.SIGINT, signal.SIGTERM):
    signal.signal(number, lambda *_: stop.set())

summary = run_pipeline(args.source, args.sink, filter_options={"detect_width": args.detect_width},
                       reconnect_attempts=args.reconnect_attempts, stop=stop, progress=Progress())
print(f"{summary.frames_written} frames written, {summary.frames_dropped} dropped to keep up -> {args.sink}")
