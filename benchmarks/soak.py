"""Soak: the live loop on a looping clip for a given time, as a camera feeding `deid run` would.

    .venv/bin/python benchmarks/soak.py [--input VIDEO] [--minutes 30] [--sample-seconds 5] [--report soak.json]

The clip (default: the built-in demo clip, `deid_sdk.cli.demo_clip`) is replayed without end at its own frame
rate as a live source (frames are dropped when the filter is slower, as with a camera), filtered by the default
Filter and encoded with libx264 into a Matroska stream thrown away (os.devnull), so decoder, filter, queues and
encoder all run. Every `--sample-seconds` it records this process's resident memory, open file descriptors and
threads, and it keeps each frame's latency (captured -> encoded). At the end it prints p50/p99 latency, RSS and
descriptors at the first sample after warm-up and at the end, and writes every sample to `--report` (JSON).

tests/test_soak.py runs it for 60 s and measures the process from outside (/proc/PID), so the figures it
asserts on are not the ones this script reports about itself.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def process_figures() -> dict:
    """Resident memory (MiB), open descriptors and threads of this process, from /proc."""
    status = Path("/proc/self/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "fds": len(os.listdir("/proc/self/fd")),
            "threads": int(fields["Threads"])}


class LoopingLiveSource:
    """Replays a file source (or the demo clip) forever, paced at its frame rate, as a live camera."""

    is_live = True
    color = "bgr"
    frame_count = None
    audio_path = None

    def __init__(self, open_clip, stop: threading.Event):
        self._open_clip = open_clip
        self._clip = open_clip()
        self.fps = Fraction(self._clip.fps or 25)
        self.uri = f"looping {self._clip.uri}"
        self.time_base = Fraction(1, 1000)
        self._stop = stop
        self._index = 0
        self._origin = time.monotonic()
        self.captured_at: dict[int, float] = {}   # frame index -> capture time, removed once encoded

    def read(self):
        from deid_sdk.io.frame import Frame

        deadline = self._origin + self._index / float(self.fps)
        if self._stop.wait(max(0.0, deadline - time.monotonic())):
            return None
        frame = self._clip.read()
        if frame is None:  # end of the clip: start it again
            self._clip.close()
            self._clip = self._open_clip()
            frame = self._clip.read()
        now = time.monotonic()
        self.captured_at[self._index] = now
        result = Frame(image=frame.image, index=self._index, pts=round((now - self._origin) * 1000),
                       time_base=self.time_base)
        self._index += 1
        return result

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._clip.close()


def make_discarding_sink(latencies: list[float], source: LoopingLiveSource):
    """libx264 into Matroska on os.devnull; records each frame's latency when it is encoded."""
    from deid_sdk.io.pyav_video import VideoFileSink

    class DiscardingSink(VideoFileSink):
        def _open_container(self):
            return self._av.open(os.devnull, "w", format="matroska")

        def write(self, frame):
            super().write(frame)
            captured = source.captured_at.pop(frame.index, None)
            if captured is not None:
                latencies.append((time.monotonic() - captured) * 1000)
            for index in [i for i in source.captured_at if i < frame.index]:  # dropped frames
                del source.captured_at[index]

    return DiscardingSink(Path(os.devnull), fps=source.fps)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="video file to loop (default: the built-in demo clip)")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--warmup-seconds", type=float, default=10.0, help="samples before this are not compared")
    parser.add_argument("--report", type=Path, help="write every sample and the summary as JSON here")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.sample_seconds <= 0:
        parser.error("--minutes and --sample-seconds must be > 0")

    from deid_sdk.filter import Filter
    from deid_sdk.io.live_loop import LiveLoop

    if args.input:
        from deid_sdk.io.pyav_video import VideoFileSource
        open_clip = lambda: VideoFileSource(args.input)  # noqa: E731
    else:
        from deid_sdk.cli.demo_clip import DemoClipSource
        open_clip = DemoClipSource
    stop = threading.Event()
    source = LoopingLiveSource(open_clip, stop)
    latencies: list[float] = []
    sink = make_discarding_sink(latencies, source)
    samples = []
    start = time.monotonic()

    def sample_until_done(loop: LiveLoop) -> None:
        while not stop.wait(args.sample_seconds):
            elapsed = time.monotonic() - start
            samples.append({"seconds": round(elapsed, 1), **process_figures(),
                            "frames_written": loop.summary.frames_written,
                            "frames_dropped": loop.summary.frames_dropped,
                            "p50_ms_so_far": round(percentile(latencies[-500:], 50), 1)})
            print(json.dumps(samples[-1]), flush=True)
            if elapsed >= args.minutes * 60:
                stop.set()

    with Filter() as face_filter:
        loop = LiveLoop(source, sink, face_filter)
        sampler = threading.Thread(target=sample_until_done, args=(loop,), daemon=True)
        sampler.start()
        summary = loop.run(stop)
        sampler.join()
    sink.close()
    source.close()
    if summary.error is not None:
        raise summary.error
    steady = [s for s in samples if s["seconds"] >= args.warmup_seconds] or samples
    result = {"minutes": args.minutes, "frames_written": summary.frames_written,
              "frames_dropped": summary.frames_dropped, "frames_blanked": summary.frames_blanked,
              "latency_ms_p50": round(percentile(latencies, 50), 1),
              "latency_ms_p99": round(percentile(latencies, 99), 1),
              "rss_mib_start": steady[0]["rss_mib"], "rss_mib_end": steady[-1]["rss_mib"],
              "fds_start": steady[0]["fds"], "fds_end": steady[-1]["fds"],
              "threads_start": steady[0]["threads"], "threads_end": steady[-1]["threads"]}
    print("soak: " + json.dumps(result), flush=True)
    if args.report:
        args.report.write_text(json.dumps({"summary": result, "samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
