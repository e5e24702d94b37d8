"""TensorRT 10 backend (Jetson, JetPack 6 ships TensorRT 10.3): engines built from the ONNX files, cached, run on
a CUDA stream.

- Build: the ONNX parser, a builder config with the precision's flags, a timing cache file beside the engines
  (later builds reuse the kernel timings) and one optimisation profile with 1..MAX_FACES on the batch axis.
- Cache: one engine per (model sha256, TensorRT version, GPU name and compute capability, precision), each in
  the file name (as jetson-inference names its caches), so a change of any of them builds a new engine.
- Run: `run(dict of numpy)` copies to device buffers and back (the host path); `run_device(inputs, outputs)`
  binds `__cuda_array_interface__` objects (the CUDA warp kernel's crops in, the blend kernel's image/mask out)
  with no host copy.

CUDA runtime calls go through ctypes on libcudart, which every TensorRT install has (TensorRT needs it): pycuda
has no aarch64 wheels (it compiles against the JetPack CUDA on the device) and cuda-python would be one more
dependency, for the five calls used here (stream, malloc, free, async copy, synchronise).
`tensorrt` is optional: this module imports without it, and `load_tensorrt` says what to install.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deid_sdk.errors import ModelError

log = logging.getLogger("deid_sdk")

MAX_FACES = 8            # the optimisation profile's batch range is 1..MAX_FACES
OPTIMAL_FACES = 4        # the batch TensorRT tunes its kernels for (a camera frame rarely has more)
TENSORRT_PRECISIONS = ("fp32", "fp16", "int8", "best")
TIMING_CACHE_FILE = "timing.cache"
INSTALL_HINT = ("TensorRT is not installed: on a Jetson it comes with JetPack 6 (apt install python3-libnvinfer); "
                "on an x86 NVIDIA GPU: pip install tensorrt (10.x). Or use backend='onnxruntime'")
_FLOAT32 = "<f4"


def load_tensorrt():
    """The tensorrt module, or an ImportError that says what to install."""
    try:
        import tensorrt
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return tensorrt


def tensorrt_available() -> bool:
    try:
        load_tensorrt()
    except ImportError:
        return False
    return True


def check_precision(precision: str) -> str:
    if precision not in TENSORRT_PRECISIONS:
        raise ValueError(f"TensorRT precision must be one of {', '.join(map(repr, TENSORRT_PRECISIONS))}, "
                         f"got {precision!r}")
    return precision


def builder_flags(precision: str) -> tuple[str, ...]:
    """The BuilderFlag names a precision sets: fp16 and int8 allow those kernels (int8 where the Q/DQ nodes say),
    best allows both, as trtexec --best does. TF32 stays TensorRT's default."""
    return {"fp32": (), "fp16": ("FP16",), "int8": ("INT8",), "best": ("FP16", "INT8")}[check_precision(precision)]


# ---- engine cache names -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What an engine is valid for: TensorRT version and GPU. Engines are not portable across either."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]

    @property
    def slug(self) -> str:
        gpu = re.sub(r"[^A-Za-z0-9]+", "-", self.gpu_name).strip("-") or "gpu"
        major, minor = self.compute_capability
        return f"trt{self.tensorrt_version}.{gpu}.sm{major}{minor}"


def engine_file_name(model_path: str | Path, sha256: str, target: Target, precision: str) -> str:
    """e.g. deid_generator.9c71c7169eeb.trt10.3.0.Orin.sm87.fp16.engine"""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"expected a sha256 of 64 hex digits, got {sha256!r}")
    return f"{Path(model_path).stem}.{sha256[:12]}.{target.slug}.{check_precision(precision)}.engine"


