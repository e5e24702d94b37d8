"""The INT8 calibration set: the generator's inputs (aligned crops, identity vectors, strengths) exactly as the
SDK makes them at run time, from a folder of images and videos.

Each image (and a few frames of each video) goes through a real `deid_sdk.Filter` (CenterFace, dlib's 68 points,
the alignment, the warp kernel, the identity encoder); its generator is wrapped to record every call. So the
calibration sees the run-time distribution, not a re-implementation of it.

Never the evaluation identities: when the folder is (or lies inside) a data root with `faces/lfw_splits.json`,
the LFW eval identities it lists are left out with the training package's own reader of that file
(`deid_train.prepare.load_lfw_splits`, as `deid-train prepare` does) and the result is checked with its
`assert_no_eval_identities`. Nothing is written to disk: the crops and identities stay in memory.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
SPLITS_FILE = Path("faces") / "lfw_splits.json"


@dataclass
class CalibrationSet:
    crops: list[np.ndarray] = field(default_factory=list)        # each (3, 128, 128) float32 RGB [-1, 1]
    identities: list[np.ndarray] = field(default_factory=list)   # each (128,) float32
    strengths: list[float] = field(default_factory=list)
    files: list[str] = field(default_factory=list)               # where each crop came from

    def __len__(self) -> int:
        return len(self.crops)

    def feeds(self, batch_size: int = 1):
        """The generator's input dictionaries, `batch_size` faces each."""
        for start in range(0, len(self), batch_size):
            stop = start + batch_size
            yield {"crop": np.stack(self.crops[start:stop]), "identity": np.stack(self.identities[start:stop]),
                   "strength": np.asarray(self.strengths[start:stop], np.float32).reshape(-1, 1)}


def data_root_of(folder: Path) -> Path | None:
    """The folder, or its nearest parent, holding faces/lfw_splits.json (the shared data layout), else None."""
    folder = Path(folder).resolve()
    return next((path for path in (folder, *folder.parents) if (path / SPLITS_FILE).is_file()), None)


def _lfw_identity(path: Path, root: Path) -> str | None:
    try:
        relative = path.resolve().relative_to(root / "faces" / "lfw")
    except ValueError:
        return None
    return relative.parts[0] if len(relative.parts) > 1 else None


def list_sources(folder: Path, images: int, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """(`images` image files drawn at random, every video file) under `folder`, never an LFW eval identity."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"calibration folder not found: {folder} (expected a folder of images or videos)")
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    root = data_root_of(folder)
    if root is not None:
        try:
            from deid_train.prepare import SourceImage, assert_no_eval_identities, load_lfw_splits
        except ImportError as error:
            raise ImportError(f"{folder} is part of the data root {root} (it has {SPLITS_FILE}): leaving out its "
                              "evaluation identities needs the training package (pip install -e ./training)") \
                from error
        _, evaluation = load_lfw_splits(root)
        files = [path for path in files if _lfw_identity(path, root) not in evaluation]
    image_files = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES]
    video_files = [path for path in files if path.suffix.lower() in VIDEO_SUFFIXES]
    if not image_files and not video_files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) or videos ({', '.join(VIDEO_SUFFIXES)}) "
                         f"found under {folder}")
    if len(image_files) > images:
        chosen = np.random.default_rng(seed).choice(len(image_files), images, replace=False)
        image_files = [image_files[index] for index in sorted(chosen)]
    if root is not None:
        assert_no_eval_identities([SourceImage(str(path), "lfw", _lfw_identity(path, root))
                                   for path in image_files if _lfw_identity(path, root)], root)
    return image_files, video_files


def _video_frames(path: Path, count: int, every: int = 30):
    """(name, frame) for `count` frames of a video, one every `every` frames from the start."""
    from deid_sdk.io import open_source

    with open_source(str(path), io="opencv") as source:
        for index in range(count * every):
            frame = source.read()
            if frame is None:
                return
            if index % every == 0:
                yield f"{path}#{index}", frame.image


class _RecordingGenerator:
    """Stands in for the Filter's generator: keeps each call's inputs, then runs the real model."""

    def __init__(self, generator, record: CalibrationSet):
        self.generator, self.record, self.source = generator, record, ""

    def __call__(self, crops, identities, strengths):
        for crop, identity, strength in zip(crops, identities, np.asarray(strengths).reshape(-1)):
            self.record.crops.append(np.array(crop, np.float32))
            self.record.identities.append(np.array(identity, np.float32))
            self.record.strengths.append(float(strength))
            self.record.files.append(self.source)
        return self.generator(crops, identities, strengths)


def record_generator_inputs(frames, model: Path, seed: int = 0, threads: int = 2) -> CalibrationSet:
    """The generator's inputs for every face a Filter processes in `frames` ((name, BGR frame) pairs).

    Strengths alternate between 1 (the default) and a uniform draw in [0, 1], so every strength a user may set
    is in the range the quantizer sees.
    """
    from deid_sdk import Filter

    record = CalibrationSet()
    rng = np.random.default_rng(seed)
    with Filter(model, tracking=False, threads=threads) as face_filter:
        recorder = _RecordingGenerator(face_filter.generator, record)
        face_filter.generator = recorder
        for number, (source, frame) in enumerate(frames):
            recorder.source = source
            face_filter.strength = 1.0 if number % 2 == 0 else float(rng.uniform(0.0, 1.0))
            face_filter(frame)
    return record


def build_calibration_set(folder: Path, model: Path, images: int = 192, video_frames: int = 8, seed: int = 0,
                          threads: int = 2, log: Callable[[str], None] = print) -> CalibrationSet:
    """`record_generator_inputs` over `images` random images and `video_frames` frames of each video under
    `folder` (never an evaluation identity, see `list_sources`)."""
    import cv2

    image_files, video_files = list_sources(folder, images, seed)
    images_read = ((str(path), cv2.imread(str(path), cv2.IMREAD_COLOR)) for path in image_files)
    frames = itertools.chain(((source, image) for source, image in images_read if image is not None),
                             *(_video_frames(path, video_frames) for path in video_files))
    record = record_generator_inputs(frames, model, seed=seed, threads=threads)
    if not len(record):
        raise ValueError(f"no face the generator would process was found in the images or videos under {folder}")
    log(f"calibration set: {len(record)} faces from {len(image_files)} images and {len(video_files)} videos "
        f"(up to {video_frames} frames each) under {folder}")
    return record
