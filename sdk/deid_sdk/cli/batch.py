"""`deid batch --input DIR_OR_GLOB --output DIR`: de-identify an archive of video files and image folders on Ray.

Exit status as for every command (deid_sdk.cli); 1 also when any file failed (the summary lists why).
"""
from __future__ import annotations

import argparse
import sys
import threading

from deid_sdk.cli.arg_types import non_negative, positive_int

_EXAMPLES = """\
examples:
  deid batch --input footage/ --output footage_deid/                 # local Ray, as many workers as CPUs allow
  deid batch --input 'cctv/**/*.mp4' --output cctv_deid/ --workers 2
  deid batch --input /mnt/archive --output /mnt/deid --address auto  # a running Ray cluster
A re-run skips every file whose output is already complete (same frame count and duration as its input).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `batch` subcommand to the `deid` command line."""
    from deid_sdk.cli.options import add_filter_options

    parser = subparsers.add_parser(
        "batch", help="de-identify many video files and image folders in parallel on Ray",
        description="De-identify every video file and image folder of an archive, one Ray task per file.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", "-i", required=True, metavar="DIR_OR_GLOB",
                        help="a folder (its video files and image folders) or a glob pattern ('**' recurses)")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="folder for the outputs (same names)")
    cluster = parser.add_argument_group("ray")
    cluster.add_argument("--address", metavar="auto|ray://HOST:PORT",
                         help="join a running Ray cluster (default: start a local one for this command)")
    cluster.add_argument("--workers", type=positive_int, metavar="N",
                         help="worker actors, one Filter each (default: the cluster's CPUs / --threads)")
    cluster.add_argument("--gpus-per-worker", type=non_negative(float), default=0.0, metavar="G",
                         help="GPUs each worker reserves, e.g. 0.5 for two per GPU (default 0)")
    cluster.add_argument("--max-retries", type=non_negative(int), default=2, metavar="N",
                         help="restart a dead worker and retry its file at most N times (default 2)")
    add_filter_options(parser)
    output = parser.add_argument_group("output")
    output.add_argument("--no-audio", dest="audio", action="store_false", help="drop the audio")
    output.add_argument("--codec", help="video encoder (default: libx264)")
    output.add_argument("--crf", type=int, help="x264 quality, lower is better (default: 20)")
    output.add_argument("--image-fps", type=float, default=30.0, metavar="FPS",
                        help="frame rate given to image folders (default: 30)")
    output.add_argument("--quiet", "-q", action="store_true", help="no progress bars, no summary")
    parser.set_defaults(handler=batch_from_args)


def batch_from_args(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk.batch import run_batch
    from deid_sdk.cli.options import filter_kwargs
    from deid_sdk.filter import Filter

    options = filter_kwargs(args)
    Filter(**options).close()  # every option checked (and the models found) here, before Ray starts
    summary = run_batch(args.input, args.output, filter_options=options, workers=args.workers,
                        address=args.address, gpus_per_worker=args.gpus_per_worker, max_retries=args.max_retries,
                        audio=args.audio, codec=args.codec, crf=args.crf, image_fps=args.image_fps, stop=stop,
                        progress=not args.quiet)
    if not args.quiet or summary.failures:
        for line in summary.lines():
            print(f"deid batch: {line}", file=sys.stderr)
    return 1 if summary.failures else 0
