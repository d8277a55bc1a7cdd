"""The leaderboard: a view over the results store, with the papers' numbers beside ours.

One table across tasks (headline metric per task, mean ± std over folds and seeds), then one table
per task with all its headline metrics, each model/protocol row followed by the paper's row for
comparison and by the published numbers of other methods on the same protocol (``other_methods`` in
the task's ``reference.yaml``). Written as Markdown, as one bar chart per task, and as a
self-contained HTML page with those charts inline (:mod:`sleepbench.leaderboard_page`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sleepbench.registry import get_task
from sleepbench.results import ResultsStore

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, ``None`` for anything else (missing, NaN, text)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(values: Sequence[Any]) -> str:
    vals = [v for v in map(_number, values) if v is not None]
    if not vals:
        return "–"
    mean = float(np.mean(vals))
    if len(vals) == 1:
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {float(np.std(vals, ddof=1)):.3f}"


def _row_problem(row: Any) -> str | None:
    """Why ``row`` cannot be shown on the leaderboard, or ``None`` when it can."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for name in ("key", "task", "model", "protocol"):
        if not isinstance(row.get(name), (str, int)):
            return f"no usable {name!r}"
    if not isinstance(row.get("metrics"), dict):
        return "no 'metrics' object"
    for name in ("protocol_tags", "data", "reference"):
        if not isinstance(row.get(name) or {}, dict):
            return f"{name!r} is not an object"
    return None


