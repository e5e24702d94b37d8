"""`deid-eval`: privacy, utility and temporal stability of de-identification methods, in one command.

    deid-eval                                  # baselines, 300 LFW eval identities, all videos (<= 150 frames)
    deid-eval --method sdk --method blur       # the SDK beside blur, plus its strength sweep (0.25..1)
    deid-eval --method sdk:backend=onnxruntime,model=PATH.onnx --sweep-strengths none
    deid-eval --quick                          # CI: 10 identities, small gallery, one 30-frame clip
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from deid_eval.attackers import ATTACKER_NAMES
from deid_eval.benchmark import Settings, run_benchmark
from deid_eval.detectors import DETECTOR_NAMES
from deid_eval.methods import BASELINE_NAMES, METHOD_NAMES, parse_method_spec
from deid_eval.paths import LFW_DIR, LFW_SPLITS, REPOSITORY_ROOT, VIDEOS_DIR, default_cache_dir
from deid_sdk.cli.arg_types import positive_int

QUICK = {"identity_limit": 10, "gallery_limit": 200, "video_limit": 1, "max_frames": 30, "contact_examples": 4}
SWEEP_STRENGTHS = (0.25, 0.5, 0.75, 1.0)
QUICK_SWEEP_STRENGTHS = (0.5, 1.0)


def _strengths(text: str) -> tuple[float, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.25,0.5,1, got {text!r}") from error
    if any(not 0.0 < v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"strengths must be in (0, 1], got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deid-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", action="append", dest="methods", metavar="NAME[:key=value,...]",
                        help=f"method to evaluate, repeatable; one of {', '.join(METHOD_NAMES)} "
                             f"(default: {', '.join(BASELINE_NAMES)}); e.g. sdk:backend=onnxruntime,strength=0.8,model=PATH")
    parser.add_argument("--faces", type=Path, default=LFW_DIR, help="labeled face folder in LFW layout (default: %(default)s)")
    parser.add_argument("--splits", type=Path, default=None,
                        help="JSON with 'eval_identities' (default: ../shared/data/faces/lfw_splits.json for the default "
                             "folder; every identity with 2+ photos otherwise)")
    parser.add_argument("--videos", type=Path, default=VIDEOS_DIR, help="folder of clips or one clip (default: %(default)s)")
    parser.add_argument("--no-video", action="store_true", help="skip the video figures")
    parser.add_argument("--max-frames", type=positive_int, default=150, help="frames per clip (default: %(default)s)")
    parser.add_argument("--video-limit", type=positive_int, default=None, help="first N clips only")
    parser.add_argument("--identities", type=positive_int, default=None, dest="identity_limit",
                        help="first N eval identities only (default: all, 300 for LFW)")
    parser.add_argument("--gallery-limit", type=positive_int, default=None,
                        help="cap the gallery: the probes' own identities are kept, distractors are a fixed-seed subset")
    parser.add_argument("--attackers", default=",".join(ATTACKER_NAMES),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--detector", choices=DETECTOR_NAMES, default="centerface",
                        help="face detector of the baselines (default: the SDK's CenterFace, for a fair comparison)")
    parser.add_argument("--calibrate", action="store_true",
                        help="compute each attacker's FAR-0.1%% threshold from LFW different-person pairs of the gallery "
                             "instead of the values measured in ../shared/data/README.md")
    parser.add_argument("--sweep-strengths", type=_strengths, default=None,
                        help="strengths of the photo sweep (default: 0.25,0.5,0.75,1; --quick: 0.5,1; 'none': no sweep)")
    parser.add_argument("--sweep-methods", default="sdk",
                        help="methods to sweep, comma-separated (default: %(default)s; baselines take a strength too)")
    parser.add_argument("--contact-examples", type=int, default=6, help="probe rows per contact sheet")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/eval/<timestamp>)")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default: ~/.cache/deid_eval)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=positive_int, default=min(os.cpu_count() or 1, 4),
                        help="processes embedding a cold gallery (default: CPU cores, at most 4)")
    parser.add_argument("--quick", action="store_true",
                        help="CI mode: 10 identities, 200-photo gallery, one clip of 30 frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def settings_from_args(args: argparse.Namespace, argv: list[str]) -> Settings:
    methods = [parse_method_spec(spec) for spec in (args.methods or BASELINE_NAMES)]
    attackers = tuple(a.strip() for a in args.attackers.split(",") if a.strip())
    unknown = set(attackers) - set(ATTACKER_NAMES)
    if unknown or not attackers:
        raise ValueError(f"--attackers must be a subset of {ATTACKER_NAMES}, got {args.attackers!r}")
    splits = args.splits
    if splits is None and args.faces.resolve() == LFW_DIR.resolve() and LFW_SPLITS.is_file():
        splits = LFW_SPLITS
    values = {"identity_limit": args.identity_limit, "gallery_limit": args.gallery_limit,
              "video_limit": args.video_limit, "max_frames": args.max_frames, "contact_examples": args.contact_examples}
    if args.quick:
        # Quick mode's own sizes, unless given explicitly on the command line.
        given = {a.split("=")[0] for a in argv if a.startswith("--")}
        flags = {"identity_limit": "--identities", "gallery_limit": "--gallery-limit", "video_limit": "--video-limit",
                 "max_frames": "--max-frames", "contact_examples": "--contact-examples"}
        values.update({key: value for key, value in QUICK.items() if flags[key] not in given})
    out = args.out or REPOSITORY_ROOT / "runs" / "eval" / time.strftime("%Y%m%d-%H%M%S")
    return Settings(
        faces=args.faces, splits=splits, videos=None if args.no_video else args.videos, out=out,
        cache=args.cache or default_cache_dir(), methods=methods, attackers=attackers, detector=args.detector,
        calibrate=args.calibrate,
        sweep_strengths=args.sweep_strengths if args.sweep_strengths is not None else (
            QUICK_SWEEP_STRENGTHS if args.quick else SWEEP_STRENGTHS),
        sweep_methods=tuple(m.strip() for m in args.sweep_methods.split(",")), seed=args.seed, workers=args.workers,
        show_progress=not args.no_progress, command="deid-eval " + shlex.join(argv),
        extra={"quick": bool(args.quick)}, **values)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args, argv)
    except ValueError as error:
        print(f"deid-eval: {error}", file=sys.stderr)
        return 2
    report = run_benchmark(settings)
    print((settings.out / "report.md").read_text())
    print(f"run folder: {settings.out} ({report['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
