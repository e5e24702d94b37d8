"""Privacy and utility of one method on the probe photos (one photo per eval identity)."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from tqdm import tqdm

from deid_eval.detectors import central_face
from deid_eval.faces import FaceFolder
from deid_eval.identification import Gallery, identification_summary, rank_probes, verification_summary
from deid_eval.methods import Method, Timer, rung_figures
from deid_eval.utility import (UtilityTally, angle_difference, face_detected_at, face_region_mask, head_pose,
                               landmark_error, pixel_change)


@dataclass
class ProbeInput:
    """Everything about an input photo that does not depend on the method (computed once)."""

    image_index: int
    label: int
    image: np.ndarray
    detections: dict            # detector name -> list of detections on the input
    reference_box: np.ndarray | None  # central CenterFace box (None: CenterFace found no face)
    yunet_box: np.ndarray | None
    landmarks: np.ndarray | None
    pose: np.ndarray | None
    face_mask: np.ndarray
    source_embeddings: dict = field(default_factory=dict)  # attacker -> embedding of the clean photo or None


class PhotoContext:
    """Shared tools: the detectors, the 68-point predictor, the attackers and their galleries."""

    def __init__(self, detectors: dict, landmark_predictor, attackers: dict, galleries: dict[str, Gallery],
                 baseline_detector: str):
        self.detectors = detectors
        self.landmark_predictor = landmark_predictor
        self.attackers = attackers
        self.galleries = galleries
        self.baseline_detector = baseline_detector

    def prepare(self, faces: FaceFolder, image_indices: np.ndarray, source_embeddings: dict,
                show_progress: bool = True) -> list[ProbeInput]:
        inputs = []
        for row, index in enumerate(tqdm(image_indices, desc="probe inputs", disable=not show_progress, leave=False)):
            image = cv2.imread(str(faces.path(int(index))), cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"cannot read image {faces.path(int(index))}")
            height, width = image.shape[:2]
            detections = {name: detector.detect(image) for name, detector in self.detectors.items()}
            reference = central_face(detections["centerface"], width, height)
            yunet = central_face(detections["yunet"], width, height)
            landmarks = pose = None
            if reference is not None:
                landmarks = self.landmark_predictor.predict(image, reference.box)
                pose = head_pose(landmarks, width, height)
            region_boxes = [d.box for d in detections["centerface"]]
            if self.baseline_detector != "centerface":
                region_boxes += [d.box for d in detections[self.baseline_detector]]
            mask = face_region_mask(height, width, region_boxes, [landmarks] if landmarks is not None else [])
            inputs.append(ProbeInput(
                image_index=int(index), label=int(faces.labels[index]), image=image, detections=detections,
                reference_box=None if reference is None else reference.box,
                yunet_box=None if yunet is None else yunet.box, landmarks=landmarks, pose=pose, face_mask=mask,
                source_embeddings={name: values[row] for name, values in source_embeddings.items()}))
        return inputs

    def evaluate(self, method: Method, inputs: list[ProbeInput], keep_outputs: int = 0,
                 show_progress: bool = True, label: str = "") -> tuple[dict, list[np.ndarray]]:
        """Run `method` on every probe; returns the method's photo figures and the first outputs."""
        output_embeddings = {name: [] for name in self.attackers}
        tally = UtilityTally()
        timer = Timer()
        kept = []
        method.take_privacy_summary()
        for probe in tqdm(inputs, desc=f"photos {label or method.name}", disable=not show_progress, leave=False):
            method.reset()
            detections = probe.detections[self.baseline_detector] if method.uses_detections else []
            with timer:
                output = method(probe.image, detections)
            if len(kept) < keep_outputs:
                kept.append(output)
            output_detections = {name: detector.detect(output) for name, detector in self.detectors.items()}
            for name, attacker in self.attackers.items():
                output_embeddings[name].append(attacker.embed(output, output_detections["yunet"]))
            self._measure_utility(probe, output, output_detections, tally)
        privacy = {}
        for name, attacker in self.attackers.items():
            embeddings = output_embeddings[name]
            gallery = self.galleries[name]
            ranks = rank_probes(attacker, embeddings, np.array([p.label for p in inputs]),
                                np.array([p.image_index for p in inputs]), gallery)
            privacy[name] = {
                "identification": identification_summary(ranks, sum(e is None for e in embeddings),
                                                         gallery.identity_count),
                "verification": verification_summary(attacker, embeddings,
                                                     [p.source_embeddings[name] for p in inputs]),
                "threshold": attacker.threshold,
            }
        figures = {"privacy": privacy, "utility": tally.summary(),
                   "method_seconds_per_photo": timer.seconds / max(timer.calls, 1),
                   "rungs": rung_figures([method.take_privacy_summary()])}
        return figures, kept

    def _measure_utility(self, probe: ProbeInput, output: np.ndarray, output_detections: dict,
                         tally: UtilityTally) -> None:
        height, width = output.shape[:2]
        for name, reference in (("centerface", probe.reference_box), ("yunet", probe.yunet_box)):
            if reference is not None:
                tally.detected[name].append(face_detected_at(output_detections[name], reference))
        if probe.landmarks is not None:
            output_landmarks = self.landmark_predictor.predict(output, probe.reference_box)
            tally.landmark_errors.append(landmark_error(probe.landmarks, output_landmarks))
            output_pose = head_pose(output_landmarks, width, height)
            if probe.pose is not None and output_pose is not None:
                tally.pose_errors.append(angle_difference(probe.pose, output_pose))
        inside, outside, changed = pixel_change(probe.image, output, probe.face_mask)
        tally.inside.append(inside)
        tally.outside.append(outside)
        tally.changed_outside += changed
