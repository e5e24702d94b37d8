"""One generator call per tick for the faces of several streams served from one process.

Each stream runs its own live loop and Filter in its own thread; every Filter's generator is the one
`GeneratorBatcher`. A stream that calls it waits until every stream now inside a frame (`with batcher.frame():`)
is waiting too, or `MAX_WAIT` seconds passed; then one thread runs the real generator on the rows of all waiting
streams and hands each stream its rows. A stream whose frame has no face to replace leaves its frame without
calling, so it never holds the others up. A failing call fails every stream of that batch with the same error
(a ModelError: their Filters cover those faces with the fallback, as for one stream).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

# The longest a stream waits for the others before its rows go alone (a stream stuck in a slow stage).
MAX_WAIT = 0.25


@dataclass(eq=False)
class _Request:
    crops: np.ndarray
    identities: np.ndarray
    strengths: np.ndarray
    taken: bool = False               # in a batch being run
    done: bool = False
    result: tuple[np.ndarray, np.ndarray] | None = None
    error: BaseException | None = None


class GeneratorBatcher:
    """Called like the generator it wraps: (crops, identities, strengths) -> (images, masks), rows kept in order."""

    def __init__(self, generator):
        self.generator = generator
        self._changed = threading.Condition()
        self._in_frame = 0           # streams inside a Filter call
        self._blocked = 0            # of them, those waiting here (queued or in a running batch)
        self._queued: list[_Request] = []
        self.batch_rows: Counter[int] = Counter()  # rows per generator call -> number of calls

    def __getattr__(self, name):  # path, manifest, session: those of the wrapped generator
        if name == "generator":
            raise AttributeError(name)
        return getattr(self.generator, name)

    @contextmanager
    def frame(self):
        """Marks one stream as inside a frame: the batcher waits for its rows before a call."""
        with self._changed:
            self._in_frame += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_frame -= 1
                self._changed.notify_all()  # the streams still waiting may now be all there is

    def __call__(self, crops: np.ndarray, identities: np.ndarray, strengths: np.ndarray):
        request = _Request(crops, identities, np.asarray(strengths, np.float32).reshape(len(crops), 1))
        deadline = time.monotonic() + MAX_WAIT
        with self._changed:
            self._queued.append(request)
            self._blocked += 1
            self._changed.notify_all()
            while not request.taken:
                remaining = deadline - time.monotonic()
                if self._blocked >= self._in_frame or remaining <= 0:
                    batch, self._queued = self._queued, []
                    for queued in batch:
                        queued.taken = True
                    break
                self._changed.wait(remaining)
            else:
                batch = None
        if batch is not None:  # this thread runs the call for every stream in the batch
            self._run(batch)
        with self._changed:
            while not request.done:
                self._changed.wait()
            self._blocked -= 1
        if request.error is not None:
            raise request.error
        return request.result

    def _run(self, batch: list[_Request]) -> None:
        counts = [len(request.crops) for request in batch]
        try:
            images, masks = self.generator(np.concatenate([request.crops for request in batch]),
                                           np.concatenate([request.identities for request in batch]),
                                           np.concatenate([request.strengths for request in batch]))
            ends = np.cumsum(counts)
            results = [(images[end - count:end], masks[end - count:end]) for count, end in zip(counts, ends)]
            error = None
        except BaseException as failure:  # every stream of the batch sees it, as it would alone
            results, error = [None] * len(batch), failure
        with self._changed:
            self.batch_rows[sum(counts)] += 1
            for request, result in zip(batch, results):
                request.result, request.error, request.done = result, error, True
            self._changed.notify_all()
