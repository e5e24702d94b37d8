"""The per-stage timing table `deid demo` and `deid bench` print."""
from __future__ import annotations

import numpy as np

from deid_sdk.filter import STAGES


def stage_table(samples: list[dict[str, float]]) -> str:
    """Median and mean milliseconds per pipeline stage over frames, and end-to-end frames per second."""
    lines = [f"{'stage':<10} {'median ms':>10} {'mean ms':>10}"]
    for stage in STAGES:
        values = np.array([sample[stage] for sample in samples], dtype=np.float64)
        lines.append(f"{stage:<10} {np.median(values):>10.2f} {values.mean():>10.2f}")
    totals = np.array([sample["total"] for sample in samples])
    faces = np.array([sample["faces"] for sample in samples])
    lines.append(f"frames {len(samples)}, faces/frame {faces.mean():.2f}, "
                 f"end-to-end {1000.0 / np.median(totals):.1f} fps (median), {1000.0 / totals.mean():.1f} fps (mean)")
    return "\n".join(lines)
