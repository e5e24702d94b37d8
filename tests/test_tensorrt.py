"""The TensorRT backend's GPU-free parts, for real: engine cache names and when they change, the optimisation
profile from the shipped ONNX files' own shapes, the contract checks, the binding of __cuda_array_interface__
objects (numpy memory exposed through the interface, as a CUDA library exposes device memory), `backend="auto"`
resolving with what is installed here, and the clear errors without TensorRT."""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest

from deid_sdk import Filter
from deid_sdk.backends import create_session, resolve_backend
from deid_sdk.backends.tensorrt import (MAX_FACES, CudaRuntime, Target, bind_device_arrays, builder_flags,
                                        check_engine_target, engine_file_name, max_batch, profile_shapes,
                                        tensorrt_available)
from deid_sdk.backends.onnxruntime import OnnxRuntimeSession
from deid_sdk.generator import check_generator_contract, default_generator_path
from deid_sdk.model_files import file_sha256, shipped_model

ORIN = Target("10.3.0", "Orin", (8, 7))
GENERATOR_INPUTS = {"crop": (-1, 3, 128, 128), "identity": (-1, 128), "strength": (-1, 1)}
without_tensorrt = pytest.mark.skipif(tensorrt_available(), reason="describes a machine without TensorRT")


class DeviceArray:
    """Exposes a numpy array's memory through __cuda_array_interface__ (v3), as CuPy/torch/cudaImage do."""

    def __init__(self, array: np.ndarray, strides=None, readonly=False):
        self.array = array
        self.__cuda_array_interface__ = {"shape": array.shape, "typestr": array.dtype.str, "strides": strides,
                                         "data": (array.ctypes.data, readonly), "version": 3}


def onnx_input_shapes(path) -> dict[str, list]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {node.name: node.shape for node in session.get_inputs()}


def test_engine_name_holds_sha256_version_gpu_and_precision():
    model = default_generator_path()
    name = engine_file_name(model, file_sha256(model), ORIN, "fp16")
    assert name == f"deid_generator.{file_sha256(model)[:12]}.trt10.3.0.Orin.sm87.fp16.engine"
    others = {engine_file_name(model, "0" * 64, ORIN, "fp16"),
              engine_file_name(model, file_sha256(model), Target("10.4.0", "Orin", (8, 7)), "fp16"),
              engine_file_name(model, file_sha256(model), Target("10.3.0", "NVIDIA GeForce RTX 4090", (8, 9)),
                               "fp16"),
              engine_file_name(model, file_sha256(model), ORIN, "int8")}
    assert name not in others and len(others) == 4  # any change names another engine: it is rebuilt


def test_engine_name_follows_the_model_bytes(tmp_path):
    copy = tmp_path / "deid_generator.onnx"
    shutil.copyfile(default_generator_path(), copy)
    before = engine_file_name(copy, file_sha256(copy), ORIN, "fp16")
    with open(copy, "ab") as handle:
        handle.write(b"\0")
    assert engine_file_name(copy, file_sha256(copy), ORIN, "fp16") != before


def test_engine_for_another_gpu_or_version_is_refused_clearly(tmp_path):
    model = default_generator_path()
    engine = tmp_path / engine_file_name(model, file_sha256(model), ORIN, "fp16")
    check_engine_target(engine, ORIN)
    with pytest.raises(ValueError, match=r"built for trt10.3.0.Orin.sm87, this machine is trt10.4.0.Orin.sm87"):
        check_engine_target(engine, Target("10.4.0", "Orin", (8, 7)))
    with pytest.raises(ValueError, match="sm89"):
        check_engine_target(engine, Target("10.3.0", "RTX 4090", (8, 9)))
    with pytest.raises(ValueError, match="not an engine file named by deid_sdk"):
        check_engine_target(tmp_path / "model.engine", ORIN)


@pytest.mark.parametrize("precision, flags", [("fp32", ()), ("fp16", ("FP16",)), ("int8", ("INT8",)),
                                              ("best", ("FP16", "INT8"))])
