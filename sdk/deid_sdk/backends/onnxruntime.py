"""ONNX Runtime backend (CPU by default; other execution providers when asked for and installed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from deid_sdk.errors import ModelError


class OnnxRuntimeSession:
    backend = "onnxruntime"

    def __init__(self, model_path: str | Path, threads: int = 2, providers: list[str] | None = None):
        import onnxruntime

        model_path = Path(model_path)
        self.model = model_path.name
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            # Explicit providers: the default list can pick a provider that is not usable here.
            self._session = onnxruntime.InferenceSession(
                str(model_path), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ValueError(f"cannot load ONNX model {model_path}: {error}. The file may be corrupt: "
                             "reinstall deid_sdk or re-export the model") from error
        self.provider = self._session.get_providers()[0]
        self.precision = "fp32"
        try:  # a damaged file can hold names that are not UTF-8, which onnxruntime only decodes here
            self.input_names = [node.name for node in self._session.get_inputs()]
            self.output_names = [node.name for node in self._session.get_outputs()]
            # Declared dims: an int where the file fixes one, None where it is symbolic (a batch size "N").
            self.shapes = {node.name: tuple(dim if isinstance(dim, int) else None for dim in node.shape)
                           for node in [*self._session.get_inputs(), *self._session.get_outputs()]}
        except UnicodeDecodeError as error:
            raise ValueError(f"cannot load ONNX model {model_path}: an input or output name is not UTF-8 "
                             f"({error}). The file may be corrupt: reinstall deid_sdk or re-export the model") from None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in self.input_names}
        try:
            outputs = self._session.run(self.output_names, feed)
        except Exception as error:  # onnxruntime raises its own Fail/RuntimeException types
            raise ModelError(self.model, f"inference failed: {str(error).strip().splitlines()[0]}") from error
        return dict(zip(self.output_names, outputs))
