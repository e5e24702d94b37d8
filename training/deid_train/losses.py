"""The paper's losses, eq. (1)-(6), plus the two guards facts.md calls for.

Notation: x = undistorted source (also the target: same image), x_d = distorted network input,
z = raw generator image, m = mask, z_m = m*z + (1-m)*x_d (the masked output; blended with the *distorted* input,
as at run time, or the mask collapses to 0).

- adversarial: LSGAN with mixup. D sees beta*x + (1-beta)*fake with target beta, beta ~ Beta(0.2, 0.2), for
  fake = z_m and fake = z (the raw output needs the realism term too, the paper's ablation (d)); G minimises
  (D(fake) - 1)^2 for both.
- reconstruction: alpha0 |z - x| + alpha1 |z_m - x|; derivatives: alpha2 |dz - dx| + alpha3 |dz_m - dx|
  (x and y finite differences); mask: alpha4 |m| + alpha5 (|dm/dx| + |dm/dy|). All means over pixels.
- multi-image perceptual: mean L1 between dlib ResNet feature maps of the output and of the source for early
  stages and of the target for a late spatial stage, and -lambda * sum_128 |e(output) - e(target)|.
- high-frequency guard: the Laplacian energy of the output inside the face above the source's (relative),
  so the identity push cannot pay with adversarial texture.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------ adversarial
_BETA_CACHE: dict = {}


def sample_mixup_weights(n: int, concentration: float, device) -> torch.Tensor:
    """(n, 1, 1, 1) lambda_beta ~ Beta(c, c). The distribution is cached per device: building its parameter
    tensor would be a host->device copy every step, which stalls a launch-bound GPU loop."""
    key = (str(device), float(concentration))
    beta = _BETA_CACHE.get(key)
    if beta is None:
        c = torch.tensor(float(concentration), device=device)
        beta = _BETA_CACHE[key] = torch.distributions.Beta(c, c)
    return beta.sample((n,)).view(n, 1, 1, 1)


def discriminator_mixup_loss(discriminator: Callable, real: torch.Tensor, fake: torch.Tensor,
                             beta: torch.Tensor) -> torch.Tensor:
    """LSGAN with mixup: D(beta*real + (1-beta)*fake) regressed onto beta (fake detached by the caller)."""
    mixed = beta.to(real.dtype) * real + (1 - beta.to(real.dtype)) * fake
    prediction = discriminator(mixed).float()
    return ((prediction - beta.view(-1, 1, 1, 1).float()) ** 2).mean()


def generator_adversarial_loss(discriminator: Callable, fake: torch.Tensor) -> torch.Tensor:
    return ((discriminator(fake).float() - 1) ** 2).mean()


# ------------------------------------------------------------------------------------------------ pixels
def x_derivative(images: torch.Tensor) -> torch.Tensor:
    return images[..., :, 1:] - images[..., :, :-1]


def y_derivative(images: torch.Tensor) -> torch.Tensor:
    return images[..., 1:, :] - images[..., :-1, :]


def derivative_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the x and y derivatives of two image batches (eq. 3-4)."""
    return ((x_derivative(output) - x_derivative(target)).abs().mean()
            + (y_derivative(output) - y_derivative(target)).abs().mean())


def mask_derivative_l1(mask: torch.Tensor) -> torch.Tensor:
    return x_derivative(mask).abs().mean() + y_derivative(mask).abs().mean()


# ------------------------------------------------------------------------------------------------ perceptual
def feature_l1(output_features: dict, reference_features: dict, stages) -> torch.Tensor:
    """Sum over `stages` of the mean L1 between feature maps."""
    total = None
    for stage in stages:
        if stage not in output_features:
            raise ValueError(f"expected identity-net stage {stage!r}, got stages {sorted(output_features)}")
        term = (output_features[stage].float() - reference_features[stage].float()).abs().mean()
        total = term if total is None else total + term
    return total


def identity_distance(output_embedding: torch.Tensor, target_embedding: torch.Tensor) -> torch.Tensor:
    """(N,) L1 distance summed over the 128 descriptor dims."""
    return (output_embedding.float() - target_embedding.float()).abs().sum(dim=1)


# ------------------------------------------------------------------------------------------------ texture guard
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_LAPLACIAN_CACHE: dict = {}


def laplacian(images: torch.Tensor) -> torch.Tensor:
    channels = images.shape[1]
    key = (images.device, images.dtype, channels)
    kernel = _LAPLACIAN_CACHE.get(key)
    if kernel is None:   # cached: no host->device copy per step
        kernel = _LAPLACIAN_CACHE[key] = _LAPLACIAN.to(images.device, images.dtype).view(1, 1, 3, 3).repeat(
            channels, 1, 1, 1)
    return F.conv2d(images, kernel, groups=channels)


def face_weight_map(size: int = 128) -> torch.Tensor:
    """(1, 1, size, size) soft ellipse over the face in the canonical crop (from dlib's mean face)."""
    from deid_sdk.align import MEAN_FACE, apply_affine, normalized_to_crop

    points = apply_affine(normalized_to_crop(size), MEAN_FACE)
    low, high = points.min(axis=0), points.max(axis=0)
    center = (low + high) / 2
    radii = (high - low) / 2 * np.array([1.05, 1.25])    # the mean face lacks the chin and the forehead top
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    distance = np.sqrt(((xs - center[0]) / radii[0]) ** 2 + ((ys - center[1]) / radii[1]) ** 2)
    weight = np.clip((1.15 - distance) / 0.3, 0.0, 1.0)    # 1 inside, feathered over the border
    return torch.from_numpy(weight.astype(np.float32)).view(1, 1, size, size)


def laplacian_energy(images: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """(N,) weighted mean squared Laplacian (pixels 1 px from the border dropped)."""
    energy = laplacian(images) ** 2
    weight = weight[..., 1:-1, 1:-1].to(energy.dtype)
    return (energy * weight).sum(dim=(1, 2, 3)) / (weight.sum() * images.shape[1])


def high_frequency_excess(output: torch.Tensor, source: torch.Tensor, weight: torch.Tensor,
                          batch_mean: Callable[[torch.Tensor], torch.Tensor] = torch.mean) -> torch.Tensor:
    """Laplacian energy inside the face that the output has beyond its source, relative to the batch's source energy.

    mean_i max(0, E(output_i) - E(source_i)) / mean_i E(source_i): normalised by the batch mean rather than per
    image, so one very smooth source cannot blow the term up. `batch_mean` takes the mean of the source energies
    (under torchrun: of the whole global batch, deid_train.distributed).
    """
    reference = laplacian_energy(source.float(), weight).detach()
    excess = F.relu(laplacian_energy(output.float(), weight) - reference)
    return excess.mean() / batch_mean(reference).clamp_min(1e-6)


def high_frequency_ratio(output: torch.Tensor, source: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Batch ratio of Laplacian energies inside the face (output over source), for the log."""
    return laplacian_energy(output.float(), weight).mean() / laplacian_energy(source.float(), weight).mean().clamp_min(1e-8)
