"""FPS cost of the privacy guard: Filter(privacy="off") vs "default" vs "strict" on one clip, interleaved.

    .venv/bin/python benchmarks/guard_fps.py [--clip ../shared/data/videos/d0.mp4] [--frames 40] [--rounds 5]

The clip's first frames are decoded into memory once. Each round runs every mode over those frames in turn (the
order rotates each round), each from a reset Filter, so the guard's first-frame checks count every round as they
would at the start of a clip, and a change of machine load hits all modes alike. Prints each mode's median FPS
over the rounds, its ratio to "off", and the median time the guard's stage took per frame (f.stats["privacy"]).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from deid_sdk.cli.arg_types import positive_int

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos" / "d0.mp4"
MODES = ("off", "default", "strict")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video file (default: %(default)s)")
    parser.add_argument("--frames", type=positive_int, default=40, help="frames per mode and round (default 40)")
    parser.add_argument("--rounds", type=positive_int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--threads", type=positive_int, default=2)
    args = parser.parse_args(argv)

    from deid_sdk import Filter
    from deid_sdk.io import read_frames

    if not args.clip.is_file():
        parser.error(f"--clip: no such file: {args.clip}")
    frames = read_frames(str(args.clip), args.frames)
    filters = {mode: Filter(privacy=mode, threads=args.threads) for mode in MODES}
    for face_filter in filters.values():  # warm-up: first runs allocate
        face_filter(frames[0])
    fps = {mode: [] for mode in MODES}
    guard_ms = {mode: [] for mode in MODES}
    faces = {mode: 0 for mode in MODES}
    for round_index in range(args.rounds):
        order = MODES[round_index % len(MODES):] + MODES[:round_index % len(MODES)]
        for mode in order:
            face_filter = filters[mode]
            face_filter.reset()
            start = time.perf_counter()
            for frame in frames:
                face_filter(frame)
                guard_ms[mode].append(face_filter.stats.get("privacy", 0.0))
                faces[mode] += len(face_filter.faces)
            fps[mode].append(len(frames) / (time.perf_counter() - start))
    height, width = frames[0].shape[:2]
    print(f"privacy guard FPS: {args.clip.name} ({width}x{height}), {len(frames)} frames x {args.rounds} interleaved "
          f"rounds per mode, {args.threads} threads")
    reference = float(np.median(fps["off"]))
    for mode in MODES:
        median = float(np.median(fps[mode]))
        print(f"  privacy={mode:<8} {median:6.2f} fps  ({median / reference:.2f}x off)  guard stage "
              f"{np.median(guard_ms[mode]):6.2f} ms/frame median, {np.mean(guard_ms[mode]):6.2f} mean  "
              f"({faces[mode] / (len(frames) * args.rounds):.2f} faces/frame)")
    for face_filter in filters.values():
        face_filter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
