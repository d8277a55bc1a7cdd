"""How a task's synthetic default training behaves under a few changes: a measured sweep.

Each variant is the task's synthetic default (``make bench TASK=T``) plus a few dotlist
overrides, run as its own ``sleepbench bench`` process; all variants share one folder for the
synthetic data and the cache (built once), each has its own runs and results. Printed and
written to ``benchmarks/out/defaults_<task>.json``: per variant the overrides, the wall time and
every result row's (model and peers) test headline metrics, with the majority rate where the
task reports it. This is how the synthetic defaults in each task's config were chosen (its data
card quotes the figures).

    .venv/bin/python benchmarks/bench_defaults.py --task apnea_ecg \
        --variant default= --variant epochs16=trainer.max_epochs=16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT_DIR, write_json  # noqa: E402

from sleepbench.config import isolated_outputs  # noqa: E402
from sleepbench.registry import get_spec  # noqa: E402
from sleepbench.train import git_sha  # noqa: E402

#: kept besides the task's headline metrics (where a row has them): the bar the model must clear,
#: and the SHHS2 AUROC at AHI 15, a test set large enough to check the SHHS1 one against
_EXTRA = ("majority_acc", "shhs2_ahi15_auroc")


def _split_overrides(text: str) -> list[str]:
    """``a=1,b=[1.0,2.0]`` -> ``["a=1", "b=[1.0,2.0]"]``: commas inside brackets stay."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [o for o in out if o]


def run_variant(task: str, folder: Path, name: str, overrides: list[str]) -> dict[str, Any]:
    """One ``sleepbench bench --task T`` run; wall time, overrides and rows' test metrics."""
    spec = get_spec(task)
    keep = {*(spec.headline_metrics or (spec.primary_metric,)), *_EXTRA}
    own = folder / name
    outputs = [o for o in isolated_outputs(own) if not o.startswith("data.cache_dir")]
    outputs.append(f"data.cache_dir={folder / 'cache'}")
    cmd = [sys.executable, "-m", "sleepbench.cli", "bench", "--task", task]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *outputs, *overrides], check=True, stdout=subprocess.DEVNULL)
    wall_s = time.perf_counter() - t0
    rows = [json.loads(line) for line in (own / "results.jsonl").read_text().splitlines() if line]
    return {
        "overrides": overrides,
        "wall_s": round(wall_s, 1),
        "rows": {
            row["model"]: {
                k.removeprefix("test/"): round(float(v), 4)
                for k, v in row["metrics"].items()
                if k.removeprefix("test/") in keep and k.startswith("test/")
            }
            for row in rows
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", required=True, help="registered task name")
    p.add_argument(
        "--variant",
        action="append",
        required=True,
        help="NAME=override[,override...] (an empty list runs the default)",
    )
    p.add_argument("--folder", type=Path, help="shared folder (default: a temporary one)")
    p.add_argument(
        "--note",
        default=None,
        help="what the defaults were when this sweep ran (kept with each of its variants)",
    )
    args = p.parse_args()
    stamp = {"commit": git_sha(), **({"note": args.note} if args.note else {})}
    ran: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix=f"defaults-{args.task}-") as tmp:
        folder = args.folder or Path(tmp)
        for spec in args.variant:
            name, _, rest = spec.partition("=")
            overrides = _split_overrides(rest)
            try:
                ran[name] = {**run_variant(args.task, folder, name, overrides), **stamp}
            except subprocess.CalledProcessError as err:  # one failed variant keeps the sweep
                ran[name] = {"overrides": overrides, "error": str(err), **stamp}
            print(name, json.dumps(ran[name]), flush=True)
    # this sweep's variants join the earlier ones (same name: replaced); the file is read only
    # now, so a sweep that finished while this one ran keeps its entries
    previous = OUT_DIR / f"defaults_{args.task}.json"
    figures: dict[str, Any] = (
        json.loads(previous.read_text())["figures"] if previous.exists() else {}
    )
    write_json(f"defaults_{args.task}", {**figures, **ran})


if __name__ == "__main__":
    main()
