"""`deid-train prepare`: aligned 128x128 face crops from UTKFace and the LFW *train* identities.

Every crop is made with the SDK's own run-time code, so training sees exactly what `Filter` sees:
`deid_sdk.detect.CenterFaceDetector` -> `deid_sdk.landmarks.LandmarkPredictor` -> `deid_sdk.align.face_to_crop`
-> `cv2.warpAffine(frame, M, (128, 128), INTER_LINEAR, BORDER_REPLICATE)`. The LFW eval identities of
`faces/lfw_splits.json` are never read (`list_sources` raises if one slips in).

Two outputs, one format (a "crop pack"; `deid_train.shard.load_shard` reads both):
- the cache (default ~/.cache/deid_train/crops/): every usable face, JPEG quality 95, plus the frame->crop
  matrices so crops can be re-made from the sources (a CPU run can train on the whole cache);
- the travelling shard (`--shard DIR --shard-mib 30`): a balanced, diverse subset re-warped from the sources
  and encoded at JPEG quality 90, as many crops as fit in the byte budget (every file in DIR counted).

Crop pack format, version 1 (reading it needs only numpy and cv2)
------------------------------------------------------------------
DIR/crops.npz   (np.savez, uncompressed, no pickles; N = number of crops)
  jpeg         uint8   [total_bytes]  every crop's JPEG file, concatenated
  offsets      int64   [N + 1]        crop i is jpeg[offsets[i]:offsets[i + 1]]
  landmarks    float32 [N, 68, 2]     dlib's 68 points in crop pixels (x, y; pixel centres at integers)
  label        int32   [N]            person index into manifest["identities"] (UTKFace: one person per image)
  source       uint8   [N]            index into manifest["sources"]: 0 = utkface, 1 = lfw
  age          int16   [N]            UTKFace age in years, -1 for LFW
  gender       int8    [N]            UTKFace gender (0 male, 1 female), -1 for LFW
  race         int8    [N]            UTKFace race (0 White, 1 Black, 2 Asian, 3 Indian, 4 Others), -1 for LFW
  score        float32 [N]            CenterFace detection score
  interocular  float32 [N]            distance between the eye centres in *source* pixels (the face's resolution)
  fit_rms      float32 [N]            RMS residual of the 33 stable landmarks after the similarity fit, crop pixels
  outside      float32 [N]            fraction of crop pixels sampled outside the source image (border replicate;
                                      about 0.46 for every UTKFace crop: its photos are cut tight around the face)
  hull_outside float32 [N]            the same inside the convex hull of the 68 landmarks (the blended region)
  grayscale    bool    [N]            the source image has no colour
  matrix       float64 [N, 2, 3]      frame->crop matrix in source pixels (cache only, not in the shard)
DIR/manifest.json
  {"format": "deid_train.crops", "version": 1, "count": N, "color": "BGR" (what cv2.imdecode gives),
   "crop": {"size": 128, "padding": 0.45, "shift_up": 0.12, "interpolation": "linear", "border": "replicate"},
   "jpeg_quality": 90, "sources": ["utkface", "lfw"], "identities": [person names; `label` indexes it],
   "files": [source path of each crop, relative to the data root], "stats": {...}, ...}

Reading crop i (the generator contract wants RGB in [-1, 1]: flip the channels, x / 127.5 - 1):
    pack = np.load(DIR / "crops.npz")
    jpeg, offsets = pack["jpeg"], pack["offsets"]
    crop_bgr = cv2.imdecode(jpeg[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FORMAT_NAME = "deid_train.crops"
FORMAT_VERSION = 1
SOURCES = ("utkface", "lfw")
CROP_SIZE = 128  # deid_sdk.align.CROP_SIZE; checked in crop_geometry()
CACHE_JPEG_QUALITY = 95
SHARD_JPEG_QUALITY = 90
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "deid_train" / "crops"
# Repo-relative default: ../shared/data beside the checkout.
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"
# Columns in crops.npz besides the JPEG blob; "matrix" stays in the cache only.
COLUMNS = ("landmarks", "label", "source", "age", "gender", "race", "score", "interocular", "fit_rms",
           "outside", "hull_outside", "grayscale", "matrix")
SHARD_COLUMNS = tuple(column for column in COLUMNS if column != "matrix")
COLUMN_DTYPES = {"landmarks": np.float32, "label": np.int32, "source": np.uint8, "age": np.int16,
                 "gender": np.int8, "race": np.int8, "score": np.float32, "interocular": np.float32,
                 "fit_rms": np.float32, "outside": np.float32, "hull_outside": np.float32, "grayscale": np.bool_, "matrix": np.float64}


@dataclass(frozen=True)
class SourceImage:
    path: str            # relative to the data root
    source: str          # "utkface" or "lfw"
    identity: str        # LFW person, or the UTKFace file stem (one person per image)
    age: int = -1
    gender: int = -1
    race: int = -1


@dataclass(frozen=True)
class PrepareOptions:
    min_interocular: float = 18.0     # source pixels; smaller faces would be upsampled > ~2x into the crop
    max_center_offset: float = 0.25   # LFW: the labelled person is the central face; farther = someone else
    detector_threshold: float = 0.5
    pad_fraction: float = 0.25        # replicate-pad before detection: UTKFace faces fill the frame


def load_lfw_splits(data_root: Path) -> tuple[list[str], set[str]]:
    """(train identities, eval identities) from faces/lfw_splits.json."""
    path = data_root / "faces" / "lfw_splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"LFW splits not found: expected {path}")
    splits = json.loads(path.read_text())
    train, evaluation = list(splits["train_identities"]), set(splits["eval_identities"])
    overlap = evaluation.intersection(train)
    if overlap:
        raise ValueError(f"lfw_splits.json lists {len(overlap)} identities in both splits, e.g. {sorted(overlap)[:3]}")
    return train, evaluation


def parse_utkface_name(name: str) -> tuple[int, int, int]:
    """(age, gender, race) from 'age_gender_race_date.jpg.chip.jpg'; -1 where a field is missing or malformed."""
    fields = name.split("_")
    values = []
    for index in range(3):
        try:
            values.append(int(fields[index]))
        except (IndexError, ValueError):
            values.append(-1)
    return values[0], values[1], values[2]


def list_sources(data_root: Path, use_utkface: bool = True, use_lfw: bool = True,
                 limit_per_source: int | None = None) -> list[SourceImage]:
    """All training images, sorted; never an LFW eval identity (raises ValueError if one would be included)."""
    data_root = Path(data_root)
    sources: list[SourceImage] = []
    if use_utkface:
        folder = data_root / "faces" / "utkface"
        if not folder.is_dir():
            raise FileNotFoundError(f"UTKFace not found: expected a folder of JPEGs at {folder}")
        names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".jpg")
        for name in names[:limit_per_source]:
            age, gender, race = parse_utkface_name(name)
            sources.append(SourceImage(f"faces/utkface/{name}", "utkface", name.split(".")[0], age, gender, race))
    if use_lfw:
        train, evaluation = load_lfw_splits(data_root)
        lfw = []
        for person in sorted(train):
            folder = data_root / "faces" / "lfw" / person
            if not folder.is_dir():
                continue
            lfw += [SourceImage(f"faces/lfw/{person}/{p.name}", "lfw", person)
                    for p in sorted(folder.iterdir()) if p.suffix.lower() == ".jpg"]
        sources += lfw[:limit_per_source]
    assert_no_eval_identities(sources, data_root)
    return sources


def assert_no_eval_identities(sources: list[SourceImage], data_root: Path) -> None:
    """Raise ValueError if any LFW image belongs to an eval identity (they are for measurement only)."""
    _, evaluation = load_lfw_splits(Path(data_root))
    leaked = sorted({s.identity for s in sources if s.source == "lfw" and s.identity in evaluation})
    if leaked:
        raise ValueError(f"{len(leaked)} LFW eval identities would be used for training, e.g. {leaked[:3]}")


def _face_choice_score(box: np.ndarray, width: int, height: int) -> float:
    """Prefer large faces near the image centre (LFW: the labelled person; UTKFace: the face that fills it)."""
    center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    offset = np.linalg.norm(center - np.array([width / 2, height / 2])) / (0.5 * np.hypot(width, height))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return float(area * max(0.0, 1.0 - offset) ** 2)


class FaceAligner:
    """Detect, landmark and align the main face of one image with the SDK's run-time components."""

    def __init__(self, options: PrepareOptions = PrepareOptions(), detector=None, landmark_predictor=None,
                 threads: int = 1):
        if detector is None:
            from deid_sdk.detect import CenterFaceDetector
            detector = CenterFaceDetector(threshold=options.detector_threshold, threads=threads)
        if landmark_predictor is None:
            from deid_sdk.landmarks import LandmarkPredictor
            landmark_predictor = LandmarkPredictor()
        self.options = options
        self.detector = detector
        self.landmark_predictor = landmark_predictor
        self.crop_size = CROP_SIZE

    def align(self, image_bgr: np.ndarray, central: bool) -> tuple[np.ndarray, dict] | tuple[None, str]:
        """(crop_bgr, record) for the main face, or (None, reason it was skipped).

        record holds landmarks in crop pixels, the frame->crop matrix in source pixels and quality figures.
        `central=True` (LFW) rejects a main face far from the image centre: it is probably not the labelled person.
        """
        from deid_sdk.align import STABLE_LANDMARKS, apply_affine, face_to_crop, template_points

        if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
            return None, "unreadable"
        height, width = image_bgr.shape[:2]
        pad = int(round(self.options.pad_fraction * max(height, width)))
        padded = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        detections = self.detector.detect(padded)
        if not detections:
            return None, "no_face"
        # Choose in original-image coordinates (the padding is not part of the picture).
        shift = np.array([pad, pad, pad, pad], dtype=np.float64)
        best = max(detections, key=lambda d: _face_choice_score(np.asarray(d.box, np.float64) - shift, width, height))
        box = np.asarray(best.box, dtype=np.float64) - shift
        if central:
            center = np.array([(box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height])
            if np.abs(center - 0.5).max() > self.options.max_center_offset:
                return None, "off_center"
        landmarks = self.landmark_predictor.predict(padded, best.box) - pad
        interocular = float(np.linalg.norm(landmarks[36:42].mean(axis=0) - landmarks[42:48].mean(axis=0)))
        if interocular < self.options.min_interocular:
            return None, "too_small"
        matrix = face_to_crop(landmarks)
        # Warp from the original with border replicate: identical to warping the replicate-padded copy.
        crop = cv2.warpAffine(image_bgr, matrix, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        crop_landmarks = apply_affine(matrix, landmarks)
        residual = crop_landmarks[STABLE_LANDMARKS] - template_points()
        record = {
            "landmarks": crop_landmarks.astype(np.float32),
            "matrix": matrix,
            "score": float(best.score),
            "interocular": interocular,
            "fit_rms": float(np.sqrt((residual ** 2).sum(axis=1).mean())),
            "outside": outside_fraction(matrix, width, height, self.crop_size),
            "hull_outside": outside_fraction(matrix, width, height, self.crop_size, crop_landmarks),
            "grayscale": is_grayscale(image_bgr),
        }
        return crop, record


def outside_fraction(matrix: np.ndarray, width: int, height: int, size: int,
                     hull_landmarks: np.ndarray | None = None) -> float:
    """Fraction of the crop's pixels (or of those inside the landmarks' convex hull) sampled outside the image."""
    from deid_sdk.align import apply_affine, invert_affine

    if hull_landmarks is None:
        ys, xs = np.mgrid[0:size, 0:size]
    else:
        region = np.zeros((size, size), np.uint8)
        hull = cv2.convexHull(np.round(hull_landmarks).astype(np.int32))
        cv2.fillConvexPoly(region, hull, 1)
        ys, xs = np.nonzero(region)
        if xs.size == 0:
            return 1.0
    points = apply_affine(invert_affine(matrix), np.stack([xs.ravel(), ys.ravel()], axis=1))
    inside = (points[:, 0] >= -0.5) & (points[:, 0] <= width - 0.5) & (points[:, 1] >= -0.5) & (points[:, 1] <= height - 0.5)
    return float(1.0 - inside.mean())


def is_grayscale(image_bgr: np.ndarray) -> bool:
    channels = image_bgr.astype(np.int16)
    return bool(np.abs(channels[..., 0] - channels[..., 1]).mean() < 2 and np.abs(channels[..., 1] - channels[..., 2]).mean() < 2)


def encode_jpeg(crop_bgr: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", crop_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an array of shape {crop_bgr.shape} dtype {crop_bgr.dtype}")
    return encoded.reshape(-1)


# ---------------------------------------------------------------------------------------------- worker pool
_worker_aligner: FaceAligner | None = None
_worker_root: Path | None = None


def _init_worker(data_root: str, options: PrepareOptions) -> None:
    global _worker_aligner, _worker_root
    cv2.setNumThreads(1)
    _worker_aligner = FaceAligner(options, threads=1)
    _worker_root = Path(data_root)


def _process_one(item: tuple[int, SourceImage]) -> tuple[int, bytes | None, dict | str]:
    index, source = item
    image = cv2.imread(str(_worker_root / source.path), cv2.IMREAD_COLOR)
    crop, record = _worker_aligner.align(image, central=source.source == "lfw")
    if crop is None:
        return index, None, record
    return index, encode_jpeg(crop, CACHE_JPEG_QUALITY).tobytes(), record


# ---------------------------------------------------------------------------------------------- crop packs
def write_crop_pack(folder: Path, jpegs: list[np.ndarray], columns: dict[str, np.ndarray], provenance: dict,
                    column_names: tuple[str, ...] = COLUMNS) -> dict:
    """Write crops.npz + manifest.json (the format in this module's docstring); returns the manifest."""
    folder = Path(folder)
    count = len(jpegs)
    offsets = np.zeros(count + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(j) for j in jpegs])
    arrays = {"jpeg": np.concatenate(jpegs).astype(np.uint8) if count else np.zeros(0, np.uint8), "offsets": offsets}
    for name in column_names:
        array = np.asarray(columns[name], dtype=COLUMN_DTYPES[name])
        if len(array) != count:
            raise ValueError(f"column {name!r} has {len(array)} rows, expected {count} (one per crop)")
        arrays[name] = array
    manifest = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "count": count, "color": "BGR", **provenance}
    folder.mkdir(parents=True, exist_ok=True)
    # Write to temporary names first so an interrupted run never leaves a manifest beside the wrong crops.
    np.savez(folder / "crops.tmp.npz", **arrays)
    (folder / "manifest.tmp.json").write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(folder / "crops.tmp.npz", folder / "crops.npz")
    os.replace(folder / "manifest.tmp.json", folder / "manifest.json")
    return manifest


