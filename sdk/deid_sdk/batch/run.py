"""run_batch(): every Job of an archive on Ray. Ray schedules, retries and restarts; this file only hands files
to a pool of FileWorker actors and gathers what they report.

- One actor per worker, declared with the CPUs (its Filter's threads) and GPUs it uses; the models load once in
  each actor. Ray restarts an actor whose process dies and retries the file it had (`max_retries` times); the
  attempt starts over from the partial name, so nothing half written is ever renamed into place.
- Resumable: a file whose final output exists with the input's frame count and duration is skipped.
- Local Ray (started here, stopped at the end) when no address is given; `address="auto"` or `"ray://..."`
  joins a cluster, whose nodes need deid_sdk installed and the input and output folders at the same paths.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from deid_sdk.batch.jobs import Job, plan_jobs
from deid_sdk.batch.media_length import media_length
from deid_sdk.batch.worker import FileResult, FileWorker, output_is_complete, remove_partial

log = logging.getLogger("deid_sdk")

_POLL_S = 0.5


@dataclass
class BatchSummary:
    files: int = 0                 # inputs found
    done: int = 0                  # written and verified in this run
    skipped: int = 0               # already complete from an earlier run
    frames: int = 0
    faces: int = 0
    fallback_faces: int = 0
    frames_blanked: int = 0
    seconds: float = 0.0
    workers: int = 0
    attempts: dict[str, int] = field(default_factory=dict)      # source -> attempts started (> 1: retried)
    failures: dict[str, str] = field(default_factory=dict)      # source -> reason
    results: list[FileResult] = field(default_factory=list)
    interrupted: bool = False

    @property
    def fallback_share(self) -> float:
        return self.fallback_faces / self.faces if self.faces else 0.0

    @property
    def retried(self) -> int:
        return sum(count > 1 for count in self.attempts.values())

    def lines(self) -> list[str]:
        rate = f"{self.done / self.seconds:.2f} files/s, {self.frames / self.seconds:.1f} frames/s" \
            if self.seconds > 0 else "-"
        lines = [f"{self.files} files: {self.done} done, {self.skipped} already complete, {len(self.failures)} "
                 f"failed; {self.frames} frames, {self.faces} faces, fallback {self.fallback_share:.1%}; "
                 f"{self.seconds:.1f} s on {self.workers} workers ({rate})"]
        if self.retried:
            lines.append(f"{self.retried} files retried after a worker failure")
        if self.frames_blanked:
            lines.append(f"{self.frames_blanked} frames blacked out after a filter error")
        lines += [f"failed: {source}: {reason}" for source, reason in sorted(self.failures.items())]
        return lines


def _require_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("deid batch needs Ray: pip install 'deid_sdk[ray]'") from None
    return ray


class _Progress:
    """Frames written per file, as the workers report them (a Ray actor; the latest report of a file wins, so a
    retried file does not count twice), and attempts started per file."""

    def __init__(self):
        self.frames: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.pids: dict[str, int] = {}

    def report(self, source: str, frames: int, pid: int) -> None:
        if frames == 0 and self.pids.get(source) != pid:
            self.attempts[source] = self.attempts.get(source, 0) + 1
        self.frames[source] = frames
        self.pids[source] = pid

    def snapshot(self) -> dict:
        return {"frames": dict(self.frames), "attempts": dict(self.attempts), "pids": dict(self.pids)}


class _ReportTo:
    """What a FileWorker calls to report frames: forwards to the progress actor, fire and forget. Found by name,
    not passed in: an actor handle among the constructor arguments would live in the object store, which Ray
    warns may fail a restart."""

    def __init__(self, progress_actor_name: str):
        self.progress_actor_name = progress_actor_name
        self._actor = None

    def __call__(self, source: str, frames: int) -> None:
        import ray

        if self._actor is None:
            self._actor = ray.get_actor(self.progress_actor_name)
        self._actor.report.remote(source, frames, os.getpid())


class _RayFileWorker(FileWorker):
    def __init__(self, filter_options: dict, pipeline_options: dict, progress_actor_name: str):
        super().__init__(filter_options, pipeline_options, report=_ReportTo(progress_actor_name))


def run_batch(inputs: str, output_dir: str | Path, *, filter_options: dict | None = None,
              workers: int | None = None, address: str | None = None, gpus_per_worker: float = 0.0,
              max_retries: int = 2, audio: bool = True, codec: str | None = None, crf: int | None = None,
              bitrate: int | None = None, image_fps: float = 30.0, stop: threading.Event | None = None,
              progress: bool = False, on_progress: Callable[[dict], None] | None = None) -> BatchSummary:
    """De-identify every video file and image folder of `inputs` (a folder or a glob) into `output_dir`.

    `workers`: actors (default: as many as the cluster's CPUs allow at the Filter's threads each).
    `on_progress(snapshot)`: called about twice a second with {"frames", "attempts", "pids"} per source.
    Failures (unreadable file, a worker that died more than `max_retries` times) are listed in the summary;
    the other files go on.
    """
    options = dict(filter_options or {})
    threads = int(options.get("threads", 2))
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be at least 0, got {max_retries}")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus_per_worker must be at least 0, got {gpus_per_worker}")
    stop = stop or threading.Event()
    summary = BatchSummary()
    start = time.perf_counter()
    jobs = plan_jobs(inputs, output_dir)
    summary.files = len(jobs)
    pending: list[Job] = []
    for job in jobs:
        if output_is_complete(job, image_fps):
            summary.skipped += 1
        elif job.output.exists():
            summary.failures[str(job.source)] = (f"{job.output} exists but is not a complete output of it; "
                                                 "remove it to have it redone")
        else:
            pending.append(job)
    if not pending:
        summary.seconds = time.perf_counter() - start
        return summary
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    total_frames = sum(_frames_or_zero(job.source, image_fps) for job in pending)

    ray = _require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        summary.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
        summary.workers = min(summary.workers, len(pending))
        progress_name = f"deid-batch-progress-{uuid.uuid4().hex}"
        progress_actor = ray.remote(num_cpus=0)(_Progress).options(name=progress_name).remote()
        worker_class = ray.remote(_RayFileWorker).options(
            num_cpus=threads, num_gpus=gpus_per_worker, max_restarts=max_retries, max_task_retries=max_retries)
        pipeline_options = dict(audio=audio, codec=codec, crf=crf, bitrate=bitrate, image_fps=image_fps)

        def new_worker():
            return worker_class.remote(options, pipeline_options, progress_name)

        bars = _Bars(len(pending), total_frames) if progress else None
        idle = [new_worker() for _ in range(summary.workers)]
        running: dict = {}  # future -> (actor, job)
        queue = list(pending)
        try:
            while (queue or running) and not stop.is_set():
                while queue and idle:
                    actor, job = idle.pop(), queue.pop(0)
                    running[actor.process.remote(job)] = (actor, job)
                finished, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
                for future in finished:
                    actor, job = running.pop(future)
                    try:
                        result = ray.get(future)
                    except ray.exceptions.RayActorError as error:  # died more often than Ray may restart it
                        remove_partial(job)
                        result = FileResult(source=str(job.source), output=str(job.output),
                                            error=f"worker died {max_retries + 1} times on it "
                                                  f"({type(error).__name__})")
                        ray.kill(actor)
                        actor = new_worker()
                    idle.append(actor)
                    _add(summary, result)
                    if bars is not None:
                        bars.file_done()
                snapshot = ray.get(progress_actor.snapshot.remote())
                summary.attempts = snapshot["attempts"]
                if bars is not None:
                    bars.frames(sum(snapshot["frames"].values()))
                if on_progress is not None:
                    on_progress(snapshot)
        finally:
            summary.interrupted = stop.is_set() and bool(queue or running)
            for actor, _job in running.values():
                ray.kill(actor)
            for actor in idle:
                ray.kill(actor)
            ray.kill(progress_actor)
            for _actor, job in running.values():
                remove_partial(job)  # killed mid-file: the next run redoes it
            if bars is not None:
                bars.close()
    finally:
        if started_here:
            ray.shutdown()
    summary.seconds = time.perf_counter() - start
    return summary


def _add(summary: BatchSummary, result: FileResult) -> None:
    summary.results.append(result)
    summary.faces += result.faces
    summary.fallback_faces += result.fallback_faces
    if result.error:
        summary.failures[result.source] = result.error
        return
    summary.done += 1
    summary.frames += result.frames
    summary.frames_blanked += result.frames_blanked


def _frames_or_zero(source: Path, image_fps: float) -> int:
    try:
        return media_length(source, image_fps).frames
    except (OSError, ValueError):
        return 0  # reported as that file's failure when a worker tries it


class _Bars:
    """Two tqdm bars on stderr: files and frames."""

    def __init__(self, files: int, frames: int):
        import sys

        from tqdm import tqdm

        common = dict(file=sys.stderr, dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10.0)
        self._files = tqdm(total=files, desc="files", unit="file", position=0, **common)
        self._frames = tqdm(total=frames or None, desc="frames", unit="frame", position=1, **common)

    def file_done(self) -> None:
        self._files.update(1)

    def frames(self, count: int) -> None:
        self._frames.update(max(0, count - self._frames.n))

    def close(self) -> None:
        self._frames.close()
        self._files.close()
