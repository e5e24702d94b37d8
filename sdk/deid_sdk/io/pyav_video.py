"""Video files and network outputs through PyAV (FFmpeg): frame rate, timestamps and audio survive.

The source decodes a file and hands out each frame with its own timestamp. The sinks encode with the
source's time base, so frame rate and duration match the input exactly (variable frame rate included):
`VideoFileSink` also copies the input's audio packets untouched, interleaved by time, up to the last frame
written; `StreamSink` publishes RTSP (to an RTSP server such as MediaMTX) or sends RTP.
"""
from __future__ import annotations

import logging
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from deid_sdk.io.base import VideoSink, VideoSource
from deid_sdk.io.frame import Frame

log = logging.getLogger("deid_sdk")

# Audio codecs each container takes as a plain copy; others are dropped with a warning (.mkv takes all).
_AUDIO_COPY_OK = {
    ".mp4": {"aac", "mp3", "alac", "opus", "ac3", "eac3", "flac"},
    ".m4v": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".webm": {"opus", "vorbis"},
    ".avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8"},
    ".ts": {"aac", "mp3", "mp2", "ac3", "eac3", "opus"},
    ".mts": {"aac", "mp3", "mp2", "ac3", "eac3"},
    ".flv": {"aac", "mp3"},
}
_NETWORK_FORMATS = {"rtsp": "rtsp", "rtsps": "rtsp", "rtp": "rtp_mpegts"}


def _require_av():
    try:
        import av
    except ImportError:
        raise ImportError("video files and streams need PyAV, a dependency of deid_sdk: pip install av") from None
    return av


