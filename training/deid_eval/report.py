"""Writes a run folder: report.json, report.md (one row per method), plots and contact sheets."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

ATTACKER_TITLES = {"dlib": "dlib", "sface": "SFace", "mobilefacenet": "MobileFaceNet"}


def _percent(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.1f}%"


def _number(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_report(report: dict) -> str:
    settings = report["settings"]
    photos, videos = report["photos"], report.get("videos", {})
    attackers = list(settings["attackers"])
    lines = [f"# deid-eval report ({report['created']})", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}. Wall time: {report['wall_seconds']:.0f} s.", "",
             f"Probes: {settings['probe_count']} identities (one de-identified photo each); gallery "
             f"{settings['gallery_images']} photos of {settings['gallery_identities']} identities. Baselines "
             f"detect faces with {settings['baseline_detector']}. Thresholds (FAR 0.1%, {settings['threshold_source']}): "
             + ", ".join(f"{ATTACKER_TITLES[a]} {'distance < ' + format(-t, '.3f') if a == 'dlib' else 'cosine > ' + format(t, '.3f')}"
                         for a, t in settings["thresholds"].items()) + ".", ""]
    lines += ["## Privacy (lower is more private)", "",
              "Identification: top-1 / top-5 / median rank / mean rank of the true identity; "
              "verification: share of outputs still matching their own input; no face: probes where the attacker "
              "found no face (counted at the worst rank).", ""]
    header = ["method"]
    for attacker in attackers:
        title = ATTACKER_TITLES[attacker]
        header += [f"{title} top-1", f"{title} top-5", f"{title} median / mean rank", f"{title} verif.", f"{title} no face"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, figures in photos.items():
        row = [label]
        for attacker in attackers:
            privacy = figures["privacy"][attacker]
            ident, verif = privacy["identification"], privacy["verification"]
            row += [_percent(ident["top1"]), _percent(ident["top5"]),
                    f"{_number(ident['median_rank'], 0)} / {_number(ident['mean_rank'], 0)}",
                    _percent(verif["rate"]), str(ident["no_face"])]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Utility (photos)", "",
              "Detection rate on outputs (a face overlapping the input's, IoU >= 0.3); 68-landmark error over the "
              "outer-eye-corner distance; head-pose difference in degrees; mean absolute pixel change (0-255) inside "
              "the face region and outside it; method time per photo.", "",
              "| method | CenterFace det. | YuNet det. | landmark error | yaw / pitch / roll diff | change inside | change outside | ms / photo |",
              "|---|---|---|---|---|---|---|---|"]
    for label, figures in photos.items():
        utility = figures["utility"]
        pose = utility["pose_error_deg"]
        lines.append("| " + " | ".join([
            label, _percent(utility["detection_rate"]["centerface"]), _percent(utility["detection_rate"]["yunet"]),
            _number(utility["landmark_error"], 3),
            f"{_number(pose['yaw'], 1)} / {_number(pose['pitch'], 1)} / {_number(pose['roll'], 1)}",
            _number(utility["pixel_change_inside"]), _number(utility["pixel_change_outside"], 3),
            _number(1000 * figures["method_seconds_per_photo"], 1)]) + " |")
    if videos:
        judges = list(next(iter(videos.values()))["leaks"])
        leak_header = [f"{ATTACKER_TITLES[j]} leak at input / re-detected" for j in judges]
        lines += ["", f"## Video ({settings['video_count']} clips, up to {settings['max_frames']} frames each)", "",
                  "Leak: share of the frames with a face (YuNet on the input) where a judge still matches an output "
                  "face to its input face — *at input*: the output cropped at the input face's five points (an "
                  "attacker who knows where the face was); *re-detected*: at a face YuNet finds in the output, matched "
                  "to the input face by IoU >= 0.3. SFace is also the SDK's runtime guard; MobileFaceNet is used by "
                  "neither the SDK nor its training (the independent judge). Flicker: frame-to-frame change inside "
                  "face regions, output over input (1 = as the input); consistency: mean SFace cosine between the "
                  "output faces of consecutive frames (input in brackets); FPS of the method on this machine "
                  "(baselines include their face detector).", "",
                  "| " + " | ".join(["method", "frames with face", *leak_header, "flicker ratio",
                                     "identity consistency", "FPS", "change outside"]) + " |",
                  "|" + "---|" * (6 + len(judges))]
        for label, figures in videos.items():
            leaks = [f"{_percent(figures['leaks'][j]['at_input']['frame_rate'])} / "
                     f"{_percent(figures['leaks'][j]['redetected']['frame_rate'])}" for j in judges]
            lines.append("| " + " | ".join([
                label, str(figures["frames_with_face"]), *leaks, _number(figures["flicker_ratio"]),
                f"{_number(figures['identity_consistency'], 3)} ({_number(figures['input_identity_consistency'], 3)})",
                _number(figures["fps"], 1), _number(figures["pixel_change_outside"], 3)]) + " |")
    guarded = [(where, label, figures["rungs"]) for where, table in (("photos", photos), ("video", videos))
               for label, figures in table.items() if figures.get("rungs")]
    if guarded:
        rungs = list(guarded[0][2]["per_rung"])
        lines += ["", "## Privacy guard rungs (SDK methods)", "",
                  "Share of output faces that left on each rung of the guard's ladder (from `f.faces`); checks: "
                  "guard checks made, failed: checks that sent the face a rung up.", "",
                  "| method | on | faces | " + " | ".join(rungs) + " | checks | failed |",
                  "|" + "---|" * (5 + len(rungs))]
        for where, label, figures in guarded:
            lines.append("| " + " | ".join([label, where, str(figures["faces"]),
                                            *(_percent(figures["per_rung"][r]) for r in rungs),
                                            str(figures["checks"]), str(figures["failed_checks"])]) + " |")
    sweep = report.get("sweep", {})
    if sweep:
        lines += ["", "## Strength sweep (photos)", "", "| method | strength | " + " | ".join(
            f"{ATTACKER_TITLES[a]} top-1 | {ATTACKER_TITLES[a]} verif." for a in attackers)
                  + " | CenterFace det. | YuNet det. | landmark error | change inside |",
                  "|" + "---|" * (6 + 2 * len(attackers))]
        for label, points in sweep.items():
            for point in points:
                row = [label, f"{point['strength']:g}"]
                for attacker in attackers:
                    privacy = point["privacy"][attacker]
                    row += [_percent(privacy["identification"]["top1"]), _percent(privacy["verification"]["rate"])]
                utility = point["utility"]
                row += [_percent(utility["detection_rate"]["centerface"]), _percent(utility["detection_rate"]["yunet"]),
                        _number(utility["landmark_error"], 3), _number(utility["pixel_change_inside"])]
                lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Plots: `privacy_vs_change.png`" + (", `strength_sweep.png`" if sweep else "")
              + "; contact sheets: `contact_*.png` (source | output | blur)."]
    return "\n".join(lines) + "\n"


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_report(report: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(_json_safe(report), indent=2) + "\n")
    (out_dir / "report.md").write_text(markdown_report(report))


ATTACKER_MARKERS = {"dlib": "o", "sface": "s", "mobilefacenet": "^"}


def _method_colors(report: dict) -> dict[str, tuple]:
    """One colour per method, shared by its point, its sweep line and every plot."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    labels = list(report["photos"]) + [label for label in report.get("sweep", {}) if label not in report["photos"]]
    return {label: palette(index % 10) for index, label in enumerate(labels)}


