"""The de-identification methods under test: baselines implemented here and the SDK's Filter.

Baselines get the face detections of the frame (from the same detector the SDK uses, so the comparison is
fair) and change only the pixels of each face box enlarged by deface's default `mask_scale` of 1.3.
`strength` in (0, 1] scales how strong the obfuscation is (1 = the defaults below).
"""
from __future__ import annotations

import time
from typing import Any

import cv2
import numpy as np

BASELINE_NAMES = ("noop", "blur", "pixelate", "ellipse_blur")
METHOD_NAMES = BASELINE_NAMES + ("sdk",)
BOX_SCALE = 1.3  # deface's default mask_scale


def scaled_box(box: np.ndarray, width: int, height: int, scale: float = BOX_SCALE) -> tuple[int, int, int, int]:
    """Integer (x1, y1, x2, y2) of `box` grown about its centre by `scale`, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    grow_x, grow_y = (x2 - x1) * (scale - 1) / 2, (y2 - y1) * (scale - 1) / 2
    return (max(0, int(round(x1 - grow_x))), max(0, int(round(y1 - grow_y))),
            min(width, int(round(x2 + grow_x))), min(height, int(round(y2 + grow_y))))


def _odd(value: float) -> int:
    return max(1, int(value) // 2 * 2 + 1)


class Method:
    """A de-identification method: `out = method(frame_bgr, detections)`; `reset()` between videos/photos."""

    name: str = ""
    uses_detections = True
    supports_strength = True

    def __call__(self, frame_bgr: np.ndarray, detections: list) -> np.ndarray:
        raise NotImplementedError

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take_privacy_summary(self):
        """The SDK privacy guard's tally of output faces per rung since the last call; None: no guard ladder."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class _BoxBaseline(Method):
    def __init__(self, strength: float = 1.0):
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        self.strength = strength

    def __call__(self, frame_bgr: np.ndarray, detections: list) -> np.ndarray:
        out = frame_bgr.copy()
        height, width = out.shape[:2]
        for detection in detections:
            x1, y1, x2, y2 = scaled_box(detection.box, width, height)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                # Read from the untouched input so overlapping faces do not compound.
                out[y1:y2, x1:x2] = self.obfuscate(frame_bgr[y1:y2, x1:x2], out[y1:y2, x1:x2])
        return out

    def obfuscate(self, region: np.ndarray, current: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "strength": self.strength, "box_scale": BOX_SCALE}


class NoOp(Method):
    name = "noop"
    uses_detections = False
    supports_strength = False

    def __call__(self, frame_bgr: np.ndarray, detections: list) -> np.ndarray:
        return frame_bgr.copy()


class GaussianBlur(_BoxBaseline):
    """Gaussian blur of the box; sigma = 1/16 of the box's larger side at strength 1."""

    name = "blur"

    def obfuscate(self, region: np.ndarray, current: np.ndarray) -> np.ndarray:
        height, width = region.shape[:2]
        sigma = max(self.strength * max(height, width) / 16.0, 0.5)
        # Large kernels are slow; blurring a downscaled copy is the same low-pass filter at a fraction of the cost.
        factor = max(1.0, sigma / 4.0)
        small = region if factor == 1.0 else cv2.resize(
            region, (max(1, round(width / factor)), max(1, round(height / factor))), interpolation=cv2.INTER_AREA)
        small_sigma = sigma / factor
        # BORDER_REPLICATE: the blur reads only the box itself, never pixels outside it.
        blurred = cv2.GaussianBlur(small, (_odd(6 * small_sigma), _odd(6 * small_sigma)), small_sigma,
                                   borderType=cv2.BORDER_REPLICATE)
        if factor == 1.0:
            return blurred
        return cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)


