"""The leaderboard as one self-contained HTML page people read.

The page needs nothing but itself (no CDN, no file beside it): its CSS and script are inline and
each task's chart (the PNG :func:`sleepbench.leaderboard.plot_task` draws) is embedded as a
``data:`` URI. It holds the overview table first, then one section per task with its chart and
table. Every column sorts on a click (numbers as numbers; a second click reverses) and a group of
our runs moves together with the paper's line beside it. Rows that ran on synthetic data carry a
badge, long tags fold into ``<details>``, and each line of ours links to its runs' folders and
figures when they exist. Nothing is wider than the screen: a table scrolls inside its own box.
"""

from __future__ import annotations

import base64
import html
import os
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sleepbench.html_page import BASE_CSS, SORT_JS
from sleepbench.leaderboard import Line, Table
from sleepbench.registry import get_task

_FOLD_AT = 40  # a tags or note cell longer than this folds into <details>
# a cell that starts with a number ("0.850 ± 0.012", "0.764 (parity protocol)"), as the page's
# script reads numbers when sorting
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?(\s|$)", re.IGNORECASE)

# the leaderboard's own rows and cells (the base style is sleepbench.html_page.BASE_CSS)
_CSS = (
    BASE_CSS
    + """
td.name{min-width:9rem}
td.tags{min-width:14rem}
td.files{min-width:10rem}
tr.paper td,tr.other td{background:#fbf8f1;color:#4a4a4a}
tr.paper td:first-child{border-left:4px solid #8a5a00;font-weight:600}
tr.other td:first-child{border-left:4px solid #5f6368;font-weight:600}
tr.synthetic td{background:#fff4f3}
.edge{display:inline-block;width:.3rem;height:.9em;vertical-align:-.1em;background:#8a5a00}
.edge.other{background:#5f6368}
ul.files{margin:.3rem 0 0;padding-left:1.1rem}
figure.chart{margin:1rem 0}
figure.chart img{display:block;max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555}
"""
)


