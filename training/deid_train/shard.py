"""The travelling training shard: read it into one uint8 tensor (decoded once, kept on the training device).

Format (version 1), a folder:
  manifest.json   {"format": "deid-train-shard", "version": 1, "crop_size": 128, "count": N,
                   "color": "RGB", "parts": ["crops_000.npz", ...], ...free provenance fields...}
  crops_XXX.npz   arrays "data" (uint8, all JPEG/WebP files concatenated) and "offsets" (int64, count+1):
                  image i is data[offsets[i]:offsets[i+1]]. No pickled objects.
Images are the canonical 128x128 aligned crops (deid_sdk.align), encoded as ordinary JPEG/WebP files (so the
decoded channel order is what cv2.imdecode gives: BGR; the reader returns RGB). The data preparation
(`deid-train prepare`, deid_train.prepare) writes it, through `write_shard` here so both sides share one format.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

SHARD_FORMAT = "deid-train-shard"
SHARD_VERSION = 1


def write_shard(folder: str | Path, encoded_images: list[bytes], part_bytes: int = 15 * 2 ** 20,
                crop_size: int = 128, **provenance) -> dict:
    """Pack encoded images into `folder` (parts of at most ~part_bytes) and write its manifest; returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts, current, current_size = [], [], 0

    def flush():
        nonlocal current, current_size
        if not current:
            return
        name = f"crops_{len(parts):03d}.npz"
        offsets = np.zeros(len(current) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(item) for item in current])
        data = np.frombuffer(b"".join(current), dtype=np.uint8)
        np.savez(folder / name, data=data, offsets=offsets)
        parts.append(name)
        current, current_size = [], 0

    for item in encoded_images:
        if current and current_size + len(item) > part_bytes:
            flush()
        current.append(bytes(item))
        current_size += len(item)
    flush()
    manifest = {"format": SHARD_FORMAT, "version": SHARD_VERSION, "crop_size": crop_size,
                "count": len(encoded_images), "color": "RGB", "parts": parts, **provenance}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: str | Path) -> dict:
    folder = Path(folder)
    path = folder / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"expected a training shard folder with manifest.json, got {folder} "
                                f"(make one with `deid-train prepare`)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != SHARD_FORMAT:
        raise ValueError(f"expected shard format {SHARD_FORMAT!r} in {path}, got {manifest.get('format')!r}")
    return manifest


def load_shard_images(folder: str | Path) -> np.ndarray:
    """All crops of a shard as a (N, 3, S, S) uint8 RGB array."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    size = int(manifest.get("crop_size", 128))
    parts = manifest.get("parts") or sorted(p.name for p in folder.glob("*.npz"))
    images = []
    for part in parts:
        with np.load(folder / part, allow_pickle=False) as packed:
            data, offsets = packed["data"], packed["offsets"]
        for index in range(len(offsets) - 1):
            encoded = data[offsets[index]:offsets[index + 1]]
            image = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"could not decode image {index} of {folder / part}")
            if image.shape[:2] != (size, size):
                raise ValueError(f"expected {size}x{size} crops in {folder / part}, got {image.shape[:2]}")
            images.append(image[:, :, ::-1].transpose(2, 0, 1))
    if not images:
        raise ValueError(f"the shard {folder} holds no images")
    expected = manifest.get("count")
    if expected is not None and expected != len(images):
        raise ValueError(f"manifest of {folder} says {expected} images, the parts hold {len(images)}")
    return np.ascontiguousarray(np.stack(images))


def load_shard(folder: str | Path, device: str | torch.device = "cpu") -> torch.Tensor:
    """All crops of a shard as one (N, 3, S, S) uint8 RGB tensor on `device` (decoded once)."""
    return torch.from_numpy(load_shard_images(folder)).to(device)