class Pixelate(_BoxBaseline):
    """Mosaic: the box's larger side becomes 10 blocks at strength 1 (fewer, larger blocks when stronger)."""

    name = "pixelate"

    def obfuscate(self, region: np.ndarray, current: np.ndarray) -> np.ndarray:
        height, width = region.shape[:2]
        blocks = max(1.0, 10.0 / self.strength)
        block = max(max(height, width) / blocks, 1.0)
        small = cv2.resize(region, (max(1, round(width / block)), max(1, round(height / block))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)


class EllipseBlur(_BoxBaseline):
    """deface's default: a box filter of half the box size, applied inside the ellipse inscribed in the box."""

    name = "ellipse_blur"

    def obfuscate(self, region: np.ndarray, current: np.ndarray) -> np.ndarray:
        height, width = region.shape[:2]
        kernel = (max(1, int(width * self.strength) // 2), max(1, int(height * self.strength) // 2))
        blurred = cv2.blur(region, kernel, borderType=cv2.BORDER_REPLICATE)
        mask = np.zeros((height, width), dtype=np.uint8)
        cv2.ellipse(mask, (width // 2, height // 2), (width // 2, height // 2), 0, 0, 360, 1, -1)
        return np.where(mask[..., None] > 0, blurred, current)


class SdkFilter(Method):
    """`deid_sdk.Filter(**options)`; it detects faces itself, so the shared detections are ignored."""

    name = "sdk"
    uses_detections = False

    def __init__(self, **options: Any):
        try:
            from deid_sdk import Filter
        except (ImportError, AttributeError) as error:
            raise ImportError(f"method 'sdk' needs deid_sdk.Filter, which failed to import: {error}") from error
        self._filter_class = Filter
        self.options = options
        self._filter = Filter(**options)
        self._privacy = self._new_summary()

    @staticmethod
    def _new_summary():
        from deid_sdk.privacy import PrivacySummary

        return PrivacySummary()

    @property
    def supports_strength(self) -> bool:  # type: ignore[override]
        return True

    def __call__(self, frame_bgr: np.ndarray, detections: list) -> np.ndarray:
        out = self._filter(frame_bgr)
        if not isinstance(out, np.ndarray) or out.shape != frame_bgr.shape or out.dtype != np.uint8:
            raise TypeError(f"deid_sdk.Filter returned {type(out).__name__} "
                            f"{getattr(out, 'shape', None)} {getattr(out, 'dtype', None)}; expected {frame_bgr.shape} uint8")
        for face in self.faces:
            self._privacy.add(face)
        return out

    def take_privacy_summary(self):
        """The guard's tally (deid_sdk.privacy.PrivacySummary, from f.faces) since the last call."""
        summary, self._privacy = self._privacy, self._new_summary()
        return summary

    @property
    def faces(self) -> list:
        return list(getattr(self._filter, "faces", []) or [])

    def reset(self) -> None:
        # A new video or an unrelated photo: tracks (and the target identities they hold) must not carry over.
        self._filter.reset()

    def close(self) -> None:
        if hasattr(self._filter, "close"):
            self._filter.close()

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **{key: str(value) for key, value in self.options.items()}}


def rung_figures(summaries: list) -> dict | None:
    """Faces, guard checks and the share of faces per rung over several PrivacySummary (None: no guard ladder)."""
    summaries = [s for s in summaries if s is not None]
    if not summaries:
        return None
    faces = sum(s.faces for s in summaries)
    counts = {rung: sum(s.per_rung[rung] for s in summaries) for rung in summaries[0].per_rung}
    return {"faces": faces, "checks": sum(s.checks for s in summaries),
            "failed_checks": sum(s.failed_checks for s in summaries),
            "per_rung": {rung: count / faces if faces else float("nan") for rung, count in counts.items()}}


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """'blur' or 'blur:strength=0.5' or 'sdk:backend=onnxruntime,strength=0.8,model=path.onnx'."""
    name, _, options_text = spec.partition(":")
    name = name.strip()
    if name not in METHOD_NAMES:
        raise ValueError(f"method must be one of {METHOD_NAMES} (optionally 'name:key=value,...'), got {spec!r}")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in options_text.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"method option must be key=value, got {item!r} in {spec!r}")
        options[key.strip()] = _parse_value(value.strip())
    return name, options


def _parse_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def make_method(name: str, options: dict[str, Any] | None = None) -> Method:
    options = dict(options or {})
    if name == "sdk":
        return SdkFilter(**options)
    classes = {"noop": NoOp, "blur": GaussianBlur, "pixelate": Pixelate, "ellipse_blur": EllipseBlur}
    if name not in classes:
        raise ValueError(f"method must be one of {METHOD_NAMES}, got {name!r}")
    unknown = set(options) - ({"strength"} if name != "noop" else set())
    if unknown:
        raise ValueError(f"method {name!r} does not take options {sorted(unknown)}")
    return classes[name](**options)


def method_label(name: str, options: dict[str, Any]) -> str:
    """Row label: 'blur', 'sdk(strength=0.5)'."""
    if not options:
        return name
    return f"{name}(" + ",".join(f"{key}={value}" for key, value in options.items()) + ")"


class Timer:
    """Accumulates wall time of the calls it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def __enter__(self) -> "Timer":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds += time.perf_counter() - self._start
        self.calls += 1
