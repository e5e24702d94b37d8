"""A labeled face folder in LFW layout (<root>/<Identity>/<image>.jpg), the probes and the gallery."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class FaceFolder:
    root: Path
    names: list[str]          # image paths relative to root, sorted: "<Identity>/<file>"
    labels: np.ndarray        # (N,) int index into identities
    identities: list[str]

    def path(self, index: int) -> Path:
        return self.root / self.names[index]

    def images_of(self, identity: str) -> np.ndarray:
        return np.flatnonzero(self.labels == self.identities.index(identity))


def load_face_folder(root: Path) -> FaceFolder:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"face folder not found: {root} (expected <root>/<Identity>/<image>.jpg)")
    names, labels, identities = [], [], []
    for identity_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p.name for p in identity_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        identities.append(identity_dir.name)
        names.extend(f"{identity_dir.name}/{name}" for name in files)
        labels.extend([len(identities) - 1] * len(files))
    if not names:
        raise ValueError(f"no images in {root}: expected <root>/<Identity>/<image>.jpg")
    return FaceFolder(root, names, np.array(labels, dtype=np.int64), identities)


def eval_identities(faces: FaceFolder, splits: Path | None) -> list[str]:
    """The `eval_identities` of a splits JSON, else every identity with 2+ images; only those present with 2+."""
    counts = np.bincount(faces.labels, minlength=len(faces.identities))
    with_two = [name for name, count in zip(faces.identities, counts) if count >= 2]
    if splits is None:
        return with_two
    splits = Path(splits)
    if not splits.is_file():
        raise FileNotFoundError(f"splits file not found: {splits}")
    wanted = json.loads(splits.read_text()).get("eval_identities")
    if not isinstance(wanted, list):
        raise ValueError(f"{splits} has no 'eval_identities' list")
    present = set(with_two)
    return [name for name in wanted if name in present]


@dataclass(frozen=True)
class IdentificationSet:
    probes: np.ndarray    # (P,) image indices: the first image of each eval identity
    gallery: np.ndarray   # (G,) image indices: everything else kept (includes the probes' other photos)


def identification_set(faces: FaceFolder, identities: list[str], identity_limit: int | None,
                       gallery_limit: int | None, seed: int = 0) -> IdentificationSet:
    """Probes: the first photo of each eval identity. Gallery: all other photos of the folder.

    `identity_limit` keeps the first N eval identities (deterministic). `gallery_limit` caps the gallery:
    the eval identities' other photos are always kept, distractors are a fixed-seed random subset.
    """
    if identity_limit is not None:
        identities = identities[:identity_limit]
    if not identities:
        raise ValueError("no eval identities with 2+ images in the face folder")
    probes = np.array([faces.images_of(name)[0] for name in identities], dtype=np.int64)
    is_probe = np.zeros(len(faces.names), dtype=bool)
    is_probe[probes] = True
    eval_labels = np.array([faces.identities.index(name) for name in identities])
    mates = np.flatnonzero(np.isin(faces.labels, eval_labels) & ~is_probe)
    distractors = np.flatnonzero(~np.isin(faces.labels, eval_labels))
    # Other photos of *all* identities are gallery entries, probes of other eval identities included
    # (they are photos of other people too); only each probe's own photo is excluded, at ranking time.
    others = np.flatnonzero(np.isin(faces.labels, eval_labels) & is_probe)
    if gallery_limit is not None:
        room = max(gallery_limit - len(mates) - len(others), 0)
        order = np.random.default_rng(seed).permutation(len(distractors))
        distractors = np.sort(distractors[order[:room]])
    gallery = np.sort(np.concatenate([mates, others, distractors]))
    return IdentificationSet(probes=probes, gallery=gallery)
