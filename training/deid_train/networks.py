"""The paper's generator and discriminator at 128x128 (Gafni, Wolf, Taigman, ICCV 2019; shared/notes/method.md).

Generator: conv + five strided depth-wise separable convs with instance norm, one FC to a 1024 bottleneck, the
target's 128-D dlib descriptor and the de-identification strength concatenated to it; decoder = FC, then a
lattice of upscale blocks (conv to more channels, IN, LReLU, pixel shuffle) and residual blocks, a tanh image conv
and a sigmoid mask conv; a low-capacity U-Net link (one 32x32x1 map) from the encoder to the decoder.
Sized to 6.7M parameters so its float16 ONNX stays under 16 MiB: the FC layers work on 4x4x128 maps.
Discriminator: four strided convs with LReLU, IN on all but the first, a sigmoid conv output (a patch map).

Weights ~ N(0, 0.02), no biases, LReLU 0.2 inside residual blocks and 0.1 elsewhere. Only ops that export to
ONNX opset 17 (conv, instance norm, leaky relu, depth-to-space, gemm, concat, sigmoid, tanh).
"""
from __future__ import annotations

import torch
from torch import nn

BOTTLENECK = 1024
IDENTITY_SIZE = 128
CROP_SIZE = 128
ENCODER_CHANNELS = (32, 64, 128, 256, 256, 128)     # stem at 128, then five stride-2 stages down to 4x4
DECODER_CHANNELS = (128, 128, 96, 64, 48, 32)       # 4x4 after the FC, then 8, 16, 32, 64, 128
FEATURE_SIDE = 4
UNET_SIDE = 32


def leaky(slope: float = 0.1) -> nn.LeakyReLU:
    return nn.LeakyReLU(slope, inplace=False)


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    # No affine parameters: the paper's networks have no biases.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class SeparableDown(nn.Module):
    """Depth-wise 3x3 stride-2 conv, point-wise 1x1 conv, IN, LReLU(0.1)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=2, padding=1, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = instance_norm(out_channels)
        self.activation = leaky(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.pointwise(self.depthwise(x))))


class Upscale(nn.Module):
    """Conv to 4x the output channels, IN, LReLU(0.1), pixel shuffle (x2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4 * out_channels, 3, padding=1, bias=False)
        self.norm = instance_norm(4 * out_channels)
        self.activation = leaky(0.1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.activation(self.norm(self.conv(x))))


class Residual(nn.Module):
    """Conv-LReLU(0.2)-Conv plus the skip, as the paper's decoder blocks."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.activation = leaky(0.2)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.activation(self.conv1(x)))


class Generator(nn.Module):
    """generator(crop, identity, strength) -> (image, mask), per models/README.md.

    crop (N,3,128,128) RGB in [-1,1]; identity (N,128) dlib descriptor of the target; strength (N,1) in [0,1].
    image (N,3,128,128) tanh in [-1,1]; mask (N,1,128,128) sigmoid in [0,1].
    """

    def __init__(self):
        super().__init__()
        e = ENCODER_CHANNELS
        self.stem = nn.Sequential(nn.Conv2d(3, e[0], 3, padding=1, bias=False), leaky(0.1))
        self.down = nn.ModuleList(SeparableDown(e[i], e[i + 1]) for i in range(5))   # 64, 32, 16, 8, 4
        self.unet_out = nn.Conv2d(e[2], 1, 1, bias=False)                              # 32x32x1 link
        self.encode_fc = nn.Linear(e[-1] * FEATURE_SIDE ** 2, BOTTLENECK, bias=False)
        d = DECODER_CHANNELS
        self.decode_fc = nn.Linear(BOTTLENECK + IDENTITY_SIZE + 1, d[0] * FEATURE_SIDE ** 2, bias=False)
        blocks = []
        for index in range(5):
            in_channels = d[index] + (1 if index == 3 else 0)   # the U-Net map joins at 32x32, before the 4th upscale
            blocks.append(nn.ModuleDict({"up": Upscale(in_channels, d[index + 1]), "res": Residual(d[index + 1])}))
        self.blocks = nn.ModuleList(blocks)
        self.image_out = nn.Conv2d(d[-1], 3, 3, padding=1, bias=False)
        self.mask_out = nn.Conv2d(d[-1], 1, 3, padding=1, bias=False)
        self.activation = leaky(0.1)
        initialize_weights(self)

    def forward(self, crop: torch.Tensor, identity: torch.Tensor, strength: torch.Tensor):
        x = self.stem(crop)
        unet = None
        for index, block in enumerate(self.down):
            x = block(x)
            if index == 1:                      # 32x32 after two stride-2 stages
                unet = self.unet_out(x)
        bottleneck = self.activation(self.encode_fc(torch.flatten(x, 1)))
        code = torch.cat([bottleneck, identity.to(bottleneck.dtype), strength.to(bottleneck.dtype)], dim=1)
        x = self.activation(self.decode_fc(code))
        x = x.reshape(x.shape[0], DECODER_CHANNELS[0], FEATURE_SIDE, FEATURE_SIDE)
        for index, block in enumerate(self.blocks):
            if index == 3:
                x = torch.cat([x, unet], dim=1)
            x = block["res"](block["up"](x))
        return torch.tanh(self.image_out(x)), torch.sigmoid(self.mask_out(x))


class Discriminator(nn.Module):
    """Four stride-2 4x4 convs (LReLU 0.1, IN on all but the first), a sigmoid 3x3 conv: an 8x8 patch map."""

    def __init__(self, channels: tuple = (64, 128, 256, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for index, width in enumerate(channels):
            layers.append(nn.Conv2d(previous, width, 4, stride=2, padding=1, bias=False))
            if index > 0:
                layers.append(instance_norm(width))
            layers.append(leaky(0.1))
            previous = width
        layers.append(nn.Conv2d(previous, 1, 3, padding=1, bias=False))
        self.layers = nn.Sequential(*layers)
        initialize_weights(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.layers(image))


def initialize_weights(module: nn.Module) -> None:
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
