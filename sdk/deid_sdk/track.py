"""Face tracks across frames: stable ids, landmark smoothing and a per-track target identity.

A track keeps the identity vector it was started with in memory only (never written anywhere), so the
generator moves each person away from the same identity in every frame: less flicker than re-encoding it.

A track the detector misses coasts for up to `COAST_FRAMES` frames (about 0.5 s at 30 fps): its box and five
points move on with the track's smoothed velocity, and the Filter protects the face at that predicted place (the
generator where landmarks are found there, the fallback otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COAST_FRAMES = 15

@dataclass
class Track:
    track_id: int
    box: np.ndarray
    landmarks: np.ndarray | None = None
    identity: np.ndarray | None = field(default=None, repr=False)
    missed: int = 0
    privacy: object | None = field(default=None, repr=False)  # deid_sdk.privacy.TrackPrivacy (guard's memory)
    points: np.ndarray | None = None          # the detector's five points of the last frame (predicted when missed)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box motion per frame, smoothed


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    top_left = np.maximum(a[:2], b[:2])
    bottom_right = np.minimum(a[2:4], b[2:4])
    intersection = float(np.prod(np.clip(bottom_right - top_left, 0, None)))
    union = float(np.prod(a[2:4] - a[:2]) + np.prod(b[2:4] - b[:2])) - intersection
    return intersection / union if union > 0 else 0.0


class FaceTracker:
    """Greedy IoU matching of detections to the tracks of the previous frames."""

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = COAST_FRAMES, enabled: bool = True):
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self.enabled = enabled
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, boxes: list[np.ndarray], points: list[np.ndarray] | None = None) -> list[Track]:
        """One track per box, in the boxes' order; unmatched boxes start new tracks; missed tracks move on."""
        if not self.enabled:
            self.tracks = []
        pairs = sorted(((box_iou(box, track.box), box_index, track_index)
                        for box_index, box in enumerate(boxes) for track_index, track in enumerate(self.tracks)),
                       reverse=True)
        assigned: dict[int, Track] = {}
        used_tracks: set[int] = set()
        for iou, box_index, track_index in pairs:
            if iou < self.iou_threshold:
                break
            if box_index in assigned or track_index in used_tracks:
                continue
            assigned[box_index] = self.tracks[track_index]
            used_tracks.add(track_index)
        result = []
        for box_index, box in enumerate(boxes):
            track = assigned.get(box_index)
            if track is None:
                track = Track(track_id=self._next_id, box=box)
                self._next_id += 1
            else:
                step = (np.asarray(box, np.float64) - track.box) / (track.missed + 1)
                track.velocity = 0.5 * track.velocity + 0.5 * step
            track.box, track.missed = np.asarray(box, np.float64), 0
            if points is not None:
                track.points = np.asarray(points[box_index], np.float64)
            result.append(track)
        survivors = [track for index, track in enumerate(self.tracks) if index not in used_tracks]
        for track in survivors:
            track.missed += 1
            track.box = track.box + track.velocity
            if track.points is not None:
                track.points = track.points + (track.velocity[:2] + track.velocity[2:]) / 2
        self.tracks = result + [track for track in survivors if track.missed <= self.max_missed]
        return result

    def coasting(self) -> list[Track]:
        """The tracks missed in this frame that still coast (each at its predicted box and points)."""
        return [track for track in self.tracks if track.missed > 0 and track.points is not None]

    def reset(self) -> None:
        self.tracks = []


def smooth_landmarks(previous: np.ndarray | None, current: np.ndarray) -> np.ndarray:
    """Motion-adaptive exponential smoothing: still faces lose landmark jitter, moving faces follow at once."""
    if previous is None:
        return current
    interocular = np.linalg.norm(current[36:42].mean(axis=0) - current[42:48].mean(axis=0))
    motion = np.linalg.norm(current - previous, axis=1).mean() / max(interocular, 1.0)
    weight = float(np.clip(0.4 + motion / 0.05, 0.4, 1.0))
    return weight * current + (1.0 - weight) * previous
