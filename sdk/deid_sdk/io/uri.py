"""Source and sink URIs, named the way jetson-utils names them.

    csi://0                 MIPI CSI camera 0 (Jetson)
    v4l2:///dev/video0      V4L2 camera; a bare /dev/video0 means the same
    rtsp://host:8554/path   RTSP stream (source: pull; sink: publish, see io/pyav_video.py)
    rtp://@:5000            RTP receive on port 5000 (source); rtp://host:5000 send (sink)
    file:///a/b.mp4         video file; a plain path means the same
    /path/to/folder         folder of images (source) or folder to write images to (sink)
    display://0             a window on screen (sink)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".m4v", ".webm", ".ts", ".mts", ".flv", ".wmv", ".mpg",
                    ".mpeg", ".3gp", ".ogv", ".h264", ".264", ".mjpeg", ".gif")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

SOURCE_SCHEMES = ("csi", "v4l2", "rtsp", "rtsps", "rtp", "http", "https", "file")
SINK_SCHEMES = ("display", "rtsp", "rtp", "file")
ROLES = ("source", "sink")


@dataclass(frozen=True)
class MediaUri:
    """A parsed source or sink address.

    kind is what the address points at: "csi", "v4l2", "stream" (rtsp/rtp/http), "video" (a video file),
    "images" (a folder, a single image or a %d pattern) or "display".
    """
    text: str         # as the user wrote it
    scheme: str       # csi, v4l2, rtsp, rtsps, rtp, http, https, file, display
    kind: str
    location: str     # device path, camera number, URL or filesystem path

    @property
    def path(self) -> Path:
        return Path(self.location)

    @property
    def is_live(self) -> bool:
        return self.kind in ("csi", "v4l2", "stream")


def parse_uri(text: str, role: str = "source") -> MediaUri:
    """Parse a source (`role="source"`) or sink (`role="sink"`) URI; raise ValueError for anything unknown."""
    if role not in ROLES:
        raise ValueError(f"role must be 'source' or 'sink', got {role!r}")
    if not isinstance(text, (str, Path)):
        raise TypeError(f"{role} URI: expected a string such as 'file:///video.mp4' or 'csi://0', "
                        f"got {type(text).__name__}")
    text = str(text).strip()
    if not text:
        raise ValueError(f"{role} URI is empty: expected e.g. 'video.mp4', 'v4l2:///dev/video0' or 'display://0'")
    schemes = SOURCE_SCHEMES if role == "source" else SINK_SCHEMES

    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    if match is None:
        return _plain_path(text, text, role)
    scheme = match.group(1).lower()
    rest = text[match.end():]
    if scheme not in schemes:
        hint = ""
        if role == "source" and scheme == "display":
            hint = " (display:// is a sink)"
        elif role == "sink" and scheme in ("csi", "v4l2", "http", "https"):
            hint = f" ({scheme}:// is a source)"
        raise ValueError(f"unknown {role} URI scheme {scheme!r} in {text!r}{hint}; expected one of "
                         + ", ".join(f"{s}://" for s in schemes) + " or a file/folder path")

    if scheme == "file":
        path = unquote(urlsplit(text).path) if rest.startswith("/") else unquote(rest)
        if not path:
            raise ValueError(f"{role} URI {text!r} has no path: expected file:///path/to/video.mp4")
        return _plain_path(path, text, role)
    if scheme == "csi":
        if not rest.isdigit():
            raise ValueError(f"csi URI: expected csi://N with a camera number, got {text!r}")
        return MediaUri(text, "csi", "csi", rest)
    if scheme == "v4l2":
        device = rest if rest.startswith("/") else f"/dev/{rest}" if rest else ""
        if not device:
            raise ValueError(f"v4l2 URI: expected v4l2:///dev/videoN, got {text!r}")
        return MediaUri(text, "v4l2", "v4l2", device)
    if scheme == "display":
        if rest and not rest.isdigit():
            raise ValueError(f"display URI: expected display://N with a display number, got {text!r}")
        return MediaUri(text, "display", "display", rest or "0")
    # Network streams: keep the URL as written; FFmpeg and GStreamer parse the rest.
    if not rest:
        raise ValueError(f"{scheme} URI {text!r} has no host or port")
    return MediaUri(text, scheme, "stream", text)


def _plain_path(path_text: str, original: str, role: str) -> MediaUri:
    if re.fullmatch(r"/dev/video\d+", path_text):
        if role == "sink":
            raise ValueError(f"{path_text} is a camera, not a sink: expected a file, a folder or display://0")
        return MediaUri(original, "v4l2", "v4l2", path_text)
    try:
        path = Path(path_text).expanduser()
    except RuntimeError:  # "~name" for a user that does not exist (found by fuzzing)
        raise ValueError(f"{role} {original!r}: no user {path_text.split('/')[0][1:]!r} for '~' to expand to") from None
    suffix = path.suffix.lower()
    if _is(path.is_dir) or path_text.endswith(("/", "\\")) or "%" in path.name or suffix in IMAGE_EXTENSIONS:
        return MediaUri(original, "file", "images", str(path))
    if suffix in VIDEO_EXTENSIONS or (role == "source" and _is(path.is_file)):
        return MediaUri(original, "file", "video", str(path))
    if role == "sink" and not suffix:
        return MediaUri(original, "file", "images", str(path))  # a new folder of images
    if role == "source":
        raise FileNotFoundError(f"source not found: {path_text} (expected an existing video file, image or "
                                "folder of images, or a URI such as v4l2:///dev/video0 or rtsp://host/path)")
    raise ValueError(f"sink {original!r}: unknown file type {suffix!r}; expected a video file "
                     f"({', '.join(VIDEO_EXTENSIONS[:6])}, ...), a folder, or an image pattern like out/%06d.png")


def _is(test) -> bool:
    """path.is_dir / path.is_file where a name the filesystem cannot hold (too long, NUL byte) is simply absent:
    pathlib raises OSError/ValueError for those instead of answering False."""
    try:
        return test()
    except (OSError, ValueError):
        return False