class VideoFileSource(VideoSource):
    """Decode a video file frame by frame with its timestamps."""

    def __init__(self, path: str | Path, color: str = "bgr"):
        av = _require_av()
        self._av = av
        self.path = Path(path)
        self.uri = str(path)
        self.color = color
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as error:
            raise ValueError(f"cannot read video file {self.path}: {_ffmpeg_message(error)}") from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"cannot read video file {self.path}: it has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self._stream = stream
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        self.fps = stream.average_rate or stream.guessed_rate or Fraction(30)
        self.time_base = stream.time_base or Fraction(1, 90000)
        self.frame_count = stream.frames or self._estimate_frame_count()
        self.audio_path = str(self.path) if self._container.streams.audio else None
        self._frames = self._container.decode(stream)
        self._index = 0
        self._next_pts = 0
        self._frame_ticks = max(1, round(1 / (self.fps * self.time_base)))

    def _estimate_frame_count(self) -> int | None:
        duration = None
        if self._stream.duration is not None and self._stream.time_base is not None:
            duration = float(self._stream.duration * self._stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1_000_000
        return round(duration * float(self.fps)) if duration else None

    def read(self) -> Frame | None:
        try:
            decoded = next(self._frames)
        except StopIteration:
            self._check_complete()
            return None
        except self._av.FFmpegError as error:
            raise ValueError(f"cannot decode {self.path} at frame {self._index}: {_ffmpeg_message(error)}") from None
        # FFmpeg pads each row to its alignment: for widths like 250 the array is a strided view, which the
        # filter (and any in-place kernel) refuses; one copy makes it a packed frame.
        image = np.ascontiguousarray(decoded.to_ndarray(format="bgr24" if self.color == "bgr" else "rgb24"))
        pts = decoded.pts if decoded.pts is not None else self._next_pts
        self._next_pts = pts + self._frame_ticks
        frame = Frame(image=image, index=self._index, pts=pts, time_base=self.time_base, color=self.color)
        self._index += 1
        return frame

    def _check_complete(self) -> None:
        """A file that ends well before the frame count its header declares was cut off (a truncated copy, a
        recording interrupted): count the missing frames so the run reports an incomplete output."""
        expected = self.frame_count or 0
        if expected and self._index < expected * 0.98 - 1 and not self.frames_missing:
            self.frames_missing = expected - self._index
            log.error("%s ends after %d of the %d frames its header declares (truncated?)", self.path,
                        self._index, expected)

    def close(self) -> None:
        self._container.close()


class EncodingSink(VideoSink):
    """Encode frames with FFmpeg through PyAV: the part a file and a network stream share.

    Opened at the first frame, when the size is known. Frames keep their source timestamps, so frame rate and
    duration equal the input's. Subclasses say where the packets go (`_open_container`) and how to encode.
    A source that changes resolution later (a camera reconfigured, a stream switching quality) keeps the output's
    size: its frames are scaled to fit, aspect kept with black borders, and the change is logged once per size
    (the filter resets its tracks on such a frame: deid_sdk.scene_cut).
    """

    def __init__(self, target: str, *, fps: Fraction | float | None = None, codec: str | None = None,
                 bitrate: int | None = None):
        self._av = _require_av()
        self.uri = str(target)
        self.fps = Fraction(fps).limit_denominator(1001 * 1000) if fps else Fraction(30)
        self.codec = codec or self._default_codec()
        self.bitrate = bitrate
        self._container = None
        self._video = None
        self._last_pts: int | None = None
        self._last_time = 0.0
        self._sizes_logged: set[tuple[int, int]] = set()
        self.frames_written = 0

    def _default_codec(self) -> str:
        return "libx264" if "libx264" in self._av.codecs_available else "mpeg4"

    def _open_container(self):
        raise NotImplementedError

    def _encoder_options(self) -> dict[str, str]:
        return {}

    def _before_encode(self, frame: Frame, media_time: float) -> None:
        """Called with each frame's presentation time just before it is encoded."""

    # -- opening ---------------------------------------------------------------------------------
    def _open(self, frame: Frame) -> None:
        av = self._av
        height, width = frame.image.shape[:2]
        try:
            self._container = self._open_container()
        except (av.FFmpegError, OSError) as error:
            raise OSError(f"cannot open output {self.uri}: {_ffmpeg_message(error)}") from None
        try:
            video = self._container.add_stream(self.codec, rate=self.fps)
        except (av.FFmpegError, ValueError) as error:
            raise ValueError(f"cannot encode with codec {self.codec!r}: {_ffmpeg_message(error)}") from None
        video.width, video.height = width, height
        odd = width % 2 or height % 2
        video.pix_fmt = "yuv444p" if odd and self.codec == "libx264" else "yuv420p"
        # Keep the source's clock: pts pass through unchanged, so fps and duration equal the input's.
        video.codec_context.time_base = frame.time_base
        video.options = self._encoder_options()
        if self.bitrate:
            video.bit_rate = int(self.bitrate)
        self._video = video

    # -- writing ---------------------------------------------------------------------------------
    def write(self, frame: Frame) -> None:
        if self._container is None:
            self._open(frame)
        pts = frame.pts
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need strictly increasing timestamps
        self._last_pts = pts
        image = frame.image
        if image.shape[:2] != (self._video.height, self._video.width):
            image = self._fit(frame)
        picture = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image),
                                                   format="bgr24" if frame.color == "bgr" else "rgb24")
        picture.pts = pts
        picture.time_base = frame.time_base
        self._last_time = float(pts * frame.time_base)
        self._before_encode(frame, self._last_time)
        try:
            for packet in self._video.encode(picture):
                self._container.mux(packet)
        except self._av.FFmpegError as error:
            raise OSError(f"cannot write to {self.uri}: {_ffmpeg_message(error)}") from None
        self.frames_written += 1

    def _fit(self, frame: Frame) -> np.ndarray:
        height, width = frame.image.shape[:2]
        if (width, height) not in self._sizes_logged:
            self._sizes_logged.add((width, height))
            log.warning("%s: the source changed resolution at frame %d (%dx%d, the output is %dx%d): scaled to fit",
                        self.uri, frame.index, width, height, self._video.width, self._video.height)
        return fit_into(frame.image, self._video.width, self._video.height)

    def _finish(self, complete: bool) -> None:
        """After the encoder is flushed, before the container closes."""

    def _release(self) -> None:
        """After the container closed (also after a failure)."""

    def close(self, complete: bool = True) -> None:
        if self._container is None:
            return
        try:
            for packet in self._video.encode(None):
                self._container.mux(packet)
            self._finish(complete)
        finally:
            self._container.close()
            self._container = None
            self._release()


