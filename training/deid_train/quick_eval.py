"""Quick evaluation of a generator on the 300 LFW eval identities (issue 5, point 9), through the real SDK.

    python -m deid_train.quick_eval --model models/deid_generator.onnx [--strength 1.0] [--limit N] [--out DIR]

Each eval identity gives one probe (its first photo, sorted by name) and one gallery photo (its second). The probe
goes through `deid_sdk.Filter(model=..., strength=..., tracking=False, privacy="off")`; then, on input and output:
- dlib (its own HOG detector, 68 points, ResNet): how often the output still verifies as its input (distance < 0.6);
- SFace and MobileFaceNet (deid_eval.attackers, YuNet-aligned): top-1 identification among the 300 gallery photos
  and verification against the person's gallery photo at FAR 0.1% (thresholds from ../shared/data/README.md);
- mean 68-landmark error between input and output (the SDK's landmark predictor in the input's CenterFace box,
  normalised by the outer-eye-corner distance);
- detection rate of the outputs by YuNet (a face overlapping the input's face box, IoU >= 0.3);
- high-frequency artifact ratio: Laplacian energy of the aligned 128x128 crop inside the 68-landmark hull,
  output over input, pooled over all faces (and the median of the per-face ratios);
- a contact sheet (source crop | output crop | generator mask) of the first --sheet faces.
Prints a table, writes quick_eval.json and contact_sheet.png to --out. The attackers come from deid_eval.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

DLIB_VERIFY_DISTANCE = 0.6
TARGETS = {"dlib_verified": "<= 5%", "sface_top1": "<= 10%", "sface_verified": "<= 20%",
           "mobilefacenet_top1": "<= 10%", "mobilefacenet_verified": "<= 20%", "landmark_error": "<= 0.05",
           "detection_rate": ">= 98%", "artifact_ratio": "0.8 - 1.15"}


def eval_pairs(data_root: Path, limit: int | None = None) -> list[tuple[str, Path, Path]]:
    """(identity, probe photo, gallery photo) for each eval identity with two photos, sorted by name."""
    splits = json.loads((data_root / "faces" / "lfw_splits.json").read_text())
    pairs = []
    for identity in sorted(splits["eval_identities"]):
        photos = sorted((data_root / "faces" / "lfw" / identity).glob("*.jpg"))
        if len(photos) >= 2:
            pairs.append((identity, photos[0], photos[1]))
    return pairs[:limit] if limit else pairs


def laplacian_energy(crop_bgr: np.ndarray, region: np.ndarray) -> float:
    """Mean squared Laplacian of the grey image inside `region` (bool HxW)."""
    grey = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    laplacian = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    return float((laplacian[region] ** 2).mean())


def hull_region(landmarks: np.ndarray, size: int) -> np.ndarray:
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    return region.astype(bool)


class _RecordingGenerator:
    """Wraps the Filter's generator to keep the last call's crops, images and masks (for the sheet)."""

    def __init__(self, generator):
        self.generator = generator
        self.last = None

    def __call__(self, crops, identities, strengths):
        images, masks = self.generator(crops, identities, strengths)
        self.last = (crops.copy(), images.copy(), masks.copy())
        return images, masks


def _to_bgr_uint8(chw: np.ndarray) -> np.ndarray:
    """(3,H,W) RGB in [-1,1] -> HxWx3 BGR uint8."""
    return np.clip((chw.transpose(1, 2, 0) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)[:, :, ::-1]


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, columns: int = 4) -> None:
    """Triplets (source, output, mask) of 128x128 BGR crops, `columns` triplets per row, with a gap between them."""
    tiles = [np.hstack([s, o, cv2.cvtColor(m, cv2.COLOR_GRAY2BGR), np.full((128, 6, 3), 255, np.uint8)])
             for s, o, m in rows]
    blank = np.full_like(tiles[0], 255)
    while len(tiles) % columns:
        tiles.append(blank)
    grid = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    header = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, "source | output | mask", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), np.vstack([header, grid]))


def _rate(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


def identification(attacker, probes: list[np.ndarray | None], gallery: np.ndarray, gallery_ok: np.ndarray) -> dict:
    """Top-1 identification among the gallery and verification against the own gallery photo (FAR 0.1%)."""
    top1, verified = [], []
    for index, embedding in enumerate(probes):
        if embedding is None or not gallery_ok[index]:
            top1.append(False)
            verified.append(False)
            continue
        scores = attacker.scores(embedding, gallery)
        scores = np.where(gallery_ok, scores, -np.inf)
        top1.append(int(np.argmax(scores)) == index)
        verified.append(bool(scores[index] > attacker.threshold))
    return {"top1": _rate(top1), "verified": _rate(verified), "no_face": int(sum(e is None for e in probes))}


def evaluate(model: Path, strength: float = 1.0, limit: int | None = None, out: Path = Path("out/quick_eval"),
             data_root: Path | None = None, sheet: int = 24, show_progress: bool = True) -> dict:
    from tqdm import tqdm

    from deid_eval.attackers import make_attacker
    from deid_eval.detectors import YuNetDetector
    from deid_eval.utility import face_detected_at, landmark_error
    from deid_sdk import Filter, align
    from deid_sdk.landmarks import LandmarkPredictor

    from deid_train.prepare import DEFAULT_DATA_ROOT

    data_root = Path(data_root or DEFAULT_DATA_ROOT)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = eval_pairs(data_root, limit)
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 eval identities with two photos in {data_root}, got {len(pairs)}")
    started = time.perf_counter()
    # privacy="off": these are the generator's own figures, not the guarded output (deid-eval measures that).
    face_filter = Filter(model=model, strength=strength, tracking=False, fallback="blur", privacy="off")
    if face_filter.generator is None:
        raise FileNotFoundError(f"the Filter did not load a generator from {model}")
    recorder = _RecordingGenerator(face_filter.generator)
    face_filter.generator = recorder
    landmarks_model = LandmarkPredictor()
    yunet = YuNetDetector()
    attackers = {name: make_attacker(name) for name in ("dlib", "sface", "mobilefacenet")}

    size = align.CROP_SIZE
    inputs, outputs, per_face, sheet_rows = [], [], [], []
    filter_seconds = 0.0
    progress = tqdm(pairs, desc="filter", unit="face", disable=not show_progress, mininterval=5)
    for identity, probe_path, _ in progress:
        image = cv2.imread(str(probe_path))
        tick = time.perf_counter()
        output = face_filter(image)
        filter_seconds += time.perf_counter() - tick
        inputs.append(image)
        outputs.append(output)
        record = {"identity": identity, "status": "no_face"}
        faces = face_filter.faces
        deidentified = [f for f in faces if f.status == "deidentified"]
        if faces:
            record["status"] = "deidentified" if deidentified else "fallback"
        if deidentified and recorder.last is not None:
            # The central de-identified face (LFW photos are centred on the labelled person).
            centre = np.array([image.shape[1] / 2, image.shape[0] / 2])
            order = sorted(range(len(deidentified)),
                           key=lambda k: np.linalg.norm((deidentified[k].box[:2] + deidentified[k].box[2:]) / 2 - centre))
            face = deidentified[order[0]]
            crops, images, masks = recorder.last
            source_landmarks = landmarks_model.predict(image, face.box)
            output_landmarks = landmarks_model.predict(output, face.box)
            matrix = align.face_to_crop(source_landmarks)
            source_crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
            output_crop = cv2.warpAffine(output, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                         borderMode=cv2.BORDER_REPLICATE)
            region = hull_region(align.apply_affine(matrix, source_landmarks), size)
            energy_in, energy_out = laplacian_energy(source_crop, region), laplacian_energy(output_crop, region)
            record.update({
                "landmark_error": landmark_error(source_landmarks, output_landmarks),
                "energy_input": energy_in, "energy_output": energy_out,
                "mask_mean": float(masks[order[0]].mean()),   # candidates and de-identified faces share one order
                "detected_yunet": face_detected_at(yunet.detect(output), face.box),
            })
            if len(sheet_rows) < sheet:
                mask = np.clip(masks[order[0], 0] * 255 + 0.5, 0, 255).astype(np.uint8)
                sheet_rows.append((source_crop, output_crop, mask))
        per_face.append(record)

    # Attackers: gallery photos (clean), input probes and output probes.
    gallery_images = [cv2.imread(str(gallery)) for _, _, gallery in pairs]
    report: dict = {"model": str(model), "strength": strength, "identities": len(pairs)}
    dlib = attackers["dlib"]
    dlib_in = [dlib.embed(i) for i in tqdm(inputs, desc="dlib in", disable=not show_progress, mininterval=5)]
    dlib_out = [dlib.embed(o) for o in tqdm(outputs, desc="dlib out", disable=not show_progress, mininterval=5)]
    distances = [float(np.linalg.norm(a - b)) if a is not None and b is not None else float("inf")
                 for a, b in zip(dlib_in, dlib_out)]
    report["dlib_verified"] = _rate([d < DLIB_VERIFY_DISTANCE for d in distances])
    report["dlib_verified_far_0.1pct"] = _rate([d < -dlib.threshold for d in distances])
    report["dlib_output_no_face"] = int(sum(e is None for e in dlib_out))
    for name in ("sface", "mobilefacenet"):
        attacker = attackers[name]
        gallery = [attacker.embed(g) for g in gallery_images]
        gallery_ok = np.array([g is not None for g in gallery])
        dimension = next(g for g in gallery if g is not None).shape[0]
        gallery_matrix = np.stack([g if g is not None else np.zeros(dimension, np.float32) for g in gallery])
        probes_in = [attacker.embed(i) for i in inputs]
        probes_out = [attacker.embed(o) for o in tqdm(outputs, desc=name, disable=not show_progress, mininterval=5)]
        clean = identification(attacker, probes_in, gallery_matrix, gallery_ok)
        deidentified = identification(attacker, probes_out, gallery_matrix, gallery_ok)
        report[f"{name}_top1"], report[f"{name}_verified"] = deidentified["top1"], deidentified["verified"]
        report[f"{name}_input_top1"], report[f"{name}_input_verified"] = clean["top1"], clean["verified"]
        report[f"{name}_output_no_face"] = deidentified["no_face"]
        report[f"{name}_threshold"] = attacker.threshold

    measured = [r for r in per_face if "landmark_error" in r]
    energy_in = np.array([r["energy_input"] for r in measured])
    energy_out = np.array([r["energy_output"] for r in measured])
    report.update({
        "deidentified": _rate([r["status"] == "deidentified" for r in per_face]),
        "landmark_error": float(np.mean([r["landmark_error"] for r in measured])) if measured else float("nan"),
        "detection_rate": _rate([r["detected_yunet"] for r in measured]),
        "artifact_ratio": float(energy_out.sum() / max(energy_in.sum(), 1e-9)) if measured else float("nan"),
        "artifact_ratio_median": float(np.median(energy_out / np.maximum(energy_in, 1e-9))) if measured else float("nan"),
        "mask_mean": float(np.mean([r["mask_mean"] for r in measured])) if measured else float("nan"),
        "filter_ms_per_photo": 1000 * filter_seconds / len(pairs),
        "seconds": round(time.perf_counter() - started, 1),
    })
    report["table"] = table_rows(report)
    report["command"] = "python -m deid_train.quick_eval " + " ".join(
        [f"--model {model}", f"--strength {strength}"] + ([f"--limit {limit}"] if limit else []))
    report["settings"] = {"identities": len(pairs), "strength": strength, "probe": "first photo", "gallery": "second photo"}
    if sheet_rows:
        contact_sheet(sheet_rows, out / "contact_sheet.png")
        report["contact_sheet"] = str(out / "contact_sheet.png")
    (out / "quick_eval.json").write_text(json.dumps({**report, "faces": per_face}, indent=1, default=float) + "\n")
    return report


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def table_rows(report: dict) -> list[dict]:
    rows = [
        {"measure": "dlib verifies output as input (d < 0.6)", "input": "100%", "output": _percent(report["dlib_verified"]),
         "target": TARGETS["dlib_verified"]},
    ]
    for name, label in (("sface", "SFace"), ("mobilefacenet", "MobileFaceNet")):
        rows.append({"measure": f"{label} top-1 among {report['identities']}", "input": _percent(report[f"{name}_input_top1"]),
                     "output": _percent(report[f"{name}_top1"]), "target": TARGETS[f"{name}_top1"]})
        rows.append({"measure": f"{label} verification at FAR 0.1%", "input": _percent(report[f"{name}_input_verified"]),
                     "output": _percent(report[f"{name}_verified"]), "target": TARGETS[f"{name}_verified"]})
    rows += [
        {"measure": "68-landmark error (inter-ocular)", "input": "0", "output": f"{report['landmark_error']:.4f}",
         "target": TARGETS["landmark_error"]},
        {"measure": "YuNet detection of outputs", "input": "", "output": _percent(report["detection_rate"]),
         "target": TARGETS["detection_rate"]},
        {"measure": "artifact ratio (Laplacian energy in hull, out/in)", "input": "1",
         "output": f"{report['artifact_ratio']:.3f} (median {report['artifact_ratio_median']:.3f})",
         "target": TARGETS["artifact_ratio"]},
        {"measure": "faces de-identified by the Filter", "input": "", "output": _percent(report["deidentified"]), "target": ""},
        {"measure": "mean generator mask", "input": "", "output": f"{report['mask_mean']:.3f}", "target": ""},
    ]
    return rows


def print_table(report: dict) -> None:
    rows = report["table"]
    widths = [max(len(str(r[k])) for r in rows + [{"measure": "measure", "input": "input", "output": "output",
                                                     "target": "target"}]) for k in ("measure", "input", "output", "target")]
    print(f"{'measure':<{widths[0]}}  {'input':>{widths[1]}}  {'output':>{widths[2]}}  {'target':>{widths[3]}}")
    for row in rows:
        print(f"{row['measure']:<{widths[0]}}  {row['input']:>{widths[1]}}  {row['output']:>{widths[2]}}  "
              f"{row['target']:>{widths[3]}}")
    print(f"{report['identities']} identities, strength {report['strength']}, {report['seconds']} s, "
          f"Filter {report['filter_ms_per_photo']:.0f} ms/photo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deid_train.quick_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/deid_generator.onnx"))
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--limit", type=int, default=None, help="first N eval identities only")
    parser.add_argument("--out", type=Path, default=Path("out/quick_eval"))
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--sheet", type=int, default=24, help="faces on the contact sheet")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary (no per-face rows) here")
    args = parser.parse_args(argv)
    if not 0.0 <= args.strength <= 1.0:
        raise ValueError(f"--strength must be in [0, 1], got {args.strength}")
    report = evaluate(args.model, args.strength, args.limit, args.out, args.data_root, args.sheet)
    print_table(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(f"wrote {args.out / 'quick_eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
