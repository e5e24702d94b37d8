"""A second detection path for recall: YuNet beside the main detector, their faces merged into one list.

CenterFace misses some small and distant faces that YuNet finds (benchmarks/detector_recall.py). With
`Filter(recall_detector="yunet")` both run on every frame; a YuNet face that overlaps none of the main detector's
faces is added, and from there every face takes the same path (landmarks, tracks, privacy guard, fallback).
"""
from __future__ import annotations

from deid_sdk.detect import Detection, FaceDetector
from deid_sdk.track import box_iou
from deid_sdk.validate import check_choice

RECALL_DETECTORS = ("yunet", "off")
DEFAULT_RECALL_DETECTOR = "off"
# Two boxes of one face from the two detectors overlap far more than this (median IoU about 0.9 on the shared clips
# and photos, benchmarks/detector_recall.py); the tracker matches boxes at the same IoU.
MERGE_IOU = 0.3


def check_recall_detector(value) -> str:
    return check_choice(value, RECALL_DETECTORS, "recall_detector")


def merge_detections(primary: list[Detection], secondary: list[Detection],
                     iou_threshold: float = MERGE_IOU) -> list[Detection]:
    """Every face of `primary`, then each face of `secondary` whose box overlaps none of those kept so far with
    an IoU of `iou_threshold` or more (a face both found keeps the primary's box and points)."""
    merged = list(primary)
    for candidate in secondary:
        if all(box_iou(candidate.box, kept.box) < iou_threshold for kept in merged):
            merged.append(candidate)
    return merged


class RecallDetector:
    """A FaceDetector that runs `primary` and `secondary` on each frame and merges their faces."""

    def __init__(self, primary: FaceDetector, secondary: FaceDetector, iou_threshold: float = MERGE_IOU):
        self.primary, self.secondary, self.iou_threshold = primary, secondary, iou_threshold

    def detect(self, frame_bgr) -> list[Detection]:
        return merge_detections(self.primary.detect(frame_bgr), self.secondary.detect(frame_bgr),
                                self.iou_threshold)


def with_recall(detector: FaceDetector, recall_detector: str) -> FaceDetector:
    """`detector` itself ("off") or `detector` with YuNet beside it ("yunet")."""
    if check_recall_detector(recall_detector) == "off":
        return detector
    from deid_sdk.yunet import YuNetDetector

    return RecallDetector(detector, YuNetDetector())
