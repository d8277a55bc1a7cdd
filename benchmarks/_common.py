"""Helpers shared by the benchmark scripts: timing, machine facts, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "out"


def machine() -> dict[str, Any]:
    """Facts about the machine the figures came from."""
    import torch

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Smallest wall time in seconds of ``repeats`` calls of ``fn`` (least disturbed by noise)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def write_json(name: str, figures: dict[str, Any]) -> Path:
    """Write ``{"machine": ..., "figures": ...}`` to ``benchmarks/out/<name>.json`` and print it."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), "figures": figures}
    path.write_text(json.dumps(payload, indent=1))
    print(json.dumps(payload, indent=1))
    print(f"written {path}")
    return path
