"""The leaderboard: a view over the results store, with the papers' numbers beside ours.

One table across tasks (headline metric per task, mean ± std over folds and seeds), then one table
per task with all its headline metrics, each model/protocol row followed by the paper's row for
comparison. Written as Markdown and HTML, plus one bar chart per task.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.registry import get_task
from sleepbench.results import ResultsStore


def _fmt(values: Sequence[float]) -> str:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return "–"
    mean = float(np.mean(vals))
    if len(vals) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {float(np.std(vals, ddof=1)):.3f}"


def _group_rows(rows: Iterable[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Group result rows by (task, model, protocol, synthetic, tags); the latest row per run key wins."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["key"]] = row
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in latest.values():
        tags = row.get("protocol_tags", {})
        tag_str = ", ".join(
            f"{k}={v}" for k, v in sorted(tags.items()) if v not in (None, False, "")
        )
        synthetic = bool(row.get("data", {}).get("synthetic"))
        groups[(row["task"], row["model"], row["protocol"], synthetic, tag_str)].append(row)
    return groups


def _metric_columns(task: str) -> tuple[str, ...]:
    try:
        spec = get_task(task).spec
    except KeyError:
        return ()
    return spec.headline_metrics or (spec.primary_metric,)


def build_tables(rows: Iterable[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Tables as ``(title, header, rows)``: the cross-task overview, then one table per task."""
    groups = _group_rows(rows)
    overview_header = [
        "task",
        "model",
        "protocol",
        "data",
        "runs",
        "primary metric",
        "ours",
        "paper",
    ]
    overview: list[list[str]] = []
    per_task: dict[str, list[list[str]]] = defaultdict(list)
    for (task, model, protocol, synthetic, tags), members in sorted(groups.items()):
        cols = _metric_columns(task)
        primary = cols[0] if cols else ""
        ref = members[-1].get("reference") or {}
        ref_metrics = ref.get("metrics", {})
        data = "SYNTHETIC" if synthetic else "real"
        ours = _fmt([m["metrics"].get(f"test/{primary}") for m in members])
        paper = f"{ref_metrics[primary]:.3f}" if primary in ref_metrics else "–"
        if paper != "–" and ref.get("protocol") != protocol:
            paper += f" ({ref.get('protocol')} protocol)"  # not like for like: say so
        overview.append([task, model, protocol, data, str(len(members)), primary, ours, paper])
        line = [model, protocol, tags or "–", data, str(len(members))]
        line += [_fmt([m["metrics"].get(f"test/{c}") for m in members]) for c in cols]
        per_task[task].append(line)
        if ref_metrics:
            src = f"paper ({ref.get('source', '?')})"
            note = ref.get("note", "")
            per_task[task].append(
                [src, ref.get("protocol", "?"), note or "–", "real", "–"]
                + [f"{ref_metrics[c]:.3f}" if c in ref_metrics else "–" for c in cols]
            )
    tables = [("All tasks", overview_header, overview)]
    for task in sorted(per_task):
        cols = list(_metric_columns(task))
        tables.append((task, ["model", "protocol", "tags", "data", "runs", *cols], per_task[task]))
    return tables


def to_markdown(tables: list[tuple[str, list[str], list[list[str]]]]) -> str:
    """Render tables as Markdown."""
    out = [
        "# sleepbench leaderboard",
        "",
        "Mean ± std over folds and seeds. `SYNTHETIC` rows ran on generated data and say nothing "
        "about real-data performance. Paper rows give the published numbers and their protocol.",
    ]
    for title, header, rows in tables:
        out += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def to_html(tables: list[tuple[str, list[str], list[list[str]]]]) -> str:
    """Render tables as a standalone HTML page."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sleepbench leaderboard</title>",
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ccc}</style>",
        "</head><body><h1>sleepbench leaderboard</h1>",
    ]
    for title, header, rows in tables:
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>")
        parts += [f"<th>{html.escape(h)}</th>" for h in header]
        parts.append("</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def plot_task(task: str, rows: Iterable[dict[str, Any]], path: Path) -> Path | None:
    """Bar chart of a task's primary metric, ours (per model/protocol) against the paper."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = _metric_columns(task)
    if not cols:
        return None
    primary = cols[0]
    labels, values, errors = [], [], []
    ref_value = None
    for (t, model, protocol, synthetic, _), members in sorted(_group_rows(rows).items()):
        if t != task:
            continue
        vals = [m["metrics"].get(f"test/{primary}") for m in members]
        vals = [v for v in vals if v is not None]
        if not vals:
            continue
        labels.append(f"{model}\n{protocol}{' (synthetic)' if synthetic else ''}")
        values.append(float(np.mean(vals)))
        errors.append(float(np.std(vals)) if len(vals) > 1 else 0.0)
        ref_value = (members[-1].get("reference") or {}).get("metrics", {}).get(primary, ref_value)
    if not values:
        return None
    if ref_value is not None:
        labels.append("paper")
        values.append(float(ref_value))
        errors.append(0.0)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(values), 3))
    ax.bar(
        range(len(values)),
        values,
        yerr=errors,
        color=["C0"] * (len(values) - (ref_value is not None)) + ["C1"] * (ref_value is not None),
    )
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel(primary)
    ax.set_title(task)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_leaderboard(results: Path, out_md: Path) -> Path:
    """Write ``out_md`` (+ ``.html`` and one PNG per task beside it) from the results store.

    Returns:
        The Markdown path.
    """
    rows = list(ResultsStore(results))
    tables = build_tables(rows)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(to_markdown(tables))
    out_md.with_suffix(".html").write_text(to_html(tables))
    for task in {r["task"] for r in rows}:
        plot_task(task, rows, out_md.with_name(f"{out_md.stem}-{task}.png"))
    return out_md