def write_page(board: Sequence[Table], charts: Mapping[str, Path], out: Path) -> Path:
    """Write the leaderboard page to ``out``.

    Args:
        board: the tables of :func:`sleepbench.leaderboard.build_board` (overview first).
        charts: task -> its chart PNG, embedded in the task's section.
        out: the ``.html`` file; links to run folders are relative to its folder.

    Returns:
        ``out``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page_html(board, charts, out.parent), encoding="utf-8")
    return out


def page_html(board: Sequence[Table], charts: Mapping[str, Path], base: Path) -> str:
    """The page's HTML text.

    Args:
        board: the tables of :func:`sleepbench.leaderboard.build_board` (overview first).
        charts: task -> its chart PNG (a task without one gets no chart).
        base: the folder the page will be in; run folder links are relative to it.

    Returns:
        One HTML document; every value taken from the results is escaped.
    """
    overview, tasks = board[0], list(board[1:])
    nav = "".join(
        f'<li><a href="#{_anchor(t.title)}">{html.escape(t.title)}</a></li>' for t in tasks
    )
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>sleepbench leaderboard</title><style>{_CSS}</style></head><body>",
        "<header><h1>sleepbench leaderboard</h1>",
        "<p>Mean ± std over folds and seeds. Rows marked "
        '<span class="badge synthetic">SYNTHETIC</span> ran on generated data and say nothing '
        'about real-data performance. Paper rows (<span class="edge"></span> brown edge) give '
        "the published numbers and the protocol they were measured under, beside our runs of "
        'the same model; other-method rows (<span class="edge other"></span> grey edge) give '
        "other published methods on a protocol we ran. Click a column header to sort by it; "
        "click again to reverse.</p>",
        f"<nav><ul>{nav}</ul></nav></header><main>",
        '<section id="overview"><h2>Overview</h2>',
        _table_html(overview, base, task_links=True),
        "</section>",
    ]
    for table in tasks:
        parts.append(f'<section id="{_anchor(table.title)}"><h2>{html.escape(table.title)}</h2>')
        if table.title in charts:
            parts.append(_chart_html(table, charts[table.title]))
        parts += [_table_html(table, base, task_links=False), "</section>"]
    parts.append(f"</main><script>{SORT_JS}</script></body></html>\n")
    return "\n".join(parts)


def run_folder(row: Mapping[str, Any]) -> Path | None:
    """The folder a result row's run wrote (``runs_dir/task/protocol/fold{f}-seed{s}-{hash}``).

    A relative ``config.output.runs_dir`` is taken from the working directory, as the run took
    it. Returns ``None`` when the row does not say where its run went or the folder is gone.
    """
    config = row.get("config")
    output = config.get("output") if isinstance(config, Mapping) else None
    parts = [row.get(k) for k in ("task", "protocol", "fold", "seed", "config_hash")]
    if not isinstance(output, Mapping) or not output.get("runs_dir") or None in parts:
        return None  # a hand-written or older row: no link rather than a wrong one
    task, protocol, fold, seed, chash = (str(p) for p in parts)
    folder = Path(str(output["runs_dir"])) / task / protocol / f"fold{fold}-seed{seed}-{chash}"
    folder = folder if folder.is_absolute() else Path.cwd() / folder
    return folder if folder.is_dir() else None


def run_figures(row: Mapping[str, Any], folder: Path) -> list[Path]:
    """The figures (PNG) of ``row``'s run in its run ``folder``.

    The task's own model writes its figures in the folder itself; a peer baseline scored in the
    same run (YASA, a time-branch-only peer) writes them in a subfolder of its own.
    """
    try:
        own = row.get("model") == get_task(str(row.get("task"))).spec.model
    except KeyError:
        own = True
    return sorted(folder.glob("*.png" if own else "*/*.png"))


def _anchor(task: str) -> str:
    return "task-" + re.sub(r"[^A-Za-z0-9_-]+", "-", task)


def _href(path: Path, base: Path) -> str:
    """A link to ``path``: relative to ``base`` when it can be, else a ``file:`` URI."""
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive (Windows): no relative path exists
        return path.resolve().as_uri()
    return quote(Path(rel).as_posix())


def _chart_html(table: Table, png: Path) -> str:
    data = png.read_bytes()
    # the PNG's own size as width/height: the browser reserves the box before decoding
    width, height = struct.unpack(">II", data[16:24])
    primary = table.header[5] if len(table.header) > 5 else "primary metric"
    alt = f"Bar chart of {primary} for {table.title}: our runs and the published numbers"
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure class="chart"><img data-chart src="{src}" width="{width}" height="{height}" '
        f'alt="{html.escape(alt)}"><figcaption>{html.escape(primary)}: blue bars are our runs '
        "(mean ± std over folds and seeds), orange bars the published numbers, each labelled "
        "with its protocol.</figcaption></figure>"
    )


def _table_html(table: Table, base: Path, task_links: bool) -> str:
    """A table, one ``<tbody>`` per group (a line of ours with its paper line), scrolling
    inside its own box; a per-task table gets a column of links to run files after "runs"."""
    header = table.header
    columns = [[str(line.cells[i]) for line in table.lines] for i in range(len(header))]
    numeric = [
        any(_NUMBER.match(c) for c in col) and all(_NUMBER.match(c) or c == "–" for c in col)
        for col in columns
    ]
    at = header.index("runs") + 1 if "runs" in header else len(header)
    heads = list(zip(header, numeric))
    if not task_links:
        heads.insert(at, ("files", False))
    head = "".join(
        f'<th scope="col" class="{"num" if num else "text"}">'
        f'<button type="button">{html.escape(h)}</button></th>'
        for h, num in heads
    )
    groups: list[list[str]] = []
    for line in table.lines:
        cells = [
            _cell_html(h, str(c), line, task_links, num)
            for h, c, num in zip(header, line.cells, numeric)
        ]
        if not task_links:
            cells.insert(at, _files_html(line, base))
        kind = f"{line.kind} synthetic" if line.synthetic else line.kind
        row = f'<tr class="{kind}">{"".join(cells)}</tr>'
        if line.kind == "paper" and groups:
            groups[-1].append(row)  # beside the line of ours it belongs to, also once sorted
        else:
            groups.append([row])
    body = "".join(f"<tbody>{''.join(g)}</tbody>" for g in groups)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>{body}</table></div>'


def _cell_html(header: str, text: str, line: Line, task_links: bool, numeric: bool) -> str:
    esc = html.escape(text)
    if task_links and header == "task":
        return f'<td><a href="#{_anchor(text)}">{esc}</a></td>'
    if header == "data" and line.synthetic:
        return f'<td><span class="badge synthetic">{esc}</span></td>'
    if header == "model":
        return f'<td class="name">{esc}</td>'
    if header == "tags" and len(text) > _FOLD_AT:
        short = html.escape(text[:_FOLD_AT].rstrip(", ") + "…")
        return (
            f'<td class="tags" data-sort="{esc}"><details><summary>{short}</summary>'
            f"{esc}</details></td>"
        )
    return f'<td class="num">{esc}</td>' if numeric else f"<td>{esc}</td>"


def _files_html(line: Line, base: Path) -> str:
    """Links to the run folders of ``line`` and their figures, folded; ``–`` when none exists."""
    items = []
    for row in line.runs:
        folder = run_folder(row)
        if folder is None:
            continue
        figures = ", ".join(
            f'<a href="{html.escape(_href(f, base))}">{html.escape(f.stem)}</a>'
            for f in run_figures(row, folder)
        )
        name = f"fold {row.get('fold')} · seed {row.get('seed')}"
        items.append(
            f'<li><a href="{html.escape(_href(folder, base))}/">{html.escape(name)}</a>'
            + (f": {figures}" if figures else "")
            + "</li>"
        )
    if not items:
        return "<td>–</td>"
    noun = "run folder" if len(items) == 1 else "run folders"
    return (
        f'<td class="files" data-sort="{len(items)}">'
        f"<details><summary>{len(items)} {noun}</summary>"
        f'<ul class="files">{"".join(items)}</ul></details></td>'
    )
