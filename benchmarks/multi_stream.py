"""Throughput of 1, 2 and 4 streams of the same clip served from one process (`deid run` with several pairs).

    .venv/bin/python benchmarks/multi_stream.py [--clip d0] [--streams 1,2,4] [--repeats 2] [--threads 2]
                                                [--data ../shared/data]

Each configuration runs `deid_sdk.io.streams.run_streams` (what `deid run -i A -o A' -i B -o B'` runs) on N copies
of the clip, file to file, with one set of models. Faces are the rows of the real generator's calls, counted by a
wrapper around `Generator.__call__`, which also records each call's batch size. Streaming time is the longest
stream's live loop (model loading excluded, reported apart). The configurations alternate within each repeat;
medians are reported, with the aggregate faces/s as a ratio to one stream.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

FILTER_OPTIONS = dict(detect_width=320)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default="d0", help="a name in DATA/videos")
    parser.add_argument("--streams", default="1,2,4", help="stream counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads per model and kernel (the Filter's)")
    parser.add_argument("--data", default="../shared/data")
    args = parser.parse_args()
    clip = Path(args.data) / "videos" / f"{args.clip}.mp4"
    if not clip.is_file():
        parser.error(f"clip not found: {clip}")
    counts = [int(count) for count in args.streams.split(",")]

    from deid_sdk.generator import Generator
    from deid_sdk.io.streams import run_streams

    rows: list[int] = []
    lock = threading.Lock()
    real_call = Generator.__call__

    def counted_call(self, crops, identities, strengths):
        with lock:
            rows.append(len(crops))
        return real_call(self, crops, identities, strengths)

    Generator.__call__ = counted_call
    runs: dict[int, list[dict]] = {count: [] for count in counts}
    with tempfile.TemporaryDirectory(prefix="deid_streams_bench_") as scratch:
        for repeat in range(args.repeats):
            for count in counts:
                rows.clear()
                pairs = [(str(clip), str(Path(scratch) / f"out{index}.mp4")) for index in range(count)]
                start = time.perf_counter()
                report = run_streams(pairs, filter_options=dict(FILTER_OPTIONS, threads=args.threads), audio=False)
                total = time.perf_counter() - start
                failed = [result for result in report.streams if result.lost_work]
                if failed:
                    raise RuntimeError(f"{len(failed)} streams lost work: {[str(r.error) for r in failed]}")
                streaming = max(result.summary.seconds for result in report.streams)
                run = dict(seconds=streaming, load=total - streaming, faces=sum(rows), calls=len(rows),
                           batches=Counter(rows),
                           fps=[result.summary.fps for result in report.streams],
                           frames=sum(result.summary.frames_written for result in report.streams))
                runs[count].append(run)
                print(f"repeat {repeat + 1}, {count} streams: {run['frames']} frames, {run['faces']} faces in "
                      f"{streaming:.1f} s (+{run['load']:.1f} s start), {run['calls']} generator calls, "
                      f"batch sizes {dict(sorted(run['batches'].items()))}", flush=True)

    print(f"\n{clip.name}, --threads {args.threads}, {FILTER_OPTIONS}, median of {args.repeats}:")
    print("| streams | frames | faces | seconds | faces/s | per-stream fps | generator calls | mean batch | "
          "batch sizes seen | faces/s vs 1 stream |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = None
    for count in counts:
        rates = [run["faces"] / run["seconds"] for run in runs[count]]
        rate = statistics.median(rates)
        base = base or rate
        seen = sum((run["batches"] for run in runs[count]), Counter())
        median = runs[count][sorted(range(len(rates)), key=rates.__getitem__)[len(rates) // 2]]
        print(f"| {count} | {median['frames']} | {median['faces']} | "
              f"{statistics.median(run['seconds'] for run in runs[count]):.1f} | {rate:.1f} | "
              f"{statistics.median(statistics.mean(run['fps']) for run in runs[count]):.2f} | "
              f"{statistics.median(run['calls'] for run in runs[count]):.0f} | "
              f"{statistics.median(run['faces'] / run['calls'] for run in runs[count]):.2f} | "
              f"{', '.join(f'{size}: {calls}' for size, calls in sorted(seen.items()))} | x{rate / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
