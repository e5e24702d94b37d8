"""`deid demo`: anonymize a video (or the built-in clip) and write out/demo.mp4 plus a side-by-side PNG."""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def register(subparsers) -> None:
    from deid_sdk.cli import add_filter_options

    parser = subparsers.add_parser("demo", help="anonymize a clip (default: a built-in one) into out/demo.mp4")
    parser.add_argument("--input", help="video file (default: built-in clip of a public-domain portrait)")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    add_filter_options(parser)
    parser.set_defaults(handler=run_demo)


def _input_frames(path: str | None):
    if path is None:
        from deid_sdk.demo_clip import demo_frames

        return demo_frames(), 25.0, "built-in clip (scikit-image astronaut portrait, public domain)"
    if not Path(path).is_file():
        raise FileNotFoundError(f"--input: no such file: {path}")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise ValueError(f"--input: cannot decode {path} as a video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0

    def frames():
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield frame
        capture.release()

    return frames(), fps, path


def run_demo(args: argparse.Namespace) -> int:
    from deid_sdk import Filter
    from deid_sdk.cli import filter_kwargs
    from deid_sdk.stage_report import stage_table

    frames, fps, label = _input_frames(args.input)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    video_path, sheet_path = out_dir / "demo.mp4", out_dir / "demo_side_by_side.png"
    writer = None
    samples, statuses = [], {"deidentified": 0, "fallback": 0}
    best_pair, best_faces = None, -1
    with Filter(**filter_kwargs(args)) as face_filter:
        mode = "generator" if face_filter.generator_available else f"fallback only ({face_filter.fallback})"
        print(f"deid demo: {label} -> {video_path} [{mode}]")
        for index, frame in enumerate(frames):
            if args.max_frames is not None and index >= args.max_frames:
                break
            output = face_filter(frame)
            if writer is None:
                writer = cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                         (frame.shape[1], frame.shape[0]))
                if not writer.isOpened():
                    raise RuntimeError(f"cannot write {video_path} (OpenCV has no mp4v encoder here)")
            writer.write(output)
            samples.append(dict(face_filter.stats))
            for face in face_filter.faces:
                statuses[face.status] += 1
            if index % 10 == 0 and len(face_filter.faces) > best_faces:
                best_pair, best_faces = (frame, output), len(face_filter.faces)
    if writer is None:
        raise ValueError(f"{label}: no frames to process")
    writer.release()
    if best_pair is not None:
        cv2.imwrite(str(sheet_path), np.concatenate(best_pair, axis=1))
    print(stage_table(samples))
    print(f"faces: {statuses['deidentified']} de-identified, {statuses['fallback']} covered by the fallback")
    print(f"wrote {video_path} and {sheet_path}")
    return 0
