"""Recall of the SDK's detection paths, on every shared clip and on LFW photos, at frame scales 1, 0.5 and 0.25.

    .venv/bin/python benchmarks/detector_recall.py [--every 10] [--max-frames 150] [--photos 200]
                                                   [--scales 1,0.5,0.25] [--data ../shared/data]

Paths: CenterFace (the SDK's main detector), YuNet (the SDK's `yunet.onnx`, deid_sdk.yunet), CenterFace+YuNet
(`Filter(recall_detector="yunet")`: deid_sdk.recall.merge_detections) and CenterFace plus a second CenterFace
pass on the frame upscaled 2x. A frame scaled down (cv2.INTER_AREA) makes its faces small and distant.

No hand labels exist for these frames, so recall is measured against two references: the union of every face
any detector found (CenterFace, YuNet, CenterFace at 2x; merged with the same function), and YuNet's own faces.
A reference face counts as found when a path has a box with IoU >= deid_sdk.recall.MERGE_IOU on it. A false
detection of one detector enters the union too and lowers the others' recall: inspect the frames before
reading a small difference as a miss. Cost: each detector timed on every frame, the paths interleaved; medians
in ms per frame and the ratio to CenterFace.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PATHS = ("centerface", "yunet", "centerface+yunet", "centerface+2x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--every", type=int, default=10, help="every N-th frame of each clip (10)")
    parser.add_argument("--max-frames", type=int, default=150, help="frames read from the start of each clip (150)")
    parser.add_argument("--photos", type=int, default=200, help="LFW eval identities, first photo of each (200)")
    parser.add_argument("--scales", default="1,0.5,0.25", help="frame scales (1,0.5,0.25)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})")
    parser.add_argument("--json", type=Path, help="also write the per-source figures here")
    parser.add_argument("--filter-clips", default="d10,s18",
                        help="clips on which the whole default Filter is timed with and without YuNet (d10,s18; "
                             "'' for none)")
    parser.add_argument("--filter-frames", type=int, default=60, help="frames of each of those clips (60)")
    args = parser.parse_args(argv)
    scales = [float(value) for value in args.scales.split(",")]
    for clip in filter(None, args.filter_clips.split(",")):
        _filter_cost(args.data / "videos" / f"{clip}.mp4", args.filter_frames)

    from deid_sdk.detect import CenterFaceDetector
    from deid_sdk.yunet import YuNetDetector

    detectors = {"centerface": CenterFaceDetector(), "yunet": YuNetDetector()}
    sources = {path.stem: list(_clip_frames(path, args.every, args.max_frames))
               for path in sorted((args.data / "videos").glob("*.mp4"))}
    sources[f"LFW photos ({args.photos})"] = list(_photos(args.data, args.photos))
    results = {}
    for name, frames in sources.items():
        for scale in scales:
            results[(name, scale)] = _measure([_scaled(frame, scale) for frame in frames], detectors)
            _print_row(name, scale, results[(name, scale)])
    print()
    _print_summary(results, scales, [name for name in sources if not name.startswith("LFW")], "all 12 clips")
    _print_summary(results, scales, [name for name in sources if name.startswith("LFW")], "photos")
    if args.json:
        args.json.write_text(json.dumps({f"{name}@{scale}": result for (name, scale), result in results.items()},
                                        indent=1))
    return 0


def _filter_cost(path: Path, frames: int) -> None:
    """The default Filter with recall_detector "off" and "yunet" on the same frames, alternating per frame (the
    tracks of each Filter see every frame in order); median ms per frame and the ratio."""
    from deid_sdk import Filter

    clip = list(_clip_frames(path, 1, frames))
    filters = {mode: Filter(recall_detector=mode) for mode in ("off", "yunet")}
    times = {mode: [] for mode in filters}
    for frame in clip:
        for mode, face_filter in filters.items():
            face_filter(frame)
            times[mode].append(face_filter.stats["total"])
    off, yunet = (float(np.median(times[mode][5:])) for mode in ("off", "yunet"))  # the first frames warm up
    print(f"Filter on {path.name} ({clip[0].shape[1]}x{clip[0].shape[0]}, {len(clip)} frames, the first 5 not "
          f"counted): median ms per frame, recall_detector off {off:.1f}, yunet {yunet:.1f} (x{yunet / off:.2f})",
          flush=True)


def _clip_frames(path: Path, every: int, max_frames: int):
    import av

    with av.open(str(path)) as reader:
        for index, decoded in enumerate(reader.decode(video=0)):
            if index >= max_frames:
                break
            if index % every == 0:
                yield decoded.to_ndarray(format="bgr24")


def _photos(data: Path, count: int):
    identities = json.loads((data / "faces" / "lfw_splits.json").read_text())["eval_identities"][:count]
    for name in identities:
        yield cv2.imread(str(sorted((data / "faces" / "lfw" / name).glob("*.jpg"))[0]))


def _scaled(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1:
        return frame
    height, width = frame.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def _upscaled_pass(detector, frame: np.ndarray):
    """CenterFace on the frame upscaled 2x, boxes and points brought back to the frame."""
    from deid_sdk.detect import Detection

    upscaled = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    return [Detection(box=d.box / 2, score=d.score, points=d.points / 2) for d in detector.detect(upscaled)]


def _measure(frames: list[np.ndarray], detectors: dict) -> dict:
    from deid_sdk.recall import merge_detections

    found = {path: 0 for path in PATHS}
    found_of_yunet = {path: 0 for path in PATHS}
    union_count = yunet_count = 0
    costs = {"centerface": [], "yunet": [], "centerface 2x": []}
    pair_ious = []
    for frame in frames:
        timed = {}
        for label, run in (("centerface", lambda: detectors["centerface"].detect(frame)),
                           ("yunet", lambda: detectors["yunet"].detect(frame)),
                           ("centerface 2x", lambda: _upscaled_pass(detectors["centerface"], frame))):
            tick = time.perf_counter()
            timed[label] = run()
            costs[label].append((time.perf_counter() - tick) * 1000)
        centerface, yunet, upscaled = timed["centerface"], timed["yunet"], timed["centerface 2x"]
        paths = {"centerface": centerface, "yunet": yunet,
                 "centerface+yunet": merge_detections(centerface, yunet),
                 "centerface+2x": merge_detections(centerface, upscaled)}
        union = merge_detections(merge_detections(centerface, yunet), upscaled)
        union_count += len(union)
        yunet_count += len(yunet)
        for path, detections in paths.items():
            found[path] += _covered(union, detections)
            found_of_yunet[path] += _covered(yunet, detections)
        pair_ious += [_best_iou(face, centerface) for face in yunet if _best_iou(face, centerface) > 0]
    return {"frames": len(frames), "union_faces": union_count, "yunet_faces": yunet_count,
            "recall": {path: found[path] / union_count if union_count else None for path in PATHS},
            "recall_of_yunet": {path: found_of_yunet[path] / yunet_count if yunet_count else None for path in PATHS},
            "median_ms": {label: float(np.median(values)) for label, values in costs.items()},
            "yunet_centerface_iou": pair_ious}


def _best_iou(face, detections) -> float:
    from deid_sdk.track import box_iou

    return max((box_iou(face.box, other.box) for other in detections), default=0.0)


def _covered(reference, detections) -> int:
    from deid_sdk.recall import MERGE_IOU

    return sum(_best_iou(face, detections) >= MERGE_IOU for face in reference)


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _print_row(name: str, scale: float, result: dict) -> None:
    recall = " / ".join(_percent(result["recall"][path]) for path in PATHS)
    costs = " / ".join(f"{result['median_ms'][label]:.1f}" for label in ("centerface", "yunet", "centerface 2x"))
    print(f"{name:>18} x{scale:<4} frames {result['frames']:4d}  union {result['union_faces']:4d}  yunet "
          f"{result['yunet_faces']:4d}  recall {' / '.join(PATHS)}: {recall}  CenterFace of YuNet's: "
          f"{_percent(result['recall_of_yunet']['centerface'])}  ms CF / YuNet / CF2x: {costs}", flush=True)


def _print_summary(results: dict, scales: list[float], names: list[str], title: str) -> None:
    if not names:
        return
    print(f"\n{title}: recall against the union of all detectors (and against YuNet's faces), median ms per frame")
    print("| scale | union faces | " + " | ".join(PATHS) + " | CenterFace of YuNet's faces | CenterFace ms | "
          "YuNet / CenterFace time | 2x pass / CenterFace time | IoU YuNet-CenterFace (median, q10) |")
    print("|" + "---|" * (len(PATHS) + 7))
    for scale in scales:
        chosen = [results[(name, scale)] for name in names]
        union = sum(r["union_faces"] for r in chosen)
        yunet = sum(r["yunet_faces"] for r in chosen)
        row = [f"x{scale:g}", str(union)]
        for path in PATHS:
            found = sum(round((r["recall"][path] or 0) * r["union_faces"]) for r in chosen)
            row.append(_percent(found / union if union else None))
        found = sum(round((r["recall_of_yunet"]["centerface"] or 0) * r["yunet_faces"]) for r in chosen)
        row.append(f"{_percent(found / yunet if yunet else None)} of {yunet}")
        ratios = [r["median_ms"]["yunet"] / r["median_ms"]["centerface"] for r in chosen]
        upscaled = [r["median_ms"]["centerface 2x"] / r["median_ms"]["centerface"] for r in chosen]
        row.append(f"{np.median([r['median_ms']['centerface'] for r in chosen]):.1f}")
        row += [f"{np.median(ratios):.2f}x", f"{np.median(upscaled):.2f}x"]
        ious = [iou for r in chosen for iou in r["yunet_centerface_iou"]]
        row.append(f"{np.median(ious):.2f}, {np.quantile(ious, 0.1):.2f}" if ious else "-")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
