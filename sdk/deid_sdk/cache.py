"""Where the SDK keeps generated files (prepared detector, converted identity model): never faces or embeddings."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$DEID_CACHE_DIR`, else `~/.cache/deid_sdk`; created on first use."""
    path = Path(os.environ.get("DEID_CACHE_DIR") or Path.home() / ".cache" / "deid_sdk")
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written model behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
