"""Finding the shipped models and checking them against models/manifest.json."""
from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

GENERATOR_FILE = "deid_generator.onnx"
CONTRACT_VERSION = 1


def model_dirs() -> list[Path]:
    """Where shipped models may be: $DEID_MODEL_DIR, the installed package data, the source checkout."""
    candidates = []
    if os.environ.get("DEID_MODEL_DIR"):
        candidates.append(Path(os.environ["DEID_MODEL_DIR"]))
    candidates.append(Path(str(resources.files("deid_sdk"))) / "models")
    candidates.append(Path(__file__).resolve().parents[2] / "models")  # editable install / source tree
    return candidates


def find_model(file_name: str) -> Path | None:
    for directory in model_dirs():
        path = directory / file_name
        if path.is_file():
            return path
    return None


def manifest_entry(model_path: Path) -> dict | None:
    manifest_path = model_path.parent / "manifest.json"
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{manifest_path} is not valid JSON ({error}); reinstall deid_sdk") from error
    for entry in manifest.get("models", []):
        if entry.get("file") == model_path.name:
            return entry
    return None


def verify_checksum(model_path: Path) -> dict | None:
    """Check the file against its manifest entry (when it has one); raise with what to do if it differs."""
    entry = manifest_entry(model_path)
    if entry is None or "sha256" not in entry:
        return entry
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{model_path} is corrupt or was changed: sha256 {digest[:12]}... does not match the "
                         f"manifest's {entry['sha256'][:12]}...; reinstall deid_sdk or re-export the model")
    if entry.get("contract", CONTRACT_VERSION) != CONTRACT_VERSION:
        raise ValueError(f"{model_path} follows model contract {entry.get('contract')}, this SDK reads "
                         f"contract {CONTRACT_VERSION}; upgrade deid_sdk or export the model again")
    return entry
