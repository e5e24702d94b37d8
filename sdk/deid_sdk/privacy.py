"""The privacy guard: every track's final output face is checked by an independent recognizer at run time.

The recognizer is SFace (deid_sdk.sface), which the generator was never trained against (its training pushes
away from dlib's ResNet, deid_train.identity_net). Per track the guard holds the SFace embedding of the *input*
face (taken at the track's first frame and refreshed every `REFRESH_FRAMES` frames, from the frame before any
pixel changes, at the detector's five points) and compares it with the embedding of the *final blended output* at
the same five points. At or above `threshold` the track climbs the ladder of `RUNGS` and the face is checked
again in the same frame; the last rung, the fallback (deid_sdk.fallback), is not checked: it always passes
(benchmarks/guard_threshold.py: its cosine to the input stays below 0.25 on all 120 LFW faces, median 0.011; applied
to the input face itself, as the Filter does for a track already on this rung, below 0.25 too, median 0.022,
q90 0.131). A track keeps the lowest rung that passed (it never climbs down: a face that leaked once is not offered
to the same risk again, and the look of the track does not flip between rungs).

Cadence: `privacy="strict"` checks every face in every frame; "default" checks a track's first frame (no new
track leaves on the generator's word alone), every frame right after it climbed, and then every
`DEFAULT_RECHECK_FRAMES` frames; "off" checks nothing. Embeddings live in the tracks, in memory only; nothing is
written anywhere.

Threshold: 0.2 cosine, well below SFace's match threshold 0.369 (FAR 0.1% on 8M LFW pairs). Measured with
`python benchmarks/guard_threshold.py --identities 120` (120 LFW people, CenterFace's points, the guard's SFace):
different people's faces have cosine median 0.092, 90th percentile 0.204, 99th 0.304, 99.9th 0.372 (so the
measurement agrees with the FAR 0.1% threshold). At 0.2 an output that passes looks no more like its own input
than the most similar tenth of strangers do: a margin for other recognizers and for frames between checks, yet
above what half of all strangers reach, so a truly changed face can pass. (Lower, e.g. 0.1, would reject outputs
as unlike the input as a typical stranger is.)

Limits: it proves the output unrecognizable to one recognizer (SFace) at the face's position; another
recognizer may still match (deid-eval reports MobileFaceNet as the independent judge).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from deid_sdk.validate import check_choice

PRIVACY_MODES = ("default", "strict", "off")
# The ladder, lowest first: the generator's output; that output blurred inside the landmark hull (keeps the pose,
# the colours and the outline of the replaced face, removes the fine texture SFace keys on); the fallback.
RUNGS = ("generator", "generator+blur", "fallback")
GENERATOR, GENERATOR_BLUR, FALLBACK = RUNGS
DEFAULT_THRESHOLD = 0.2
DEFAULT_RECHECK_FRAMES = 5
REFRESH_FRAMES = 30
_HULL_BLUR_SIGMA = 1 / 24  # of the face's landmark width


@dataclass
class TrackPrivacy:
    """The guard's memory of one track (kept on the Track, in memory only)."""
    identity: np.ndarray | None = field(default=None, repr=False)  # SFace embedding of the input face
    frames_since_refresh: int = 0
    frames_since_check: int | None = None  # None: never checked
    rung: int = 0

    @property
    def on_fallback(self) -> bool:
        """The track has reached the last rung: it stays there (the ladder is never climbed down)."""
        return self.rung >= RUNGS.index(FALLBACK)


@dataclass
class PrivacySummary:
    """Faces output so far, by rung, and the guard's checks (for `deid run`'s summary)."""
    faces: int = 0
    per_rung: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUNGS, 0))
    checks: int = 0
    failed_checks: int = 0

    def add(self, face) -> None:
        """One output face (a deid_sdk.filter.Face)."""
        self.faces += 1
        self.per_rung[face.rung] += 1
        self.checks += face.checks
        self.failed_checks += face.failed_checks

    def describe(self) -> str:
        if not self.faces:
            return "privacy: no faces"
        shares = ", ".join(f"{rung} {count / self.faces:.1%}" for rung, count in self.per_rung.items())
        return (f"privacy: {self.faces} faces output ({shares}); {self.checks} guard checks, "
                f"{self.failed_checks} failed and climbed a rung")


def check_privacy(privacy) -> str:
    return check_choice(privacy, PRIVACY_MODES, "privacy")


