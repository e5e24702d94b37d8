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
    best_pair, best_faces = None, -1.0
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
            face_area = sum(float(np.prod(face.box[2:] - face.box[:2])) for face in face_filter.faces)
            if index % 5 == 0 and face_area > best_faces:
                best_pair, best_faces = (frame, output, [face.box for face in face_filter.faces]), face_area
    if writer is None:
        raise ValueError(f"{label}: no frames to process")
    writer.release()
    if best_pair is not None:
        cv2.imwrite(str(sheet_path), side_by_side(*best_pair))
    print(stage_table(samples))
    print(f"faces: {statuses['deidentified']} de-identified, {statuses['fallback']} covered by the fallback")
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
