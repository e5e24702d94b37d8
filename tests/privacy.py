"""The check every privacy test makes: no detected face leaves the pipeline as it came in."""
from __future__ import annotations

import numpy as np


def _box(face) -> np.ndarray:
    return np.asarray(getattr(face, "box", face), dtype=np.float64)


def central_region(box: np.ndarray, shape) -> tuple[slice, slice]:
    """The central half of a face box (eyes, nose, mouth), clipped to the frame."""
    x1, y1, x2, y2 = box[:4]
    height, width = shape[:2]
    cx1, cx2 = int(max(0, x1 + (x2 - x1) / 4)), int(min(width, x2 - (x2 - x1) / 4))
    cy1, cy2 = int(max(0, y1 + (y2 - y1) / 4)), int(min(height, y2 - (y2 - y1) / 4))
    return slice(cy1, cy2), slice(cx1, cx2)


def assert_every_face_covered(original: np.ndarray, output: np.ndarray, faces, *, compressed: bool = False) -> None:
    """Every face (a `Face`, a `Detection` or a box) is de-identified or covered by the fallback.

    Exact output (an array the filter returned): at most 20% of the pixels of each face's central region keep
    their value. Compressed output (a decoded video): the mean change there must stand well above the codec's own
    noise, measured on the pixels outside every face box as the fallback enlarges it (the SDK may change those):
    their median, so that a fallback placed from the SDK's own (e.g. downscaled) detections, whose boxes differ a
    little from these, does not count as noise.
    """
    from deid_sdk.fallback import cover_region

    assert len(faces) > 0, "expected detected faces"
    assert original.shape == output.shape, (original.shape, output.shape)
    before, after = original.astype(np.int16), output.astype(np.int16)
    change = np.abs(before - after).max(axis=2)
    outside = np.ones(change.shape, bool)
    for face in faces:
        left, top, right, bottom = cover_region(_box(face), original.shape)
        outside[top:bottom, left:right] = False
    noise = float(np.median(change[outside])) if outside.any() else 0.0
    for face in faces:
        region = central_region(_box(face), original.shape)
        label = f"face at {np.round(_box(face)).astype(int).tolist()} ({getattr(face, 'status', '')} " \
                f"{getattr(face, 'reason', '')})"
        assert change[region].size, f"{label}: no pixels inside the frame"
        if compressed:
            mean_change = float(change[region].mean())
            assert mean_change > max(6.0, 3 * noise), f"{label} changed by {mean_change:.1f} (noise {noise:.1f})"
        else:
            unchanged = float(np.mean(change[region] == 0))
            assert unchanged < 0.2, f"{label} is {unchanged:.0%} unchanged"


def assert_faces_covered_in_video(source, output, every: int = 10) -> int:
    """Every face CenterFace finds in every `every`-th frame of `source` (a video or an image folder) is covered in
    `output` (the same frames, decoded); returns how many faces were checked."""
    from deid_sdk.detect import CenterFaceDetector
    from deid_sdk.io import read_frames

    detector = CenterFaceDetector()
    originals, outputs = read_frames(str(source)), read_frames(str(output))
    assert len(originals) == len(outputs), (len(originals), len(outputs))
    checked = 0
    for index in range(0, len(originals), every):
        detections = detector.detect(originals[index])
        if detections:
            assert_every_face_covered(originals[index], outputs[index], detections, compressed=True)
            checked += len(detections)
    assert checked > 0, "no face found in the source to check"
    return checked