def _group_rows(rows: Iterable[dict[str, Any]]) -> dict[tuple, list[dict[str, Any]]]:
    """Group result rows by (task, model, protocol, synthetic, tags); the latest row per run key wins.

    A row that lacks what a table needs (hand-edited, written by an older version) is logged
    and left out, so one bad row never takes the leaderboard down.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        problem = _row_problem(row)
        if problem is not None:
            log.warning("leaderboard: result row left out (%s): %.120s", problem, row)
            continue
        latest[str(row["key"])] = row
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in latest.values():
        tags = row.get("protocol_tags") or {}
        tag_str = ", ".join(
            f"{k}={v}" for k, v in sorted(tags.items()) if v not in (None, False, "")
        )
        synthetic = bool((row.get("data") or {}).get("synthetic"))
        groups[(row["task"], row["model"], row["protocol"], synthetic, tag_str)].append(row)
    return groups


def _metric_columns(task: str) -> tuple[str, ...]:
    try:
        spec = get_task(task).spec
    except KeyError:
        return ()
    return spec.headline_metrics or (spec.primary_metric,)


def other_methods(task: str) -> list[dict[str, Any]]:
    """Published numbers of *other* methods for ``task`` (``other_methods`` entries of its
    ``reference.yaml`` that carry a ``metrics`` mapping and a ``protocol``)."""
    try:
        path = get_task(task).folder / "reference.yaml"
    except KeyError:
        return []
    entries = (yaml.safe_load(path.read_text()) or {}).get("other_methods") or []
    return [
        e
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("metrics"), dict) and e.get("protocol")
    ]


def _other_method_rows(task: str, protocols: set[str], cols: Sequence[str]) -> list[list[str]]:
    """Table lines of the other methods published on protocols the results store holds."""
    lines = []
    for entry in other_methods(task):
        if entry["protocol"] not in protocols:
            continue
        lines.append(
            [
                f"other method: {entry.get('method', '?')}",
                entry["protocol"],
                entry.get("note") or "–",
            ]
            + ["real", "–"]
            + [_fmt([entry["metrics"].get(c)]) for c in cols]
        )
    return lines


@dataclass(frozen=True)
class Line:
    """One line of a leaderboard table.

    Args:
        cells: the rendered cells, as wide as the table's header.
        kind: ``"ours"`` (a group of our runs), ``"paper"`` (the paper's numbers for the group
            above it) or ``"other"`` (another method's published numbers).
        synthetic: the runs ran on generated data.
        runs: the result rows the line summarises (none for a published number).
    """

    cells: list[str]
    kind: str
    synthetic: bool = False
    runs: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Table:
    """A leaderboard table: ``title`` (``"All tasks"`` or a task name), ``header``, ``lines``."""

    title: str
    header: list[str]
    lines: list[Line]

    def as_tuple(self) -> tuple[str, list[str], list[list[str]]]:
        """``(title, header, rows of cells)``, the plain form :func:`to_markdown` renders."""
        return self.title, self.header, [line.cells for line in self.lines]


def build_board(rows: Iterable[dict[str, Any]]) -> list[Table]:
    """The leaderboard's tables from result rows: the cross-task overview, then one per task.

    In a task's table each group of our runs is followed by the paper's line for it (when the
    rows carry the paper's numbers), and the task's other methods published on a protocol we ran
    come last.
    """
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
    overview: list[Line] = []
    per_task: dict[str, list[Line]] = defaultdict(list)
    for (task, model, protocol, synthetic, tags), members in sorted(groups.items()):
        cols = _metric_columns(task)
        primary = cols[0] if cols else ""
        ref = members[-1].get("reference") or {}
        ref_metrics = ref.get("metrics", {})
        data = "SYNTHETIC" if synthetic else "real"
        runs = tuple(members)
        ours = _fmt([m["metrics"].get(f"test/{primary}") for m in members])
        paper = _fmt([ref_metrics.get(primary)])
        if paper != "–" and ref.get("protocol") != protocol:
            paper += f" ({ref.get('protocol')} protocol)"  # not like for like: say so
        cells = [task, model, protocol, data, str(len(members)), primary, ours, paper]
        overview.append(Line(cells, "ours", synthetic, runs))
        cells = [model, protocol, tags or "–", data, str(len(members))]
        cells += [_fmt([m["metrics"].get(f"test/{c}") for m in members]) for c in cols]
        per_task[task].append(Line(cells, "ours", synthetic, runs))
        if ref_metrics:
            src = f"paper ({ref.get('source', '?')})"
            note = ref.get("note", "")
            cells = [src, ref.get("protocol", "?"), note or "–", "real", "–"]
            per_task[task].append(Line(cells + [_fmt([ref_metrics.get(c)]) for c in cols], "paper"))
    protocols_of: dict[str, set[str]] = defaultdict(set)
    for task, _, protocol, _, _ in groups:
        protocols_of[task].add(protocol)
    for task, protocols in protocols_of.items():
        other = _other_method_rows(task, protocols, _metric_columns(task))
        per_task[task] += [Line(cells, "other") for cells in other]
    tables = [Table("All tasks", overview_header, overview)]
    for task in sorted(per_task):
        cols = list(_metric_columns(task))
        header = ["model", "protocol", "tags", "data", "runs", *cols]
        tables.append(Table(task, header, per_task[task]))
    return tables


def build_tables(rows: Iterable[dict[str, Any]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Tables as ``(title, header, rows)``: :func:`build_board` without the lines' metadata."""
    return [table.as_tuple() for table in build_board(rows)]


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


@dataclass(frozen=True)
class Bar:
    """One bar of a task's chart.

    Args:
        label: tick label (model and protocol; for a paper bar, the paper's protocol).
        value: mean of the primary metric.
        error: standard deviation over runs (0 for one run or a paper number).
        paper: the bar is a published number, not one of our runs.
    """

    label: str
    value: float
    error: float
    paper: bool


def chart_bars(task: str, rows: Iterable[dict[str, Any]]) -> list[Bar]:
    """The bars of ``task``'s chart: ours per model/protocol, then one per paper protocol.

    A paper bar always names its protocol; one measured under a protocol none of our bars ran
    says "other protocol", as the tables do, since it is not like for like.
    """
    cols = _metric_columns(task)
    if not cols:
        return []
    primary = cols[0]
    ours: list[Bar] = []
    ours_protocols: set[str] = set()
    refs: dict[str, float] = {}  # paper protocol -> its number
    for (t, model, protocol, synthetic, _), members in sorted(_group_rows(rows).items()):
        if t != task:
            continue
        vals = [_number(m["metrics"].get(f"test/{primary}")) for m in members]
        vals = [v for v in vals if v is not None]
        if not vals:
            continue
        label = f"{model}\n{protocol}{' (synthetic)' if synthetic else ''}"
        spread = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        ours.append(Bar(label, float(np.mean(vals)), spread, paper=False))
        ours_protocols.add(str(protocol))
        ref = members[-1].get("reference") or {}
        ref_value = _number((ref.get("metrics") or {}).get(primary))
        if ref_value is not None:
            refs[str(ref.get("protocol", "?"))] = ref_value
    if not ours:
        return []
    papers = [
        Bar(
            f"paper\n{p} protocol" + ("" if p in ours_protocols else "\n(other protocol)"),
            value,
            0.0,
            paper=True,
        )
        for p, value in sorted(refs.items())
    ]
    return ours + papers


def plot_task(task: str, rows: Iterable[dict[str, Any]], path: Path) -> Path | None:
    """Bar chart (PNG at ``path``) of a task's primary metric, ours against the papers'.

    Returns:
        ``path``, or ``None`` when the task has no run with its primary metric.
    """
    bars = chart_bars(task, rows)
    if not bars:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(bars), 3))
    ax.bar(
        range(len(bars)),
        [b.value for b in bars],
        yerr=[b.error for b in bars],
        color=["C1" if b.paper else "C0" for b in bars],
    )
    ax.set_xticks(range(len(bars)), [b.label for b in bars], fontsize=7)
    ax.set_ylabel(_metric_columns(task)[0])
    ax.set_title(task)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_leaderboard(results: Path, out_md: Path) -> Path:
    """Write ``out_md`` from the results store, with beside it one PNG chart per task and the
    ``.html`` page (:func:`sleepbench.leaderboard_page.write_page`) that inlines those charts.

    Returns:
        The Markdown path.
    """
    from sleepbench.leaderboard_page import write_page

    rows = list(ResultsStore(results))
    board = build_board(rows)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(to_markdown([table.as_tuple() for table in board]))
    charts: dict[str, Path] = {}
    for task in sorted({str(r["task"]) for r in rows if isinstance(r.get("task"), str)}):
        chart = plot_task(task, rows, out_md.with_name(f"{out_md.stem}-{task}.png"))
        if chart is not None:
            charts[task] = chart
    write_page(board, charts, out_md.with_suffix(".html"))
    return out_md
