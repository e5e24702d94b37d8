"""Read the travelling training shard into one uint8 tensor (decoded once, kept on the training device).

The shard is a "crop pack" written by `deid-train prepare --shard DIR` (format documented in deid_train.prepare):
  DIR/manifest.json   {"format": "deid_train.crops", "version": 1, "count": N, "color": "BGR", "crop": {"size": 128}, ...}
  DIR/crops.npz       "jpeg" (uint8, every crop's JPEG file concatenated), "offsets" (int64, N + 1), per-crop columns
Reading needs only numpy and cv2 (no SDK, no dlib), so it works on the bare GPU machine.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

SHARD_FORMAT = "deid_train.crops"
SHARD_VERSION = 1


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"expected a training shard folder with manifest.json and crops.npz, got {folder} "
                                f"(make one with `deid-train prepare --shard DIR`)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != SHARD_FORMAT or manifest.get("version") != SHARD_VERSION:
        raise ValueError(f"{path}: expected format {SHARD_FORMAT} v{SHARD_VERSION}, "
                         f"got {manifest.get('format')} v{manifest.get('version')}")
    return manifest


def load_shard_images(folder: str | Path, limit: int = 0) -> np.ndarray:
    """The shard's crops as a (N, 3, S, S) uint8 RGB array (the first `limit` if limit > 0)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    size = int(manifest.get("crop", {}).get("size", 128))
    bgr = manifest.get("color", "BGR") == "BGR"
    packed_path = folder / "crops.npz"
    if not packed_path.is_file():
        raise FileNotFoundError(f"expected {packed_path} beside the shard's manifest")
    with np.load(packed_path, allow_pickle=False) as packed:
        data, offsets = packed["jpeg"], packed["offsets"]
    count = len(offsets) - 1
    if limit > 0:
        count = min(count, limit)
    images = np.empty((count, 3, size, size), dtype=np.uint8)
    for index in range(count):
        image = cv2.imdecode(data[offsets[index]:offsets[index + 1]], cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"could not decode crop {index} of {packed_path}")
        if image.shape[:2] != (size, size):
            raise ValueError(f"expected {size}x{size} crops in {packed_path}, got {image.shape[:2]} at {index}")
        images[index] = (image[:, :, ::-1] if bgr else image).transpose(2, 0, 1)
    if count == 0:
        raise ValueError(f"the shard {folder} holds no crops")
    return images


def load_shard(folder: str | Path, device: str | torch.device = "cpu", limit: int = 0) -> torch.Tensor:
    """The shard's crops as one (N, 3, S, S) uint8 RGB tensor on `device`."""
    return torch.from_numpy(load_shard_images(folder, limit)).to(device)


def write_test_shard(folder: str | Path, crops_bgr: list[np.ndarray], quality: int = 90) -> Path:
    """A minimal shard (JPEG crops only, no per-crop columns) in the same format, for tests and experiments."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    encoded = []
    for crop in crops_bgr:
        ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f"JPEG encoding failed for an array of shape {crop.shape} dtype {crop.dtype}")
        encoded.append(data.reshape(-1))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(item) for item in encoded])
    np.savez(folder / "crops.npz", jpeg=np.concatenate(encoded), offsets=offsets)
    size = int(crops_bgr[0].shape[0])
    manifest = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "count": len(encoded), "color": "BGR",
                "crop": {"size": size}, "note": "test shard"}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder
