"""On-disk cache of one attacker's embeddings of the *unmodified* images of a face folder (the public LFW set).

One file per (attacker, folder): image name -> embedding, or "no face found". Images are embedded only
once across runs, subsets and gallery limits; the file is saved every few hundred images so an
interrupted cold run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

# Bump when an attacker's preprocessing changes, so stale embeddings are never reused.
CACHE_VERSION = {"dlib": 1, "sface": 2, "mobilefacenet": 1}  # sface 2: the shipped float16-weight file


class EmbeddingCache:
    def __init__(self, cache_dir: Path, attacker_name: str, root: Path):
        key = hashlib.sha256(f"{Path(root).resolve()}|{attacker_name}|v{CACHE_VERSION[attacker_name]}".encode())
        self.path = Path(cache_dir) / f"gallery_{attacker_name}_{key.hexdigest()[:16]}.npz"
        self.root = Path(root)
        self._embeddings: dict[str, np.ndarray | None] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for name, found, embedding in zip(data["names"], data["found"], data["embeddings"]):
                    self._embeddings[str(name)] = embedding if found else None

    def missing(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self._embeddings]

    def fill(self, names: list[str], embed: Callable[[np.ndarray], np.ndarray | None],
             progress: Callable[[int], None] | None = None, save_every: int = 500) -> None:
        """Embed the names not cached yet with `embed(image_bgr)` and save."""
        todo = self.missing(names)
        for count, name in enumerate(todo, 1):
            image = cv2.imread(str(self.root / name), cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read image {self.root / name}")
            self._embeddings[name] = embed(image)
            if progress is not None:
                progress(1)
            if count % save_every == 0:
                self.save()
        if todo:
            self.save()

    def store(self, names: list[str], embeddings: list[np.ndarray | None]) -> None:
        """Add embeddings computed elsewhere (see gallery_workers); call save() to persist them."""
        for name, embedding in zip(names, embeddings, strict=True):
            self._embeddings[name] = embedding

    def matrix(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) float32 embeddings (zeros where no face) and (N,) bool found."""
        values = [self._embeddings[name] for name in names]
        dimension = next((len(v) for v in values if v is not None), 128)
        found = np.array([v is not None for v in values], dtype=bool)
        matrix = np.zeros((len(names), dimension), dtype=np.float32)
        for row, value in enumerate(values):
            if value is not None:
                matrix[row] = value
        return matrix, found

    def save(self) -> None:
        names = sorted(self._embeddings)
        matrix, found = self.matrix(names)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp.npz")
        np.savez(temporary, names=np.array(names), found=found, embeddings=matrix)
        os.replace(temporary, self.path)
