"""Benchmark of deid_sdk.ops (not a test): warp_to_crop + blend_from_crop on a 1080p frame, 1 and 4 faces of ~256 px.

    python cpp_ext/bench.py                 # NumPy reference vs C++ kernel (and CUDA when a GPU is usable)
    python cpp_ext/bench.py --no-ref        # skip the slow reference

CPU: wall-clock milliseconds per call, median of repeats. CUDA: device time from CUDA events around `repeats`
back-to-back calls queued behind a spin kernel (so host launch overhead does not hide in the figure; the host-side
cost per call is printed separately), warm-up first, median over rounds. Bandwidth: the bytes that must move (crops
written, frame footprint read; frame box read + written, generated image and mask read) over the device time,
against the peak of the GPU model (H100 SXM 3.35 TB/s, H100 PCIe 2.0 TB/s, H200 4.8 TB/s; --peak-gbs to override).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from deid_sdk import ops
from deid_sdk.ops import warp_blend

HEIGHT, WIDTH, CROP = 1080, 1920, 128
FACE_PX = 256  # hull bounding box side in frame pixels
SPIN_CYCLES = 50_000_000  # ~25-35 ms at H100/H200 clocks: longer than queuing `repeats` calls takes the host


def scene(count: int, seed: int = 0):
    """A random 1080p BGR frame and `count` faces of ~FACE_PX pixels spread over it."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    matrices, hulls = [], []
    for n in range(count):
        center = np.array([WIDTH * (n + 1) / (count + 1), HEIGHT / 2 + 100 * np.sin(n)])
        angle = 0.15 * (n - 1.5)
        scale = CROP / (FACE_PX * 1.125)  # the crop holds the face with a margin, as the canonical crop does
        linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrices.append(np.concatenate([linear, (CROP / 2 - linear @ center)[:, None]], axis=1))
        theta = np.linspace(0, 2 * np.pi, 20, endpoint=False)  # a 20-vertex hull, like a landmark hull
        hulls.append(center + (FACE_PX / 2) * np.stack([np.cos(theta), 1.0 * np.sin(theta)], axis=1))
    images = rng.uniform(-1, 1, (count, 3, CROP, CROP)).astype(np.float32)
    masks = rng.uniform(0, 1, (count, 1, CROP, CROP)).astype(np.float32)
    return frame, np.stack(matrices), hulls, images, masks