def engine_cache_dir() -> Path:
    """$DEID_ENGINE_DIR, else ~/.cache/deid_sdk/engines (engines are per machine: never shipped)."""
    if os.environ.get("DEID_ENGINE_DIR"):
        return Path(os.environ["DEID_ENGINE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deid_sdk" / "engines"


def check_engine_target(engine_path: Path, target: Target) -> None:
    """An engine file named for another TensorRT version or GPU: say so (deserialising it would fail obscurely)."""
    match = re.search(r"\.(trt[^.]+(?:\.[0-9]+)*\.[A-Za-z0-9-]+\.sm[0-9]+)\.[a-z0-9]+\.engine$", engine_path.name)
    if match is None:
        raise ValueError(f"{engine_path} is not an engine file named by deid_sdk (<model>.<sha256>.trt<version>."
                         f"<gpu>.sm<cc>.<precision>.engine); build one with `deid build-engine`")
    if match.group(1) != target.slug:
        raise ValueError(f"{engine_path.name} was built for {match.group(1)}, this machine is {target.slug}: "
                         f"engines do not move between TensorRT versions or GPUs; rebuild with `deid build-engine`")


# ---- optimisation profile ---------------------------------------------------------------------------------------

def profile_shapes(model: str, input_shapes: dict[str, tuple]) -> dict[str, tuple[tuple, tuple, tuple]]:
    """(min, opt, max) shape of each input: batch 1, OPTIMAL_FACES and MAX_FACES, the other axes as the model has
    them. A model with a fixed batch of 1 on every input (SFace) needs no profile: {}. Any other dynamic axis
    breaks the contract (models/README.md) and is refused here."""
    dims = {name: [None if not isinstance(d, (int, np.integer)) or d < 0 else int(d) for d in shape]
            for name, shape in input_shapes.items()}
    if dims and all(shape and shape[0] == 1 and None not in shape for shape in dims.values()):
        return {}
    shapes = {}
    for name, shape in dims.items():
        if not shape or shape[0] is not None or any(d is None for d in shape[1:]):
            raise ValueError(f"{model}: input {name!r} has shape {list(input_shapes[name])}; the TensorRT backend "
                             "needs a dynamic batch axis first (or a batch of 1 on every input) and fixed other "
                             "axes (the ONNX contract in models/README.md)")
        rest = tuple(shape[1:])
        shapes[name] = ((1, *rest), (OPTIMAL_FACES, *rest), (MAX_FACES, *rest))
    return shapes


def max_batch(tensor_shapes: dict[str, tuple]) -> int:
    """The largest batch an engine takes: MAX_FACES with the profile's dynamic batch, else its fixed batch."""
    batches = {int(shape[0]) for shape in tensor_shapes.values()}
    return MAX_FACES if -1 in batches else min(batches)


# ---- binding __cuda_array_interface__ objects -------------------------------------------------------------------

def bind_device_arrays(model: str, tensor_shapes: dict[str, tuple], arrays: dict[str, object],
                       count: int | None = None) -> tuple[int, dict[str, tuple[tuple, int]]]:
    """Check device arrays against the engine's tensors (shape with -1 for the batch axis): float32,
    C-contiguous, one batch for all that the engine takes (1..MAX_FACES, or its fixed batch). Returns the batch and
    name -> (shape, device pointer)."""
    from deid_sdk.ops.warp_blend import _cuda_interface

    bound = {}
    for name, engine_shape in tensor_shapes.items():
        if name not in arrays:
            raise ValueError(f"{model}: no array for tensor {name!r}; expected {sorted(tensor_shapes)}")
        interface = _cuda_interface(name, arrays[name], writable=False)
        shape = interface["shape"]
        if np.dtype(interface["typestr"]) != np.dtype(_FLOAT32):
            raise TypeError(f"{model}: {name} must be float32, got {np.dtype(interface['typestr'])}")
        if count is None:
            count = shape[0] if shape else 0
        want = (count, *engine_shape[1:])
        if shape != want:
            raise ValueError(f"{model}: {name} must have shape {want}, got {shape}")
        bound[name] = (shape, interface["pointer"])
    largest = max_batch(tensor_shapes)
    if count is None or not 1 <= count <= largest:
        raise ValueError(f"{model}: a batch of 1..{largest} faces (the engine's profile), got {count}")
    return count, bound


# ---- CUDA runtime (ctypes) --------------------------------------------------------------------------------------

_MEMCPY_HOST_TO_DEVICE, _MEMCPY_DEVICE_TO_HOST = 1, 2
_CUDART_NAMES = ("libcudart.so", "libcudart.so.12", "/usr/local/cuda/lib64/libcudart.so")


class CudaRuntime:
    """The few CUDA runtime calls the backend makes, through ctypes; each failure raises with CUDA's message."""

    def __init__(self):
        names = [ctypes.util.find_library("cudart"), *_CUDART_NAMES]
        for name in filter(None, names):
            try:
                self._lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise ImportError("the CUDA runtime (libcudart.so) was not found: install CUDA (JetPack on a Jetson) "
                              "or put its lib64 folder on LD_LIBRARY_PATH")
        self._lib.cudaGetErrorString.restype = ctypes.c_char_p

    def _check(self, status: int, call: str) -> None:
        if status != 0:
            raise RuntimeError(f"CUDA {call} failed: {self._lib.cudaGetErrorString(status).decode()}")

    def device(self) -> tuple[str, tuple[int, int]]:
        properties = ctypes.create_string_buffer(4096)  # cudaDeviceProp starts with char name[256]
        getter = getattr(self._lib, "cudaGetDeviceProperties_v2", None) or self._lib.cudaGetDeviceProperties
        self._check(getter(properties, 0), "cudaGetDeviceProperties")
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self._lib.cudaDeviceGetAttribute(ctypes.byref(major), 75, 0), "cudaDeviceGetAttribute")
        self._check(self._lib.cudaDeviceGetAttribute(ctypes.byref(minor), 76, 0), "cudaDeviceGetAttribute")
        return properties.raw[:256].split(b"\0", 1)[0].decode(), (major.value, minor.value)

    def stream(self) -> int:
        handle = ctypes.c_void_p()
        self._check(self._lib.cudaStreamCreate(ctypes.byref(handle)), "cudaStreamCreate")
        return int(handle.value or 0)

    def malloc(self, size: int) -> int:
        pointer = ctypes.c_void_p()
        self._check(self._lib.cudaMalloc(ctypes.byref(pointer), ctypes.c_size_t(size)), "cudaMalloc")
        return int(pointer.value)

    def free(self, pointer: int) -> None:
        self._check(self._lib.cudaFree(ctypes.c_void_p(pointer)), "cudaFree")

    def copy(self, destination: int, source: int, size: int, kind: int, stream: int) -> None:
        self._check(self._lib.cudaMemcpyAsync(ctypes.c_void_p(destination), ctypes.c_void_p(source),
                                              ctypes.c_size_t(size), kind, ctypes.c_void_p(stream)),
                    "cudaMemcpyAsync")

    def synchronize(self, stream: int) -> None:
        self._check(self._lib.cudaStreamSynchronize(ctypes.c_void_p(stream)), "cudaStreamSynchronize")

    def device_count(self) -> int:
        """CUDA devices usable here; 0 also when the runtime library is present without a driver or a GPU."""
        count = ctypes.c_int(0)
        return count.value if self._lib.cudaGetDeviceCount(ctypes.byref(count)) == 0 else 0

    def memory_type(self, pointer: int) -> tuple[str, int]:
        """(kind, host address) of `pointer` by cudaPointerGetAttributes: kind is one of MEMORY_TYPES; the host
        address is where the CPU reads it (0 for "device": the CPU cannot)."""
        attributes = _PointerAttributes()
        self._check(self._lib.cudaPointerGetAttributes(ctypes.byref(attributes), ctypes.c_void_p(pointer)),
                    "cudaPointerGetAttributes")
        kind = MEMORY_TYPES[attributes.type] if 0 <= attributes.type < len(MEMORY_TYPES) else "device"
        host = {"unregistered": pointer, "managed": pointer}.get(kind, attributes.host_pointer or 0)
        return kind, int(host)


# cudaMemoryType's values, in order; "unregistered" is plain host memory CUDA does not know of (CUDA >= 11).
MEMORY_TYPES = ("unregistered", "host", "device", "managed")


class _PointerAttributes(ctypes.Structure):
    """cudaPointerAttributes (CUDA >= 11): type, device, devicePointer, hostPointer."""
    _fields_ = [("type", ctypes.c_int), ("device", ctypes.c_int), ("device_pointer", ctypes.c_void_p),
                ("host_pointer", ctypes.c_void_p)]


def current_target(trt=None, cuda: CudaRuntime | None = None) -> Target:
    trt = trt or load_tensorrt()
    name, capability = (cuda or CudaRuntime()).device()
    return Target(trt.__version__, name, capability)


# ---- build and load ---------------------------------------------------------------------------------------------

def build_engine(model_path: str | Path, engine_path: Path, precision: str, trt=None) -> None:
    """Parse the ONNX, build with the precision's flags and the 1..MAX_FACES profile, write the engine and update
    the timing cache beside it."""
    trt = trt or load_tensorrt()
    model_path = Path(model_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch: the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(index)) for index in range(parser.num_errors))
        raise ValueError(f"TensorRT cannot parse {model_path}: {errors}. INT8 needs symmetric Q/DQ "
                         "(`deid calibrate --activations int8`)")
    inputs = {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}
    config = builder.create_builder_config()
    for flag in builder_flags(precision):
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profiles = profile_shapes(model_path.name, inputs)
    if profiles:  # a dynamic batch; a fixed-batch model builds without a profile
        profile = builder.create_optimization_profile()
        for name, (smallest, optimal, largest) in profiles.items():
            profile.set_shape(name, smallest, optimal, largest)
        config.add_optimization_profile(profile)
    timing_path = engine_path.parent / TIMING_CACHE_FILE
    timing_cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
    config.set_timing_cache(timing_cache, False)
    log.info("%s: building a TensorRT %s engine (minutes the first time)", model_path.name, precision)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine for {model_path} ({precision}); see its log above")
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    partial = engine_path.with_suffix(".partial")
    partial.write_bytes(bytes(serialized))
    partial.replace(engine_path)  # a build killed half-way leaves no engine that looks complete
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))


