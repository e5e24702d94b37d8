"""Which inputs a batch has and where each output goes: one Job per video file or image folder.

The output is written under a temporary name beside its final one and renamed only once verified complete, so
an output under its final name is always whole; a re-run skips those (deid_sdk.batch.run).
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from deid_sdk.io.uri import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

PARTIAL_MARK = ".partial"


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path

    @property
    def is_image_folder(self) -> bool:
        return self.source.is_dir()

    @property
    def partial(self) -> Path:
        """Where the output is written until it is verified: hidden, same suffix (the muxer picks the format by it)."""
        if self.is_image_folder:
            return self.output.with_name(f".{self.output.name}{PARTIAL_MARK}")
        return self.output.with_name(f".{self.output.stem}{PARTIAL_MARK}{self.output.suffix}")

    @property
    def partial_uri(self) -> str:
        """The sink URI of `partial` (a trailing slash: a folder of images, whatever its name looks like)."""
        return f"{self.partial}/" if self.is_image_folder else str(self.partial)


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def _is_image_folder(path: Path) -> bool:
    return path.is_dir() and any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())


def plan_jobs(inputs: str, output_dir: str | Path) -> list[Job]:
    """`inputs`: a folder (its video files and image folders, not recursive) or a glob pattern (`**` recurses).
    Outputs keep each input's name under `output_dir`. Raises ValueError when nothing matches, when two inputs
    would share an output name, or when the output folder is among the inputs."""
    pattern = str(inputs)
    if Path(pattern).is_dir():
        candidates = sorted(Path(pattern).iterdir())
    elif glob.has_magic(pattern):
        candidates = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    else:
        raise ValueError(f"--input: expected a folder or a glob pattern (e.g. 'footage/*.mp4'), got {pattern!r}, "
                         "which is neither")
    sources = [p for p in candidates if not p.name.startswith(".") and (_is_video(p) or _is_image_folder(p))]
    if not sources:
        raise ValueError(f"--input {pattern!r}: no video files ({', '.join(VIDEO_EXTENSIONS[:4])}, ...) or image "
                         "folders found")
    output_dir = Path(output_dir)
    resolved_output = output_dir.resolve()
    jobs, seen = [], {}
    for source in sources:
        if source.resolve() == resolved_output or resolved_output in source.resolve().parents:
            continue  # an earlier run's outputs inside the input folder are not inputs
        output = output_dir / source.name
        if output in seen:
            raise ValueError(f"--input: {seen[output]} and {source} would both be written to {output}; "
                             "give inputs with distinct names")
        seen[output] = source
        jobs.append(Job(source=source, output=output))
    if not jobs:
        raise ValueError(f"--input {pattern!r}: every match is inside the output folder {output_dir}")
    return jobs
