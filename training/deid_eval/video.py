"""Temporal figures on video clips: leak rate per judge, flicker, identity consistency of the output, speed, rungs.

The inputs of each clip are analysed once (detections, each judge's embedding of each input face at YuNet's
five points); every method then runs over the same frames, with a fresh state per clip. Judges: SFace (also the
SDK's runtime guard, so on guarded output it grades its own check) and MobileFaceNet (used by neither the SDK nor
its training: the independent judge).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deid_sdk.io import read_frames
from deid_sdk.track import box_iou
from deid_eval.methods import Method, Timer, rung_figures
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


# Where a judge looks for the face in the output: at the input face's five points (an attacker who knows where
# the face was), or at a face YuNet finds in the output itself, matched to the input face by IoU >= TRACK_IOU.
LEAK_POSITIONS = ("at_input", "redetected")


@dataclass
class FrameInput:
    baseline_detections: list
    yunet_detections: list
    source_embeddings: dict      # judge -> embedding of each YuNet face of the input, at its five points
    face_mask: np.ndarray


@dataclass
class ClipInput:
    path: Path
    frames: list[np.ndarray]
    analysis: list[FrameInput]
    detection_seconds: float     # time the baselines' detector took over the clip


def analyse_clip(path: Path, max_frames: int | None, baseline_detector, yunet, judges: dict) -> ClipInput:
    frames = read_frames(path, max_frames)
    timer = Timer()
    analysis = []
    for frame in frames:
        with timer:
            baseline = baseline_detector.detect(frame)
        faces = yunet.detect(frame)
        height, width = frame.shape[:2]
        mask = face_region_mask(height, width, [d.box for d in baseline] + [d.box for d in faces])
        sources = {name: [judge.embed_at(frame, d.points) for d in faces] for name, judge in judges.items()}
        analysis.append(FrameInput(baseline, faces, sources, mask))
    return ClipInput(path, frames, analysis, timer.seconds)


class LeakTally:
    """Frames (and faces) whose output one judge still matches to the input face, at one leak position."""

    def __init__(self) -> None:
        self.frames_leaked = self.faces_leaked = 0

    def add(self, leaks: list[bool]) -> None:
        self.faces_leaked += sum(leaks)
        self.frames_leaked += any(leaks)


class VideoTally:
    def __init__(self, judges) -> None:
        self.frames_with_face = self.faces = 0
        self.leaks = {judge: {position: LeakTally() for position in LEAK_POSITIONS} for judge in judges}
        self.flicker_output = self.flicker_input = 0.0
        self.consistency: list[float] = []
        self.source_consistency: list[float] = []
        self.frames = 0
        self.seconds = 0.0
        self.outside: list[float] = []
        self.privacy: list = []  # one PrivacySummary per clip (SDK methods only)

    def summary(self) -> dict:
        def ratio(a, b):
            return a / b if b else float("nan")

        return {
            "frames_with_face": self.frames_with_face,
            "faces": self.faces,
            "leaks": {judge: {position: {"frame_rate": ratio(tally.frames_leaked, self.frames_with_face),
                                         "face_rate": ratio(tally.faces_leaked, self.faces)}
                              for position, tally in positions.items()}
                      for judge, positions in self.leaks.items()},
            "flicker_ratio": ratio(self.flicker_output, self.flicker_input),
            "identity_consistency": float(np.mean(self.consistency)) if self.consistency else float("nan"),
            "input_identity_consistency": (float(np.mean(self.source_consistency))
                                           if self.source_consistency else float("nan")),
            "fps": ratio(self.frames, self.seconds),
            "frames": self.frames,
            "pixel_change_outside": float(np.mean(self.outside)) if self.outside else float("nan"),
            "rungs": rung_figures(self.privacy),
        }


def _redetected_points(input_faces: list, output_faces: list) -> list:
    """For each input face: the five points of the output face YuNet found at its place (IoU >= TRACK_IOU), or None."""
    matched = []
    for face in input_faces:
        overlaps = [box_iou(face.box, found.box) for found in output_faces]
        best = int(np.argmax(overlaps)) if overlaps else -1
        matched.append(output_faces[best].points if best >= 0 and overlaps[best] >= TRACK_IOU else None)
    return matched


def _count_leaks(output: np.ndarray, info: FrameInput, at_input: dict, judges: dict, yunet, tally: VideoTally) -> None:
    """Both leak positions for every judge (`at_input`: judge -> embeddings of the output at the input faces' points);
    a face YuNet does not find again in the output cannot leak re-detected."""
    redetected = _redetected_points(info.yunet_detections, yunet.detect(output))
    tally.frames_with_face += 1
    tally.faces += len(info.yunet_detections)
    for name, judge in judges.items():
        sources = info.source_embeddings[name]
        tally.leaks[name]["at_input"].add([judge.matches(embedding, source)
                                           for embedding, source in zip(at_input[name], sources)])
        tally.leaks[name]["redetected"].add([points is not None and judge.matches(judge.embed_at(output, points), source)
                                             for points, source in zip(redetected, sources)])


def evaluate_clip(method: Method, clip: ClipInput, judges: dict, yunet, tally: VideoTally,
                  keep_frame: int | None = None):
    """Run `method` over the clip and add its figures to `tally`; returns the output frame `keep_frame`.

    `judges`: {name: cosine attacker}; SFace ("sface") must be among them (identity consistency uses it)."""
    method.reset()
    method.take_privacy_summary()
    timer = Timer()
    previous_output = previous_faces = previous_embeddings = None
    kept = None
    for index, (frame, info) in enumerate(zip(clip.frames, clip.analysis)):
        with timer:
            output = method(frame, info.baseline_detections if method.uses_detections else [])
        if index == keep_frame:
            kept = output
        at_input = {name: [judge.embed_at(output, d.points) for d in info.yunet_detections]
                    for name, judge in judges.items()}
        output_embeddings = at_input["sface"]
        if info.yunet_detections:
            _count_leaks(output, info, at_input, judges, yunet, tally)
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
    tally.privacy.append(method.take_privacy_summary())
    return kept


def _add_consistency(previous_faces, previous_embeddings, info: FrameInput, output_embeddings, previous_info: FrameInput,
                     tally: VideoTally) -> None:
    """Cosine between the output faces of consecutive frames (same face: YuNet boxes with IoU >= 0.3)."""
    sources, previous_sources = info.source_embeddings["sface"], previous_info.source_embeddings["sface"]
    for face, embedding, source in zip(info.yunet_detections, output_embeddings, sources):
        overlaps = [box_iou(face.box, before.box) for before in previous_faces]
        if not overlaps or max(overlaps) < TRACK_IOU:
            continue
        match = int(np.argmax(overlaps))
        tally.consistency.append(float(embedding @ previous_embeddings[match]))
        tally.source_consistency.append(float(source @ previous_sources[match]))


def evaluate_videos(methods: dict[str, Method], videos: list[Path], max_frames: int | None, baseline_detector,
                    yunet, judges: dict, show_progress: bool = True) -> tuple[dict, dict, list[np.ndarray]]:
    """{label: figures} over all clips, {label: the middle output frame of the first clip}, and that input frame.

    `judges`: {name: cosine attacker} that count leaks (SFace, and MobileFaceNet where its model is present).

    Clips are analysed and evaluated one at a time so only one clip's frames are held in memory.
    """
    tallies = {label: VideoTally(judges) for label in methods}
    samples: dict[str, np.ndarray] = {}
    sample_input: list[np.ndarray] = []
    with tqdm(total=len(videos) * (len(methods) + 1), desc="videos", unit="pass",
              disable=not show_progress, leave=False) as bar:
        for clip_index, path in enumerate(videos):
            clip = analyse_clip(path, max_frames, baseline_detector, yunet, judges)
            bar.update(1)
            keep = len(clip.frames) // 2 if clip_index == 0 else None
            if keep is not None:
                sample_input.append(clip.frames[keep])
            for label, method in methods.items():
                kept = evaluate_clip(method, clip, judges, yunet, tallies[label], keep)
                if kept is not None:
                    samples[label] = kept
                bar.update(1)
    return {label: tally.summary() for label, tally in tallies.items()}, samples, sample_input
