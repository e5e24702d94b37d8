"""Temporal figures on video clips: leak rate, flicker, identity consistency of the output, speed.

The inputs of each clip are analysed once (detections, the SFace embedding of each input face at YuNet's
five points); every method then runs over the same frames, with a fresh state per clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deid_sdk.io import read_frames
from deid_sdk.track import box_iou
from deid_eval.methods import Method, Timer
from deid_eval.utility import face_region_mask, pixel_change

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
TRACK_IOU = 0.3


def list_videos(folder: Path, limit: int | None = None) -> list[Path]:
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise FileNotFoundError(f"video folder not found: {folder}")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {folder}")
    return videos[:limit] if limit is not None else videos


@dataclass
class FrameInput:
    baseline_detections: list
    yunet_detections: list
    source_embeddings: list      # SFace embedding of each YuNet face of the input
    face_mask: np.ndarray


@dataclass
class ClipInput:
    path: Path
    frames: list[np.ndarray]
    analysis: list[FrameInput]
    detection_seconds: float     # time the baselines' detector took over the clip


def analyse_clip(path: Path, max_frames: int | None, baseline_detector, yunet, sface) -> ClipInput:
    frames = read_frames(path, max_frames)
    timer = Timer()
    analysis = []
    for frame in frames:
        with timer:
            baseline = baseline_detector.detect(frame)
        faces = yunet.detect(frame)
        height, width = frame.shape[:2]
        mask = face_region_mask(height, width, [d.box for d in baseline] + [d.box for d in faces])
        analysis.append(FrameInput(baseline, faces, [sface.embed_at(frame, d.points) for d in faces], mask))
    return ClipInput(path, frames, analysis, timer.seconds)


class VideoTally:
    def __init__(self) -> None:
        self.frames_with_face = self.frames_leaked = 0
        self.faces = self.faces_leaked = 0
        self.flicker_output = self.flicker_input = 0.0
        self.consistency: list[float] = []
        self.source_consistency: list[float] = []
        self.frames = 0
        self.seconds = 0.0
        self.outside: list[float] = []

    def summary(self) -> dict:
        def ratio(a, b):
            return a / b if b else float("nan")

        return {
            "leak_rate": ratio(self.frames_leaked, self.frames_with_face),
            "frames_with_face": self.frames_with_face,
            "face_leak_rate": ratio(self.faces_leaked, self.faces),
            "flicker_ratio": ratio(self.flicker_output, self.flicker_input),
            "identity_consistency": float(np.mean(self.consistency)) if self.consistency else float("nan"),
            "input_identity_consistency": (float(np.mean(self.source_consistency))
                                           if self.source_consistency else float("nan")),
            "fps": ratio(self.frames, self.seconds),
            "frames": self.frames,
            "pixel_change_outside": float(np.mean(self.outside)) if self.outside else float("nan"),
        }


def evaluate_clip(method: Method, clip: ClipInput, sface, tally: VideoTally, keep_frame: int | None = None):
    """Run `method` over the clip and add its figures to `tally`; returns the output frame `keep_frame`."""
    method.reset()
    timer = Timer()
    previous_output = previous_faces = previous_embeddings = None
    kept = None
    for index, (frame, info) in enumerate(zip(clip.frames, clip.analysis)):
        with timer:
            output = method(frame, info.baseline_detections if method.uses_detections else [])
        if index == keep_frame:
            kept = output
        output_embeddings = [sface.embed_at(output, d.points) for d in info.yunet_detections]
        if info.yunet_detections:
            tally.frames_with_face += 1
            leaks = [bool(sface.scores(out, source[None])[0] > sface.threshold)
                     for out, source in zip(output_embeddings, info.source_embeddings)]
            tally.faces += len(leaks)
            tally.faces_leaked += sum(leaks)
            tally.frames_leaked += any(leaks)
        if previous_output is not None and info.face_mask.any():
            tally.flicker_output += float(np.abs(output.astype(np.int16) - previous_output.astype(np.int16))[info.face_mask].mean())
            tally.flicker_input += float(np.abs(frame.astype(np.int16) - clip.frames[index - 1].astype(np.int16))[info.face_mask].mean())
        if previous_faces is not None:
            _add_consistency(previous_faces, previous_embeddings, info, output_embeddings, clip.analysis[index - 1], tally)
        _, outside, _ = pixel_change(frame, output, info.face_mask)
        tally.outside.append(outside)
        previous_output, previous_faces, previous_embeddings = output, info.yunet_detections, output_embeddings
    tally.frames += len(clip.frames)
    tally.seconds += timer.seconds + (clip.detection_seconds if method.uses_detections else 0.0)
    return kept


def _add_consistency(previous_faces, previous_embeddings, info: FrameInput, output_embeddings, previous_info: FrameInput,
                     tally: VideoTally) -> None:
    """Cosine between the output faces of consecutive frames (same face: YuNet boxes with IoU >= 0.3)."""
    for face, embedding, source in zip(info.yunet_detections, output_embeddings, info.source_embeddings):
        overlaps = [box_iou(face.box, before.box) for before in previous_faces]
        if not overlaps or max(overlaps) < TRACK_IOU:
            continue
        match = int(np.argmax(overlaps))
        tally.consistency.append(float(embedding @ previous_embeddings[match]))
        tally.source_consistency.append(float(source @ previous_info.source_embeddings[match]))


def evaluate_videos(methods: dict[str, Method], videos: list[Path], max_frames: int | None, baseline_detector,
                    yunet, sface, show_progress: bool = True) -> tuple[dict, dict, list[np.ndarray]]:
    """{label: figures} over all clips, {label: the middle output frame of the first clip}, and that input frame.

    Clips are analysed and evaluated one at a time so only one clip's frames are held in memory.
    """
    tallies = {label: VideoTally() for label in methods}
    samples: dict[str, np.ndarray] = {}
    sample_input: list[np.ndarray] = []
    with tqdm(total=len(videos) * (len(methods) + 1), desc="videos", unit="pass",
              disable=not show_progress, leave=False) as bar:
        for clip_index, path in enumerate(videos):
            clip = analyse_clip(path, max_frames, baseline_detector, yunet, sface)
            bar.update(1)
            keep = len(clip.frames) // 2 if clip_index == 0 else None
            if keep is not None:
                sample_input.append(clip.frames[keep])
            for label, method in methods.items():
                kept = evaluate_clip(method, clip, sface, tallies[label], keep)
                if kept is not None:
                    samples[label] = kept
                bar.update(1)
    return {label: tally.summary() for label, tally in tallies.items()}, samples, sample_input