def cached_engine(model_path: str | Path, precision: str, cache_dir: Path | None = None, trt=None,
                  cuda: CudaRuntime | None = None) -> Path:
    """The engine for this model, precision, TensorRT and GPU: built when not cached yet."""
    from deid_sdk.model_files import file_sha256

    trt = trt or load_tensorrt()
    path = (cache_dir or engine_cache_dir()) / engine_file_name(model_path, file_sha256(Path(model_path)),
                                                                current_target(trt, cuda), precision)
    if not path.is_file():
        build_engine(model_path, path, precision, trt)
    return path


class TensorRTSession:
    """An engine with an execution context and a stream; host path `run`, device path `run_device`."""

    backend = "tensorrt"

    def __init__(self, model_path: str | Path, precision: str = "fp16", cache_dir: Path | None = None,
                 engine_path: Path | None = None):
        trt = load_tensorrt()
        self._cuda = CudaRuntime()
        self.model = Path(model_path).name
        self.precision = check_precision(precision)
        if engine_path is None:
            engine_path = cached_engine(model_path, precision, cache_dir, trt, self._cuda)
        else:
            check_engine_target(Path(engine_path), current_target(trt, self._cuda))
        self.engine_path = Path(engine_path)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ValueError(f"{self.engine_path} does not load with TensorRT {trt.__version__} on this GPU; "
                             "delete it to rebuild, or run `deid build-engine`")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {name: self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT for name in names}
        self.input_names = [name for name in names if is_input[name]]
        self.output_names = [name for name in names if not is_input[name]]
        self._shapes = {name: tuple(self._engine.get_tensor_shape(name)) for name in names}
        self.shapes = {name: tuple(None if dim < 0 else int(dim) for dim in shape)  # as InferenceSession declares
                       for name, shape in self._shapes.items()}
        self.max_batch = max_batch(self._shapes)
        self._stream = self._cuda.stream()
        self._buffers = {}  # host path: one device buffer per tensor, sized for the largest batch
        for name, shape in self._shapes.items():
            self._buffers[name] = self._cuda.malloc(4 * self.max_batch * int(np.prod(shape[1:])))

    def run_device(self, inputs: dict[str, object], outputs: dict[str, object], stream: int | None = None) -> None:
        """Inputs and outputs are float32 `__cuda_array_interface__` objects; queued on `stream` (default: the
        session's), no host copy."""
        count, bound_inputs = bind_device_arrays(self.model, {n: self._shapes[n] for n in self.input_names}, inputs)
        _, bound_outputs = bind_device_arrays(self.model, {n: self._shapes[n] for n in self.output_names}, outputs,
                                              count)
        self._execute({name: pointer for name, (_, pointer) in {**bound_inputs, **bound_outputs}.items()}, count,
                      self._stream if stream is None else stream)

    def _execute(self, pointers: dict[str, int], count: int, stream: int) -> None:
        for name in self.input_names:
            self._context.set_input_shape(name, (count, *self._shapes[name][1:]))
        for name, pointer in pointers.items():
            self._context.set_tensor_address(name, pointer)
        if not self._context.execute_async_v3(stream):
            raise ModelError(self.model, "TensorRT execution failed (see its log)")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Host arrays in and out, in chunks of the engine's largest batch."""
        count = len(inputs[self.input_names[0]])
        outputs = {name: np.empty((count, *self._shapes[name][1:]), np.float32) for name in self.output_names}
        for start in range(0, count, self.max_batch):
            chunk = min(self.max_batch, count - start)
            hosts = {name: np.ascontiguousarray(inputs[name][start:start + chunk], dtype=np.float32)
                     for name in self.input_names}
            for name, host in hosts.items():
                self._cuda.copy(self._buffers[name], host.ctypes.data, host.nbytes, _MEMCPY_HOST_TO_DEVICE,
                                self._stream)
            self._execute(self._buffers, chunk, self._stream)
            for name in self.output_names:
                target = outputs[name][start:start + chunk]
                self._cuda.copy(target.ctypes.data, self._buffers[name], target.nbytes, _MEMCPY_DEVICE_TO_HOST,
                                self._stream)
            self._cuda.synchronize(self._stream)  # the host arrays are read (and `hosts` freed) after this
        return outputs

    def __del__(self):
        for pointer in getattr(self, "_buffers", {}).values():
            try:
                self._cuda.free(pointer)
            except Exception:  # interpreter shutdown: the driver frees the memory with the process
                pass