def read_crop_pack(folder: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays of crops.npz, manifest) after checking the format name and version."""
    folder = Path(folder)
    manifest_path, arrays_path = folder / "manifest.json", folder / "crops.npz"
    if not manifest_path.is_file() or not arrays_path.is_file():
        raise FileNotFoundError(f"expected a crop pack (crops.npz + manifest.json) in {folder} "
                                f"(make one with `deid-train prepare`)")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT_NAME or manifest.get("version") != FORMAT_VERSION:
        raise ValueError(f"{manifest_path}: expected format {FORMAT_NAME} v{FORMAT_VERSION}, "
                         f"got {manifest.get('format')} v{manifest.get('version')}")
    with np.load(arrays_path, allow_pickle=False) as pack:
        arrays = {name: pack[name] for name in pack.files}
    if len(arrays["offsets"]) != manifest["count"] + 1:
        raise ValueError(f"{arrays_path} holds {len(arrays['offsets']) - 1} crops, the manifest says {manifest['count']}")
    return arrays, manifest


def decode_crop(arrays: dict[str, np.ndarray], index: int) -> np.ndarray:
    """BGR uint8 128x128x3 crop number `index` of a crop pack."""
    offsets = arrays["offsets"]
    return cv2.imdecode(arrays["jpeg"][offsets[index]:offsets[index + 1]], cv2.IMREAD_COLOR)


def crop_geometry() -> dict:
    from deid_sdk import align

    if align.CROP_SIZE != CROP_SIZE:
        raise ValueError(f"deid_sdk.align.CROP_SIZE is {align.CROP_SIZE}, this module expects {CROP_SIZE}")
    return {"size": CROP_SIZE, "padding": align.CROP_PADDING, "shift_up": align.CROP_SHIFT_UP,
            "interpolation": "linear", "border": "replicate"}


# ---------------------------------------------------------------------------------------------- cache
def prepare_cache(data_root: Path, out_dir: Path, workers: int = 2, options: PrepareOptions = PrepareOptions(),
                  limit_per_source: int | None = None, use_utkface: bool = True, use_lfw: bool = True) -> dict:
    """Align every training image into a crop pack at out_dir; returns the manifest."""
    from tqdm import tqdm

    data_root = Path(data_root)
    sources = list_sources(data_root, use_utkface, use_lfw, limit_per_source)
    started = time.perf_counter()
    results: list[tuple[int, bytes | None, dict | str]] = []
    items = list(enumerate(sources))
    if workers > 1:
        import multiprocessing

        context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with context.Pool(workers, initializer=_init_worker, initargs=(str(data_root), options)) as pool:
            for result in tqdm(pool.imap(_process_one, items, chunksize=32), total=len(items), desc="align",
                               unit="img", mininterval=5):
                results.append(result)
    else:
        _init_worker(str(data_root), options)
        for item in tqdm(items, desc="align", unit="img", mininterval=5):
            results.append(_process_one(item))
    elapsed = time.perf_counter() - started

    skipped: dict[str, int] = {}
    kept = []
    for index, jpeg, record in results:
        if jpeg is None:
            skipped[record] = skipped.get(record, 0) + 1
        else:
            kept.append((sources[index], np.frombuffer(jpeg, np.uint8), record))
    identities = sorted({source.identity for source, _, _ in kept})
    label_of = {name: i for i, name in enumerate(identities)}
    columns = _columns([(source, record) for source, _, record in kept], label_of)
    manifest = {
        "crop": crop_geometry(), "jpeg_quality": CACHE_JPEG_QUALITY, "sources": list(SOURCES),
        "identities": identities, "files": [source.path for source, _, _ in kept], "data_root": str(data_root),
        "detector": "deid_sdk.detect.CenterFaceDetector", "landmarks": "deid_sdk.landmarks.LandmarkPredictor",
        "options": dataclasses.asdict(options),
        "stats": {"images": len(sources), "kept": len(kept), "skipped": skipped, "seconds": round(elapsed, 1),
                  "per_source": {name: int(sum(s.source == name for s, _, _ in kept)) for name in SOURCES}},
    }
    return write_crop_pack(out_dir, [jpeg for _, jpeg, _ in kept], columns, manifest)


def _columns(rows: list[tuple[SourceImage, dict]], label_of: dict[str, int]) -> dict[str, np.ndarray]:
    size = len(rows)
    columns = {
        "landmarks": np.stack([r["landmarks"] for _, r in rows]) if size else np.zeros((0, 68, 2)),
        "matrix": np.stack([r["matrix"] for _, r in rows]) if size else np.zeros((0, 2, 3)),
        "label": [label_of[s.identity] for s, _ in rows],
        "source": [SOURCES.index(s.source) for s, _ in rows],
        "age": [s.age for s, _ in rows], "gender": [s.gender for s, _ in rows], "race": [s.race for s, _ in rows],
    }
    for name in ("score", "interocular", "fit_rms", "outside", "hull_outside", "grayscale"):
        columns[name] = [r[name] for _, r in rows]
    return columns


# ---------------------------------------------------------------------------------------------- shard
def usable_for_shard(arrays: dict[str, np.ndarray], max_fit_rms: float = 4.0, max_hull_outside: float = 0.02) -> np.ndarray:
    """Boolean mask of cache crops clean enough to travel: colour, plausible landmarks (good similarity fit,
    all 68 inside the crop) and a face region that is real picture, not border smear."""
    landmarks = arrays["landmarks"]
    inside = ((landmarks >= 0) & (landmarks <= 127)).all(axis=(1, 2))
    return ((~arrays["grayscale"]) & (arrays["fit_rms"] <= max_fit_rms)
            & (arrays["hull_outside"] <= max_hull_outside) & inside)


def shard_order(arrays: dict[str, np.ndarray], usable: np.ndarray, seed: int = 0) -> list[int]:
    """Cache indices in travel priority: UTKFace and LFW alternating; within each, diversity first.

    UTKFace: round robin over (age band, race, gender) strata, so rare groups (children, elderly, small
    ethnic groups) are in even a small shard. LFW: round robin over people, two photos per visit (pairs of the
    same person allow cross-photo targets), so the shard holds as many identities as possible.
    """
    rng = random.Random(seed)
    indices = np.flatnonzero(usable)
    utkface = [int(i) for i in indices if arrays["source"][i] == SOURCES.index("utkface")]
    lfw = [int(i) for i in indices if arrays["source"][i] == SOURCES.index("lfw")]
    age_bands = np.array([0, 3, 10, 16, 20, 25, 30, 40, 50, 60, 70, 200])

    strata: dict[tuple, list[int]] = {}
    for i in utkface:
        band = int(np.searchsorted(age_bands, arrays["age"][i], side="right"))
        strata.setdefault((band, int(arrays["race"][i]), int(arrays["gender"][i])), []).append(i)
    utkface_order = _round_robin(strata, rng, per_visit=1)

    people: dict[int, list[int]] = {}
    for i in lfw:
        people.setdefault(int(arrays["label"][i]), []).append(i)
    lfw_order = _round_robin(people, rng, per_visit=2)

    order = []
    for pair in zip(utkface_order, lfw_order):
        order += pair
    longer = utkface_order if len(utkface_order) > len(lfw_order) else lfw_order
    order += longer[min(len(utkface_order), len(lfw_order)):]
    return order


def _round_robin(groups: dict, rng: random.Random, per_visit: int) -> list[int]:
    queues = []
    for key in sorted(groups):
        members = list(groups[key])
        rng.shuffle(members)
        queues.append(members)
    rng.shuffle(queues)
    order = []
    while queues:
        remaining = []
        for queue in queues:
            order += queue[:per_visit]
            if len(queue) > per_visit:
                remaining.append(queue[per_visit:])
        queues = remaining
    return order


def write_shard(cache_dir: Path, shard_dir: Path, shard_mib: float = 30.0, seed: int = 0,
                quality: int = SHARD_JPEG_QUALITY, data_root: Path | None = None) -> dict:
    """Re-warp the best cache crops from their sources at JPEG `quality` until `shard_mib` MiB is used.

    Re-warping (not re-encoding the cache's JPEGs) avoids compressing twice. The budget counts the whole
    directory (crops.npz and manifest.json). Returns the shard's manifest.
    """
    from tqdm import tqdm

    arrays, cache_manifest = read_crop_pack(cache_dir)
    data_root = Path(data_root or cache_manifest["data_root"])
    budget = int(shard_mib * 2 ** 20)
    order = shard_order(arrays, usable_for_shard(arrays), seed)
    size = cache_manifest["crop"]["size"]
    # Per-crop bytes besides the JPEG: the npz columns plus about one manifest line (file name + identity).
    column_bytes = sum(np.dtype(COLUMN_DTYPES[c]).itemsize * (136 if c == "landmarks" else 1) for c in SHARD_COLUMNS)
    fixed_bytes = 64 * 1024
    chosen, jpegs, used = [], [], fixed_bytes
    for index in tqdm(order, desc="shard", unit="crop", mininterval=5):
        path = cache_manifest["files"][index]
        image = cv2.imread(str(data_root / path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"source image missing for the shard: {data_root / path}")
        crop = cv2.warpAffine(image, arrays["matrix"][index], (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        jpeg = encode_jpeg(crop, quality)
        cost = len(jpeg) + column_bytes + len(path) + 2 * len(cache_manifest["identities"][arrays["label"][index]]) + 16
        if used + cost > budget:
            break
        chosen.append(index)
        jpegs.append(jpeg)
        used += cost
    while True:
        manifest = _write_shard_subset(shard_dir, arrays, cache_manifest, chosen, jpegs, quality, seed, shard_mib)
        total = sum(f.stat().st_size for f in Path(shard_dir).iterdir() if f.is_file())
        if total <= budget:
            manifest["stats"]["bytes"] = total
            return manifest
        # The per-crop estimate was short: drop enough crops from the tail (lowest priority) and rewrite.
        drop = int(np.ceil((total - budget) / max(1.0, total / len(chosen)))) + 1
        chosen, jpegs = chosen[:-drop], jpegs[:-drop]


def _write_shard_subset(shard_dir: Path, arrays: dict, cache_manifest: dict, chosen: list[int],
                        jpegs: list[np.ndarray], quality: int, seed: int, shard_mib: float) -> dict:
    chosen_array = np.array(chosen, dtype=np.int64)
    old_labels = arrays["label"][chosen_array]
    kept_labels = sorted(set(int(v) for v in old_labels))
    relabel = {old: new for new, old in enumerate(kept_labels)}
    columns = {name: arrays[name][chosen_array] for name in SHARD_COLUMNS}
    columns["label"] = np.array([relabel[int(v)] for v in old_labels], dtype=np.int32)
    source = columns["source"]
    utkface, lfw = source == SOURCES.index("utkface"), source == SOURCES.index("lfw")
    stats = {
        "crops": len(chosen), "utkface": int(utkface.sum()), "lfw": int(lfw.sum()),
        "lfw_identities": len(set(columns["label"][lfw].tolist())),
        "lfw_identities_with_two_or_more": int((np.bincount(columns["label"][lfw]) >= 2).sum()) if lfw.any() else 0,
        "mean_jpeg_bytes": round(float(np.mean([len(j) for j in jpegs])), 1) if jpegs else 0.0,
        "utkface_race_counts": np.bincount(columns["race"][utkface].clip(0), minlength=5).tolist(),
        "utkface_age_percentiles_0_25_50_75_100": (np.percentile(columns["age"][utkface], [0, 25, 50, 75, 100]).tolist()
                                                   if utkface.any() else []),
    }
    provenance = {
        "crop": cache_manifest["crop"], "jpeg_quality": quality, "sources": list(SOURCES),
        "identities": [cache_manifest["identities"][old] for old in kept_labels],
        "files": [cache_manifest["files"][i] for i in chosen], "seed": seed, "budget_mib": shard_mib,
        "stats": stats,
    }
    return write_crop_pack(shard_dir, jpegs, columns, provenance, SHARD_COLUMNS)


# ---------------------------------------------------------------------------------------------- CLI
def register(subparsers) -> None:
    """Add `prepare` to deid-train's subcommands."""
    parser = subparsers.add_parser("prepare", help="align training faces into a crop cache and a travelling shard",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="shared data folder (../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE_DIR, help="cache folder (default %(default)s)")
    parser.add_argument("--shard", type=Path, default=None, help="also write a travelling shard to this folder")
    parser.add_argument("--shard-mib", type=float, default=30.0, help="shard byte budget in MiB (default 30)")
    parser.add_argument("--shard-only", action="store_true", help="reuse an existing cache, only (re)write the shard")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per source (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(handler=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not args.shard_only:
        manifest = prepare_cache(args.data_root, args.out, workers=args.workers, limit_per_source=args.limit)
        print(json.dumps(manifest["stats"], indent=1))
        print(f"cache: {args.out}")
    if args.shard is not None:
        shard = write_shard(args.out, args.shard, args.shard_mib, seed=args.seed, data_root=args.data_root)
        print(json.dumps(shard["stats"], indent=1))
        print(f"shard: {args.shard}")
    return 0
