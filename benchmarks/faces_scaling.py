"""Milliseconds per frame of the Filter against the number of faces in the frame (1, 2, 4, 8).

    .venv/bin/python benchmarks/faces_scaling.py [--faces 1,2,4,8] [--frames 20] [--data ../shared/data]

A 1280x720 grey frame holds N LFW faces (the central 150x150 of each photo, where LFW centres its face, scaled
to 250x250; the first eval identities) in a 4x2 grid,
shifted by 2 px every frame so that the tracks hold. For each N: the default Filter (privacy guard on: tracks
that fail its check end on the fallback rung and skip the generator) and Filter(privacy="off") (every face through
landmarks, identity, generator and blend), the median per-stage milliseconds over the timed frames after a few
untimed ones. In-process and serial (no detection ahead): the per-frame cost of the stages, not `deid run`'s rate.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WIDTH, HEIGHT, TILE = 1280, 720, 250
WARMUP = 3


def frame_with_faces(photos: list[np.ndarray]) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for index, photo in enumerate(photos):
        row, column = divmod(index, 4)
        top, left = 60 + row * (TILE + 50), 70 + column * (TILE + 50)
        frame[top:top + TILE, left:left + TILE] = cv2.resize(photo[50:200, 50:200], (TILE, TILE))
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", default="1,2,4,8", help="faces per frame, comma-separated, at most 8")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per configuration (default 20)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    counts = [int(value) for value in args.faces.split(",")]
    if not counts or min(counts) < 1 or max(counts) > 8 or args.frames < 1:
        parser.error(f"--faces takes 1..8 per entry and --frames >= 1, got {args.faces!r} and {args.frames}")
    from deid_sdk import Filter
    from deid_sdk.filter import STAGES

    identities = json.loads((args.data / "faces" / "lfw_splits.json").read_text())["eval_identities"]
    photos = [cv2.imread(str(sorted((args.data / "faces" / "lfw" / name).glob("*.jpg"))[0]))
              for name in identities[:max(counts)]]
    print(f"Filter on {WIDTH}x{HEIGHT}, {args.frames} frames each, median ms per frame")
    print("| faces | privacy | found | " + " | ".join(STAGES) + " |")
    print("|---|---|---|" + "---|" * len(STAGES))
    for privacy in ("default", "off"):
        with Filter(privacy=privacy) as face_filter:
            for count in counts:
                base = frame_with_faces(photos[:count])
                face_filter.reset()
                samples, found = [], []
                for index in range(WARMUP + args.frames):
                    face_filter(np.ascontiguousarray(np.roll(base, 2 * index, axis=1)))
                    if index >= WARMUP:
                        samples.append(dict(face_filter.stats))
                        found.append(len(face_filter.faces))
                cells = " | ".join(f"{statistics.median(s[stage] for s in samples):.1f}" for stage in STAGES)
                print(f"| {count} | {privacy} | {statistics.median(found):g} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
