"""Checkpoints: a full one (exact resume) and a compact travelling one (bf16, split into parts of <= 15 MiB).

Full (`checkpoint.pt`, torch.save): float32 weights, Adam state, step, lambda stage, config and every RNG state;
resuming from it gives the identical next step.

Compact (a folder of `compact_000.npz`, `compact_001.npz`, ...): the weights of G and D in bfloat16 (stored as
uint16 bit patterns, numpy has no bf16) and the Adam moments chosen by `moments`:
  "both"    exp_avg and exp_avg_sq in bf16 (57 MB for G + D);
  "second"  exp_avg_sq only, bf16 (38 MB). With beta1 = 0.5 the first moment is an average over the last ~2
            steps: it rebuilds itself at once, while the second (beta2 = 0.99, ~100 steps) would restart with
            oversized updates;
  "second8" exp_avg_sq only, as 8-bit codes of log2(v) per tensor (28 MB; v within ~5%, the update within ~3%):
            the default, so that checkpoint + shard + dlib weights travel together within 64 MiB;
  "none"    weights only (19 MB); Adam restarts from zero (its own bias correction, as at step 0).
Part 0 also holds `meta` (JSON as uint8: step, lambda stage, config, Adam step counts, tensor index) and the
RNG states. Each part stays under `part_bytes` so it comes back from a GPU window (files <= 16 MiB).
"""
from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

COMPACT_PREFIX = "compact_"
FULL_NAME = "checkpoint.pt"
PART_BYTES = 15 * 2 ** 20


# ------------------------------------------------------------------------------------------------ RNG
def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "python" in state:
        random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------------ full
def save_full(path: str | Path, state: dict) -> Path:
    """Atomically torch.save `state` (models, optimizers, step, stage, config, rng) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)
    return path


def load_full(path: str | Path) -> dict:
    return torch.load(Path(path), map_location="cpu", weights_only=False)


# ------------------------------------------------------------------------------------------------ compact
def _bf16_bits(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.bfloat16).contiguous().view(torch.int16).numpy().view(np.uint16)


def _from_bf16_bits(bits: np.ndarray, shape) -> torch.Tensor:
    return torch.from_numpy(bits.view(np.int16).copy()).view(torch.bfloat16).float().reshape(shape)


MOMENTS_KEPT = {"both": ("exp_avg", "exp_avg_sq"), "second": ("exp_avg_sq",), "second8": ("exp_avg_sq",), "none": ()}
LOG_CODES = 255   # code 0 = exactly zero, 1..255 = log2(v) quantized uniformly between the tensor's min and max


def _log8_encode(tensor: torch.Tensor) -> tuple[np.ndarray, float, float]:
    values = tensor.detach().float().cpu().numpy().ravel()
    positive = values > 0
    codes = np.zeros(values.shape, np.uint8)
    if not positive.any():
        return codes, 0.0, 0.0
    logs = np.log2(values[positive].astype(np.float64))
    low, high = float(logs.min()), float(logs.max())
    scale = (high - low) / (LOG_CODES - 1) if high > low else 1.0
    codes[positive] = np.round((logs - low) / scale).astype(np.int64) + 1
    return codes, low, scale


def _log8_decode(codes: np.ndarray, low: float, scale: float, shape) -> torch.Tensor:
    values = np.where(codes > 0, np.exp2(low + (codes.astype(np.float64) - 1) * scale), 0.0)
    return torch.from_numpy(values.astype(np.float32)).reshape(shape)


def compact_tensors(models: dict, optimizers: dict, moments: str) -> dict[str, torch.Tensor]:
    """Flat {name: tensor} of what the compact checkpoint stores (model params/buffers, chosen moments)."""
    if moments not in MOMENTS_KEPT:
        raise ValueError(f"expected moments in {sorted(MOMENTS_KEPT)}, got {moments!r}")
    keep = MOMENTS_KEPT[moments]
    tensors = {}
    for model_name, model in models.items():
        for key, value in model.state_dict().items():
            tensors[f"{model_name}/weights/{key}"] = value
        optimizer = optimizers[model_name]
        params = [p for group in optimizer.param_groups for p in group["params"]]
        lookup = {id(p): name for name, p in model.named_parameters()}
        for param in params:
            state = optimizer.state.get(param, {})
            for moment in keep:
                if moment in state:
                    tensors[f"{model_name}/{moment}/{lookup[id(param)]}"] = state[moment]
    return tensors


def save_compact(folder: str | Path, models: dict, optimizers: dict, meta: dict, rng: dict,
                 moments: str = "second", part_bytes: int = PART_BYTES) -> list[Path]:
    """Write the compact checkpoint parts into `folder` (old parts removed); returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = compact_tensors(models, optimizers, moments)
    index = {name: list(t.shape) for name, t in tensors.items()}
    adam_steps = {}
    for model_name, optimizer in optimizers.items():
        steps = [float(s["step"]) for s in optimizer.state.values() if "step" in s]
        adam_steps[model_name] = max(steps) if steps else 0.0
    header = {**meta, "moments": moments, "index": index, "adam_steps": adam_steps, "format": "deid-train-compact-1"}
    rng_buffer = io.BytesIO()
    torch.save(rng, rng_buffer)
    first = {"meta": np.frombuffer(json.dumps(header).encode(), np.uint8),
             "rng": np.frombuffer(rng_buffer.getvalue(), np.uint8)}
    parts: list[dict[str, np.ndarray]] = [first]
    sizes = [sum(a.nbytes for a in first.values())]
    log8 = {}
    for name, tensor in tensors.items():
        if moments == "second8" and "/exp_avg_sq/" in name:
            bits, low, scale = _log8_encode(tensor)
            log8[name] = [low, scale]
        else:
            bits = _bf16_bits(tensor)
        if bits.nbytes > part_bytes:
            raise ValueError(f"tensor {name} ({bits.nbytes} bytes) does not fit one part of {part_bytes} bytes")
        if sizes[-1] + bits.nbytes > part_bytes - 64 * 1024:   # leave room for the npz headers
            parts.append({})
            sizes.append(0)
        parts[-1][name.replace("/", "|")] = bits
        sizes[-1] += bits.nbytes
    first["meta"] = np.frombuffer(json.dumps({**header, "log8": log8}).encode(), np.uint8)
    for old in folder.glob(f"{COMPACT_PREFIX}*.npz"):
        old.unlink()
    paths = []
    for number, arrays in enumerate(parts):
        path = folder / f"{COMPACT_PREFIX}{number:03d}.npz"
        temporary = folder / f"{COMPACT_PREFIX}{number:03d}.tmp.npz"
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
        paths.append(path)
    return paths


