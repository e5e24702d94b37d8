"""deid-eval's video leak tally: SFace and MobileFaceNet, at the input face's place and re-detected, on a real clip.

Real models (the shipped SFace, ../shared/data's MobileFaceNet and YuNet, the SDK's CenterFace) on the first
frames of a real talking-head clip: the unchanged output must leak for both judges, blur for neither, and the
SDK's rows carry the guard's rungs.
"""
from __future__ import annotations

import math

import pytest

from deid_eval.benchmark import video_judges
from deid_eval.detectors import make_detector
from deid_eval.methods import make_method
from deid_eval.report import markdown_report
from deid_eval.video import LEAK_POSITIONS, evaluate_videos

pytestmark = pytest.mark.shared_data
FRAMES = 8
JUDGES = ("sface", "mobilefacenet")


@pytest.fixture(scope="module")
def video_figures(shared_data):
    methods = {"noop": make_method("noop"), "blur": make_method("blur"), "sdk": make_method("sdk")}
    judges = video_judges({})
    figures, _, _ = evaluate_videos(methods, [shared_data / "videos" / "d0.mp4"], FRAMES, make_detector("centerface"),
                                    make_detector("yunet"), judges, show_progress=False)
    for method in methods.values():
        method.close()
    return figures


def test_both_judges_at_both_positions_are_reported(video_figures):
    for figures in video_figures.values():
        assert figures["frames_with_face"] == FRAMES and figures["faces"] >= FRAMES
        assert set(figures["leaks"]) == set(JUDGES)
        for judge in JUDGES:
            assert set(figures["leaks"][judge]) == set(LEAK_POSITIONS)


def test_unchanged_output_leaks_for_both_judges(video_figures):
    for judge in JUDGES:
        for position in LEAK_POSITIONS:
            assert video_figures["noop"]["leaks"][judge][position]["frame_rate"] >= 0.95, (judge, position)


def test_blur_leaks_for_neither_judge(video_figures):
    for judge in JUDGES:
        for position in LEAK_POSITIONS:
            assert video_figures["blur"]["leaks"][judge][position]["frame_rate"] == 0.0, (judge, position)


def test_sdk_rows_carry_the_guard_rungs_and_baselines_none(video_figures):
    rungs = video_figures["sdk"]["rungs"]
    assert rungs["faces"] >= FRAMES and rungs["checks"] >= 1
    assert math.isclose(sum(rungs["per_rung"].values()), 1.0)
    assert video_figures["noop"]["rungs"] is None and video_figures["blur"]["rungs"] is None


def test_markdown_names_both_judges(video_figures):
    report = {"created": "now", "command": "test", "machine": "here", "wall_seconds": 0.0, "photos": {},
              "videos": video_figures,
              "settings": {"attackers": [], "probe_count": 0, "gallery_images": 0, "gallery_identities": 0,
                           "baseline_detector": "centerface", "threshold_source": "test", "thresholds": {},
                           "video_count": 1, "max_frames": FRAMES}}
    text = markdown_report(report)
    assert "SFace leak at input / re-detected" in text and "MobileFaceNet leak at input / re-detected" in text
    assert "| sdk | video |" in text


def test_mobilefacenet_is_optional_with_a_message(shared_data, tmp_path, capsys):
    judges = video_judges({}, mobilefacenet_model=tmp_path / "absent.onnx")
    assert list(judges) == ["sface"]
    message = capsys.readouterr().err
    assert "without MobileFaceNet" in message and str(tmp_path / "absent.onnx") in message
