"""The per-frame pipeline (the paper's test-time steps a-h) behind `Filter`.

detect -> 68 landmarks -> track -> similarity to the mean face -> 128x128 crop -> generator(crop, target
identity, strength) -> warp back and mix by the mask, only inside the feathered convex hull of the landmarks.
Every detected face ends up either de-identified or covered by the fallback: a tiny face, no landmarks, no model or
an error of a model at run time (`deid_sdk.errors.ModelError`: inference failure, wrong output shape, non-finite
output; logged once per kind) blurs or pixelates the face instead. Any other exception is a bug: every face of
the frame not yet de-identified is covered with the fallback in the output buffer first (so even an in-place
frame never holds an uncovered face), then the exception propagates. A detector failure propagates too: no face
of that frame is known (the live loop then writes the frame black).

The privacy guard (deid_sdk.privacy, on by default) checks the final blended output of each track with SFace and
climbs a ladder of rungs up to the fallback until the face is no longer recognizable; a guard error sends the
frame's faces to the fallback, as any model error does. A track already on the fallback rung (it never climbs
down) skips landmarks, identity, warp, generator and blend: the fallback would cover their output.
For streams, deid_sdk.pipelined runs detection of the next frame ahead in a worker thread.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from deid_sdk import align, ops
from deid_sdk.backends import check_backend
from deid_sdk.detect import CenterFaceDetector, Detection, FaceDetector
from deid_sdk.errors import ModelError
from deid_sdk.fallback import FALLBACK_MODES, anonymize_box
from deid_sdk.generator import Generator, default_generator_path
from deid_sdk.identity import IDENTITY_SIZE
from deid_sdk.landmarks import LandmarkPredictor
from deid_sdk.model_files import (BUILD_COMMAND, GENERATOR_FILES, IDENTITY_FILES, resolve_precision,
                                  shipped_model)
from deid_sdk.privacy import DEFAULT_THRESHOLD, FALLBACK, GENERATOR, PrivacyGuard, PrivacySummary, check_privacy
from deid_sdk.recall import DEFAULT_RECALL_DETECTOR, check_recall_detector, with_recall
from deid_sdk.scene_cut import SceneCutDetector
from deid_sdk.shared_models import SharedModels
from deid_sdk.track import FaceTracker, Track, smooth_landmarks
from deid_sdk.validate import (COLOR_ORDERS, check_bool, check_choice, check_detect_width, check_frame,
                               check_open_unit_interval, check_positive_int, check_unit_interval)

log = logging.getLogger("deid_sdk")

STAGES = ("detect", "landmarks", "identity", "warp", "generator", "blend", "privacy", "fallback", "total")
IMPLS = ("auto", "cpu", "ref")  # warp/blend kernels for NumPy frames (deid_sdk.ops)
# A face counts as landmarked only when its hull covers a reasonable part of the detector box.
_MIN_HULL_BOX_RATIO = 0.15


@dataclass
class Face:
    """What the filter did to one detected face in the last frame."""
    box: np.ndarray
    score: float
    track_id: int
    status: str                       # "deidentified" or "fallback"
    reason: str = ""                  # why the fallback was used
    landmarks: np.ndarray | None = field(default=None, repr=False)
    rung: str = ""                    # the privacy ladder's rung the face left on (deid_sdk.privacy.RUNGS)
    similarity: float | None = None   # the guard's last SFace cosine output vs input (None: not checked this frame)
    checks: int = 0                   # guard checks made on this face in this frame
    failed_checks: int = 0


class Filter:
    """De-identify faces in video frames.

    >>> f = Filter()                  # bundled model, backend="auto"
    >>> out = f(frame)                # HxWx3 uint8 BGR -> new array, same shape and dtype
    >>> f(frame, inplace=True)        # writes into frame
    """

    def __init__(self, model: str | Path | None = None, *, target: np.ndarray | None = None,
                 strength: float = 1.0, fallback: str = "blur", min_face: int = 24, threshold: float = 0.5,
                 backend: str = "auto", color: str = "bgr", feather: float | None = None, impl: str = "auto",
                 detect_width: int | None = None, tracking: bool = True, threads: int = 2,
                 detector: FaceDetector | None = None, use_generator: bool = True, precision: str = "fp32",
                 privacy: str = "default", privacy_threshold: float = DEFAULT_THRESHOLD,
                 recall_detector: str = DEFAULT_RECALL_DETECTOR, models: SharedModels | None = None):
        # Every option is checked here, before any model loads, with a message naming it.
        if model is not None and not isinstance(model, (str, Path)):
            raise TypeError(f"model must be a path to a generator ONNX file or None, got {type(model).__name__}")
        self.strength = check_unit_interval(strength, "strength")
        self.fallback = check_choice(fallback, FALLBACK_MODES, "fallback")
        self.color = check_choice(color, COLOR_ORDERS, "color")
        self.min_face = check_positive_int(min_face, "min_face")
        check_open_unit_interval(threshold, "threshold")
        self.backend = check_backend(backend)
        self.feather = _check_feather(feather)
        self.impl = ops.check_impl(check_choice(impl, IMPLS, "impl"))
        check_detect_width(detect_width)
        tracking = check_bool(tracking, "tracking")
        self.threads = check_positive_int(threads, "threads")
        if detector is not None and not callable(getattr(detector, "detect", None)):
            raise TypeError(f"detector must have a detect(frame_bgr) -> [Detection] method, got "
                            f"{type(detector).__name__}")
        use_generator = check_bool(use_generator, "use_generator")
        self.precision = resolve_precision(precision)
        if model is not None and precision != "fp32":
            raise ValueError(f"precision={precision!r} chooses one of the bundled generator files; with model= "
                             "pass the file of the precision you want and leave precision at 'fp32'")
        self.privacy = check_privacy(privacy)
        privacy_threshold = check_open_unit_interval(privacy_threshold, "privacy_threshold")
        recall_detector = check_recall_detector(recall_detector)
        if models is not None and not isinstance(models, SharedModels):
            raise TypeError(f"models must be a SharedModels (deid_sdk.shared_models) or None, got "
                            f"{type(models).__name__}")
        target = _check_target(target)

        # models: loaded once for several streams (deid_sdk.shared_models); this Filter then loads none.
        # recall_detector: a second detector beside the main one (deid_sdk.recall; models.detector has it already).
        self.detector = models.detector if detector is None and models is not None else with_recall(
            detector or CenterFaceDetector(threshold=threshold, detect_width=detect_width, threads=self.threads,
                                           backend=backend), recall_detector)
        self.landmark_predictor = models.landmark_predictor if models is not None else LandmarkPredictor()
        self.tracker = FaceTracker(enabled=tracking)
        self.scene_cuts = SceneCutDetector()
        self.generator: Generator | None = None
        self.identity_encoder = None
        self.faces: list[Face] = []
        self.stats: dict[str, float] = {stage: 0.0 for stage in STAGES} | {"fps": 0.0, "faces": 0}
        self._target_identity: np.ndarray | None = None
        self.guard: PrivacyGuard | None = None
        self.privacy_summary = PrivacySummary()
        self._faults_logged: set[str] = set()
        self._closed = False

        if not use_generator:  # the user asked for the fallback on every face (e.g. guaranteed blur)
            model_path = None
            log.info("generator disabled (use_generator=False): every face gets the %r fallback", self.fallback)
        else:
            model_path = Path(model) if model is not None else default_generator_path(self.precision)
            if model is not None and not model_path.is_file():
                raise FileNotFoundError(f"generator model not found: {model}. Pass model=None for the bundled "
                                        "model, or export one with `deid-train export`")
            if model_path is None and self.precision != "fp32":
                raise FileNotFoundError(f"precision={precision!r}: {GENERATOR_FILES[self.precision]} is not "
                                        f"installed; generate the shipped models with {BUILD_COMMAND}")
            _announce_precision(precision, self.precision, model_path)
            if model_path is None:
                log.warning("no trained generator is installed (models/deid_generator.onnx): every face is "
                            "protected with the %r fallback instead of being replaced", self.fallback)
        if model_path is not None:
            self.generator = models.generator if models is not None else Generator(
                model_path, backend=backend, threads=self.threads, precision=self.precision)
            if (self.generator.manifest or {}).get("privacy_accepted") is False:
                log.warning("%s: %s", model_path.name, self.generator.manifest.get("privacy_note", "not accepted "
                            "for privacy (see models/manifest.json)"))
            from deid_sdk.identity import IdentityEncoder

            identity_model = shipped_model(IDENTITY_FILES[self.precision]) if model is None else None
            self.identity_encoder = (models.identity_encoder if models is not None
                                     else IdentityEncoder(identity_model, threads=self.threads, backend=backend,
                                                          precision=self.precision))
            if self.privacy != "off":  # only generator output needs checking: the fallback always passes
                self.guard = PrivacyGuard(self.privacy, privacy_threshold, threads=self.threads, backend=backend)
            if target is not None:
                self._target_identity = self._identity_from_target(target)

    @property
    def generator_available(self) -> bool:
        return self.generator is not None

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> Filter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def reset(self) -> None:
        """Start over, as for a new video: forget every track and the identities they hold."""
        self.tracker.reset()
        self.scene_cuts.reset()
        self.faces = []

    def close(self) -> None:
        """Release the models and forget every identity held in memory."""
        self.generator = None
        self.identity_encoder = None
        self.guard = None
        self._target_identity = None
        self.tracker.reset()
        self._closed = True

    # -- the pipeline ----------------------------------------------------------------------------
    def __call__(self, frame: np.ndarray, inplace: bool = False) -> np.ndarray:
        """De-identify one HxWx3 uint8 frame (in `color` order); returns the output frame.

        `frame` may also be a CUDA array (`__cuda_array_interface__`: a jetson_utils.cudaImage, a torch/CuPy
        tensor; deid_sdk.cuda_frame says how it is read). With inplace=True the result is written into the
        frame's own memory and the frame object itself is returned (the same kind as the input: a Jetson camera
        loop makes no copy); with inplace=False a new NumPy array is returned and the frame is not touched.
        """
        if self._closed:
            raise RuntimeError("this Filter is closed; create a new one")
        inplace = check_bool(inplace, "inplace")
        if ops.is_cuda_array(frame):
            from deid_sdk.cuda_frame import host_frame

            with host_frame(frame, writable=inplace) as pixels:
                output = self(pixels, inplace=inplace)
            return frame if inplace else output
        check_frame(frame)  # also refuses strided views: in place would otherwise mean a copy
        if inplace and not frame.flags.writeable:
            raise ValueError("inplace=True needs a writeable frame, got a read-only array")
        start = time.perf_counter()
        timings = {stage: 0.0 for stage in STAGES}
        output = frame if inplace else frame.copy()
        bgr = output if self.color == "bgr" else cv2.cvtColor(output, cv2.COLOR_RGB2BGR)

        tick = time.perf_counter()
        if self.tracker.enabled and self.scene_cuts.is_cut(bgr):  # a new shot: nobody carries over
            self.tracker.reset()
        detections = list(self.detector.detect(bgr))
        timings["detect"] = _ms(tick)
        tracks = self.tracker.update([detection.box for detection in detections],
                                     [detection.points for detection in detections])
        if self.tracker.enabled:  # missed faces are protected where they are predicted to be
            for track in self.tracker.coasting():
                predicted = _predicted_detection(track, bgr.shape)
                if predicted is not None:
                    detections.append(predicted)
                    tracks.append(track)
        faces = [Face(box=d.box, score=d.score, track_id=t.track_id, status="pending")
                 for d, t in zip(detections, tracks)]
        try:
            if self.guard is not None:  # the input identities, before any pixel of the frame changes
                tick = time.perf_counter()
                self.guard.observe_inputs(bgr, "bgr", detections, tracks)
                timings["privacy"] = _ms(tick)
            self._deidentify(output, bgr, detections, tracks, faces, timings)
            if self.guard is not None:
                tick = time.perf_counter()
                self.guard.enforce(output, self.color, detections, tracks, faces)
                timings["privacy"] += _ms(tick)
        except ModelError as error:  # a model failed on this frame: every face not yet verified gets the fallback
            self._log_fault_once(error)
            for face in faces:
                if face.status != "fallback":
                    face.status, face.reason = "fallback", f"model error: {error.kind}"
        except BaseException:  # a bug: never leave a face uncovered in the output, then let it surface
            self._cover_with_fallback(output, faces)
            raise

        tick = time.perf_counter()
        self._cover_with_fallback(output, faces)
        timings["fallback"] = _ms(tick)
        timings["total"] = _ms(start)
        self.faces = faces
        for face in faces:
            self.privacy_summary.add(face)
        self._update_stats(timings, len(faces))
        return output

    def _cover_with_fallback(self, output: np.ndarray, faces: list[Face]) -> None:
        for face in faces:
            if face.status != "deidentified":
                anonymize_box(output, face.box, self.fallback)
                face.status = "fallback"
                face.rung = FALLBACK
            elif not face.rung:  # privacy="off": the generator's output, unchecked
                face.rung = GENERATOR

    def _log_fault_once(self, error: ModelError) -> None:
        if error.kind not in self._faults_logged:
            self._faults_logged.add(error.kind)
            log.error("%s; the faces concerned get the %r fallback (logged once per kind of fault)", error,
                      self.fallback)

    def _deidentify(self, output, bgr, detections: list[Detection], tracks: list[Track], faces: list[Face],
                    timings: dict[str, float]) -> None:
        tick = time.perf_counter()
        candidates = []
        for index, (detection, track, face) in enumerate(zip(detections, tracks, faces)):
            box = detection.box
            if min(box[2] - box[0], box[3] - box[1]) < self.min_face:
                face.status, face.reason = "fallback", f"face smaller than min_face={self.min_face}px"
                continue
            if self.generator is None:
                face.status, face.reason = "fallback", "no generator model installed"
                continue
            if track.privacy is not None and track.privacy.on_fallback:  # the generator's work would be covered
                face.status, face.reason = "fallback", "privacy guard: track on the fallback rung"
                continue
            landmarks = self.landmark_predictor.predict(bgr, box)
            problem = _landmark_fit_problem(landmarks, box, detection.points)
            if problem:
                face.status, face.reason = "fallback", problem
                continue
            track.landmarks = smooth_landmarks(track.landmarks, landmarks)
            face.landmarks = track.landmarks
            candidates.append(index)
        timings["landmarks"] = _ms(tick)
        if not candidates:
            return

        matrices = np.stack([align.face_to_crop(faces[i].landmarks) for i in candidates])
        tick = time.perf_counter()
        identities = np.stack([self._identity_for(bgr, tracks[i], matrices[k]) for k, i in enumerate(candidates)])
        timings["identity"] = _ms(tick)

        pixel_format = self.color
        tick = time.perf_counter()
        crops = ops.warp_to_crop(output, matrices, size=align.CROP_SIZE, pixel_format=pixel_format, impl=self.impl,
                                 threads=self.threads)
        timings["warp"] = _ms(tick)
        tick = time.perf_counter()
        strengths = np.full((len(candidates), 1), self.strength, np.float32)
        images, masks = self.generator(crops, identities.astype(np.float32), strengths)
        timings["generator"] = _ms(tick)

        tick = time.perf_counter()
        hulls = [cv2.convexHull(faces[i].landmarks.astype(np.float32)).reshape(-1, 2) for i in candidates]
        feathers = [self.feather if self.feather is not None else _default_feather(faces[i].landmarks)
                    for i in candidates]
        ops.blend_from_crop(output, images, masks, matrices, hulls, feather=feathers, pixel_format=pixel_format,
                            impl=self.impl, threads=self.threads)
        for index in candidates:
            faces[index].status = "deidentified"
        timings["blend"] = _ms(tick)

    def _identity_for(self, bgr: np.ndarray, track: Track, matrix: np.ndarray) -> np.ndarray:
        if self._target_identity is not None:
            return self._target_identity
        if track.identity is None:  # the face itself when its track starts (kept in memory only)
            crop = cv2.warpAffine(bgr, matrix, (align.CROP_SIZE, align.CROP_SIZE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            track.identity = self.identity_encoder.encode_crops(crop[None])[0]
        return track.identity

    def _identity_from_target(self, target: np.ndarray) -> np.ndarray:
        if target.ndim == 1:
            return target.astype(np.float32)
        bgr = target if self.color == "bgr" else cv2.cvtColor(target, cv2.COLOR_RGB2BGR)
        detections = self.detector.detect(bgr)
        if not detections:
            raise ValueError("target: expected an image with a face, found none")
        largest = max(detections, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
        landmarks = self.landmark_predictor.predict(bgr, largest.box)
        return self.identity_encoder.encode(bgr, landmarks).astype(np.float32)

    def _update_stats(self, timings: dict[str, float], face_count: int) -> None:
        previous_fps = self.stats.get("fps", 0.0)
        fps = 1000.0 / max(timings["total"], 1e-6)
        self.stats = dict(timings)
        self.stats["fps"] = fps if previous_fps == 0.0 else 0.9 * previous_fps + 0.1 * fps
        self.stats["faces"] = face_count


_announced_precisions: set[tuple[str, str]] = set()


def _announce_precision(asked: str, precision: str, model_path: Path | None) -> None:
    """Log once per process which generator file a precision selected."""
    key = (asked, str(model_path))
    if key not in _announced_precisions:
        _announced_precisions.add(key)
        log.info("precision %s%s: generator %s", asked, f" ({precision})" if asked != precision else "",
                 model_path)


def _predicted_detection(track: Track, shape) -> Detection | None:
    """A coasting track's predicted box and points as a detection (None once it has left the frame)."""
    height, width = shape[:2]
    box = np.clip(track.box, 0, [width, height, width, height]).astype(np.float32)
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    return Detection(box=box, score=0.0, points=track.points.astype(np.float32), predicted=True)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def _check_feather(feather) -> float | None:
    if feather is None:
        return None
    if isinstance(feather, bool) or not isinstance(feather, (int, float, np.integer, np.floating)):
        raise TypeError(f"feather must be a number of pixels or None, got {feather!r}")
    if not np.isfinite(feather) or feather < 0:
        raise ValueError(f"feather must be a finite number of pixels >= 0 or None, got {feather!r}")
    return float(feather)


