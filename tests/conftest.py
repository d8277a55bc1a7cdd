"""Shared fixtures: where the real sample files are, and tiny temporary folders."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def samples_root() -> Path:
    """Folder of real sample files: ``$SLEEPBENCH_SAMPLES`` or ``../shared/data`` beside the repo."""
    env = os.environ.get("SLEEPBENCH_SAMPLES")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def _load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (the scripts are not a package)."""
    path = REPO_ROOT / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """A function: benchmark script name -> the script imported as a module."""
    return _load_benchmark


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real sample files; skips (or fails, when ``SLEEPBENCH_REQUIRE_SAMPLES=1`` as in CI)."""
    root = samples_root()
    if not root.is_dir():
        if os.environ.get("SLEEPBENCH_REQUIRE_SAMPLES") == "1":
            pytest.fail(f"SLEEPBENCH_REQUIRE_SAMPLES=1 but the sample folder {root} is missing")
        pytest.skip(f"real sample files not found at {root} (set SLEEPBENCH_SAMPLES)")
    return root


_SAMPLE_TESTS_PASSED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count passed tests marked ``samples`` (tests that read the real files)."""
    if report.when == "call" and report.passed and "samples" in report.keywords:
        _SAMPLE_TESTS_PASSED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``SLEEPBENCH_REQUIRE_SAMPLES=1`` (CI), a run where no real-sample test passed fails."""
    if os.environ.get("SLEEPBENCH_REQUIRE_SAMPLES") != "1" or session.config.option.markexpr:
        return
    if session.testscollected and not _SAMPLE_TESTS_PASSED and exitstatus == 0:
        print("\nERROR: SLEEPBENCH_REQUIRE_SAMPLES=1 but no test on the real sample files passed")
        session.exitstatus = 1
