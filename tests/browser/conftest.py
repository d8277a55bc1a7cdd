"""Fixtures of the browser checks."""

from __future__ import annotations

import pytest

from tests.browser.chromium import require_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable; skips without one (fails when ``SLEEPBENCH_REQUIRE_BROWSER=1``)."""
    return require_chromium()
