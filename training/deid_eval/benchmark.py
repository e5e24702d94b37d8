"""One evaluation run: gallery embeddings, photos per method, strength sweep, videos, then the report."""
from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from deid_eval.attackers import DEFAULT_THRESHOLDS, MobileFaceNetAttacker, SFaceAttacker, make_attacker
from deid_eval.calibration import threshold_at_far
from deid_eval.detectors import make_detector
from deid_eval.embedding_cache import EmbeddingCache
from deid_eval.faces import eval_identities, identification_set, load_face_folder
from deid_eval.gallery_workers import fill_in_parallel
from deid_eval.identification import Gallery
from deid_eval.methods import make_method, method_label
from deid_eval.paths import MOBILEFACENET_MODEL
from deid_eval.photos import PhotoContext
from deid_eval.report import contact_sheet, plot_privacy_vs_change, plot_strength_sweep, write_report
from deid_eval.video import evaluate_videos, list_videos


# Below this many missing embeddings, starting worker processes costs more than it saves.
PARALLEL_GALLERY_MINIMUM = 1000


@dataclass
class Settings:
    faces: Path
    splits: Path | None
    videos: Path | None
    out: Path
    cache: Path
    methods: list[tuple[str, dict]]
    attackers: tuple[str, ...] = ("dlib", "sface", "mobilefacenet")
    detector: str = "centerface"
    identity_limit: int | None = None
    gallery_limit: int | None = None
    video_limit: int | None = None
    max_frames: int | None = 150
    calibrate: bool = False
    sweep_strengths: tuple[float, ...] = ()
    sweep_methods: tuple[str, ...] = ("sdk",)
    contact_examples: int = 6
    seed: int = 0
    workers: int = 2
    show_progress: bool = True
    command: str = "deid-eval"
    extra: dict = field(default_factory=dict)


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPU cores ({model}), {platform.machine()}, Python {platform.python_version()}, no GPU used"


def video_judges(attackers: dict, mobilefacenet_model: Path = MOBILEFACENET_MODEL) -> dict:
    """The recognizers that count video leaks: SFace always, MobileFaceNet unless its model file is absent.

    Reuses the photo attackers where they were built. MobileFaceNet is evaluation-only data in ../shared/data, so a
    machine without it still gets SFace's figures, and a message says what is missing.
    """
    judges = {"sface": attackers.get("sface") or SFaceAttacker()}
    if "mobilefacenet" in attackers:
        judges["mobilefacenet"] = attackers["mobilefacenet"]
    else:
        try:
            judges["mobilefacenet"] = MobileFaceNetAttacker(model_path=mobilefacenet_model)
        except FileNotFoundError as error:
            print(f"deid-eval: video leaks are judged by SFace only, without MobileFaceNet: {error}", file=sys.stderr)
    return judges


