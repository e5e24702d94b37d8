#!/usr/bin/env python3
"""De-identify a video file: same frame rate, duration and audio as the input.

    python examples/video_file.py input.mp4 output.mp4 [--strength 1.0] [--no-audio] [--max-frames N]
"""
import argparse

from deid_sdk.cli.progress import Progress
from deid_sdk.io import run_pipeline

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("input", help="video file (or a folder of images)")
parser.add_argument("output", help="video file (or a folder for images)")
parser.add_argument("--strength", type=float, default=1.0, help="de-identification strength in [0, 1]")
parser.add_argument("--no-audio", dest="audio", action="store_false", help="drop the sound")
parser.add_argument("--max-frames", type=int, help="stop after N frames")
args = parser.parse_args()

# Decoding, the filter and encoding run in parallel threads; no frame of a file is ever dropped.
summary = run_pipeline(args.input, args.output, filter_options={"strength": args.strength}, audio=args.audio,
                       max_frames=args.max_frames, progress=Progress())
print(f"{summary.frames_written} frames at {summary.fps:.1f} fps -> {args.output}")