class PrivacyGuard:
    """SFace check of the final output of each track; see the module doc."""

    def __init__(self, mode: str = "default", threshold: float = DEFAULT_THRESHOLD, threads: int = 2,
                 backend: str = "auto"):
        from deid_sdk.sface import SFaceRecognizer

        self.mode = check_privacy(mode)
        if mode == "off":
            raise ValueError("PrivacyGuard(mode='off'): build no guard instead")
        self.threshold = float(threshold)
        self.recheck_frames = 1 if mode == "strict" else DEFAULT_RECHECK_FRAMES
        self.recognizer = SFaceRecognizer(threads=threads, backend=backend)
        self.seconds = 0.0

    def observe_inputs(self, image: np.ndarray, color: str, detections, tracks) -> None:
        """Before any pixel of the frame changes: take (or refresh) each track's input identity."""
        start = time.perf_counter()
        due = []
        for detection, track in zip(detections, tracks):
            state = track.privacy if track.privacy is not None else TrackPrivacy()
            track.privacy = state
            # A predicted place (a missed face) may hold no face: never take the identity from it.
            due_now = state.identity is None or state.frames_since_refresh >= REFRESH_FRAMES
            if due_now and not detection.predicted:
                due.append((detection, state))
            else:
                state.frames_since_refresh += 1
        if due:
            embeddings = self._embed(image, color, [detection.points for detection, _ in due])
            for (_, state), embedding in zip(due, embeddings):
                state.identity, state.frames_since_refresh = embedding, 1
        self.seconds += time.perf_counter() - start

    def enforce(self, output: np.ndarray, color: str, detections, tracks, faces) -> None:
        """After the blend: apply each de-identified face's rung, check those due, climb until one passes.

        Faces sent to the fallback get status "fallback"; the Filter covers them afterwards.
        """
        start = time.perf_counter()
        for detection, track, face in zip(detections, tracks, faces):
            if face.status != "deidentified":
                continue
            state: TrackPrivacy = track.privacy
            if state.on_fallback:
                self._send_to_fallback(face, "privacy guard: track on the fallback rung")
                continue
            if state.rung >= RUNGS.index(GENERATOR_BLUR):
                blur_inside_hull(output, face.landmarks)
            due = state.frames_since_check is None or state.frames_since_check + 1 >= self.recheck_frames
            if not due:
                state.frames_since_check += 1
                face.rung = RUNGS[state.rung]
                continue
            self._check_and_climb(output, color, detection, state, face)
        self.seconds += time.perf_counter() - start

    def _check_and_climb(self, output, color, detection, state: TrackPrivacy, face) -> None:
        state.frames_since_check = 0
        while True:
            similarity = float(self._embed(output, color, [detection.points])[0] @ state.identity)
            face.similarity, face.checks = similarity, face.checks + 1
            if similarity < self.threshold:
                face.rung = RUNGS[state.rung]
                return
            state.rung += 1
            face.failed_checks += 1
            if RUNGS[state.rung] == FALLBACK:  # the last rung: always passes, nothing to check
                self._send_to_fallback(face, f"privacy guard: SFace similarity {similarity:.2f} >= "
                                             f"{self.threshold:.2f} on {RUNGS[state.rung - 1]}")
                return
            blur_inside_hull(output, face.landmarks)

    @staticmethod
    def _send_to_fallback(face, reason: str) -> None:
        face.status, face.reason, face.rung = "fallback", reason, FALLBACK

    def _embed(self, image: np.ndarray, color: str, points: list[np.ndarray]) -> np.ndarray:
        from deid_sdk.align import align_five_points

        aligned = np.stack([align_five_points(image, p) for p in points])
        if color == "rgb":
            aligned = np.ascontiguousarray(aligned[..., ::-1])
        return self.recognizer.embed_aligned(aligned)


def blur_inside_hull(image: np.ndarray, landmarks: np.ndarray) -> None:
    """Gaussian-blur the face inside the convex hull of its 68 landmarks, in place; the feather runs inwards
    so no pixel outside the hull changes (as for the generator's blend)."""
    hull = cv2.convexHull(landmarks.astype(np.float32)).reshape(-1, 2)
    width = float(np.ptp(landmarks[:, 0]))
    sigma = max(1.0, width * _HULL_BLUR_SIGMA)
    pad = int(np.ceil(3 * sigma))
    height_px, width_px = image.shape[:2]
    left, top = (max(0, int(np.floor(v)) - pad) for v in hull.min(axis=0))
    right, bottom = int(min(width_px, np.ceil(hull[:, 0].max()) + pad)), int(min(height_px, np.ceil(hull[:, 1].max()) + pad))
    if right - left < 2 or bottom - top < 2:
        return
    region = image[top:bottom, left:right]
    hull_mask = np.zeros(region.shape[:2], np.float32)
    cv2.fillConvexPoly(hull_mask, np.round(hull - [left, top]).astype(np.int32), 1.0)
    inset = 2 * int(np.ceil(2 * sigma)) + 1
    inner = cv2.erode(hull_mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (inset, inset)))
    mask = (cv2.GaussianBlur(inner, (0, 0), sigma) * hull_mask)[..., None]
    blurred = cv2.GaussianBlur(region, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    region[...] = np.clip(mask * blurred + (1 - mask) * region, 0, 255).astype(np.uint8)
