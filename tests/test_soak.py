"""The soak (benchmarks/soak.py) for 60 s in CI: memory, descriptors and threads stay flat.

The process is measured from outside, through /proc/PID, not by what the script reports about itself. The
30-minute run and its figures: docs/reliability.md.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
SECONDS = 60
WARMUP = 20              # model sessions and encoder buffers settle first
SAMPLE_EVERY = 5
RSS_GROWTH_MIB = 48      # after warm-up; a per-frame leak of one 640x480 frame would pass this in ~2 s at 25 fps


def measure(pid: int) -> dict | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # exited, not yet reaped
        return None
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "fds": fds, "threads": int(fields["Threads"])}


@pytest.mark.slow
def test_soak_keeps_memory_descriptors_and_threads_flat():
    process = subprocess.Popen([sys.executable, str(SOAK), "--minutes", str(SECONDS / 60), "--sample-seconds", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start, samples = time.monotonic(), []
    try:
        while process.poll() is None and time.monotonic() - start < SECONDS + 120:
            time.sleep(SAMPLE_EVERY)
            figures = measure(process.pid)
            if figures is not None and time.monotonic() - start >= WARMUP:
                samples.append(figures)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output[-2000:]
    steady = samples[:-1] if len(samples) > 2 else samples  # the last may catch the shutdown
    assert len(steady) >= 4, f"too few samples: {samples}"
    rss = [s["rss_mib"] for s in steady]
    assert rss[-1] - rss[0] < RSS_GROWTH_MIB, f"RSS grew from {rss[0]:.0f} to {rss[-1]:.0f} MiB: {rss}"
    for key in ("fds", "threads"):
        values = [s[key] for s in steady]
        assert max(values) - min(values) <= 2, f"{key} not flat: {values}"
