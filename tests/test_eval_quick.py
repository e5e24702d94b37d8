"""`deid-eval --quick` end to end on the shared data: report structure and basic sanity of the figures."""
import json

import pytest

from deid_eval.cli import main

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
METHODS = ["noop", "blur", "pixelate", "ellipse_blur", "sdk"]
ATTACKERS = ["dlib", "sface", "mobilefacenet"]


@pytest.fixture(scope="module")
def quick_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("deid_eval_quick")
    argv = ["--quick", "--out", str(out), "--no-progress"]
    for method in METHODS:
        argv += ["--method", method]
    assert main(argv) == 0
    return out, json.loads((out / "report.json").read_text())


def test_run_folder_has_the_report_plots_and_contact_sheets(quick_run):
    out, report = quick_run
    for name in ["report.json", "report.md", "privacy_vs_change.png", "strength_sweep.png", "contact_video.png"]:
        assert (out / name).stat().st_size > 0, name
    for method in METHODS:
        assert (out / f"contact_{method}.png").stat().st_size > 0
    markdown = (out / "report.md").read_text()
    for method in METHODS:
        assert f"| {method} |" in markdown


def test_report_structure(quick_run):
    _, report = quick_run
    settings = report["settings"]
    assert settings["probe_count"] == 10 and settings["video_count"] == 1 and settings["max_frames"] == 30
    assert set(settings["thresholds"]) == set(ATTACKERS)
    assert list(report["photos"]) == METHODS and list(report["videos"]) == METHODS
    for figures in report["photos"].values():
        for attacker in ATTACKERS:
            identification = figures["privacy"][attacker]["identification"]
            assert set(identification) >= {"top1", "top5", "median_rank", "mean_rank", "no_face"}
            assert 1 <= identification["median_rank"] <= identification["gallery_identities"]
            assert 0 <= figures["privacy"][attacker]["verification"]["rate"] <= 1
        assert set(figures["utility"]["detection_rate"]) == {"centerface", "yunet"}
    for figures in report["videos"].values():
        assert figures["frames"] == 30 and figures["fps"] > 0
        assert set(figures["leaks"]) == {"sface", "mobilefacenet"}
    # The guard's rungs (from f.faces) on the SDK's rows only.
    rungs = report["photos"]["sdk"]["rungs"]
    assert rungs["faces"] >= 10 and sum(rungs["per_rung"].values()) == pytest.approx(1.0)
    assert report["photos"]["noop"]["rungs"] is None and report["videos"]["sdk"]["rungs"]["faces"] >= 30
    # --quick sweeps the SDK (the default swept method) at strengths 0.5 and 1.
    assert [point["strength"] for point in report["sweep"]["sdk"]] == [0.5, 1.0]
    assert set(report["sweep"]["sdk"][0]["privacy"]) == set(ATTACKERS)


def test_noop_leaks_everything(quick_run):
    _, report = quick_run
    noop = report["photos"]["noop"]
    for attacker in ATTACKERS:
        assert noop["privacy"][attacker]["verification"]["rate"] >= 0.9
        assert noop["privacy"][attacker]["identification"]["top1"] >= 0.8
    assert noop["utility"]["landmark_error"] == 0.0
    assert noop["utility"]["pixel_change_inside"] == 0.0
    assert report["videos"]["noop"]["leaks"]["sface"]["at_input"]["frame_rate"] >= 0.9
    assert report["videos"]["noop"]["flicker_ratio"] == pytest.approx(1.0)


def test_blur_reduces_identification(quick_run):
    _, report = quick_run
    for attacker in ATTACKERS:
        noop = report["photos"]["noop"]["privacy"][attacker]["identification"]
        blur = report["photos"]["blur"]["privacy"][attacker]["identification"]
        assert blur["top1"] < noop["top1"]
        assert blur["mean_rank"] > noop["mean_rank"]
    leak = {method: report["videos"][method]["leaks"]["sface"]["at_input"]["frame_rate"] for method in ("noop", "blur")}
    assert leak["blur"] < leak["noop"]


def test_no_method_changes_anything_outside_the_face(quick_run):
    _, report = quick_run
    for method in METHODS:
        assert report["photos"][method]["utility"]["pixel_change_outside"] == 0.0, method
        assert report["photos"][method]["utility"]["changed_pixels_outside"] == 0, method
        assert report["videos"][method]["pixel_change_outside"] == 0.0, method
    for method in METHODS[1:]:
        assert report["photos"][method]["utility"]["pixel_change_inside"] > 1.0, method
