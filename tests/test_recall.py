"""The second detection path (deid_sdk.recall): YuNet beside CenterFace, merged by IoU.

The real CenterFace, YuNet, landmarks, generator and SFace run; the small face is a real LFW photo scaled down
until CenterFace no longer finds it (benchmarks/detector_recall.py measures how often that happens)."""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from deid_sdk import Filter
from deid_sdk.cli.options import add_filter_options, filter_kwargs
from deid_sdk.detect import CenterFaceDetector, Detection
from deid_sdk.recall import MERGE_IOU, RecallDetector, merge_detections
from deid_sdk.track import box_iou
from deid_sdk.yunet import YuNetDetector
from tests.privacy import assert_every_face_covered

# Found by scaling the first photo of each LFW eval identity down and keeping the YuNet faces no CenterFace box
# overlaps (IoU < MERGE_IOU): at a quarter of its size (62x62, the face about 25 px wide) CenterFace finds
# no face in this one, YuNet finds it with a score of 0.87.
SMALL_FACE_PHOTO, SMALL_FACE_SCALE = "Courtney_Love", 0.25


def detection(x1, y1, x2, y2, score=0.9) -> Detection:
    return Detection(box=np.array([x1, y1, x2, y2], np.float32), score=score, points=np.zeros((5, 2), np.float32))


def test_merge_keeps_every_primary_face_and_adds_only_the_new_ones():
    primary = [detection(0, 0, 10, 10), detection(50, 50, 60, 60)]
    same_as_first = detection(1, 1, 11, 11, score=0.99)      # IoU 0.68 with the first: one face
    new = detection(100, 0, 110, 10)
    merged = merge_detections(primary, [same_as_first, new])
    assert merged[:2] == primary and merged[2] is new and len(merged) == 3


def test_merge_counts_an_overlap_at_the_threshold_as_the_same_face():
    primary = [detection(0, 0, 10, 10)]
    half_over = detection(5, 0, 15, 10)                     # IoU 50 / 150 = 1/3
    assert box_iou(half_over.box, primary[0].box) == 1 / 3
    assert merge_detections(primary, [half_over], iou_threshold=1 / 3) == primary
    assert merge_detections(primary, [half_over], iou_threshold=0.34) == primary + [half_over]
    assert MERGE_IOU < 1 / 3 and merge_detections(primary, [half_over]) == primary
    # Two secondary boxes of one place are one face; an empty side changes nothing.
    assert merge_detections([], [half_over, half_over]) == [half_over]
    assert merge_detections(primary, []) == primary


@pytest.mark.parametrize("value", ["retinaface", None, True, "YuNet"])
def test_the_option_is_checked_when_given(value):
    with pytest.raises(ValueError, match="recall_detector must be one of 'yunet', 'off'"):
        Filter(recall_detector=value)


def test_the_command_line_flag_reaches_the_filter():
    parser = argparse.ArgumentParser()
    add_filter_options(parser)
    assert filter_kwargs(parser.parse_args(["--recall-detector", "yunet"]))["recall_detector"] == "yunet"
    with pytest.raises(SystemExit):
        parser.parse_args(["--recall-detector", "retinaface"])


@pytest.fixture(scope="module")
def small_face_frame(shared_data):
    photos = sorted((shared_data / "faces" / "lfw" / SMALL_FACE_PHOTO).glob("*.jpg"))
    if not photos:
        pytest.skip(f"LFW person {SMALL_FACE_PHOTO} not in {shared_data}")
    photo = cv2.imread(str(photos[0]))
    return np.ascontiguousarray(cv2.resize(photo, None, fx=SMALL_FACE_SCALE, fy=SMALL_FACE_SCALE,
                                           interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def recall_filter():
    """The default Filter with YuNet beside CenterFace (generator, landmarks, tracks, guard)."""
    with Filter(recall_detector="yunet") as face_filter:
        yield face_filter


def test_a_small_face_centerface_misses_is_covered_with_yunet(small_face_frame, recall_filter):
    yunet_faces = YuNetDetector().detect(small_face_frame)
    assert yunet_faces, "YuNet no longer finds the small face: find another case as described above"
    assert not CenterFaceDetector().detect(small_face_frame), "CenterFace finds it now: the case proves nothing"
    with Filter(recall_detector="off", use_generator=False) as without_recall:
        output = without_recall(small_face_frame)
        assert without_recall.faces == []
    with pytest.raises(AssertionError, match="unchanged"):  # the face leaves as it came in
        assert_every_face_covered(small_face_frame, output, yunet_faces)

    recall_filter.reset()
    for _ in range(3):  # a short still clip: the track lives on
        output = recall_filter(small_face_frame)
        assert_every_face_covered(small_face_frame, output, yunet_faces)
        assert len(recall_filter.faces) == len(yunet_faces)
    assert isinstance(recall_filter.detector, RecallDetector)


def test_a_face_both_detectors_find_is_one_face(shared_data, recall_filter):
    from tests.test_filter import LFW_PEOPLE, lfw_face

    photo = lfw_face(shared_data, LFW_PEOPLE[0])
    centerface = CenterFaceDetector().detect(photo)
    recall_filter.reset()
    output = recall_filter(photo)
    assert len(centerface) == 1 and len(recall_filter.faces) == 1
    np.testing.assert_array_equal(recall_filter.faces[0].box, centerface[0].box)  # the main detector's box is kept
    assert_every_face_covered(photo, output, recall_filter.faces)


def test_streams_sharing_models_share_the_recall_detector():
    from deid_sdk.shared_models import SharedModels

    options = dict(recall_detector="yunet", use_generator=False)
    models = SharedModels.load(**options)
    assert isinstance(models.detector, RecallDetector)
    first, second = Filter(**options, models=models), Filter(**options, models=models)
    assert first.detector is second.detector is models.detector  # not wrapped a second time
