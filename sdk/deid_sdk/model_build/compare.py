"""How a converted model's outputs are compared with the FP32 reference (benchmarks, the Jetson self-test)."""
from __future__ import annotations

import numpy as np


def psnr(reference: np.ndarray, other: np.ndarray, peak: float) -> float:
    """Peak signal-to-noise ratio in dB (peak: the value range, 2 for [-1, 1] images, 1 for masks)."""
    mse = float(np.mean((reference.astype(np.float64) - other) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)
