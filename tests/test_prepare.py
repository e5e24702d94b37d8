"""deid-train prepare: real faces through the SDK's detector/landmarks/alignment, crop packs, the shard."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")  # the training package needs torch (its shard reader imports it)

from deid_train import prepare  # noqa: E402

def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(error, 1e-12)))


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory, shared_data) -> Path:
    """A cache of the first 6 UTKFace and 6 LFW-train images (one worker)."""
    folder = tmp_path_factory.mktemp("cache")
    prepare.prepare_cache(shared_data, folder, workers=1, limit_per_source=6)
    return folder


@pytest.mark.shared_data
def test_list_sources_never_includes_eval_identities(shared_data):
    sources = prepare.list_sources(shared_data, use_utkface=False)
    _, evaluation = prepare.load_lfw_splits(shared_data)
    identities = {s.identity for s in sources}
    assert len(identities) > 5000
    assert not identities & evaluation
    assert all(s.source == "lfw" for s in sources)


@pytest.mark.shared_data
def test_assert_no_eval_identities_rejects_a_leak(shared_data):
    _, evaluation = prepare.load_lfw_splits(shared_data)
    person = sorted(evaluation)[0]
    leaked = [prepare.SourceImage(f"faces/lfw/{person}/{person}_0001.jpg", "lfw", person)]
    with pytest.raises(ValueError, match="eval identities"):
        prepare.assert_no_eval_identities(leaked, shared_data)


def test_parse_utkface_name():
    assert prepare.parse_utkface_name("26_1_3_20170117154517286.jpg.chip.jpg") == (26, 1, 3)
    assert prepare.parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg") == (39, 1, -1)


@pytest.mark.shared_data
def test_aligned_crops_have_the_canonical_shape_and_landmarks_inside(small_cache):
    arrays, manifest = prepare.read_crop_pack(small_cache)
    count = manifest["count"]
    assert count >= 10, manifest["stats"]       # at most 2 of 12 clear faces may be missed
    assert manifest["crop"] == prepare.crop_geometry()
    assert arrays["landmarks"].shape == (count, 68, 2)
    assert arrays["matrix"].shape == (count, 2, 3)
    for index in range(count):
        crop = prepare.decode_crop(arrays, index)
        assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    landmarks = arrays["landmarks"]
    assert landmarks.min() >= -3 and landmarks.max() <= 131   # the hull, chin included, fits the crop
    # The eyes sit where the canonical crop puts them (left eye left of the right eye, in the upper half).
    left_eye, right_eye = landmarks[:, 36:42].mean(axis=1), landmarks[:, 42:48].mean(axis=1)
    assert (left_eye[:, 0] < right_eye[:, 0]).all()
    assert (left_eye[:, 1] < 64).all() and (right_eye[:, 1] < 64).all()
    assert set(np.unique(arrays["source"])) == {0, 1}
    lfw_names = {manifest["identities"][label] for label, source in zip(arrays["label"], arrays["source"]) if source == 1}
    _, evaluation = prepare.load_lfw_splits(Path(manifest["data_root"]))
    assert lfw_names and not lfw_names & evaluation


@pytest.mark.shared_data
def test_cache_crop_equals_a_rewarp_of_its_source(small_cache, shared_data):
    arrays, manifest = prepare.read_crop_pack(small_cache)
    image = cv2.imread(str(shared_data / manifest["files"][0]))
    crop = cv2.warpAffine(image, arrays["matrix"][0], (128, 128), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    assert _psnr(crop, prepare.decode_crop(arrays, 0)) > 38   # JPEG quality 95


@pytest.mark.shared_data
def test_shard_round_trip_needs_only_numpy_and_cv2(small_cache, shared_data, tmp_path):
    shard = tmp_path / "shard"
    written = prepare.write_shard(small_cache, shard, shard_mib=1.0, data_root=shared_data)
    cache, cache_manifest = prepare.read_crop_pack(small_cache)
    # Decode exactly as documented in deid_train.prepare: numpy + cv2, nothing else.
    manifest = json.loads((shard / "manifest.json").read_text())
    assert manifest["format"] == "deid_train.crops" and manifest["color"] == "BGR"
    with np.load(shard / "crops.npz", allow_pickle=False) as pack:
        jpeg, offsets, landmarks, label = pack["jpeg"], pack["offsets"], pack["landmarks"], pack["label"]
        assert "matrix" not in pack.files
    # 1 MiB holds every crop that passes the travel filter.
    assert manifest["count"] == len(offsets) - 1 == written["count"] == prepare.usable_for_shard(cache).sum() >= 6
    psnrs = []
    for index, path in enumerate(manifest["files"]):
        crop = cv2.imdecode(jpeg[offsets[index]:offsets[index + 1]], cv2.IMREAD_COLOR)
        source_index = cache_manifest["files"].index(path)
        original = cv2.warpAffine(cv2.imread(str(shared_data / path)), cache["matrix"][source_index], (128, 128),
                                  flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        psnrs.append(_psnr(crop, original))
        np.testing.assert_array_equal(landmarks[index], cache["landmarks"][source_index])
        assert manifest["identities"][label[index]] == cache_manifest["identities"][cache["label"][source_index]]
    # JPEG quality 90 on 128x128 faces: about 36-40 dB.
    assert min(psnrs) > 33, psnrs
    assert sum(f.stat().st_size for f in shard.iterdir()) <= 2 ** 20


@pytest.mark.shared_data
def test_shard_respects_its_byte_budget_and_balances_sources(small_cache, shared_data, tmp_path):
    shard = tmp_path / "shard"
    written = prepare.write_shard(small_cache, shard, shard_mib=0.1, data_root=shared_data)
    assert sum(f.stat().st_size for f in shard.iterdir()) <= 0.1 * 2 ** 20
    stats = written["stats"]
    assert 0 < stats["crops"] < 12
    assert abs(stats["utkface"] - stats["lfw"]) <= 1


@pytest.mark.shared_data
def test_shard_reader_of_the_trainer_reads_the_shard(small_cache, shared_data, tmp_path):
    from deid_train.shard import load_shard_images

    shard = tmp_path / "shard"
    prepare.write_shard(small_cache, shard, shard_mib=1.0, data_root=shared_data)
    images = load_shard_images(shard)
    with np.load(shard / "crops.npz") as pack:
        first = cv2.imdecode(pack["jpeg"][pack["offsets"][0]:pack["offsets"][1]], cv2.IMREAD_COLOR)
    assert images.shape[1:] == (3, 128, 128) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], first[:, :, ::-1].transpose(2, 0, 1))   # RGB, channels first


def test_round_robin_gives_every_group_a_turn_before_seconds():
    import random

    order = prepare._round_robin({"a": [1, 2, 3], "b": [4], "c": [5, 6]}, random.Random(0), per_visit=1)
    assert sorted(order) == [1, 2, 3, 4, 5, 6]
    assert set(order[:3]) & {1, 2, 3} and 4 in order[:3] and set(order[:3]) & {5, 6}


def test_read_crop_pack_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="crops.npz"):
        prepare.read_crop_pack(tmp_path)
