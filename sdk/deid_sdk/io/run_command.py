"""`deid run --source URI --sink URI`: de-identify a camera, stream, video file or image folder.

Exit status: 0 done; 1 error (one line on stderr: `deid run: error: ...`); 128+N stopped by signal N
(Ctrl-C: 130, SIGTERM: 143) after closing the output, which then holds every frame processed so far.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
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
"""


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `run` subcommand to the `deid` command line."""
    parser = subparsers.add_parser(
        "run", help="de-identify a camera, stream, video file or image folder",
        description="De-identify every face from a source into a sink.", epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(handler=run_from_args)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", "-i", required=True, metavar="URI", help="where frames come from")
    parser.add_argument("--sink", "-o", required=True, metavar="URI", help="where anonymized frames go")

    from deid_sdk.cli import add_filter_options

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
    loop.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")


class _StopOnSignal:
    """First SIGINT/SIGTERM: finish cleanly (output closed, playable). A second Ctrl-C: stop harder."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.signal_number: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, _frame) -> None:
        if self.signal_number is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_number = number
        self.stop.set()

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("deid_sdk")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("deid: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.ERROR if quiet else logging.WARNING)


def run_from_args(args: argparse.Namespace) -> int:
    from deid_sdk.cli import filter_kwargs
    from deid_sdk.io.pipeline import run_pipeline

    _configure_logging(args.quiet)
    # FFmpeg inside OpenCV prints decoder complaints (e.g. joining a stream between keyframes) line by line.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
    stop = threading.Event()
    with _StopOnSignal(stop) as stopper:
        try:
            summary = run_pipeline(
                args.source, args.sink, filter_options=filter_kwargs(args), audio=args.audio,
                max_frames=args.max_frames, queue_size=args.queue_size, io=args.io, codec=args.codec,
                crf=args.crf, bitrate=args.bitrate, image_fps=args.image_fps,
                reconnect_attempts=args.reconnect_attempts, stop=stop, progress=not args.quiet)
        except KeyboardInterrupt:
            print("deid run: interrupted; output closed", file=sys.stderr)
            return 130
        except (ValueError, TypeError, OSError, ImportError, RuntimeError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"deid run: error: {message}", file=sys.stderr)
            return 1
    if not args.quiet:
        extra = "".join(f", {count} {what}" for count, what in
                        ((summary.frames_dropped, "dropped to keep up"),
                         (summary.frames_blanked, "blacked out after a filter error")) if count)
        print(f"deid run: {summary.frames_written} frames in {summary.seconds:.1f} s "
              f"({summary.fps:.1f} fps){extra} -> {args.sink}", file=sys.stderr)
    if stopper.signal_number is not None:
        name = signal.Signals(stopper.signal_number).name
        print(f"deid run: stopped by {name}; {args.sink} holds {summary.frames_written} frames", file=sys.stderr)
        return 128 + stopper.signal_number
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m deid_sdk.io.run_command ...`: the same as `deid run ...`."""
    parser = argparse.ArgumentParser(prog="deid run", description="De-identify every face from a source into a sink.",
                                     epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
