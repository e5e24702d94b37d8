"""Random geometric distortion of the network input, and random differentiable transforms before the identity net.

Everything is batched tensor code (grid_sample, grouped convs) that runs the same on CUDA and CPU and draws from
torch's global RNG on the images' device, so a checkpoint that restores the RNG state resumes exactly.

- `distort`: the paper's training distortion of the generator's input (scale, rotation, translation and an
  elastic field); the target is the same image undistorted, so the generator learns to undo small geometric
  changes and the blending mask stays alive (facts.md).
- `flip_pairs`: horizontal flips (applied to the undistorted image before anything else).
- `RobustTransform`: a random shift/scale/rotation, Gaussian blur, noise and down/up-sampling applied identically
  to the generated image and its source before the identity net, so that only changes that survive such
  transforms (semantic, not adversarial texture) lower the recognizer's similarity.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, device) -> torch.Tensor:
    return torch.rand(n, device=device) * (high - low) + low


def similarity_thetas(n: int, scale: float, rotation_degrees: float, translate: float, device) -> torch.Tensor:
    """(n, 2, 3) affine_grid matrices (output -> input, normalized coordinates) of random similarities."""
    scales = _uniform(n, 1 - scale, 1 + scale, device)
    angles = _uniform(n, -rotation_degrees, rotation_degrees, device) * (math.pi / 180)
    shifts = _uniform(2 * n, -translate, translate, device).view(n, 2) * 2   # fraction of the crop -> [-1, 1] units
    cos, sin = torch.cos(angles) / scales, torch.sin(angles) / scales
    theta = torch.stack([torch.stack([cos, -sin, shifts[:, 0]], 1), torch.stack([sin, cos, shifts[:, 1]], 1)], 1)
    return theta


def elastic_offsets(n: int, size: int, strength: float, grid_points: int, device) -> torch.Tensor:
    """(n, size, size, 2) smooth random displacement field (normalized coordinates): coarse noise, bicubic up."""
    coarse = torch.randn(n, 2, grid_points, grid_points, device=device) * strength
    field = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
    return field.permute(0, 2, 3, 1)


def flip_pairs(images: torch.Tensor, probability: float = 0.5) -> torch.Tensor:
    """Flip each image horizontally with `probability` (before distortion: source and target flip together)."""
    flip = torch.rand(images.shape[0], device=images.device) < probability
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def distort(images: torch.Tensor, scale: float, rotation_degrees: float, translate: float, elastic: float,
            elastic_grid: int) -> torch.Tensor:
    """Random similarity + elastic deformation of float images (N, C, H, W), border replicated."""
    n, _, height, width = images.shape
    theta = similarity_thetas(n, scale, rotation_degrees, translate, images.device).to(images.dtype)
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    if elastic > 0:
        grid = grid + elastic_offsets(n, height, elastic, elastic_grid, images.device).to(grid.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def gaussian_kernels(sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    """(n, 2*radius+1) normalized 1-D Gaussian kernels; sigma near 0 gives the identity kernel."""
    taps = torch.arange(-radius, radius + 1, device=sigmas.device, dtype=sigmas.dtype)
    kernels = torch.exp(-0.5 * (taps[None] / sigmas.clamp_min(1e-2)[:, None]) ** 2)
    return kernels / kernels.sum(dim=1, keepdim=True)


def blur(images: torch.Tensor, sigmas: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Per-image separable Gaussian blur (sigma in pixels), differentiable, one grouped conv per axis."""
    n, channels, height, width = images.shape
    kernels = gaussian_kernels(sigmas.to(images.dtype), radius).repeat_interleave(channels, dim=0)
    flat = images.reshape(1, n * channels, height, width)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernels.view(n * channels, 1, 1, -1), groups=n * channels)
    flat = F.conv2d(flat, kernels.view(n * channels, 1, -1, 1), groups=n * channels)
    return flat.reshape(n, channels, height, width)


class RobustTransform:
    """One random draw of the robustness transforms, applied identically to any number of image batches."""

    def __init__(self, n: int, size: int, device, translate: float, scale: float, rotation_degrees: float,
                 blur_sigma: float, noise: float, downsample: float):
        self.theta = similarity_thetas(n, scale, rotation_degrees, translate, device)
        self.sigmas = torch.rand(n, device=device) * blur_sigma
        self.noise = torch.randn(n, 3, size, size, device=device) * (torch.rand(n, 1, 1, 1, device=device) * noise)
        # One resampling factor per batch (interpolate needs one size); half of the batches skip it.
        factor = float(torch.empty(()).uniform_(downsample, 1.0)) if downsample < 1 else 1.0
        self.downsample_size = int(round(size * factor)) if float(torch.rand(())) < 0.5 else size
        self.size = size
        self.blur_sigma = blur_sigma

    def select(self, rows: slice) -> RobustTransform:
        """The same draw for a slice of the batch (one rank's rows of a global batch)."""
        part = copy.copy(self)
        part.theta, part.sigmas, part.noise = self.theta[rows], self.sigmas[rows], self.noise[rows]
        return part

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        grid = F.affine_grid(self.theta.to(images.dtype), [n, 1, height, width], align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.blur_sigma > 0:
            out = blur(out, self.sigmas)
        if self.downsample_size != self.size:
            out = F.interpolate(out, size=(self.downsample_size,) * 2, mode="bilinear", align_corners=False,
                                antialias=True)
            out = F.interpolate(out, size=(self.size,) * 2, mode="bilinear", align_corners=False)
        return out + self.noise.to(out.dtype)