class VideoFileSink(EncodingSink):
    """Encode frames into a video file, copying the input's audio packets untouched, interleaved by time."""

    def __init__(self, path: str | Path, *, fps: Fraction | float | None = None, audio_from: str | None = None,
                 codec: str | None = None, crf: int | None = None, bitrate: int | None = None):
        self.path = Path(path)
        super().__init__(str(path), fps=fps, codec=codec, bitrate=bitrate)
        self.audio_from = audio_from
        self.crf = crf
        self._audio_in = None
        self._audio_out = None
        self._audio_packets = None
        self._pending_audio = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _default_codec(self) -> str:
        if self.path.suffix.lower() == ".webm":
            return "libvpx-vp9" if "libvpx-vp9" in self._av.codecs_available else "libvpx"
        return super()._default_codec()

    def _open_container(self):
        return self._av.open(str(self.path), "w")

    def _encoder_options(self) -> dict[str, str]:
        if self.codec != "libx264":
            return {}
        options = {"preset": "veryfast"}
        if not self.bitrate:
            options["crf"] = str(self.crf if self.crf is not None else 20)
        return options

    def _open(self, frame: Frame) -> None:
        super()._open(frame)
        if self.audio_from:
            self._open_audio()

    def _open_audio(self) -> None:
        source = self._av.open(self.audio_from)
        if not source.streams.audio:
            source.close()
            return
        audio = source.streams.audio[0]
        codec_name = audio.codec_context.name
        allowed = _AUDIO_COPY_OK.get(self.path.suffix.lower())
        if self.path.suffix.lower() not in (".mkv", ".mka") and (allowed is None or codec_name not in allowed):
            log.warning("audio (%s) cannot be copied into a %s file: the output has no sound (use .mkv to keep it)",
                        codec_name, self.path.suffix or "suffix-less")
            source.close()
            return
        self._audio_in = source
        self._audio_out = self._container.add_stream_from_template(audio)
        self._audio_packets = source.demux(audio)

    def _before_encode(self, frame: Frame, media_time: float) -> None:
        self._mux_audio_until(media_time)

    def _mux_audio_until(self, until: float | None) -> None:
        """Copy audio packets whose time is at most `until` seconds (all of them when None)."""
        if self._audio_packets is None:
            return
        while True:
            packet = self._pending_audio
            self._pending_audio = None
            if packet is None:
                packet = next(self._audio_packets, None)
                if packet is None:
                    self._audio_packets = None
                    return
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if until is not None and packet.pts is not None and float(packet.pts * packet.time_base) > until:
                self._pending_audio = packet
                return
            packet.stream = self._audio_out
            self._container.mux(packet)

    def _finish(self, complete: bool) -> None:
        # After an interruption, keep sound only as far as the pictures go.
        self._mux_audio_until(None if complete else self._last_time + float(1 / self.fps))

    def _release(self) -> None:
        if self._audio_in is not None:
            self._audio_in.close()
            self._audio_in = None


class StreamSink(EncodingSink):
    """Publish to an RTSP server (FFmpeg's muxer is a client, e.g. of MediaMTX) or send RTP (MPEG-TS payload,
    playable with `ffplay rtp://@:PORT` without an SDP file). No audio; a keyframe every second."""

    def __init__(self, url: str, scheme: str, *, fps: Fraction | float | None = None, codec: str | None = None,
                 bitrate: int | None = None, pace: bool = False):
        if scheme not in _NETWORK_FORMATS:
            raise ValueError(f"stream sink scheme must be one of {', '.join(_NETWORK_FORMATS)}, got {scheme!r}")
        super().__init__(url, fps=fps, codec=codec, bitrate=bitrate)
        self.scheme = scheme
        self.pace = pace  # send in real time (a file played out to a network sink)
        self._pace_origin: tuple[float, float] | None = None

    def _open_container(self):
        options = {"rtsp_transport": "tcp"} if self.scheme.startswith("rtsp") else {}
        return self._av.open(self.uri, "w", format=_NETWORK_FORMATS[self.scheme], options=options)

    def _encoder_options(self) -> dict[str, str]:
        if self.codec != "libx264":
            return {}
        keyframe_every = str(max(1, round(float(self.fps))))  # a receiver can join within a second
        return {"preset": "veryfast", "tune": "zerolatency", "g": keyframe_every}

    def _before_encode(self, frame: Frame, media_time: float) -> None:
        if not self.pace:
            return
        now = time.monotonic()
        if self._pace_origin is None:
            self._pace_origin = (now, media_time)
            return
        delay = self._pace_origin[0] + (media_time - self._pace_origin[1]) - now
        if delay > 0:
            time.sleep(delay)


def fit_into(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled into a width x height frame, aspect kept (black borders, the picture centred)."""
    import cv2

    scale = min(width / image.shape[1], height / image.shape[0])
    fitted_width, fitted_height = max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))
    fitted = cv2.resize(image, (fitted_width, fitted_height),
                        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = np.zeros((height, width, image.shape[2]), np.uint8)
    top, left = (height - fitted_height) // 2, (width - fitted_width) // 2
    canvas[top:top + fitted_height, left:left + fitted_width] = fitted
    return canvas


def _ffmpeg_message(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return str(text).splitlines()[0] if text else type(error).__name__
