"""`deid demo`: anonymize a video (or the built-in clip) into out/demo.mp4 plus a side-by-side PNG.

It reads and writes through the same sources and sinks as `deid run` (deid_sdk.io), frame by frame in one thread
so it can keep the original of the frame it shows side by side.
"""
from __future__ import annotations

import argparse
import threading
from pathlib import Path

import cv2
import numpy as np


def register(subparsers) -> None:
    from deid_sdk.cli.options import add_filter_options

    parser = subparsers.add_parser("demo", help="anonymize a clip (default: a built-in one) into out/demo.mp4")
    parser.add_argument("--input", help="video file (default: built-in clip of a public-domain portrait)")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_filter_options(parser)
    parser.set_defaults(handler=run_demo)


def open_input(path: str | None):
    from deid_sdk.io import open_source

    if path is None:
        from deid_sdk.cli.demo_clip import DemoClipSource

        return DemoClipSource()
    if not Path(path).is_file():
        raise FileNotFoundError(f"--input: no such file: {path}")
    return open_source(path)


def run_demo(args: argparse.Namespace, stop: threading.Event) -> int:
    from deid_sdk import Filter
    from deid_sdk.cli.options import filter_kwargs
    from deid_sdk.cli.stage_report import stage_table
    from deid_sdk.io import open_sink

    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be at least 1, got {args.max_frames}")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, sheet_path = out_dir / "demo.mp4", out_dir / "demo_side_by_side.png"
    samples, statuses = [], {"deidentified": 0, "fallback": 0}
    best_pair, best_faces = None, -1.0
    with open_input(args.input) as source, Filter(color=source.color, **filter_kwargs(args)) as face_filter, \
            open_sink(str(video_path), source) as sink:
        mode = "generator" if face_filter.generator_available else f"fallback only ({face_filter.fallback})"
        print(f"deid demo: {source.uri} -> {video_path} [{mode}]")
        while not stop.is_set() and (args.max_frames is None or len(samples) < args.max_frames):
            frame = source.read()
            if frame is None:
                break
            original = frame.image.copy()
            face_filter(frame.image, inplace=True)
            sink.write(frame)  # only after the filter returned for it
            samples.append(dict(face_filter.stats))
            for face in face_filter.faces:
                statuses[face.status] += 1
            face_area = sum(float(np.prod(face.box[2:] - face.box[:2])) for face in face_filter.faces)
            if frame.index % 5 == 0 and face_area > best_faces:
                best_pair = (original, frame.image.copy(), [face.box for face in face_filter.faces])
                best_faces = face_area
    if not samples:
        raise ValueError(f"{source.uri}: no frames to process")
    if best_pair is not None:
        sheet = side_by_side(*best_pair)
        cv2.imwrite(str(sheet_path), sheet if source.color == "bgr" else cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(stage_table(samples))
    print(f"faces: {statuses['deidentified']} de-identified, {statuses['fallback']} covered by the fallback")
    print(face_filter.privacy_summary.describe())
    print(f"wrote {video_path} and {sheet_path}")
    return 0


def side_by_side(frame: np.ndarray, output: np.ndarray, boxes: list[np.ndarray]) -> np.ndarray:
    """Input | output, and under it the largest face of each, enlarged, so the change is easy to see."""
    sheet = np.concatenate([frame, output], axis=1)
    if not boxes:
        return sheet
    x1, y1, x2, y2 = max(boxes, key=lambda box: float(np.prod(box[2:] - box[:2])))
    margin = 0.3 * max(x2 - x1, y2 - y1)
    height, width = frame.shape[:2]
    left, top = int(max(0, x1 - margin)), int(max(0, y1 - margin))
    right, bottom = int(min(width, x2 + margin)), int(min(height, y2 + margin))
    zoom_height = frame.shape[0]
    zoom_width = max(1, round((right - left) * zoom_height / max(bottom - top, 1)))
    zooms = [cv2.resize(image[top:bottom, left:right], (zoom_width, zoom_height), interpolation=cv2.INTER_CUBIC)
             for image in (frame, output)]
    row = np.concatenate(zooms, axis=1)
    if row.shape[1] < sheet.shape[1]:
        pad = sheet.shape[1] - row.shape[1]
        row = cv2.copyMakeBorder(row, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_CONSTANT, value=0)
    else:
        row = cv2.resize(row, (sheet.shape[1], round(row.shape[0] * sheet.shape[1] / row.shape[1])))
    return np.concatenate([sheet, row], axis=0)
