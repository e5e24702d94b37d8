"""The training loop: one step = a discriminator update and a generator update on one batch.

    trainer = Trainer(config)          # loads the shard onto the device, builds G, D, the frozen dlib net
    summary = trainer.train()          # until config.steps or the wall-clock budget; logs, samples, checkpoints

The data lives on the training device as one uint8 tensor; batches, flips, distortions, strengths and mixup
weights all come from torch's global RNG on that device, which the checkpoints save, so a resumed run takes the
identical next step (float32 on CPU; bf16 autocast on CUDA is deterministic only up to kernel choice).
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch

from deid_train import checkpoint as checkpoints
from deid_train import distributed
from deid_train.augment import RobustTransform, distort, flip_pairs
from deid_train.config import TrainConfig
from deid_train.losses import (derivative_l1, discriminator_mixup_loss, face_weight_map, feature_l1,
                               generator_adversarial_loss, high_frequency_excess, high_frequency_ratio,
                               identity_distance, mask_derivative_l1, sample_mixup_weights)
from deid_train.networks import Discriminator, Generator, parameter_count
from deid_train.shard import load_shard

SAMPLE_ROWS = 8
FINAL_SAVE_RESERVE_S = 10.0


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("expected a CUDA device for --device cuda, got none (torch.cuda.is_available() is False)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)   # CPU and every CUDA device


def load_identity_net(path: str, device: torch.device):
    from deid_train.identity_net import DlibResNet

    return DlibResNet.from_file(path or None).to(device)


class Trainer:
    def __init__(self, config: TrainConfig, images: torch.Tensor | None = None, identity_net=None, log=print):
        config.validate()
        self.config = config
        self.ranks = distributed.ranks_from_environment()   # torchrun's ranks, or one process
        if config.batch_size % self.ranks.world_size:
            raise ValueError(f"expected --batch-size (the global batch) divisible by the {self.ranks.world_size} "
                             f"ranks, got {config.batch_size}")
        self.log = log if self.ranks.is_main else (lambda *_args, **_kwargs: None)
        self.started = time.monotonic()
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = distributed.start(self.ranks, pick_device(config.device))
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        seed_everything(config.seed)
        self.run_dir = Path(config.run_dir)

        loaded = time.monotonic()
        self.images = images.to(self.device) if images is not None else load_shard(config.shard, self.device)
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"expected crops (N, 3, 128, 128) uint8, got {tuple(self.images.shape)} {self.images.dtype}")
        self.identity_net = identity_net.to(self.device) if identity_net is not None else \
            load_identity_net(config.dlib_weights, self.device)
        self.identity_net.requires_grad_(False).eval()
        self.load_seconds = time.monotonic() - loaded

        self.generator = Generator().to(self.device)
        self.discriminator = Discriminator().to(self.device)
        self.memory_format = torch.channels_last if (self.cuda and config.channels_last) else torch.contiguous_format
        for module in (self.generator, self.discriminator, self.identity_net):
            module.to(memory_format=self.memory_format)
        betas = (config.beta1, config.beta2)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), config.learning_rate, betas=betas)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(), config.learning_rate,
                                                        betas=betas)
        self.face_weight = face_weight_map(self.images.shape[-1]).to(self.device)
        self.step = 0
        self.run_generator, self.run_discriminator = self.generator, self.discriminator
        self.compiled = False
        self.init_source: dict | None = None        # where G's weights came from, with --init-generator
        if config.resume:
            self.resume(config.resume)
        if config.init_generator:
            self.init_generator(config.init_generator)
        if config.compile and self.ranks.is_distributed:
            self.log("compile: off under torchrun (DistributedDataParallel runs the eager modules)")
        elif config.compile:
            self._compile()
        if self.ranks.is_distributed:   # after resume: every rank starts from the same weights
            self.run_generator = distributed.wrap(self.generator, self.ranks, self.device)
            self.run_discriminator = distributed.wrap(self.discriminator, self.ranks, self.device)

    # ------------------------------------------------------------------------------------------ plumbing
    def autocast(self):
        if self.cuda and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _compile(self) -> None:
        """torch.compile G and D; any failure (here or in a warm-up step) falls back to eager, logged."""
        try:
            generator = torch.compile(self.generator)
            discriminator = torch.compile(self.discriminator)
            n = self.config.batch_size
            crops = torch.zeros(n, 3, 128, 128, device=self.device).to(memory_format=self.memory_format)
            with self.autocast():
                image, mask = generator(crops, torch.zeros(n, 128, device=self.device),
                                        torch.zeros(n, 1, device=self.device))
                total = image.float().mean() + mask.float().mean() + discriminator(image).float().mean()
            total.backward()
            self.generator.zero_grad(set_to_none=True)
            self.discriminator.zero_grad(set_to_none=True)
            self.run_generator, self.run_discriminator = generator, discriminator
            self.compiled = True
            self.log("compile: torch.compile active for generator and discriminator")
        except Exception as error:   # noqa: BLE001 - any compiler failure must not end a paid GPU window
            self.generator.zero_grad(set_to_none=True)
            self.discriminator.zero_grad(set_to_none=True)
            self.run_generator, self.run_discriminator = self.generator, self.discriminator
            self.log(f"compile: failed ({type(error).__name__}: {str(error)[:200]}); running eager")

    def _guarded_step(self) -> dict[str, torch.Tensor]:
        """train_step; if a compiled model fails mid-run (a recompile, a backend error), retry eagerly for good."""
        compiled = self.compiled
        try:
            return self.train_step()
        except Exception as error:   # noqa: BLE001 - only when compiled; eager errors are re-raised
            if not compiled:
                raise
            self.log(f"compile: step failed ({type(error).__name__}: {str(error)[:200]}); continuing eager")
            self.run_generator, self.run_discriminator = self.generator, self.discriminator
            self.compiled = False
            self.discriminator.requires_grad_(True)
            return self.train_step()

    def lambda_now(self) -> float:
        return self.config.lambda_at(self.step)

    # ------------------------------------------------------------------------------------------ one step
    def batch(self) -> torch.Tensor:
        """A random batch of undistorted crops, float RGB in [-1, 1], horizontally flipped at random."""
        indices = torch.randint(0, self.images.shape[0], (self.config.batch_size,), device=self.device)
        crops = self.images[indices].float() / 127.5 - 1
        if self.config.augment_flip:
            crops = flip_pairs(crops)
        return crops.contiguous(memory_format=self.memory_format)

    def distort(self, crops: torch.Tensor) -> torch.Tensor:
        c = self.config
        return distort(crops, c.augment_scale, c.augment_rotation_degrees, c.augment_translate,
                       c.augment_elastic, c.augment_elastic_grid).contiguous(memory_format=self.memory_format)

    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        from deid_train.identity_net import crops_to_chips

        return self.identity_net(crops_to_chips(crops).contiguous(memory_format=self.memory_format))

    def train_step(self) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached loss tensors (no host sync).

        Under torchrun every random draw is of the global batch and this rank keeps its rows (deid_train.distributed).
        """
        from deid_train.identity_net import crops_to_chips

        c = self.config
        n_global = c.batch_size
        rows = self.ranks.rows(n_global)
        source = self.batch()                     # x: undistorted, also the target image
        distorted = self.distort(source)[rows]    # x_d: the network's input
        source = source[rows]
        n = source.shape[0]
        strength = torch.rand(n_global, 1, device=self.device) * (c.strength_max - c.strength_min) + c.strength_min
        strength = strength[rows]
        lambdas = strength[:, 0] * self.lambda_now()
        with torch.no_grad(), self.autocast():
            target_embedding = self.embed(source).float()   # conditioning: dlib descriptor of the target

        with self.autocast():
            image, mask = self.run_generator(distorted, target_embedding, strength)
        image, mask = image.float(), mask.float()
        masked = mask * image + (1 - mask) * distorted

        # --- discriminator: LSGAN with mixup, real = x, fakes = masked and raw outputs
        beta_masked = sample_mixup_weights(n_global, c.mixup_beta, self.device)[rows]
        beta_raw = sample_mixup_weights(n_global, c.mixup_beta, self.device)[rows]
        with self.autocast():
            discriminator_loss = 0.5 * (
                discriminator_mixup_loss(self.run_discriminator, source, masked.detach(), beta_masked)
                + discriminator_mixup_loss(self.run_discriminator, source, image.detach(), beta_raw))
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        discriminator_loss.backward()
        self.discriminator_optimizer.step()

        # --- generator (D's gradients are not needed: under DDP the plain module, nothing to synchronize)
        judge = self.discriminator if self.ranks.is_distributed else self.run_discriminator
        self.discriminator.requires_grad_(False)
        with self.autocast():
            adversarial_masked = generator_adversarial_loss(judge, masked)
            adversarial_raw = generator_adversarial_loss(judge, image)
        self.discriminator.requires_grad_(True)
        reconstruction_raw = (image - source).abs().mean()
        reconstruction_masked = (masked - source).abs().mean()
        gradient_raw = derivative_l1(image, source)
        gradient_masked = derivative_l1(masked, source)
        mask_l1 = mask.abs().mean()
        mask_gradient = mask_derivative_l1(mask)

        # perceptual: the same random robustness transform on output and source before the identity net
        transform = RobustTransform(n_global, source.shape[-1], self.device, c.robust_translate, c.robust_scale,
                                    c.robust_rotation_degrees, c.robust_blur_sigma, c.robust_noise,
                                    c.robust_downsample).select(rows)
        with self.autocast():
            with torch.no_grad():
                source_embedding, source_features = self.identity_net.forward_features(
                    crops_to_chips(transform(source)).contiguous(memory_format=self.memory_format))
            output_embedding, output_features = self.identity_net.forward_features(
                crops_to_chips(transform(masked)).contiguous(memory_format=self.memory_format))
        perceptual_source = feature_l1(output_features, source_features, c.source_stages)
        perceptual_target = feature_l1(output_features, source_features, c.target_stages)
        distance = identity_distance(output_embedding, source_embedding)
        identity_push = -(lambdas * distance).mean()
        texture = high_frequency_excess(masked, source, self.face_weight,
                                        batch_mean=lambda energy: distributed.mean_over_ranks(energy.mean(), self.ranks))

        generator_loss = (c.adversarial_masked_weight * adversarial_masked + c.adversarial_raw_weight * adversarial_raw
                          + c.alpha_raw * reconstruction_raw + c.alpha_masked * reconstruction_masked
                          + c.alpha_raw_gradient * gradient_raw + c.alpha_masked_gradient * gradient_masked
                          + c.alpha_mask * mask_l1 + c.alpha_mask_gradient * mask_gradient
                          + c.perceptual_weight * (perceptual_source + perceptual_target)
                          + identity_push + c.high_frequency_weight * texture)
        self.generator_optimizer.zero_grad(set_to_none=True)
        generator_loss.backward()
        self.generator_optimizer.step()
        self.step += 1

        with torch.no_grad():
            losses = {
                "generator": generator_loss, "discriminator": discriminator_loss,
                "adversarial_masked": adversarial_masked, "adversarial_raw": adversarial_raw,
                "reconstruction_raw": reconstruction_raw, "reconstruction_masked": reconstruction_masked,
                "gradient_raw": gradient_raw, "gradient_masked": gradient_masked,
                "mask_l1": mask_l1, "mask_gradient": mask_gradient,
                "perceptual_source": perceptual_source, "perceptual_target": perceptual_target,
                "identity_push": identity_push, "identity_distance": distance.mean(),
                "identity_distance_strong": (distance * strength[:, 0]).sum() / strength.sum().clamp_min(1e-6),
                "high_frequency_excess": texture,
                "high_frequency_ratio": high_frequency_ratio(masked, source, self.face_weight),
                "mask_mean": mask.mean(),
            }
        return {name: value.detach() for name, value in losses.items()}

    # ------------------------------------------------------------------------------------------ loop
    def train(self) -> dict:
        c = self.config
        deadline = self.started + c.max_minutes * 60 - FINAL_SAVE_RESERVE_S if c.max_minutes > 0 else math.inf
        writes = not c.dry_run and self.ranks.is_main   # under torchrun only rank 0 writes
        if writes:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            c.save(self.run_dir / "config.json")
        self.log(f"train: device {self.device}, shard {tuple(self.images.shape)}, G {parameter_count(self.generator):,} "
                 f"params, D {parameter_count(self.discriminator):,}, {self._batch_statement()}, from step {self.step} "
                 f"to {c.steps}, budget {c.max_minutes or 'none'} min, load {self.load_seconds:.1f} s")
        first_step = self.step
        last_losses: dict[str, float] = {}
        timing_start, timing_steps = None, 0
        log_path = self.run_dir / "losses.jsonl"
        last_step = min(c.steps, first_step + c.run_steps) if c.run_steps > 0 else c.steps
        diverged = False
        while self.step < last_step and not self._past(deadline):
            losses = self._guarded_step()
            if self.step - first_step == 2:               # skip warm-up steps (allocator, cudnn autotune) in it/s
                self._sync()
                timing_start, timing_steps = time.monotonic(), 0
            elif timing_start is not None:
                timing_steps += 1
            if c.dry_run:
                last_losses = self._to_host(losses)
                self.log(f"dry run: one step done, losses {json.dumps(self._rounded(last_losses))}")
                break
            if self.step % c.log_every == 0 or self.step == c.steps:
                last_losses = self._to_host(losses)
                record = {"step": self.step, "lambda": self.lambda_now(), "stage": c.lambda_stage(self.step),
                          "elapsed_s": round(time.monotonic() - self.started, 2),
                          "it_per_s": round(self._rate(timing_start, timing_steps), 3), **self._rounded(last_losses)}
                if writes:
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps(record) + "\n")
                if not all(math.isfinite(v) for v in last_losses.values()):
                    self.log(f"train: non-finite loss at step {self.step}: {record}; stopping without saving "
                             f"(the last checkpoint stays the last good state)")
                    diverged = True
                    break
                self.log(f"step {self.step} G {last_losses['generator']:.4f} D {last_losses['discriminator']:.4f} "
                         f"rec {last_losses['reconstruction_masked']:.4f} id {last_losses['identity_distance']:.3f} "
                         f"mask {last_losses['mask_mean']:.3f} hf {last_losses['high_frequency_ratio']:.2f} "
                         f"lambda {record['lambda']:.4g} {record['it_per_s']:.2f} it/s")
            if c.smoke_steps and self.step - first_step == c.smoke_steps:
                self.smoke_check(losses)
            if self.step % c.sample_every == 0:
                self.write_samples()
            if self.step % c.checkpoint_every == 0:
                self.save()
        self._sync()
        rate = self._rate(timing_start, timing_steps)
        summary = {"device": str(self.device), "device_name": self._device_name(), "first_step": first_step,
                   "last_step": self.step, "steps_this_run": self.step - first_step, "it_per_s": round(rate, 3),
                   "images_per_s": round(rate * c.batch_size, 1), "batch_size": c.batch_size,
                   "ranks": self.ranks.world_size, "batch_per_rank": c.batch_size // self.ranks.world_size,
                   "learning_rate": c.learning_rate,
                   "lambda": self.lambda_now(), "lambda_stage": c.lambda_stage(self.step),
                   "elapsed_s": round(time.monotonic() - self.started, 1), "load_s": round(self.load_seconds, 1),
                   "final_losses": self._rounded(last_losses), "dry_run": c.dry_run,
                   "generator_parameters": parameter_count(self.generator),
                   "discriminator_parameters": parameter_count(self.discriminator)}
        if self.init_source is not None:
            summary["init_generator"] = self.init_source
        if self.step > first_step and not c.dry_run and not diverged and self.step % c.log_every:
            last_losses = self._to_host(losses)            # the final step was not a log step: record it too
            summary["final_losses"] = self._rounded(last_losses)
            diverged = not all(math.isfinite(v) for v in last_losses.values())
            if writes:
                with open(log_path, "a") as handle:
                    handle.write(json.dumps({"step": self.step, "lambda": self.lambda_now(),
                                             "stage": c.lambda_stage(self.step), **summary["final_losses"]}) + "\n")
        summary["diverged"] = diverged
        if not c.dry_run:
            if not diverged:
                self.write_samples()
                self.save()
            if writes:
                (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        self.log(f"train: done, {summary['steps_this_run']} steps, {summary['it_per_s']} it/s, step {self.step}")
        return summary

    def smoke_check(self, losses: dict) -> None:
        """Fail fast: finite losses, and every writing path (samples, both checkpoints) exercised once."""
        values = {k: float(v) for k, v in losses.items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise ValueError(f"smoke test: expected finite losses after {self.config.smoke_steps} steps, got {bad}")
        started = time.monotonic()
        self.write_samples()
        self.save()
        self.log(f"smoke test passed: {self.config.smoke_steps} steps, finite losses, samples and checkpoints "
                 f"written in {time.monotonic() - started:.1f} s")

    def _batch_statement(self) -> str:
        c, world = self.config, self.ranks.world_size
        per_rank = f" = {world} ranks x {c.batch_size // world}" if world > 1 else ""
        return f"effective batch {c.batch_size}{per_rank}, lr {c.learning_rate:g}"

    def _past(self, deadline: float) -> bool:
        """The wall-clock budget is spent (under torchrun: on any rank, so that all stop at the same step)."""
        if deadline == math.inf:
            return False
        return distributed.any_rank(time.monotonic() >= deadline, self.ranks, self.device)

    def _to_host(self, losses: dict) -> dict[str, float]:
        """All loss values in one device->host copy (one sync instead of one per value); under torchrun the
        average over the ranks, i.e. the loss of the global batch."""
        stacked = distributed.mean_over_ranks(torch.stack([value.float() for value in losses.values()]), self.ranks)
        values = stacked.tolist()
        return dict(zip(losses.keys(), values))

    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def _rate(self, start, steps) -> float:
        if start is None or steps == 0:
            return 0.0
        self._sync()
        return steps / max(time.monotonic() - start, 1e-9)

    def _device_name(self) -> str:
        return torch.cuda.get_device_name(self.device) if self.cuda else f"cpu ({torch.get_num_threads()} threads)"

    @staticmethod
    def _rounded(losses: dict) -> dict:
        return {k: float(f"{v:.6g}") for k, v in losses.items()}

    # ------------------------------------------------------------------------------------------ samples
    @torch.no_grad()
    def sample_grid(self, rows: int = SAMPLE_ROWS) -> np.ndarray:
        """uint8 RGB grid, one row per fixed shard crop: source | distorted | raw | mask | masked (strength 1)."""
        devices = [self.device] if self.cuda else []
        with torch.random.fork_rng(devices=devices):   # fixed samples that leave the training RNG untouched
            torch.manual_seed(1234)
            count = min(rows, self.images.shape[0])
            source = (self.images[:count].float() / 127.5 - 1).contiguous(memory_format=self.memory_format)
            distorted = self.distort(source)
            with self.autocast():
                image, mask = self.generator(distorted, self.embed(source).float(),
                                             torch.ones(count, 1, device=self.device))
            image, mask = image.float(), mask.float()
            masked = mask * image + (1 - mask) * distorted
        columns = [source, distorted, image, mask.expand(-1, 3, -1, -1) * 2 - 1, masked]
        grid = torch.cat([torch.cat([column[i] for column in columns], dim=2) for i in range(count)], dim=1)
        return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()

    def write_samples(self) -> Path | None:
        import cv2

        if not self.ranks.is_main:
            return None

        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid = self.sample_grid()
        cv2.imwrite(str(path), grid[:, :, ::-1])
        cv2.imwrite(str(self.run_dir / "samples_latest.png"), grid[:, :, ::-1])
        return path

    # ------------------------------------------------------------------------------------------ checkpoints
    def models(self) -> dict:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict:
        return {"generator": self.generator_optimizer, "discriminator": self.discriminator_optimizer}

    def meta(self) -> dict:
        return {"step": self.step, "lambda_stage": self.config.lambda_stage(self.step), "lambda": self.lambda_now(),
                "config": self.config.to_dict()}

    def full_state(self) -> dict:
        return {**self.meta(), "models": {k: m.state_dict() for k, m in self.models().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "rng": checkpoints.rng_state()}

    def save(self) -> None:
        """The full checkpoint (exact resume) and the compact travelling one, in the run directory (rank 0)."""
        if not self.ranks.is_main:
            return
        checkpoints.save_full(self.run_dir / checkpoints.FULL_NAME, self.full_state())
        checkpoints.save_compact(self.run_dir / "compact", self.models(), self.optimizers(), self.meta(),
                                 checkpoints.rng_state(), self.config.compact_moments)

    def init_generator(self, path: str | Path) -> None:
        """G's weights from an exported ONNX file; D and both Adams stay fresh; the step continues the ramp.

        The step is --init-step, else the one its manifest entry records, else 0; it is written back into the
        config so that config.json and every checkpoint of this run say where the weights came from."""
        from deid_train.init_generator import load_generator_weights, manifest_training, sha256_of

        load_generator_weights(self.generator, path)
        recorded = manifest_training(path) or {}
        if self.config.init_step >= 0:
            step, step_from = self.config.init_step, "--init-step"
        elif "step" in recorded:
            step, step_from = int(recorded["step"]), f"{Path(path).parent / 'manifest.json'}"
        else:
            step, step_from = 0, "default (no manifest entry for the file)"
        self.step = step
        self.config.init_step = step
        self.init_source = {"path": str(path), "sha256": sha256_of(path), "step": step, "step_from": step_from,
                            "trained_lambda_max": recorded.get("lambda_max")}
        self.log(f"init: generator weights from {path} (float16-rounded), step {step} from {step_from}, lambda "
                 f"stage {self.config.lambda_stage(step)}; discriminator and optimizers start fresh")
        if recorded.get("lambda_max") is not None and recorded["lambda_max"] != self.config.lambda_max:
            self.log(f"init: note: {path} was trained with lambda_max {recorded['lambda_max']}, this run uses "
                     f"{self.config.lambda_max} (pass --lambda-max {recorded['lambda_max']} to keep its schedule)")

    def resume(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir() and (path / checkpoints.FULL_NAME).is_file():
            path = path / checkpoints.FULL_NAME
        if path.is_file():
            state = checkpoints.load_full(path)
            for name, model in self.models().items():
                model.load_state_dict(state["models"][name])
            for name, optimizer in self.optimizers().items():
                optimizer.load_state_dict(state["optimizers"][name])
            self.step = int(state["step"])
            checkpoints.set_rng_state(state["rng"])
            kind = "full"
        elif checkpoints.is_compact(path):
            meta, tensors, rng = checkpoints.load_compact(path)
            checkpoints.restore_compact(tensors, meta, self.models(), self.optimizers())
            self.step = int(meta["step"])
            checkpoints.set_rng_state(rng)
            kind = f"compact (moments: {meta['moments']})"
        else:
            raise FileNotFoundError(f"expected a checkpoint to resume: {checkpoints.FULL_NAME} or "
                                    f"{checkpoints.COMPACT_PREFIX}000.npz in {path}")
        self.log(f"resume: {kind} checkpoint {path} at step {self.step}, lambda stage {self.config.lambda_stage(self.step)}")