def test_builder_flags(precision, flags):
    assert builder_flags(precision) == flags


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="got 'int4'"):
        builder_flags("int4")


@pytest.mark.parametrize("file_name", ["deid_generator.onnx", "deid_generator.int8.onnx", "deid_generator.fp16.onnx",
                                       "dlib_resnet.onnx"])
def test_profile_from_the_shipped_files_is_1_to_8_faces(file_name):
    shapes = onnx_input_shapes(shipped_model(file_name))
    profile = profile_shapes(file_name, shapes)
    assert set(profile) == set(shapes)
    for name, (smallest, optimal, largest) in profile.items():
        fixed = tuple(shapes[name][1:])
        assert (smallest, largest) == ((1, *fixed), (MAX_FACES, *fixed))
        assert 1 <= optimal[0] <= MAX_FACES and optimal[1:] == fixed
    if file_name.startswith("deid_generator"):
        assert profile["crop"][2] == (8, 3, 128, 128) and profile["identity"][0] == (1, 128)


def test_fixed_batch_of_one_needs_no_profile():
    assert profile_shapes("sface.onnx", onnx_input_shapes(shipped_model("sface.onnx"))) == {}
    with pytest.raises(ValueError, match="input 'x' has shape \\[2, 3\\]"):
        profile_shapes("m.onnx", {"x": (2, 3)})


def test_largest_batch_of_an_engine():
    assert max_batch(GENERATOR_INPUTS) == MAX_FACES
    assert max_batch({"data": (1, 3, 112, 112)}) == 1
    with pytest.raises(ValueError, match="a batch of 1..1 faces"):
        bind_device_arrays("sface", {"data": (1, 3, 112, 112)}, {"data": DeviceArray(np.zeros((2, 3, 112, 112),
                                                                                             np.float32))})


def test_detector_breaks_the_per_face_contract_clearly():
    with pytest.raises(ValueError, match="centerface.onnx: input .* needs a dynamic batch axis first"):
        profile_shapes("centerface.onnx", onnx_input_shapes(shipped_model("centerface.onnx")))


def test_generator_contract_on_the_real_files():
    generator = OnnxRuntimeSession(default_generator_path())
    check_generator_contract("g.onnx", generator.input_names, generator.output_names, generator.shapes)
    identity = OnnxRuntimeSession(shipped_model("dlib_resnet.onnx"))
    with pytest.raises(ValueError, match=r"does not follow the generator contract .* missing tensors \['crop'"):
        check_generator_contract("dlib_resnet.onnx", identity.input_names, identity.output_names, identity.shapes)


def generator_arrays(count: int) -> dict[str, DeviceArray]:
    return {"crop": DeviceArray(np.zeros((count, 3, 128, 128), np.float32)),
            "identity": DeviceArray(np.zeros((count, 128), np.float32)),
            "strength": DeviceArray(np.ones((count, 1), np.float32))}


@pytest.mark.parametrize("count", [1, 4, MAX_FACES])
def test_binding_takes_the_device_pointers(count):
    arrays = generator_arrays(count)
    batch, bound = bind_device_arrays("g", GENERATOR_INPUTS, arrays)
    assert batch == count
    for name, (shape, pointer) in bound.items():
        assert shape == arrays[name].array.shape and pointer == arrays[name].array.ctypes.data


def test_binding_refuses_what_the_engine_cannot_take():
    with pytest.raises(ValueError, match="a batch of 1..8 faces"):
        bind_device_arrays("g", GENERATOR_INPUTS, generator_arrays(MAX_FACES + 1))
    arrays = generator_arrays(2)
    arrays["identity"] = DeviceArray(np.zeros((3, 128), np.float32))
    with pytest.raises(ValueError, match=r"identity must have shape \(2, 128\), got \(3, 128\)"):
        bind_device_arrays("g", GENERATOR_INPUTS, arrays)
    arrays = generator_arrays(2)
    arrays["crop"] = DeviceArray(np.zeros((2, 3, 128, 128), np.float16))
    with pytest.raises(TypeError, match="crop must be float32, got float16"):
        bind_device_arrays("g", GENERATOR_INPUTS, arrays)
    arrays = generator_arrays(2)
    transposed = np.zeros((2, 128), np.float32)
    arrays["identity"] = DeviceArray(transposed, strides=(4, 8))
    with pytest.raises(ValueError, match="C-contiguous"):
        bind_device_arrays("g", GENERATOR_INPUTS, arrays)
    arrays = generator_arrays(2)
    del arrays["strength"]
    with pytest.raises(ValueError, match="no array for tensor 'strength'"):
        bind_device_arrays("g", GENERATOR_INPUTS, arrays)
    with pytest.raises(TypeError, match="__cuda_array_interface__"):
        bind_device_arrays("g", GENERATOR_INPUTS, {**generator_arrays(1), "crop": np.zeros((1, 3, 128, 128))})