def is_compact(folder: str | Path) -> bool:
    return Path(folder).is_dir() and (Path(folder) / f"{COMPACT_PREFIX}000.npz").is_file()


def load_compact(folder: str | Path) -> tuple[dict, dict[str, torch.Tensor], dict]:
    """(meta, {name: float32 tensor}, rng state) from a compact checkpoint folder."""
    folder = Path(folder)
    paths = sorted(folder.glob(f"{COMPACT_PREFIX}[0-9][0-9][0-9].npz"))
    if not paths:
        raise FileNotFoundError(f"expected compact checkpoint parts {COMPACT_PREFIX}000.npz... in {folder}")
    arrays: dict[str, np.ndarray] = {}
    for path in paths:
        with np.load(path, allow_pickle=False) as part:
            arrays.update({name: part[name] for name in part.files})
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    rng = torch.load(io.BytesIO(arrays.pop("rng").tobytes()), weights_only=False)
    missing = [name for name in meta["index"] if name.replace("/", "|") not in arrays]
    if missing:
        raise FileNotFoundError(f"compact checkpoint in {folder} lacks {len(missing)} tensors (a part is missing?), "
                                f"e.g. {missing[0]}")
    log8 = meta.get("log8", {})
    tensors = {}
    for name, shape in meta["index"].items():
        stored = arrays[name.replace("/", "|")]
        tensors[name] = _log8_decode(stored, *log8[name], shape) if name in log8 else _from_bf16_bits(stored, shape)
    return meta, tensors, rng


def restore_compact(tensors: dict[str, torch.Tensor], meta: dict, models: dict, optimizers: dict) -> None:
    """Load weights and the stored Adam moments into freshly built models/optimizers.

    A missing first moment starts at 0 (beta1 = 0.5 refills it within steps); without a stored second moment
    the optimizer state is left empty, so Adam restarts with its own bias correction (no oversized steps).
    """
    for model_name, model in models.items():
        prefix = f"{model_name}/weights/"
        state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
        model.load_state_dict(state)
        optimizer = optimizers[model_name]
        step = torch.tensor(float(meta["adam_steps"].get(model_name, 0.0)))
        for name, param in model.named_parameters():
            second = tensors.get(f"{model_name}/exp_avg_sq/{name}")
            if second is None or step.item() == 0:
                continue
            first = tensors.get(f"{model_name}/exp_avg/{name}")
            optimizer.state[param] = {
                "step": step.clone(),
                "exp_avg": torch.zeros_like(param) if first is None else first.to(param.device, param.dtype),
                "exp_avg_sq": second.to(param.device, param.dtype),
            }
