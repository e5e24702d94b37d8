"""The Filter's options on the command line, in one place: every subcommand that builds a Filter uses these."""
from __future__ import annotations

import argparse

from deid_sdk.backends import BACKENDS
from deid_sdk.fallback import FALLBACK_MODES
from deid_sdk.filter import IMPLS
from deid_sdk.model_files import PRECISIONS
from deid_sdk.privacy import PRIVACY_MODES
from deid_sdk.recall import DEFAULT_RECALL_DETECTOR, RECALL_DETECTORS


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """One flag per Filter option (all but `color`, set by the source, and `detector`, Python only)."""
    group = parser.add_argument_group("filter")
    group.add_argument("--model", help="generator ONNX file (default: the bundled model)")
    group.add_argument("--target", metavar="IMAGE", help="an image with a face: the identity to move every face "
                       "away from (default: each face itself, taken when its track starts)")
    group.add_argument("--strength", type=float, default=1.0, help="de-identification strength in [0, 1] (default 1)")
    group.add_argument("--fallback", choices=FALLBACK_MODES, default="blur",
                       help="what covers a face that cannot be de-identified (default: blur)")
    group.add_argument("--no-generator", action="store_true",
                       help="cover every face with the fallback instead of replacing it")
    group.add_argument("--privacy", choices=PRIVACY_MODES, default="default",
                       help="privacy guard: SFace checks each track's output and escalates up to the fallback "
                            "(default: every new track, then every few frames; strict: every frame; off)")
    group.add_argument("--recall-detector", choices=RECALL_DETECTORS, default=DEFAULT_RECALL_DETECTOR,
                       help="a second face detector beside CenterFace, for small and distant faces it misses "
                            f"(default: {DEFAULT_RECALL_DETECTOR}; docs/benchmark.md, 'Detector recall')")
    group.add_argument("--min-face", type=int, default=24, help="smaller faces (pixels) get the fallback (default 24)")
    group.add_argument("--threshold", type=float, default=0.5, help="face detection threshold in (0, 1) (default 0.5)")
    group.add_argument("--detect-width", type=int, default=None,
                       help="run detection on frames downscaled to this width (default: full size)")
    group.add_argument("--no-tracking", action="store_true",
                       help="treat every frame on its own (no tracks, no landmark smoothing)")
    group.add_argument("--feather", type=float, default=None,
                       help="edge ramp of the blend in pixels (default: about a tenth of each face's width)")
    group.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default: auto)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="which bundled generator file: fp32, fp16, int8 or fastest (default fp32)")
    group.add_argument("--impl", choices=IMPLS, default="auto", help="warp/blend kernels (default: auto)")
    group.add_argument("--threads", type=int, default=2, help="threads per model and kernel (default 2)")


def filter_kwargs(args: argparse.Namespace) -> dict:
    """Filter(**filter_kwargs(args)); the Filter validates each value and names the option when one is wrong."""
    options = dict(model=args.model, strength=args.strength, fallback=args.fallback,
                   use_generator=not args.no_generator, min_face=args.min_face, threshold=args.threshold,
                   detect_width=args.detect_width, tracking=not args.no_tracking, feather=args.feather,
                   backend=args.backend, impl=args.impl, threads=args.threads, precision=args.precision,
                   privacy=args.privacy, recall_detector=args.recall_detector)
    if args.target is not None:
        options["target"] = read_target(args.target)
    return options


def read_target(path: str):
    import cv2

    from deid_sdk.io.uri import IMAGE_EXTENSIONS

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"--target: cannot read {path} as an image (expected one of "
                                f"{', '.join(IMAGE_EXTENSIONS)})")
    return image
