"""Reopening a live source that dropped: waits 0.5 s, 1 s, 2 s, ... (doubling up to a ceiling) between tries.

While it waits no frame is produced at all, so nothing un-anonymized can reach a sink.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, TypeVar

log = logging.getLogger("deid_sdk")
Handle = TypeVar("Handle")


def reopen_with_backoff(reopen: Callable[[], Handle | None], *, uri: str, attempts: int, stop: threading.Event,
                        initial_backoff: float = 0.5, max_backoff: float = 10.0) -> Handle | None:
    """`reopen()` until it returns a handle (None or OSError/ValueError: not yet), at most `attempts` times.

    Returns None when it gives up or `stop` is set while waiting.
    """
    delay = initial_backoff
    for attempt in range(1, attempts + 1):
        log.warning("%s dropped; reconnecting in %.1f s (attempt %d)", uri, delay, attempt)
        if stop.wait(delay):
            return None
        try:
            handle = reopen()
        except (OSError, ValueError):
            handle = None
        if handle is not None:
            log.warning("%s reconnected", uri)
            return handle
        delay = min(delay * 2, max_backoff)
    if attempts:
        log.error("%s: gave up after %d reconnect attempts", uri, attempts)
    return None
