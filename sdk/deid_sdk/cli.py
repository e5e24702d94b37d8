"""`deid` command: subcommands are registered by the modules that implement them."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

SUBCOMMAND_MODULES = ("deid_sdk.demo", "deid_sdk.bench", "deid_sdk.io.run_command")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every subcommand that builds a Filter."""
    group = parser.add_argument_group("filter")
    group.add_argument("--model", help="generator ONNX file (default: the bundled model)")
    group.add_argument("--strength", type=float, default=1.0, help="de-identification strength in [0, 1]")
    group.add_argument("--fallback", choices=("blur", "pixelate"), default="blur",
                       help="what covers a face that cannot be de-identified")
    group.add_argument("--backend", default="auto", help="inference backend (auto, onnxruntime)")
    group.add_argument("--min-face", type=int, default=24, help="smaller faces (pixels) get the fallback")
    group.add_argument("--threshold", type=float, default=0.5, help="face detection threshold")
    group.add_argument("--detect-width", type=int, default=None, help="run detection on frames downscaled to this width")
    group.add_argument("--no-generator", action="store_true",
                       help="cover every face with the fallback instead of replacing it")


def filter_kwargs(args: argparse.Namespace) -> dict:
    return dict(model=args.model, strength=args.strength, fallback=args.fallback, backend=args.backend,
                min_face=args.min_face, threshold=args.threshold, detect_width=args.detect_width,
                use_generator=not args.no_generator)


def build_parser() -> argparse.ArgumentParser:
    from deid_sdk import __version__

    parser = argparse.ArgumentParser(prog="deid", description="De-identify faces in images and video.")
    parser.add_argument("--version", action="version", version=f"deid_sdk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the SDK chooses (backend, kernels)")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except (FileNotFoundError, ValueError, TypeError, RuntimeError) as error:
        print(f"deid {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"deid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
