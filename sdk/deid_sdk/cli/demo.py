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
    verdicts: dict[int, GuardVerdict] = {}  # per track: what the privacy guard decided, for the sheet and summary
    with open_input(args.input) as source, Filter(color=source.color, **filter_kwargs(args)) as face_filter, \
            open_sink(str(video_path), source) as sink:
        mode = "generator" if face_filter.generator_available else f"fallback only ({face_filter.fallback})"
        print(f"deid demo: {source.uri} -> {video_path} [{mode}]")
        # The guard's threshold (None: privacy="off"), read while the Filter is open (closing it drops the guard).
        threshold = face_filter.guard.threshold if face_filter.guard is not None else None
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
                verdicts.setdefault(face.track_id, GuardVerdict()).update(face)
            face_area = sum(float(np.prod(face.box[2:] - face.box[:2])) for face in face_filter.faces)
            if frame.index % 5 == 0 and face_area > best_faces:
                labels = [verdicts[face.track_id].label(threshold) for face in face_filter.faces]
                best_pair = (original, frame.image.copy(), [face.box for face in face_filter.faces], labels)
                best_faces = face_area
    if not samples:
        raise ValueError(f"{source.uri}: no frames to process")
    if best_pair is not None:
        sheet = side_by_side(*best_pair)
        cv2.imwrite(str(sheet_path), sheet if source.color == "bgr" else cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(stage_table(samples))
    print(f"faces: {statuses['deidentified']} de-identified, {statuses['fallback']} covered by the fallback")
    print(face_filter.privacy_summary.describe())
    for track_id, verdict in sorted(verdicts.items()):
        print(f"  face track {track_id}: {verdict.label(threshold)}")
    print(f"wrote {video_path} and {sheet_path}")
    return 0


class GuardVerdict:
    """What the privacy guard did to one track so far: its rung and its last SFace similarity (output vs input)."""

    def __init__(self) -> None:
        self.rung = self.reason = ""
        self.similarity: float | None = None  # the last check's cosine; frames between checks carry none

    def update(self, face) -> None:
        self.rung, self.reason = face.rung, face.reason
        if face.similarity is not None:
            self.similarity = face.similarity

    def label(self, threshold: float | None) -> str:
        """E.g. 'passed the guard on generator (SFace 0.12 < 0.20)', 'needed fallback (SFace 0.45 >= 0.20)'."""
        from deid_sdk.privacy import GENERATOR

        if threshold is None:
            return f"{self.rung}, not checked (privacy off)"
        if self.similarity is None:
            return f"{self.rung}, not checked ({self.reason or 'no check due yet'})"
        verdict = "passed the guard on" if self.rung == GENERATOR else "needed"
        # The similarity is that of the last check: the one that passed, or the one that sent the face to the fallback.
        sign = "<" if self.similarity < threshold else ">="
        return f"{verdict} {self.rung} (SFace {self.similarity:.2f} {sign} {threshold:.2f})"


def _caption(image: np.ndarray, box: np.ndarray, text: str) -> None:
    """The guard's verdict above a face box (below it at the top edge), white on black, in place."""
    scale = max(0.4, image.shape[0] / 900)
    thickness = max(1, round(scale * 2))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x = int(min(max(0, box[0]), max(0, image.shape[1] - width)))
    y = int(box[1]) - 6 if box[1] - height - baseline - 6 >= 0 else int(box[3]) + height + 6
    cv2.rectangle(image, (x, y - height - baseline), (x + width, y + baseline), (0, 0, 0), -1)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def side_by_side(frame: np.ndarray, output: np.ndarray, boxes: list[np.ndarray],
                 labels: list[str] | None = None) -> np.ndarray:
    """Input | output, and under it the largest face of each, enlarged, so the change is easy to see.

    `labels`: one caption per box (the guard's verdict), drawn on the output half only."""
    shown = output.copy()
    for box, text in zip(boxes, labels or []):
        _caption(shown, box, text)
    sheet = np.concatenate([frame, shown], axis=1)
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