def _check_target(target) -> np.ndarray | None:
    """None, an identity (IDENTITY_SIZE finite values) or an image with a face (checked like a frame)."""
    if target is None:
        return None
    if isinstance(target, np.ndarray) and target.ndim == 1:
        if target.shape != (IDENTITY_SIZE,):
            raise ValueError(f"target identity: expected shape ({IDENTITY_SIZE},), got {target.shape}")
        if target.dtype.kind not in "fiu" or not np.all(np.isfinite(target)):
            raise ValueError("target identity: expected finite numbers")
        return target
    return check_frame(target, "target")


def _default_feather(landmarks: np.ndarray) -> float:
    """A feathered edge about a tenth of the face width: no visible seam, most of the face still replaced."""
    width = np.ptp(landmarks[:, 0])
    return float(np.clip(width * 0.08, 2.0, 24.0))


def _landmark_fit_problem(landmarks: np.ndarray, box: np.ndarray, points) -> str | None:
    """Why dlib's fit (it always returns 68 points) cannot be used for the blend, or None when it can."""
    if not np.all(np.isfinite(landmarks)):
        return "landmarks not found"
    box_area = float((box[2] - box[0]) * (box[3] - box[1]))
    hull = cv2.convexHull(landmarks.astype(np.float32))
    center = landmarks.mean(axis=0)
    if (box_area <= 0 or float(cv2.contourArea(hull)) < _MIN_HULL_BOX_RATIO * box_area
            or not (box[0] <= center[0] <= box[2] and box[1] <= center[1] <= box[3])):
        return "landmarks not found"  # the fit collapsed or left the detector box
    # The blend is limited to the hull: a fit that sits too low (seen on a face cut by the frame's edge) leaves the
    # eyes as they were, so the detector's five points must lie inside it (on the 12 clips at least 0.11 face widths
    # inside). A detector that gives no points (None) leaves nothing to check.
    if points is not None and any(cv2.pointPolygonTest(hull, (float(x), float(y)), False) < 0
                                  for x, y in np.asarray(points)[:5]):
        return "landmarks disagree with the detector's eyes/nose/mouth"
    return None
