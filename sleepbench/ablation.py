"""Ablation runner: one bench run per variant of a named ablation, and one table for them.

A task lists its ablations in ``config.yaml``::

    ablations:
      smoothing:                      # make bench TASK=shhs_spo2 ARGS="ablation=smoothing"
        adaptive: [preprocess.smoothing=adaptive]
        median11: [preprocess.smoothing=median]

and ``reference.yaml`` may hold the paper's numbers per variant under ``ablations:`` (same names).
Each variant is an ordinary run (its own result row, tagged ``ablation`` / ``ablation_variant``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from sleepbench.config import load_config
from sleepbench.registry import get_spec, task_folder


def ablation_variants(task_name: str, ablation: str) -> dict[str, list[str]]:
    """Variant name -> dotlist overrides of ``ablation`` in the task's config.

    Raises:
        KeyError: the task has no such ablation (the message lists the ones it has).
    """
    cfg = load_config(task_name)
    table = OmegaConf.to_container(cfg.get("ablations") or {}, resolve=True)
    if ablation not in table:
        raise KeyError(
            f"{task_name} has no ablation {ablation!r}; it has: {', '.join(table) or 'none'}"
        )
    return {name: [str(o) for o in overrides] for name, overrides in table[ablation].items()}


def run_ablation(
    task_name: str, ablation: str, overrides: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Run every variant of ``ablation`` (user overrides on top) and return their result rows."""
    from sleepbench.train import run

    base = [o for o in overrides if not o.startswith("ablation=")]
    rows: list[dict[str, Any]] = []
    for variant, variant_overrides in ablation_variants(task_name, ablation).items():
        tags = [f"ablation={ablation}", f"ablation_variant={variant}"]
        rows += [
            r
            for r in run(task_name, [*variant_overrides, *base, *tags])
            if r["model"] == get_spec(task_name).model
        ]
    return rows


def ablation_table(task_name: str, ablation: str, rows: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one line per variant (ours), the paper's value beside each metric."""
    spec = get_spec(task_name)
    metrics = spec.headline_metrics or (spec.primary_metric,)
    ref_file = task_folder(task_name) / "reference.yaml"
    paper = ((yaml.safe_load(ref_file.read_text()) or {}).get("ablations", {}) or {}).get(
        ablation, {}
    )
    header = ["variant", "data", *[f"{m} (ours / paper)" for m in metrics]]
    lines = [
        f"## {task_name}: ablation `{ablation}`",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        variant = row["config"].get("ablation_variant", "?")
        data = "SYNTHETIC" if row.get("data", {}).get("synthetic") else "real"
        cells = []
        for m in metrics:
            ours = row["metrics"].get(f"test/{m}")
            ref = (paper.get(variant) or {}).get(m)
            cells.append(f"{ours:.3f}" if ours is not None else "–")
            cells[-1] += f" / {ref:.3f}" if ref is not None else " / –"
        lines.append("| " + " | ".join([variant, data, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_ablation_table(
    task_name: str, ablation: str, rows: Sequence[dict[str, Any]], out_dir: Path
) -> Path:
    """Write ``<out_dir>/ablation-<task>-<ablation>.md`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"ablation-{task_name}-{ablation}.md"
    path.write_text(ablation_table(task_name, ablation, rows))
    return path
