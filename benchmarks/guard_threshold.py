"""The measurement behind the privacy guard's threshold and ladder (deid_sdk.privacy).

    .venv/bin/python benchmarks/guard_threshold.py [--identities 300] [--data ../shared/data]

On one LFW photo of each of the first N eval identities (lfw_splits.json), the SDK's own parts: CenterFace's
five points, the guard's SFace. It prints
- the cosine of every pair of *different* people's input faces (how similar strangers look to SFace), as quantiles;
- for the shipped generator (Filter(privacy="off")) and for each rung of the ladder applied on top, the cosine of
  the output to its own input at the same five points, and the share of faces that pass at each threshold;
- the fallback applied to the input face itself ("fallback on input"): what a track on the fallback rung gets
  (the Filter skips the generator for it, its output would be covered anyway).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.369)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=300, help="LFW eval identities, one photo each (300)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)

    from deid_sdk import Filter
    from deid_sdk.fallback import anonymize_box
    from deid_sdk.privacy import blur_inside_hull
    from deid_sdk.sface import SFaceRecognizer

    identities = json.loads((args.data / "faces" / "lfw_splits.json").read_text())["eval_identities"]
    recognizer = SFaceRecognizer()
    face_filter = Filter(privacy="off")
    inputs, outputs, blurred, covered, covered_inputs = [], [], [], [], []
    for name in identities[:args.identities]:
        photo = sorted((args.data / "faces" / "lfw" / name).glob("*.jpg"))[0]
        image = cv2.imread(str(photo))
        face_filter.reset()
        output = face_filter(image)
        faces = [face for face in face_filter.faces if face.status == "deidentified"]
        if not faces:
            continue
        face = max(faces, key=lambda f: float(np.prod(f.box[2:] - f.box[:2])))
        (detection,) = [d for d in face_filter.detector.detect(image) if np.allclose(d.box, face.box)]
        inputs.append(recognizer.embed(image, [detection.points])[0])
        outputs.append(recognizer.embed(output, [detection.points])[0])
        blur_inside_hull(output, face.landmarks)
        blurred.append(recognizer.embed(output, [detection.points])[0])
        anonymize_box(output, face.box, face_filter.fallback)
        covered.append(recognizer.embed(output, [detection.points])[0])
        covered_input = image.copy()
        anonymize_box(covered_input, face.box, face_filter.fallback)
        covered_inputs.append(recognizer.embed(covered_input, [detection.points])[0])
    inputs, outputs, blurred, covered, covered_inputs = map(np.array, (inputs, outputs, blurred, covered,
                                                                       covered_inputs))
    count = len(inputs)
    strangers = (inputs @ inputs.T)[np.triu_indices(count, 1)]
    print(f"{count} faces (one photo of each of {count} LFW eval identities), SFace cosine at CenterFace's points")
    quantiles = (0.5, 0.9, 0.99, 0.999)
    print("different people (input vs input, {} pairs): ".format(strangers.size)
          + ", ".join(f"q{q * 100:g} {np.quantile(strangers, q):.3f}" for q in quantiles)
          + f", max {strangers.max():.3f}")
    for label, embeddings in (("generator", outputs), ("generator+blur", blurred), ("fallback", covered),
                              ("fallback on input", covered_inputs)):
        similarity = np.sum(inputs * embeddings, axis=1)
        passing = ", ".join(f"<{t:g}: {np.mean(similarity < t):.1%}" for t in THRESHOLDS)
        print(f"{label:17s} output vs own input: median {np.median(similarity):.3f}, q90 "
              f"{np.quantile(similarity, 0.9):.3f}; pass {passing}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
