"""Shared fixtures: the read-only data beside the checkout (../shared/data), skipped when absent."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder beside the checkout ({SHARED_DATA}); absent on this machine")
    return SHARED_DATA
