"""The baselines of deid_eval change only the (enlarged) face boxes they are given."""
import numpy as np
import pytest
from deid_sdk.detect import Detection

from deid_eval.methods import BASELINE_NAMES, make_method, method_label, parse_method_spec, scaled_box


def _detection(box):
    return Detection(box=np.array(box, dtype=np.float32), score=0.9, points=np.zeros((5, 2), np.float32))


@pytest.mark.parametrize("name", [n for n in BASELINE_NAMES if n != "noop"])
def test_baseline_changes_the_face_box_and_nothing_else(name):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    detections = [_detection([40, 30, 90, 95]), _detection([120, 10, 158, 50])]
    out = make_method(name)(frame, detections)
    assert out.shape == frame.shape and out.dtype == np.uint8
    inside = np.zeros(frame.shape[:2], dtype=bool)
    for detection in detections:
        x1, y1, x2, y2 = scaled_box(detection.box, 160, 120)
        inside[y1:y2, x1:x2] = True
    changed = np.any(out != frame, axis=-1)
    assert not changed[~inside].any()
    assert changed[inside].mean() > 0.5


def test_noop_returns_an_equal_copy():
    frame = np.full((8, 8, 3), 7, dtype=np.uint8)
    out = make_method("noop")(frame, [])
    assert out is not frame and np.array_equal(out, frame)


def test_stronger_blur_changes_more():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    detections = [_detection([20, 20, 80, 80])]
    weak = np.abs(make_method("blur", {"strength": 0.1})(frame, detections).astype(int) - frame).mean()
    strong = np.abs(make_method("blur", {"strength": 1.0})(frame, detections).astype(int) - frame).mean()
    assert strong > weak > 0


def test_method_specs_parse_options_and_reject_unknown_names():
    assert parse_method_spec("blur") == ("blur", {})
    name, options = parse_method_spec("sdk:backend=onnxruntime,strength=0.5,model=m.onnx")
    assert name == "sdk" and options == {"backend": "onnxruntime", "strength": 0.5, "model": "m.onnx"}
    assert method_label(name, {"strength": 0.5}) == "sdk(strength=0.5)"
    with pytest.raises(ValueError, match="method must be one of"):
        parse_method_spec("smear")
    with pytest.raises(ValueError, match="key=value"):
        parse_method_spec("blur:strong")
    with pytest.raises(ValueError, match="does not take options"):
        make_method("pixelate", {"sigma": 3})
    with pytest.raises(ValueError, match="strength must be in"):
        make_method("blur", {"strength": 0})
