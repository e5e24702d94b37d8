"""`deid run --source URI --sink URI`: de-identify a camera, stream, video file or image folder.

Several --source/--sink pairs (paired in order) are served from one process with one set of models
(deid_sdk.cli.run_streams).

Exit status as for every command (deid_sdk.cli); stopped by a signal, the output holds every frame processed so far.
Frames the filter failed on are written black, and frames a damaged source could not give are skipped; either
makes the exit status 1 (the output is incomplete).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from deid_sdk.io.factory import IO_CHOICES

_EXAMPLES = """\
sources: csi://0, v4l2:///dev/video0 (or /dev/video0), rtsp://host:8554/path, rtp://@:5000,
         file:///path/in.mp4 or a plain path to a video, a folder of images, or one image
sinks:   display://0, out.mp4 (or .mkv, .mov, ...), an image folder (out/) or pattern (out/%%06d.png),
         rtsp://server:8554/path (publish; serving rtsp://@:8554/path needs jetson_utils), rtp://host:5000

examples:
  deid run --source in.mp4 --sink out.mp4                 # same fps, duration and audio as in.mp4
  deid run --source /dev/video0 --sink display://0
  deid run --source rtsp://cam/stream --sink cctv.mkv     # reconnects when the stream drops
  deid run --source photos/ --sink photos_deid/
  deid run -i cam1.mp4 -o out1.mp4 -i rtsp://cam2/s -o out2.mkv   # two streams, one set of models
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `run` subcommand to the `deid` command line."""
    from deid_sdk.cli.options import add_filter_options

    parser = subparsers.add_parser(
        "run", help="de-identify a camera, stream, video file or image folder",
        description="De-identify every face from a source into a sink.", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", "-i", required=True, action="append", metavar="URI",
                        help="where frames come from (repeat with --sink for several streams)")
    parser.add_argument("--sink", "-o", required=True, action="append", metavar="URI",
                        help="where anonymized frames go (the n-th --sink takes the n-th --source)")
    add_filter_options(parser)

    output = parser.add_argument_group("output")
    output.add_argument("--no-audio", dest="audio", action="store_false",
                        help="drop the audio (file to file keeps it by default)")
    output.add_argument("--codec", help="video encoder (default: libx264)")
    output.add_argument("--crf", type=int, help="x264 quality for files, lower is better (default: 20)")
    output.add_argument("--bitrate", type=int, metavar="BPS", help="target bitrate (default for streams: 4000000)")

    loop = parser.add_argument_group("loop")
    loop.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    loop.add_argument("--queue-size", type=int, default=4, metavar="N",
                      help="frames buffered between capture, filter and output (default: 4)")
    loop.add_argument("--image-fps", type=float, default=30.0, metavar="FPS",
                      help="frame rate given to an image folder source (default: 30)")
    loop.add_argument("--reconnect-attempts", type=int, metavar="N",
                      help="reopen a dropped stream at most N times (default: streams forever, cameras never)")
    loop.add_argument("--io", choices=IO_CHOICES, default="auto",
                      help="auto: jetson_utils for cameras, streams and display when importable; "
                           "opencv: never use jetson_utils")
    loop.add_argument("--no-detect-ahead", dest="detect_ahead", action="store_false",
                      help="detect each frame in the filter thread, not the next one ahead in a worker thread "
                           "(same output; deid_sdk.pipelined)")
    loop.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary, errors only in the log")
    parser.set_defaults(handler=run_from_args, check_usage=lambda args: check_pairs(parser, args))


def check_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """As many --sink as --source, each sink once; otherwise a usage error (exit 2) before anything opens."""
    if len(args.source) != len(args.sink):
        parser.error(f"expected one --sink per --source (paired in order), got {len(args.source)} --source and "
                     f"{len(args.sink)} --sink")
    from deid_sdk.io.streams import check_pairs

    try:
        check_pairs(list(zip(args.source, args.sink)))
    except ValueError as error:
        parser.error(str(error))


def run_from_args(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk.cli.options import filter_kwargs
    from deid_sdk.cli.progress import Progress
    from deid_sdk.io.pipeline import run_pipeline

    if args.quiet:
        logging.getLogger("deid_sdk").setLevel(logging.ERROR)
    # FFmpeg inside OpenCV prints decoder complaints (e.g. joining a stream between keyframes) line by line.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    if len(args.source) > 1:
        from deid_sdk.cli.run_streams import run_streams_from_args

        return run_streams_from_args(args, stop)
    args.source, args.sink = args.source[0], args.sink[0]
    summary = run_pipeline(
        args.source, args.sink, filter_options=filter_kwargs(args), audio=args.audio,
        max_frames=args.max_frames, queue_size=args.queue_size, io=args.io, codec=args.codec,
        crf=args.crf, bitrate=args.bitrate, image_fps=args.image_fps,
        reconnect_attempts=args.reconnect_attempts, stop=stop, progress=None if args.quiet else Progress(),
        detect_ahead=args.detect_ahead)
    if not args.quiet:
        print(summary_line(summary, args.sink), file=sys.stderr)
        if summary.privacy is not None:
            print(f"deid run: {summary.privacy.describe()}", file=sys.stderr)
    if stop.is_set():  # after a signal its 128+N status says what happened
        print(f"deid run: {args.sink} holds {summary.frames_written} frames", file=sys.stderr)
        return 0
    if summary.frames_blanked:  # work was lost
        raise RuntimeError(f"{summary.frames_blanked} of {summary.frames_written} frames were written black after "
                           f"filter errors (logged above); {args.sink} is incomplete")
    if summary.frames_missing:
        raise RuntimeError(f"{summary.frames_missing} frames of {args.source} could not be read (damaged or cut "
                           f"off, logged above); {args.sink} holds the {summary.frames_written} that could")
    return 0


def summary_line(summary, sink: str) -> str:
    """What `deid run` says of one stream when it ends."""
    extra = "".join(f", {count} {what}" for count, what in
                    ((summary.frames_dropped, "dropped to keep up"),
                     (summary.frames_blanked, "blacked out after a filter error")) if count)
    return f"deid run: {summary.frames_written} frames in {summary.seconds:.1f} s ({summary.fps:.1f} fps){extra} -> {sink}"