def test_outputs_bind_with_the_inputs_batch():
    outputs = {"image": (-1, 3, 128, 128), "mask": (-1, 1, 128, 128)}
    arrays = {"image": DeviceArray(np.zeros((2, 3, 128, 128), np.float32)),
              "mask": DeviceArray(np.zeros((3, 1, 128, 128), np.float32))}
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 1, 128, 128\)"):
        bind_device_arrays("g", outputs, arrays, count=2)


@without_tensorrt
def test_auto_resolves_to_what_is_installed_and_says_why():
    backend, providers, why = resolve_backend("auto")
    assert backend == "onnxruntime" and "TensorRT is not installed" in why
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert providers[0] == "CUDAExecutionProvider"
    else:
        assert providers == ["CPUExecutionProvider"] and "no CUDA provider" in why
    assert resolve_backend("auto", per_face=False)[2].startswith("input follows the frame size")


@without_tensorrt
def test_auto_logs_its_choice_once(caplog):
    from deid_sdk import backends

    backends._announced.discard(("dlib_resnet.onnx", "onnxruntime"))
    with caplog.at_level(logging.INFO, logger="deid_sdk"):
        for _ in range(2):
            session = create_session(shipped_model("dlib_resnet.onnx"), backend="auto")
    lines = [r.getMessage() for r in caplog.records if "dlib_resnet.onnx: backend" in r.getMessage()]
    assert len(lines) == 1 and "TensorRT is not installed" in lines[0]
    assert session.backend == "onnxruntime"


@without_tensorrt
def test_filter_refuses_tensorrt_in_init_with_what_to_install():
    with pytest.raises(ImportError, match="TensorRT is not installed: .*pip install tensorrt"):
        Filter(backend="tensorrt")
    with pytest.raises(ValueError, match="got 'trt'"):
        Filter(backend="trt")


def run_deid(*arguments):
    return subprocess.run([sys.executable, "-m", "deid_sdk.cli", *arguments], capture_output=True, text=True,
                          timeout=120)


@without_tensorrt
def test_build_engine_without_tensorrt_is_one_line_exit_1():
    result = run_deid("build-engine", "--precision", "fp16")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("deid build-engine: error: TensorRT is not installed")


@pytest.mark.parametrize("arguments", [[], ["--precision", "int4"], ["--precision", "fp16", "--model"]])
def test_build_engine_usage_errors_exit_2(arguments):
    assert run_deid("build-engine", *arguments).returncode == 2


def test_build_engine_checks_the_model_before_tensorrt(tmp_path):
    result = run_deid("build-engine", "--precision", "fp16", "--model", str(tmp_path / "missing.onnx"))
    assert result.returncode == 1 and "missing.onnx" in result.stderr


def test_cuda_runtime_answers_or_says_what_failed():
    """The ctypes CUDA runtime, for real: without libcudart an ImportError naming it; without a GPU (or driver)
    CUDA's own message naming the call; with a GPU its name and compute capability."""
    try:
        cuda = CudaRuntime()
    except ImportError as error:
        assert "libcudart.so" in str(error)
        return
    try:
        name, capability = cuda.device()
    except RuntimeError as error:
        assert str(error).startswith("CUDA cudaGetDeviceProperties failed: ") and len(str(error)) > 40
        return
    assert name and capability[0] >= 5
