"""Throughput of `deid run` file -> file next to deface's on the same file, in the same run.

    .venv/bin/python benchmarks/deface_comparison.py --input ../shared/data/videos/d10.mp4 [--repeats 1]

Both tools run as separate processes, end to end (start-up, decoding, detection, anonymization, encoding,
audio kept), one after the other, alternating when repeated; the best run of each is reported.
deid's own steady-state loop rate (its summary line, start-up excluded) is printed too, and with --io-only the
loop's ceiling: decode -> pass-through -> encode with audio, in this process (its output, the unchanged frames,
goes to a temporary folder deleted at once). deface comes with the SDK's build extra (`pip install -e '.[build]'`).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SUMMARY = re.compile(r"deid run: (\d+) frames in ([\d.]+) s \(([\d.]+) fps\)")


def count_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def run_deid(video: Path, output: Path, extra: list[str]) -> tuple[float, float | None]:
    command = [sys.executable, "-m", "deid_sdk.cli", "run", "--source", str(video), "--sink", str(output),
               *extra]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"deid run failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    match = _SUMMARY.search(result.stderr)
    return wall, float(match.group(3)) if match else None


def run_deface(video: Path, output: Path) -> float:
    executable = shutil.which("deface") or str(Path(sys.executable).with_name("deface"))
    command = [executable, str(video), "--output", str(output), "--keep-audio"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"deface failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return wall


def measure_io_only(video: Path, output: Path) -> float:
    from deid_sdk.io.pipeline import run_pipeline

    summary = run_pipeline(str(video), str(output), anonymize=lambda image, inplace=True: image)
    output.unlink()
    return summary.fps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, required=True, help="video file (e.g. ../shared/data/videos/d10.mp4)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each tool; the best is kept")
    parser.add_argument("--skip-deface", action="store_true", help="measure deid only")
    parser.add_argument("--io-only", action="store_true", help="also time decoding + encoding without the filter")
    parser.add_argument("deid_args", nargs=argparse.REMAINDER,
                        help="extra `deid run` options after --, e.g. -- --detect-width 320")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        print(f"deface_comparison: error: input video not found: {args.input}", file=sys.stderr)
        return 1
    extra = [a for a in args.deid_args if a != "--"]
    frames = count_frames(args.input)
    deid_walls, deid_loops, deface_walls = [], [], []
    with tempfile.TemporaryDirectory(prefix="deid_bench_") as folder:
        for _ in range(args.repeats):
            wall, loop_fps = run_deid(args.input, Path(folder) / "deid.mp4", extra)
            deid_walls.append(wall)
            if loop_fps is not None:
                deid_loops.append(loop_fps)
            if not args.skip_deface:
                deface_walls.append(run_deface(args.input, Path(folder) / "deface.mp4"))
        written = count_frames(Path(folder) / "deid.mp4")
        io_fps = measure_io_only(args.input, Path(folder) / "io_only.mp4") if args.io_only else None
    if written != frames:
        print(f"deface_comparison: error: deid wrote {written} frames, the input has {frames}", file=sys.stderr)
        return 1

    deid_fps = frames / min(deid_walls)
    print(f"input: {args.input.name}, {frames} frames")
    loop_text = f" (loop alone: {max(deid_loops):.1f} fps)" if deid_loops else ""
    print(f"deid run: {deid_fps:.1f} fps end to end, {min(deid_walls):.1f} s{loop_text}")
    if io_fps is not None:
        print(f"decode + encode alone (no filter): {io_fps:.1f} fps")
    if deface_walls:
        deface_fps = frames / min(deface_walls)
        print(f"deface:   {deface_fps:.1f} fps end to end, {min(deface_walls):.1f} s")
        print(f"ratio deid/deface: {deid_fps / deface_fps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
