"""CPU inference time per hour of signal, torch vs onnxruntime, of every task's exported network.

Usage::

    python benchmarks/bench_export.py                          # every registered task
    python benchmarks/bench_export.py --task sleep_edf --quick # one task, one timed pass

Per task: the synthetic-size network (the task's config with its ``synthetic_overrides``, random
weights) is exported by :func:`sleepbench.deploy.export.write_onnx`, the code behind
``sleepbench export``. A batch of ``--batch`` input items (the export spec's item: one minute of
ECG, a sequence of 30-s epochs, one SpO2 night, a 60-s audio window, a lung cycle, a clip) then
runs through torch (eval mode, no grad) and through onnxruntime's CPU provider, each warmed up
once and timed best of ``--repeats``, both limited to ``--threads`` threads (default 1: per-core
figures). Time per hour of signal = time per batch / (batch x item seconds / 3600); overlapping
windows (psg_audio_osa's 30-s test stride) are not counted twice. The export's own check (max
absolute difference onnxruntime vs torch) and its wall time are recorded too. Writes
``benchmarks/out/export.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, write_json  # noqa: E402

from sleepbench.config import apply_synthetic_overrides, load_config  # noqa: E402
from sleepbench.deploy.export import onnx_session, write_onnx  # noqa: E402
from sleepbench.registry import get_task, task_names  # noqa: E402


def bench_task(task: str, batch: int, repeats: int, threads: int, folder: Path) -> dict[str, Any]:
    """Export ``task``'s synthetic-size network and time torch and onnxruntime on one batch.

    Returns:
        item shape and seconds, batch, parameter count, ONNX size (MB), export wall time (s),
        max abs difference, and for torch and onnxruntime ms per batch and ms per hour of signal,
        plus ``speedup`` (torch time / onnxruntime time).
    """
    cfg = apply_synthetic_overrides(load_config(task))
    spec = get_task(task).export_spec(cfg)
    net = spec.net.eval()
    t0 = time.perf_counter()
    info = write_onnx(spec, folder / f"{task}.onnx", {"task": task})
    export_s = time.perf_counter() - t0

    x = spec.example(batch, seed=1)
    session = onnx_session(info["path"], threads=threads)
    feed = {spec.input_name: x.numpy()}

    def run_torch() -> None:
        with torch.no_grad():
            net(x)

    def run_ort() -> None:
        session.run(None, feed)

    run_torch(), run_ort()  # warm-up: allocations, onnxruntime's first-run planning
    seconds = {"torch": best_of(run_torch, repeats), "onnxruntime": best_of(run_ort, repeats)}
    hours = batch * spec.item_s / 3600.0
    out: dict[str, Any] = {
        "item_shape": list(spec.item_shape),
        "item_s": spec.item_s,
        "batch": batch,
        "params": sum(p.numel() for p in net.parameters()),
        "onnx_mb": round(info["size_bytes"] / 1e6, 2),
        "export_s": round(export_s, 1),
        "max_abs_diff": info["max_abs_diff"],
    }
    for runtime, s in seconds.items():
        out[f"{runtime}_ms_per_batch"] = round(1000.0 * s, 2)
        out[f"{runtime}_ms_per_hour"] = round(1000.0 * s / hours, 2)
    out["speedup"] = round(seconds["torch"] / seconds["onnxruntime"], 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", action="append", help="task name (repeatable; default: all)")
    p.add_argument("--batch", type=int, default=8, help="input items per timed call")
    p.add_argument("--repeats", type=int, default=5, help="timed calls (the fastest is kept)")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    p.add_argument("--quick", action="store_true", help="batch 2, one timed call (a smoke run)")
    args = p.parse_args()
    tasks = args.task or task_names()
    for name in tasks:
        get_task(name)  # a typo fails before the first export
    batch, repeats = (2, 1) if args.quick else (args.batch, args.repeats)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    figures: dict[str, Any] = {"threads": args.threads, "quick": args.quick, "tasks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            row = bench_task(task, batch, repeats, args.threads, Path(tmp))
            figures["tasks"][task] = row
            print(
                f"{task}: torch {row['torch_ms_per_hour']:.1f} ms/h, onnxruntime "
                f"{row['onnxruntime_ms_per_hour']:.1f} ms/h (x{row['speedup']}), "
                f"max abs diff {row['max_abs_diff']:.2g}, export {row['export_s']} s"
            )
    write_json("export", figures)


if __name__ == "__main__":
    main()