def run_benchmark(settings: Settings) -> dict:
    started = time.perf_counter()
    phases: dict[str, float] = {}
    phase_start = [started]

    def phase_done(name: str) -> None:
        """Record how long the phase that just ended took (the report's phase_seconds)."""
        now = time.perf_counter()
        phases[name] = now - phase_start[0]
        phase_start[0] = now
    faces = load_face_folder(settings.faces)
    identities = eval_identities(faces, settings.splits)
    split = identification_set(faces, identities, settings.identity_limit, settings.gallery_limit, settings.seed)
    gallery_names = [faces.names[i] for i in split.gallery]

    attackers = {name: make_attacker(name) for name in settings.attackers}
    caches = {name: EmbeddingCache(settings.cache, name, faces.root) for name in attackers}
    missing = sum(len(cache.missing(gallery_names)) for cache in caches.values())
    with tqdm(total=missing, desc="gallery embeddings (cached)", unit="img", disable=not settings.show_progress) as bar:
        if settings.workers > 1 and missing >= PARALLEL_GALLERY_MINIMUM:
            fill_in_parallel(caches, gallery_names, settings.workers, bar.update)
        else:
            for name, cache in caches.items():
                cache.fill(gallery_names, attackers[name].embed, bar.update)
    phase_done("gallery_embeddings")

    thresholds, calibration = {}, {}
    galleries, source_embeddings = {}, {}
    for name, attacker in attackers.items():
        embeddings, found = caches[name].matrix(gallery_names)
        labels = faces.labels[split.gallery]
        if settings.calibrate:
            calibration[name] = threshold_at_far(attacker, embeddings[found], labels[found], seed=settings.seed)
            attacker.threshold = calibration[name]["threshold"]
        thresholds[name] = attacker.threshold
        galleries[name] = Gallery(embeddings[found], labels[found], split.gallery[found])
        probe_embeddings, probe_found = caches[name].matrix([faces.names[i] for i in split.probes])
        source_embeddings[name] = [e if f else None for e, f in zip(probe_embeddings, probe_found)]

    detectors = {"centerface": make_detector("centerface"), "yunet": make_detector("yunet")}
    from deid_sdk.landmarks import LandmarkPredictor

    context = PhotoContext(detectors, LandmarkPredictor(), attackers, galleries, settings.detector)
    inputs = context.prepare(faces, split.probes, source_embeddings, settings.show_progress)
    phase_done("calibration_and_probe_inputs")

    methods = {method_label(name, options): make_method(name, options) for name, options in settings.methods}
    photos, outputs = {}, {}
    for label, method in tqdm(methods.items(), desc="methods on photos", disable=not settings.show_progress):
        photos[label], outputs[label] = context.evaluate(method, inputs, settings.contact_examples,
                                                         settings.show_progress, label)

    phase_done("photos")
    sweep = {}
    for name, options in settings.methods:
        if name not in settings.sweep_methods or not settings.sweep_strengths:
            continue
        points = []
        for strength in settings.sweep_strengths:
            method = make_method(name, {**options, "strength": strength})
            figures, _ = context.evaluate(method, inputs, 0, settings.show_progress, f"{name} strength {strength:g}")
            method.close()
            points.append({"strength": strength, **figures})
        sweep[method_label(name, options)] = points

    phase_done("sweep")
    videos, video_samples, video_input = {}, {}, []
    video_paths = list_videos(settings.videos, settings.video_limit) if settings.videos is not None else []
    if video_paths:
        videos, video_samples, video_input = evaluate_videos(
            methods, video_paths, settings.max_frames, detectors[settings.detector], detectors["yunet"],
            video_judges(attackers), settings.show_progress)
    for method in methods.values():
        method.close()
    phase_done("videos")

    gallery_found = {name: int(len(g.labels)) for name, g in galleries.items()}
    report = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": settings.command,
        "machine": machine_description(),
        "settings": {
            "faces": str(settings.faces), "splits": str(settings.splits) if settings.splits else None,
            "videos": [str(p) for p in video_paths], "video_count": len(video_paths),
            "max_frames": settings.max_frames, "attackers": list(attackers), "baseline_detector": settings.detector,
            "methods": {label: method.describe() for label, method in methods.items()},
            "thresholds": thresholds,
            "threshold_source": ("calibrated here on LFW different-person pairs" if settings.calibrate
                                 else "measured on 8M LFW different-person pairs, ../shared/data/README.md"),
            "default_thresholds": dict(DEFAULT_THRESHOLDS), "calibration": calibration,
            "probe_count": int(len(split.probes)), "gallery_images": int(len(split.gallery)),
            "gallery_identities": int(len(np.unique(faces.labels[split.gallery]))),
            "gallery_with_face": gallery_found, "identity_limit": settings.identity_limit,
            "gallery_limit": settings.gallery_limit, "seed": settings.seed, **settings.extra,
        },
        "photos": photos,
        "sweep": sweep,
        "videos": videos,
    }
    report["wall_seconds"] = time.perf_counter() - started
    report["phase_seconds"] = phases
    out = settings.out
    write_report(report, out)
    plot_privacy_vs_change(report, out / "privacy_vs_change.png")
    if sweep:
        plot_strength_sweep(report, out / "strength_sweep.png")
    _write_contact_sheets(inputs, outputs, video_input, video_samples, out)
    return report


def _write_contact_sheets(inputs, outputs: dict, video_input: list, video_samples: dict, out: Path) -> None:
    blur_label = next((label for label in outputs if label.startswith("blur")), None)
    for label, images in outputs.items():
        blurred = outputs[blur_label] if blur_label else images
        rows = [(probe.image, output, blur) for probe, output, blur in zip(inputs, images, blurred)]
        contact_sheet(rows, ("source", label, blur_label or "blur (not run)"), out / f"contact_{_file_label(label)}.png")
    if video_input and video_samples:
        blur_frame = video_samples.get(blur_label, video_input[0]) if blur_label else video_input[0]
        rows = [(video_input[0], frame, blur_frame) for frame in video_samples.values()]
        captions = [("source frame", label, blur_label or "source") for label in video_samples]
        contact_sheet(rows, captions, out / "contact_video.png", height=240)


def _file_label(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