def plot_privacy_vs_change(report: dict, path: Path) -> None:
    """The paper's Fig. 9 axes: identification (top-1) against how much the face was changed.

    A method's strength sweep, when run, is drawn as a line through its points in the same colour."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attackers = list(report["settings"]["attackers"])
    colors = _method_colors(report)
    figure, axes = plt.subplots(1, len(attackers), figsize=(4.8 * len(attackers), 4.4), squeeze=False)
    for axis, attacker in zip(axes[0], attackers):
        for label, figures in report["photos"].items():
            x = figures["utility"]["pixel_change_inside"]
            y = 100 * figures["privacy"][attacker]["identification"]["top1"]
            axis.scatter([x], [y], s=55, color=colors[label], label=label, zorder=3, edgecolors="black", linewidths=0.5)
        for label, points in report.get("sweep", {}).items():
            xs = [p["utility"]["pixel_change_inside"] for p in points]
            ys = [100 * p["privacy"][attacker]["identification"]["top1"] for p in points]
            axis.plot(xs, ys, marker=".", linewidth=1, color=colors[label], alpha=0.8)
            for x, y, point in zip(xs, ys, points):
                axis.annotate(f"{point['strength']:g}", (x, y), textcoords="offset points", xytext=(3, 3),
                              fontsize=6, color=colors[label])
        axis.set_title(f"{ATTACKER_TITLES[attacker]}")
        axis.set_xlabel("mean |pixel change| inside the face (0-255)")
        axis.set_ylabel("identification top-1 (%)")
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper right")
    if report.get("sweep"):
        figure.suptitle("lines: strength sweeps (numbers: strength)", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_strength_sweep(report: dict, path: Path) -> None:
    """The paper's Fig. 7 idea: privacy against the method's strength (colour: method, marker: attacker)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    attackers = list(report["settings"]["attackers"])
    colors = _method_colors(report)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4), squeeze=False)
    for label, points in report["sweep"].items():
        strengths = [p["strength"] for p in points]
        for attacker in attackers:
            style = {"marker": ATTACKER_MARKERS[attacker], "color": colors[label], "linewidth": 1}
            axes[0][0].plot(strengths, [100 * p["privacy"][attacker]["identification"]["top1"] for p in points], **style)
            axes[0][1].plot(strengths, [100 * p["privacy"][attacker]["verification"]["rate"] for p in points], **style)
    for axis, title in zip(axes[0], ("identification top-1 (%)", "verification at FAR 0.1% (%)")):
        axis.set_xlabel("strength")
        axis.set_ylabel(title)
        axis.set_ylim(-3, 103)
        axis.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[label], label=label) for label in report["sweep"]]
    handles += [Line2D([], [], color="grey", marker=ATTACKER_MARKERS[a], linestyle="", label=ATTACKER_TITLES[a])
                for a in attackers]
    axes[0][1].legend(handles=handles, fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _tile(image: np.ndarray, height: int, caption: str) -> np.ndarray:
    scale = height / image.shape[0]
    tile = cv2.resize(image, (max(1, round(image.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    band = np.full((22, tile.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(band, caption[:40], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, tile])


def contact_sheet(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], captions, path: Path,
                  height: int = 200) -> None:
    """One row per example: source | output | blur, written as PNG.

    `captions`: one (source, output, blur) triple for every row, or a list with one triple per row.
    """
    if not rows:
        return
    if isinstance(captions, tuple):
        captions = [captions] * len(rows)
    lines = []
    for (source, output, blurred), row_captions in zip(rows, captions):
        tiles = [_tile(image, height, caption) for image, caption in zip((source, output, blurred), row_captions)]
        lines.append(np.hstack(tiles))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    if not cv2.imwrite(str(path), np.vstack(lines)):
        raise OSError(f"could not write {path}")
