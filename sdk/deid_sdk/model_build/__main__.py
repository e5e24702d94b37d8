"""`python -m deid_sdk.model_build`: build the generated models (see deid_sdk.model_build)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deid_sdk.model_build import ModelBuildError, build, default_manifest, default_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deid_sdk.model_build",
                                     description="Build the SDK's generated models from installed PyPI packages.")
    parser.add_argument("--out", type=Path, default=default_out(), help=f"output folder (default: {default_out()})")
    parser.add_argument("--manifest", type=Path, default=default_manifest(),
                        help=f"the manifest to check against (default: {default_manifest()})")
    parser.add_argument("--update-manifest", action="store_true",
                        help="record the built files' sha256 in the manifest instead of checking them")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.manifest, update_manifest=args.update_manifest)
    except (ModelBuildError, FileNotFoundError) as error:
        print(f"model build: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
