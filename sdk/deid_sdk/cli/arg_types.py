"""argparse types for numeric flags, shared by every command: a bad value is a usage error naming what was expected."""
from __future__ import annotations

import argparse
from typing import Callable


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def non_negative(kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """A parser of `kind` (int or float) that refuses values below 0."""
    def parse(text: str):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
        return value
    return parse