def bytes_moved(count: int, matrices, hulls, channels: int = 3) -> tuple[int, int]:
    """Bytes the two operations must move at least: (warp, blend)."""
    warp = blend = 0
    for matrix, hull in zip(matrices, hulls):
        footprint = CROP * CROP / abs(np.linalg.det(matrix[:, :2]))  # frame pixels under the crop
        warp += 3 * CROP * CROP * 4 + int(footprint) * channels
        box = (np.ptp(hull[:, 0]) + 1) * (np.ptp(hull[:, 1]) + 1)
        blend += int(box) * channels * 2 + 4 * CROP * CROP * 4
    return warp, blend


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def cpu_rows(counts, repeats: int, with_reference: bool):
    rows = []
    impls = (["ref"] if with_reference else []) + (["cpu"] if warp_blend._C is not None else [])
    for count in counts:
        frame, matrices, hulls, images, masks = scene(count)
        results = {}
        for impl in impls:
            runs = max(3, repeats // 10) if impl == "ref" else repeats
            warp = median_ms(lambda: ops.warp_to_crop(frame, matrices, CROP, impl=impl), runs)
            blend = median_ms(lambda: ops.blend_from_crop(frame, images, masks, matrices, hulls, impl=impl), runs)
            both = median_ms(lambda: (ops.warp_to_crop(frame, matrices, CROP, impl=impl),
                                      ops.blend_from_crop(frame, images, masks, matrices, hulls, impl=impl)), runs)
            results[impl] = (warp, blend, both)
            rows.append(f"| {count} | {impl} | {warp:.2f} | {blend:.2f} | {both:.2f} | "
                        + (f"{results['ref'][2] / both:.1f}x |" if "ref" in results and impl != "ref" else "|"))
    return rows


def gpu_peak_bytes_per_s(name: str, override_gbs: float | None) -> tuple[float | None, str]:
    if override_gbs:
        return override_gbs * 1e9, f"{override_gbs:g} GB/s (--peak-gbs)"
    upper = name.upper()
    if "H200" in upper:
        return 4.8e12, "4.8 TB/s (H200 HBM3e)"
    if "H100" in upper and "PCIE" in upper:
        return 2.0e12, "2.0 TB/s (H100 PCIe HBM2e)"
    if "H100" in upper:
        return 3.35e12, "3.35 TB/s (H100 SXM HBM3)"
    return None, "unknown (pass --peak-gbs)"


def cuda_rows(counts, repeats: int, rounds: int, peak_override: float | None):
    import torch

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    peak, peak_text = gpu_peak_bytes_per_s(name, peak_override)
    lines = [f"GPU: {name}; peak memory bandwidth assumed {peak_text}", "",
             "| faces | op | device ms/call | device ms/face | host ms/call | bandwidth | of peak |",
             "|---|---|---|---|---|---|---|"]
    for count in counts:
        frame_host, matrices, hulls, images_host, masks_host = scene(count)
        frame = torch.from_numpy(frame_host).to(device)
        images, masks = torch.from_numpy(images_host).to(device), torch.from_numpy(masks_host).to(device)
        crops = torch.empty((count, 3, CROP, CROP), dtype=torch.float32, device=device)
        warp_bytes, blend_bytes = bytes_moved(count, matrices, hulls)
        operations = {
            "warp": (lambda: ops.warp_to_crop(frame, matrices, CROP, out=crops), warp_bytes),
            "blend": (lambda: ops.blend_from_crop(frame, images, masks, matrices, hulls), blend_bytes),
            "both": (lambda: (ops.warp_to_crop(frame, matrices, CROP, out=crops),
                              ops.blend_from_crop(frame, images, masks, matrices, hulls)), warp_bytes + blend_bytes),
        }
        for label, (call, moved) in operations.items():
            for _ in range(10):
                call()
            torch.cuda.synchronize()
            device_ms, host_ms = [], []
            for _ in range(rounds):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                if hasattr(torch.cuda, "_sleep"):  # private but long-standing; without it host overhead may show
                    torch.cuda._sleep(SPIN_CYCLES)  # hold the stream while the host queues the calls
                start.record()
                host_start = time.perf_counter()
                for _ in range(repeats):
                    call()
                host_ms.append((time.perf_counter() - host_start) * 1e3 / repeats)
                end.record()
                end.synchronize()
                device_ms.append(start.elapsed_time(end) / repeats)
            per_call = statistics.median(device_ms)
            bandwidth = moved / (per_call * 1e-3)
            fraction = f"{bandwidth / peak:.1%}" if peak else "n/a"
            lines.append(f"| {count} | {label} | {per_call:.4f} | {per_call / count:.4f} | "
                         f"{statistics.median(host_ms):.4f} | {bandwidth / 1e9:.0f} GB/s | {fraction} |")
    return lines


def cuda_available() -> tuple[bool, str]:
    if warp_blend._C is None or not warp_blend._C.built_with_cuda():
        return False, "deid_sdk._C has no CUDA kernels"
    count, reason = warp_blend._C.cuda_device_count()
    if count == 0:
        return False, reason
    try:
        import torch
    except ImportError:
        return False, "torch is needed for the CUDA timing"
    return (True, "") if torch.cuda.is_available() else (False, "torch sees no CUDA device")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=15, help="CUDA: rounds of `repeats` calls (median)")
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--no-ref", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU table")
    parser.add_argument("--peak-gbs", type=float, default=None, help="GPU peak memory bandwidth in GB/s")
    args = parser.parse_args()

    print(f"machine: {platform.node()}, {cpu_model()}, {os.cpu_count()} CPU threads; frame {WIDTH}x{HEIGHT} BGR, "
          f"faces ~{FACE_PX} px, crop {CROP}")
    if not args.no_cpu:
        print("\nCPU (wall ms per call, median)\n")
        print("| faces | impl | warp_to_crop | blend_from_crop | both | speed-up vs ref |")
        print("|---|---|---|---|---|---|")
        print("\n".join(cpu_rows(args.faces, args.repeats, not args.no_ref)))
    usable, reason = cuda_available()
    if usable:
        print("\nCUDA (event-timed device ms, median)\n")
        print("\n".join(cuda_rows(args.faces, args.repeats, args.rounds, args.peak_gbs)))
    else:
        print(f"\nCUDA: skipped ({reason})")


if __name__ == "__main__":
    main()
