"""GPU check: every registered task, one short epoch in bf16-mixed with deterministic algorithms on,
then its test loop; throughput, latency, memory and whether the GPU waits for data.

Usage::

    python benchmarks/gpu_check.py                        # CUDA, bf16-mixed, paper-size models
    python benchmarks/gpu_check.py --tasks sleep_edf --train-batches 50
    for t in apnea_ecg sleep_edf; do                      # one process per task, one JSON
        timeout 150 python benchmarks/gpu_check.py --tasks $t --merge; done
    python benchmarks/gpu_check.py --accelerator cpu --precision 32 --size synthetic \\
        --tasks shhs_spo2 --train-batches 3 --cuda-op-guard    # CPU smoke test

Each task runs through the real run machinery (:func:`sleepbench.train.run`, synthetic data,
``trainer.deterministic=true``, ``trainer.max_epochs=1``, ``limit_train_batches``), sandboxed
with :func:`sleepbench.config.isolated_outputs` in a temporary folder. Per task it reports:

- ``train_samples_per_s`` / ``train_steps_per_s``: the real training loop (data loading
  included), timed between the end of the first (warm-up) batch and the end of the last;
- ``inference_ms_per_hour``: forward-pass milliseconds per hour of signal in the test loop;
- ``peak_gpu_mem_mb``: ``torch.cuda.max_memory_allocated`` over fit and test (CUDA only);
- ``loader_batches_per_s``: the train DataLoader iterated alone (its configured workers), against
  ``device_steps_per_s``: forward + backward + AdamW steps on batches already on the device, same
  precision, deterministic algorithms on. ``gpu_waits_for_data`` is true when the loader is the
  slower of the two (raise ``data.num_workers`` with ``--set``);
- ``weights_sha256``: the trained weights' digest; with ``--repeat`` the run is made twice and
  ``repeat_same_weights`` / ``repeat_same_metrics`` say whether the second one reproduced the
  first bit for bit (``trainer.deterministic=true`` promises it).

``--size paper`` (default) runs the task's own model and batch size (the synthetic set is only the
data); ``--size synthetic`` keeps the task's CPU-sized ``synthetic_overrides``. Prints a table and
writes JSON (``benchmarks/out/gpu_check.json``; ``--out``) after every task, with ``complete``
false until the last one ends. Exit status 1 if any task failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import OUT_DIR, machine  # noqa: E402
from _gpu_timing import (  # noqa: E402
    TrainTiming,
    WeightFingerprint,
    device_step_rate,
    loader_rate,
    same_metrics,
)

from sleepbench.config import isolated_outputs  # noqa: E402
from sleepbench.registry import get_task, task_names  # noqa: E402

#: speed-only overrides (peer baselines, figures) that a throughput check does not need
SPEED_OVERRIDES: dict[str, list[str]] = {
    "sleep_edf": ["yasa.enabled=false", "plots.hypnograms=false"],
    # the HTS-AT peer is a second training of the time branch alone: timed by its own check
    "icbhi_lung": ["peer.enabled=false"],
    "esc50": ["peer.enabled=false"],
}


def task_overrides(name: str, args: argparse.Namespace, workdir: Path) -> list[str]:
    """The dotlist of one task's check run (later entries win)."""
    out = [
        *isolated_outputs(workdir),
        "data.synthetic=true",
        "force=true",
        f"trainer.accelerator={args.accelerator}",
        "trainer.devices=1",
        f"trainer.precision={args.precision}",
        "trainer.deterministic=true",
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={args.train_batches}",
        f"trainer.limit_val_batches={args.val_batches}",
        f"data.build_workers={args.build_workers}",
        *SPEED_OVERRIDES.get(name, []),
    ]
    if args.size == "paper":
        out.append("synthetic_overrides=null")  # the task's own model and batch size
    return [*out, *args.set]


