"""What every source and sink offers; the loop in live_loop.py only talks to these."""
from __future__ import annotations

from fractions import Fraction

from deid_sdk.io.frame import Frame


class VideoSource:
    """Yields frames until the end (read() returns None). Errors raise with a message naming the URI."""
    uri: str = ""
    is_live: bool = False            # cameras and streams: frames may be dropped to keep up, never files
    color: str = "bgr"               # channel order of the frames it yields
    fps: Fraction | None = None      # nominal frame rate, when known
    frame_count: int | None = None   # frames in a file or folder; None for live sources
    audio_path: str | None = None    # a file whose audio stream can be copied to the output
    frames_missing: int = 0          # frames a damaged file or folder could not give (skipped or cut off)

    def read(self) -> Frame | None:
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a blocking read() (reconnect waits) to give up soon; called from another thread."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class VideoSink:
    """Consumes anonymized frames. close(complete=...) must leave a playable result."""
    uri: str = ""
    wants_stop: bool = False         # set when the user closed the window, or the receiver went away
    main_thread_only: bool = False   # write() must run in the thread that created the sink (GUI windows)

    def write(self, frame: Frame) -> None:
        raise NotImplementedError

    def close(self, complete: bool = True) -> None:
        """complete=False after an interruption: finish what was written, add nothing past it."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close(complete=exc_info[0] is None)
