"""Files/s and frames/s of `deid batch` on a local Ray with 1 and 2 workers against a plain loop over `deid run`.

    .venv/bin/python benchmarks/batch_throughput.py [--clips d0,s13,d20,d18] [--repeats 1] [--data ../shared/data]

Each configuration processes the same folder of shared clips end to end as a user runs it (a separate `deid`
process; the batch includes starting the local Ray and loading one Filter per worker). The configurations
alternate within each repeat; the median of each is reported with its ratio to the plain loop. Threads: the
plain loop and 1 worker use --threads 2, 2 workers use --threads 1 each (the 2-core machine's split).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILTER_FLAGS = ["--detect-width", "320"]


def deid(*arguments: str) -> None:
    result = subprocess.run([sys.executable, "-m", "deid_sdk.cli", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"deid {arguments[0]} failed ({result.returncode}): {result.stderr.strip()[-800:]}")


def plain_loop(clips: list[Path], output: Path) -> None:
    for clip in clips:
        deid("run", "--source", str(clip), "--sink", str(output / clip.name), "--quiet", "--threads", "2",
             *FILTER_FLAGS)


def batch(folder: Path, output: Path, workers: int) -> None:
    deid("batch", "--input", str(folder), "--output", str(output), "--workers", str(workers), "--quiet",
         "--threads", str(2 // workers), *FILTER_FLAGS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", default="d0,s13,d20,d18", help="names in DATA/videos, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    from deid_sdk.batch import media_length

    clips = [Path(args.data) / "videos" / f"{name}.mp4" for name in args.clips.split(",")]
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        parser.error(f"clips not found: {', '.join(missing)}")
    frames = sum(media_length(c).frames for c in clips)
    configurations = {"deid run loop": None, "deid batch, 1 worker": 1, "deid batch, 2 workers": 2}
    seconds: dict[str, list[float]] = {name: [] for name in configurations}
    with tempfile.TemporaryDirectory(prefix="deid_batch_bench_") as scratch:
        folder = Path(scratch) / "in"
        folder.mkdir()
        for clip in clips:
            (folder / clip.name).symlink_to(clip.resolve())
        for repeat in range(args.repeats):
            for name, workers in configurations.items():
                output = Path(scratch) / f"out_{repeat}_{workers}"
                output.mkdir()
                start = time.perf_counter()
                plain_loop(clips, output) if workers is None else batch(folder, output, workers)
                seconds[name].append(time.perf_counter() - start)
                print(f"repeat {repeat + 1}: {name}: {seconds[name][-1]:.1f} s", file=sys.stderr)
    print(f"{len(clips)} clips ({', '.join(c.name for c in clips)}), {frames} frames; filter flags "
          f"{' '.join(FILTER_FLAGS)}; median of {args.repeats} run(s)")
    base = statistics.median(seconds["deid run loop"])
    for name, runs in seconds.items():
        median = statistics.median(runs)
        print(f"{name:24s} {median:7.1f} s  {len(clips) / median:.3f} files/s  {frames / median:6.1f} frames/s  "
              f"x{base / median:.2f} vs the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
