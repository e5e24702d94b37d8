"""Default locations: the shared data folder beside the checkout and the evaluation cache."""
from __future__ import annotations

import os
from pathlib import Path

# training/deid_eval/paths.py -> repository root is parents[2]; shared data sits beside the checkout.
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = REPOSITORY_ROOT.parent / "shared" / "data"
LFW_DIR = SHARED_DATA / "faces" / "lfw"
LFW_SPLITS = SHARED_DATA / "faces" / "lfw_splits.json"
VIDEOS_DIR = SHARED_DATA / "videos"
YUNET_MODEL = SHARED_DATA / "models" / "yunet_n_640_640.onnx"
MOBILEFACENET_MODEL = SHARED_DATA / "models" / "mobilefacenet.onnx"


def default_cache_dir() -> Path:
    """`$DEID_EVAL_CACHE`, else `~/.cache/deid_eval` (gallery embeddings of the public LFW set, fixed models)."""
    return Path(os.environ.get("DEID_EVAL_CACHE") or Path.home() / ".cache" / "deid_eval")


def require_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path} (expected the shared data folder ../shared/data "
                                f"beside the checkout, or pass the path explicitly)")
    return path
