"""Embedding a cold gallery with every core: chunks of photos for all attackers in worker processes.

dlib's descriptor runs on one core, so embedding attacker after attacker in one process leaves the second
core idle for most of the ~10k-photo cold start. Workers (spawned, so no model state is forked) each build
the attackers they are asked for, with one onnxruntime thread, and return embeddings; the parent stores
them in the caches and saves after every few chunks, so an interrupted run resumes.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from deid_eval.embedding_cache import EmbeddingCache

CHUNK = 200
_worker_attackers: dict = {}


def _embed_chunk(attacker_name: str, root: str, names: list[str]) -> tuple[str, list[str], list]:
    from deid_eval.attackers import make_attacker

    if attacker_name not in _worker_attackers:
        _worker_attackers[attacker_name] = make_attacker(attacker_name, threads=1)
    attacker = _worker_attackers[attacker_name]
    embeddings = []
    for name in names:
        image = cv2.imread(str(Path(root) / name), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"cannot read image {Path(root) / name}")
        embeddings.append(attacker.embed(image))
    return attacker_name, names, embeddings


def fill_in_parallel(caches: dict[str, EmbeddingCache], names: list[str], workers: int,
                     progress: Callable[[int], None] | None = None, save_every_chunks: int = 5) -> None:
    """Embed every name missing from each attacker's cache using `workers` processes."""
    tasks = []
    for attacker_name, cache in caches.items():  # dlib first: the longest chunks start early
        todo = cache.missing(names)
        tasks += [(attacker_name, todo[start:start + CHUNK]) for start in range(0, len(todo), CHUNK)]
    if not tasks:
        return
    tasks.sort(key=lambda task: task[0] != "dlib")
    context = multiprocessing.get_context("spawn")
    done_since_save = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_embed_chunk, attacker_name, str(caches[attacker_name].root), chunk)
                   for attacker_name, chunk in tasks]
        for future in as_completed(futures):
            attacker_name, chunk, embeddings = future.result()
            caches[attacker_name].store(chunk, [None if e is None else np.asarray(e, np.float32) for e in embeddings])
            if progress is not None:
                progress(len(chunk))
            done_since_save += 1
            if done_since_save >= save_every_chunks:
                for cache in caches.values():
                    cache.save()
                done_since_save = 0
    for cache in caches.values():
        cache.save()
