"""Shared fixtures and suite-wide checks.

- The read-only data beside the checkout (../shared/data): tests that need it skip when it is absent.
- `DEID_REQUIRE_EXTENSION=1` (set by `make test`, hence CI): the run stops at once when the compiled module
  deid_sdk._C is missing. Without the check the SDK falls back to the NumPy reference kernels and the C++ tests
  skip, so a broken build would pass.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config) -> None:
    if os.environ.get("DEID_REQUIRE_EXTENSION") == "1":
        try:
            importlib.import_module("deid_sdk._C")
        except ImportError as error:
            raise pytest.UsageError(f"deid_sdk._C is not built ({error}); rebuild with `make install` "
                                    "(DEID_REQUIRE_EXTENSION=1 forbids falling back to the NumPy kernels)") from None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder beside the checkout ({SHARED_DATA}); absent on this machine")
    return SHARED_DATA
