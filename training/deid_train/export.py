"""`deid-train export`: the trained generator as `models/deid_generator.onnx`, its manifest entry and model card.

The ONNX file follows the contract in models/README.md (inputs crop/identity/strength, outputs image/mask, dynamic
N, opset 17). Weights are stored as float16 initializers, each followed by a Cast to float32: the file is half
the size (<= 16 MiB for the shipped network) while every computation stays float32 (onnxruntime folds the Casts
into float32 constants when it loads the model). The export is checked in onnxruntime against torch before the
manifest is written.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np

GENERATOR_FILE = "deid_generator.onnx"
MODEL_CARD_FILE = "deid_generator.md"
MANIFEST_FILE = "manifest.json"
CONTRACT_VERSION = 1
OPSET = 17
INPUT_NAMES = ("crop", "identity", "strength")
OUTPUT_NAMES = ("image", "mask")
MAX_FILE_BYTES = 16 * 2 ** 20
# Initializers smaller than this stay float32: no size to gain, and tiny tensors (scales, epsilons) lose
# relatively more precision.
MIN_FLOAT16_ELEMENTS = 16
# A float32 model and its float16-weight export differ by weight rounding only; beyond this, something is wrong.
MAX_ABS_DIFF_TOLERANCE = 2e-2


def load_generator(checkpoint: Path):
    """(Generator in float32 eval mode, metadata dict) from a trainer checkpoint.

    Accepts what deid_train.trainer writes: a run folder, its full `checkpoint.pt` ({"models": {"generator": ...},
    "step", "lambda", "config", ...}), or a compact travelling folder (`compact_000.npz`...). Also a torch file
    holding {"generator": state_dict, ...} or a bare generator state dict. bf16 weights are widened to float32.
    """
    import torch

    from deid_train.networks import Generator

    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    state, metadata = _read_checkpoint(checkpoint)
    generator = Generator()
    state = {key: value.float() if torch.is_floating_point(value) else value for key, value in state.items()}
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{checkpoint} does not match deid_train.networks.Generator: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return generator.float().eval(), metadata


_METADATA_KEYS = ("step", "lambda", "lambda_stage", "config", "seconds")


def _read_checkpoint(checkpoint: Path) -> tuple[dict, dict]:
    import torch

    from deid_train import checkpoint as checkpoints

    if checkpoint.is_dir():
        if (checkpoint / checkpoints.FULL_NAME).is_file():
            checkpoint = checkpoint / checkpoints.FULL_NAME
        elif checkpoints.is_compact(checkpoint / "compact"):
            checkpoint = checkpoint / "compact"
        if checkpoints.is_compact(checkpoint):
            meta, tensors, _ = checkpoints.load_compact(checkpoint)
            prefix = "generator/weights/"
            state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
            if not state:
                raise ValueError(f"compact checkpoint {checkpoint} holds no generator weights ({prefix}...)")
            return state, {key: meta[key] for key in _METADATA_KEYS if key in meta}
        if checkpoint.is_dir():
            raise FileNotFoundError(f"expected {checkpoints.FULL_NAME} or compact parts "
                                    f"({checkpoints.COMPACT_PREFIX}000.npz) in {checkpoint}")
    payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict):
        raise ValueError(f"{checkpoint}: expected a dict checkpoint, got {type(payload).__name__}")
    if isinstance(payload.get("models"), dict) and "generator" in payload["models"]:
        state = payload["models"]["generator"]
    elif "generator" in payload:
        state = payload["generator"]
    elif payload and all(hasattr(value, "dtype") for value in payload.values()):
        state = payload          # a bare generator state dict
    else:
        raise ValueError(f"{checkpoint}: expected generator weights ('models'/'generator'), got keys {sorted(payload)[:10]}")
    return state, {key: payload[key] for key in _METADATA_KEYS if key in payload}


def export_onnx_float32(generator, path: Path, batch: int = 2) -> None:
    """torch -> ONNX (float32 weights), opset 17, dynamic N."""
    import torch

    example = (torch.zeros(batch, 3, 128, 128), torch.zeros(batch, 128), torch.zeros(batch, 1))
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.9+ warns that the TorchScript exporter is legacy; the dynamo exporter needs onnxscript,
        # which is not installed here, and the legacy one produces a plain, well-supported opset-17 graph.
        warnings.simplefilter("ignore", DeprecationWarning)
        # The tracer warns about shape checks (InstanceNorm's input check) that it records as constants:
        # harmless here, N stays dynamic and the contract fixes every other dimension.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # InstanceNorm without running stats always normalises by the instance's own statistics ("train" mode):
        # exactly what the network does at inference too.
        warnings.filterwarnings("ignore", message=".*operator 'instance_norm' is set to train=True", category=UserWarning)
        torch.onnx.export(generator, example, buffer, input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                          opset_version=OPSET, dynamic_axes={name: {0: "N"} for name in INPUT_NAMES + OUTPUT_NAMES},
                          do_constant_folding=True, dynamo=False)
    path.write_bytes(buffer.getvalue())


def store_weights_as_float16(model):
    """Every float32 initializer (>= MIN_FLOAT16_ELEMENTS values) stored as float16 followed by a Cast to float32
    (the SDK's `deid_sdk.model_build.onnx_edit.float16_weights`, which the model build uses for SFace too)."""
    import onnx

    from deid_sdk.model_build.onnx_edit import float16_weights

    float16_weights(model, MIN_FLOAT16_ELEMENTS)
    onnx.checker.check_model(model)
    return model


def onnxruntime_outputs(path: Path, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(list(OUTPUT_NAMES), inputs)


def check_against_torch(generator, path: Path, crops: np.ndarray | None = None, seed: int = 0) -> dict:
    """Max abs difference between onnxruntime (the exported file) and torch, on the given crops or random ones.

    Two references: the float32 torch model (difference = float16 weight rounding + runtime), and the same model
    with its weights rounded to float16 (difference = the runtime only; should be ~1e-5).
    """
    import copy

    import torch

    rng = np.random.default_rng(seed)
    if crops is None:
        crops = rng.uniform(-1, 1, (3, 3, 128, 128)).astype(np.float32)
    count = len(crops)
    # dlib descriptors have entries of about +-0.2 and a norm of about 1.3-1.5.
    identity = rng.normal(0, 0.12, (count, 128)).astype(np.float32)
    strength = np.linspace(0, 1, count, dtype=np.float32).reshape(count, 1)
    inputs = {"crop": crops.astype(np.float32), "identity": identity, "strength": strength}
    runtime_image, runtime_mask = onnxruntime_outputs(path, inputs)
    rounded = copy.deepcopy(generator)
    with torch.no_grad():
        for parameter in rounded.parameters():
            if parameter.numel() >= MIN_FLOAT16_ELEMENTS:
                parameter.copy_(parameter.half().float())
        tensors = [torch.from_numpy(inputs[name]) for name in INPUT_NAMES]
        reference_image, reference_mask = (t.numpy() for t in generator(*tensors))
        rounded_image, rounded_mask = (t.numpy() for t in rounded(*tensors))
    return {
        "samples": count,
        "max_abs_diff_vs_float32_torch": float(max(np.abs(runtime_image - reference_image).max(),
                                                   np.abs(runtime_mask - reference_mask).max())),
        "max_abs_diff_vs_float16_weight_torch": float(max(np.abs(runtime_image - rounded_image).max(),
                                                          np.abs(runtime_mask - rounded_mask).max())),
    }


def export_generator(generator, out_dir: Path, metadata: dict | None = None, check_crops: np.ndarray | None = None,
                     figures: dict | None = None, write_card: bool = True) -> dict:
    """Export, check, and write/refresh the manifest entry (and the model card); returns the manifest entry."""
    import onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metadata = dict(metadata or {})
    target = out_dir / GENERATOR_FILE
    staging = out_dir / f".{GENERATOR_FILE}.float32.tmp"
    export_onnx_float32(generator, staging)
    model = store_weights_as_float16(onnx.load(str(staging)))
    staging.unlink()
    model.producer_name = "deid_train.export"
    model.doc_string = "deid_sdk generator, contract v1 (models/README.md); float16 weights, float32 compute"
    half = out_dir / f".{GENERATOR_FILE}.tmp"
    onnx.save(model, str(half))
    check = check_against_torch(generator, half, check_crops)
    if check["max_abs_diff_vs_float32_torch"] > MAX_ABS_DIFF_TOLERANCE:
        half.unlink()
        raise ValueError(f"the exported generator differs from torch by {check['max_abs_diff_vs_float32_torch']:.3g} "
                         f"(tolerance {MAX_ABS_DIFF_TOLERANCE}); not writing {target}")
    size = half.stat().st_size
    if size > MAX_FILE_BYTES:
        half.unlink()
        raise ValueError(f"the exported generator is {size / 2 ** 20:.1f} MiB, over the 16 MiB budget; shrink the network")
    half.replace(target)
    entry = manifest_entry(target, generator, metadata, check, figures)
    update_manifest(out_dir / MANIFEST_FILE, entry)
    if write_card:
        (out_dir / MODEL_CARD_FILE).write_text(model_card(entry))
    return entry


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def manifest_entry(path: Path, generator, metadata: dict, check: dict, figures: dict | None) -> dict:
    from deid_sdk import align

    from deid_train.networks import parameter_count

    config = _jsonable(metadata.get("config", {}))
    training = {key: _jsonable(metadata[key]) for key in ("step", "lambda", "lambda_stage", "seconds", "windows")
                if key in metadata}
    if isinstance(config, dict):
        for key in ("preset", "batch_size", "lambda_max", "lambda_ramp_steps", "lambda_ramp_fractions",
                    "strength_min", "strength_max", "device"):
            if key in config and key not in training:
                training[key] = config[key]
    return {
        "file": path.name,
        "sha256": _sha256(path),
        "bytes": path.stat().st_size,
        "contract": CONTRACT_VERSION,
        "kind": "generator",
        "opset": OPSET,
        "weights": "float16 initializers, each Cast to float32 (float32 compute)",
        "inputs": {"crop": [None, 3, 128, 128], "identity": [None, 128], "strength": [None, 1]},
        "outputs": {"image": [None, 3, 128, 128], "mask": [None, 1, 128, 128]},
        "crop": {"size": align.CROP_SIZE, "padding": align.CROP_PADDING, "shift_up": align.CROP_SHIFT_UP,
                 "color": "RGB", "range": [-1, 1], "interpolation": "linear", "border": "replicate"},
        "identity": "dlib_face_recognition_resnet_model_v1 descriptor (128-D, not normalised) of the target",
        "parameters": parameter_count(generator),
        "training": training,
        "config": config,
        "export_check": check,
        "figures": _jsonable(figures or {}),
        "model_card": MODEL_CARD_FILE,
        "exported": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "license": "non-commercial (inherited from LFW, UTKFace and dlib's 68-point model / iBUG 300-W); see the model card",
    }


WINDOW_KEYS = ("device_name", "first_step", "last_step", "steps_this_run", "it_per_s", "images_per_s", "batch_size",
               "elapsed_s", "lambda")


def training_window(summary: dict) -> dict:
    """The figures of one training invocation (the trainer's summary.json) worth keeping in the manifest."""
    window = {key: summary[key] for key in WINDOW_KEYS if key in summary}
    losses = summary.get("final_losses", {})
    for key in ("generator", "discriminator", "identity_distance", "high_frequency_ratio", "mask_mean"):
        if key in losses:
            window[f"final_{key}"] = losses[key]
    return window


def update_manifest(path: Path, entry: dict) -> dict:
    """Replace (or add) the entry with the same file name in models/manifest.json; other entries are kept."""
    manifest = {"contract": CONTRACT_VERSION, "models": []}
    if path.is_file():
        manifest = json.loads(path.read_text())
        if not isinstance(manifest.get("models"), list):
            raise ValueError(f"{path}: expected {{'models': [...]}}, got keys {sorted(manifest)}")
    manifest["models"] = [m for m in manifest["models"] if m.get("file") != entry["file"]] + [entry]
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


# ---------------------------------------------------------------------------------------------- model card
def _figures_table(figures: dict) -> str:
    if not figures:
        return ("No evaluation figures yet: run `python -m deid_train.quick_eval --model models/deid_generator.onnx "
                "--json out/quick_eval.json`, then `deid-train export --card-only --figures out/quick_eval.json`.")
    rows = ["| measure | input (no de-identification) | output | target |", "|---|---|---|---|"]
    for row in figures.get("table", []):
        rows.append(f"| {row['measure']} | {row.get('input', '')} | {row['output']} | {row.get('target', '')} |")
    if len(rows) == 2:
        rows += [f"| {key} | | {value} | |" for key, value in figures.items() if not isinstance(value, (dict, list))]
    command = figures.get("command", "python -m deid_train.quick_eval")
    settings = ", ".join(f"{k} {v}" for k, v in figures.get("settings", {}).items())
    return "\n".join(rows) + f"\n\nMeasured with `{command}`" + (f" ({settings})." if settings else ".")


# Settings worth reading in the card; the manifest keeps the whole configuration.
CARD_CONFIG_KEYS = ("batch_size", "learning_rate", "beta1", "beta2", "lambda_max", "lambda_ramp_steps",
                    "lambda_ramp_fractions", "strength_min", "strength_max", "alpha_raw", "alpha_masked",
                    "alpha_raw_gradient", "alpha_masked_gradient", "alpha_mask", "alpha_mask_gradient",
                    "adversarial_raw_weight", "high_frequency_weight", "source_stages", "target_stages", "bf16")


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def model_card(entry: dict) -> str:
    training = entry.get("training", {})
    config = entry.get("config", {}) or {}
    training_lines = "\n".join(f"- {key}: {_short(value)}" for key, value in training.items() if key != "windows") \
        or "- (no training metadata in the checkpoint)"
    windows = training.get("windows") or []
    if windows:
        columns = [key for key in WINDOW_KEYS + ("final_identity_distance", "final_high_frequency_ratio", "final_mask_mean")
                   if any(key in w for w in windows)]
        training_lines += "\n\nTraining windows (the trainer's summary.json of each invocation):\n\n"
        training_lines += "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
        training_lines += "\n".join("| " + " | ".join(_short(w.get(key, "")) for key in columns) + " |" for w in windows)
    key_settings = [key for key in CARD_CONFIG_KEYS if isinstance(config, dict) and key in config]
    config_line = ", ".join(f"{key} {_short(config[key])}" for key in key_settings) or "(none recorded)"
    check = entry.get("export_check", {})
    return f"""# deid_generator.onnx: face de-identification generator

**License: non-commercial research use only** (see "License terms" below).

## What it is
The adversarial autoencoder of "Live Face De-Identification in Video" (Gafni, Wolf, Taigman, ICCV 2019), at
128x128, as built in `training/deid_train/networks.py`: an encoder (a conv and five strided depth-wise separable
convs with instance norm, one FC to a 1024-D bottleneck), the target's 128-D dlib descriptor and the
de-identification strength concatenated to the bottleneck, a decoder (FC, then upscale blocks with pixel shuffle
and residual blocks), a tanh image and a sigmoid blending mask, and a low-capacity 32x32x1 U-Net link.
{entry.get('parameters', 0):,} parameters; {entry.get('bytes', 0) / 2 ** 20:.1f} MiB (float16 weights, float32 compute).

Contract v{entry.get('contract')} (models/README.md): `crop` [N,3,128,128] RGB in [-1,1], aligned by `deid_sdk.align`
(padding {entry['crop']['padding']}, shift up {entry['crop']['shift_up']}); `identity` [N,128] dlib descriptor of
the target; `strength` [N,1] in [0,1] -> `image` [N,3,128,128] in [-1,1], `mask` [N,1,128,128] in [0,1].
sha256 `{entry['sha256']}`.

## Data
- UTKFace (aligned and cropped set, 23k images, ages 0-116, five ethnic groups) and the LFW *train*
  identities of `faces/lfw_splits.json` (deep-funneled LFW); the 300 LFW eval identities were never used.
- Faces detected (CenterFace), landmarked (dlib 68 points) and aligned with the SDK's own code
  (`deid-train prepare`), so training and run time see the same crops.

## Training
Losses of the paper's eq. (1)-(6): LSGAN with mixup, L1 reconstruction raw and masked, derivative losses,
mask and mask-derivative L1, the multi-image perceptual loss on dlib's face-recognition ResNet (frozen, ported
exactly to PyTorch), with -lambda on the identity embedding, lambda ramped in four steps.
{training_lines}

Key settings: {config_line}. The full configuration is in `manifest.json` (entry `config`).

## Figures (300 LFW eval identities, one probe photo each, the second photo as gallery)
{_figures_table(entry.get('figures', {}))}

Export check (onnxruntime vs torch, {check.get('samples', '?')} samples): max abs difference
{check.get('max_abs_diff_vs_float32_torch', float('nan')):.2e} against the float32 model,
{check.get('max_abs_diff_vs_float16_weight_torch', float('nan')):.2e} against the same weights rounded to float16.

## License terms
- **Non-commercial.** The training images come from LFW and UTKFace, distributed for non-commercial research
  only; this model inherits that restriction.
- The crops were aligned with dlib's 68-point shape predictor (`shape_predictor_68_face_landmarks.dat`),
  trained on the iBUG 300-W dataset, whose terms exclude commercial use.
- Conditioning and the perceptual loss used dlib's face-recognition ResNet
  (`dlib_face_recognition_resnet_model_v1.dat`), which its author Davis King released into the public domain
  (davisking/dlib-models README); it was trained on FaceScrub, VGG-Face and images collected from the web,
  whose own terms vary. dlib itself is under the Boost Software License. The SDK runs it for the identity input.
- For commercial use, retrain on data you are licensed to use: put aligned crops in a crop pack with
  `deid-train prepare` (or your own images through the same `FaceAligner`), run `deid-train train` on it, then
  `deid-train export --checkpoint CKPT --out models/` (see training/README.md), and replace the landmark model
  with one you are licensed to use.
"""


# ---------------------------------------------------------------------------------------------- CLI
def register(subparsers) -> None:
    """Add `export` to deid-train's subcommands."""
    parser = subparsers.add_parser("export", help="export the generator to ONNX with its manifest entry and model card",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="trainer checkpoint: run folder, checkpoint.pt, or compact folder")
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder (default models/)")
    parser.add_argument("--figures", type=Path, default=None, help="JSON from quick_eval / deid-eval for the card")
    parser.add_argument("--check-shard", type=Path, default=None,
                        help="crop pack whose first crops are used for the torch/onnxruntime check (default: random)")
    parser.add_argument("--run-summary", type=Path, action="append", default=[],
                        help="a training window's summary.json (repeat, in order) for the card's run table; "
                             "a run folder's own summary.json is used when --checkpoint is that folder")
    parser.add_argument("--card-only", action="store_true",
                        help="no export: add --figures to the existing manifest entry and rewrite the model card")
    parser.set_defaults(handler=run_export)


def refresh_card(out_dir: Path, figures: dict) -> dict:
    """Put evaluation figures into the generator's manifest entry and rewrite its model card (file unchanged)."""
    manifest_path = Path(out_dir) / MANIFEST_FILE
    model_path = Path(out_dir) / GENERATOR_FILE
    if not manifest_path.is_file() or not model_path.is_file():
        raise FileNotFoundError(f"expected {model_path} and {manifest_path} (run `deid-train export` first)")
    entries = [m for m in json.loads(manifest_path.read_text())["models"] if m.get("file") == GENERATOR_FILE]
    if not entries:
        raise ValueError(f"{manifest_path} has no entry for {GENERATOR_FILE}; export it first")
    entry = entries[0]
    if entry["sha256"] != _sha256(model_path):
        raise ValueError(f"{model_path} does not match its manifest entry (sha256): export it again")
    entry["figures"] = _jsonable(_summary_figures(figures))
    update_manifest(manifest_path, entry)
    (Path(out_dir) / MODEL_CARD_FILE).write_text(model_card(entry))
    return entry


def _summary_figures(figures: dict) -> dict:
    """The evaluation summary without per-face rows."""
    return {key: value for key, value in figures.items() if key != "faces"}


def run_export(args: argparse.Namespace) -> int:
    figures = json.loads(args.figures.read_text()) if args.figures else None
    if args.card_only:
        if figures is None:
            raise ValueError("--card-only needs --figures FILE.json (from quick_eval or deid-eval)")
        entry = refresh_card(args.out, figures)
        print(f"model card and manifest figures refreshed for {entry['file']}")
        return 0
    if args.checkpoint is None:
        raise ValueError("expected --checkpoint (a run folder, checkpoint.pt or compact folder), got none")
    generator, metadata = load_generator(args.checkpoint)
    summaries = list(args.run_summary)
    if not summaries and (Path(args.checkpoint) / "summary.json").is_file():
        summaries = [Path(args.checkpoint) / "summary.json"]
    if summaries:
        metadata["windows"] = [training_window(json.loads(path.read_text())) for path in summaries]
    crops = None
    if args.check_shard is not None:
        from deid_train.shard import load_shard_images

        crops = load_shard_images(args.check_shard, limit=8).astype(np.float32) / 127.5 - 1.0
    entry = export_generator(generator, args.out, metadata, crops, _summary_figures(figures) if figures else None)
    print(json.dumps({key: entry[key] for key in ("file", "sha256", "bytes", "parameters", "export_check", "training")},
                     indent=1))
    return 0