def check_task(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one task's check (see the module docstring); returns its JSON record."""
    from omegaconf import OmegaConf

    from sleepbench.train import run

    task = get_task(name)
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timing, weights = TrainTiming(), WeightFingerprint()
    t0 = time.perf_counter()
    rows = run(name, task_overrides(name, args, workdir), callbacks=[timing, weights])
    run_s = time.perf_counter() - t0
    row = rows[0]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    repeat: dict[str, Any] = {}
    if args.repeat:
        # the same run again (same seed, cache already built): deterministic algorithms must
        # give the same weights bit for bit and the same test metrics
        again = WeightFingerprint()
        row2 = run(name, task_overrides(name, args, workdir), callbacks=[again])[0]
        repeat = {
            "repeat_same_weights": weights.digest is not None and weights.digest == again.digest,
            "repeat_same_metrics": same_metrics(row["metrics"], row2["metrics"]),
        }

    cfg = OmegaConf.create(row["config"])
    dm = task.datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    first_s, loader_bps, batches = loader_rate(dm.train_dataloader(), args.loader_batches)
    module = task.build_module(cfg, dm)
    device_sps = device_step_rate(
        module, batches[: args.preload_batches], device, args.precision, args.device_steps
    )
    del module
    primary = task.spec.primary_metric
    return {
        "task": name,
        "model": row["model"],
        "n_params": row["n_params"],
        "batch_size": int(cfg.data.batch_size),
        "num_workers": int(cfg.data.num_workers),
        "precision": str(cfg.trainer.precision),
        "deterministic": bool(cfg.trainer.deterministic),
        "timed_train_steps": timing.steps,
        "train_samples_per_s": timing.samples / timing.seconds if timing.seconds else None,
        "train_steps_per_s": timing.steps / timing.seconds if timing.seconds else None,
        "inference_ms_per_hour": row["timings"]["inference_ms_per_hour"],
        "peak_gpu_mem_mb": peak,
        "loader_first_batch_s": first_s,
        "loader_batches_per_s": loader_bps,
        "device_steps_per_s": device_sps,
        "gpu_waits_for_data": bool(loader_bps < device_sps),
        "fit_s": row["timings"]["train_s"],
        "test_s": row["timings"]["test_s"],
        f"test/{primary}": row["metrics"].get(f"test/{primary}"),
        "weights_sha256": weights.digest,
        **repeat,
        "wall_s": time.perf_counter() - t0,
        "run_s": run_s,
    }


def environment(accelerator: str) -> dict[str, Any]:
    """GPU name and memory, torch / CUDA / cuDNN / Lightning versions."""
    import lightning

    env = {
        **machine(),
        "accelerator": accelerator,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "lightning": lightning.__version__,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
        env["gpu_capability"] = f"{props.major}.{props.minor}"
    return env


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def print_table(records: list[dict[str, Any]]) -> None:
    """One line per task with the headline figures."""
    cols = [
        ("task", "task"),
        ("train_samples_per_s", "train samp/s"),
        ("inference_ms_per_hour", "infer ms/h"),
        ("peak_gpu_mem_mb", "peak MB"),
        ("loader_batches_per_s", "loader b/s"),
        ("device_steps_per_s", "device st/s"),
        ("gpu_waits_for_data", "waits"),
        ("wall_s", "wall s"),
    ]
    print("  ".join(f"{title:>13}" for _, title in cols))
    for rec in records:
        if "error" in rec:
            print(f"{rec['task']:>13}  FAILED: {rec['error']}")
        else:
            print("  ".join(f"{_fmt(rec.get(key)):>13}" for key, _ in cols))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", default=None, help="comma-separated tasks (default: all registered)")
    p.add_argument("--accelerator", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--precision", default="bf16-mixed", help="bf16-mixed (default) | 16-mixed | 32")
    p.add_argument("--size", choices=("paper", "synthetic"), default="paper")
    p.add_argument("--train-batches", type=int, default=30, help="training batches (1 warm-up)")
    p.add_argument("--val-batches", type=int, default=4)
    p.add_argument("--loader-batches", type=int, default=30, help="batches read by the loader test")
    p.add_argument("--preload-batches", type=int, default=4, help="distinct batches on the device")
    p.add_argument("--device-steps", type=int, default=20, help="timed preloaded-batch steps")
    p.add_argument("--build-workers", type=int, default=8, help="cache-building processes")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides, every task")
    p.add_argument("--workdir", type=Path, default=None, help="keep runs here (default: temp)")
    p.add_argument("--out", type=Path, default=OUT_DIR / "gpu_check.json")
    p.add_argument(
        "--repeat",
        action="store_true",
        help="run each task twice and record whether weights and test metrics are identical",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the records of tasks not run now from an existing --out file",
    )
    p.add_argument(
        "--cuda-op-guard",
        action="store_true",
        help="fail on ops that raise on CUDA in deterministic mode, whatever the device",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check; returns the exit status (1 if a task failed)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        print("no CUDA device: use --accelerator cpu --precision 32 for a smoke test")
        return 2
    names = args.tasks.split(",") if args.tasks else task_names()
    t_start = time.perf_counter()
    records: list[dict[str, Any]] = []
    if args.merge and args.out.exists():
        # keep the other tasks' records of earlier runs (one process per task: a task that hangs
        # is stopped by the caller's timeout without losing the figures of the others)
        earlier = json.loads(args.out.read_text()).get("tasks", [])
        records.extend(r for r in earlier if r.get("task") not in names)
    payload = {
        "benchmark": "gpu_check",
        "environment": environment(args.accelerator),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "complete": False,
        "total_s": 0.0,
        "tasks": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        # after every task: a run stopped at a time limit still leaves the tasks it finished
        payload["total_s"] = time.perf_counter() - t_start
        args.out.write_text(json.dumps(payload, indent=1, default=str))

    with contextlib.ExitStack() as stack:
        root = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.cuda_op_guard:
            from sleepbench.nn.determinism import CudaNondeterminismGuard

            stack.enter_context(CudaNondeterminismGuard())
        for name in names:
            print(f"== {name}", flush=True)
            try:
                records.append(check_task(name, args, root / name))
            except Exception as err:  # one broken task must not hide the others' figures
                traceback.print_exc()
                records.append({"task": name, "error": f"{type(err).__name__}: {err}"})
            write()
    payload["complete"] = True
    write()
    print(json.dumps(payload["environment"], indent=1))
    print_table(records)
    print(f"total {payload['total_s']:.0f} s; written {args.out}")
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
