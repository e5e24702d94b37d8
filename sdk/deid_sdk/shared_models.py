"""One set of loaded models for the Filters of several streams in one process (`deid run` with several pairs).

    models = SharedModels.load(**filter_options)          # loads and checks once, as Filter(**filter_options) does
    stream_filter = Filter(**filter_options, models=models)   # per stream: its own tracks, nothing loaded
    anonymize = models.per_frame(stream_filter)           # what the stream's live loop calls

Shared across threads: CenterFace, the identity encoder and the generator run on onnxruntime sessions, whose
run() may be called from several threads at once; the generator goes through a `GeneratorBatcher` (one call per
tick for all streams). dlib's shape predictor is called under a lock: its Python binding is not documented as
reentrant, and landmark fitting is a small share of a frame. The C++ warp/blend kernels keep no state between
calls (each works on its own frame and buffers). What each Filter keeps for itself: its tracks, the identities
they hold, its target identity, faces and stats.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from deid_sdk.generator_batcher import GeneratorBatcher


class LockedLandmarkPredictor:
    """A LandmarkPredictor that one thread at a time may call."""

    def __init__(self, predictor):
        self._predictor = predictor
        self._lock = threading.Lock()

    def predict(self, *args, **kwargs) -> np.ndarray:
        with self._lock:
            return self._predictor.predict(*args, **kwargs)


@dataclass(frozen=True)
class SharedModels:
    detector: object
    landmark_predictor: LockedLandmarkPredictor
    generator: GeneratorBatcher | None        # None: no generator (use_generator=False or none installed)
    identity_encoder: object | None

    @classmethod
    def load(cls, **filter_options) -> SharedModels:
        """The models a `Filter(**filter_options)` loads, checked and looked up by Filter itself (one home)."""
        from deid_sdk.filter import Filter

        options = {key: value for key, value in filter_options.items() if key != "target"}  # per stream
        loaded = Filter(**options)
        return cls(detector=loaded.detector, landmark_predictor=LockedLandmarkPredictor(loaded.landmark_predictor),
                   generator=GeneratorBatcher(loaded.generator) if loaded.generator is not None else None,
                   identity_encoder=loaded.identity_encoder)

    def per_frame(self, anonymize: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        """`anonymize` (a Filter using these models), telling the batcher when a stream is inside a frame."""
        if self.generator is None:
            return anonymize
        batcher = self.generator

        def anonymize_in_frame(image: np.ndarray, inplace: bool = False) -> np.ndarray:
            with batcher.frame():
                return anonymize(image, inplace=inplace)

        return anonymize_in_frame
