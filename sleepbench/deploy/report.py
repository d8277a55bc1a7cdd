"""The night report: one self-contained HTML page drawn from a prediction's JSON alone.

Opened with no network (inline CSS, script and SVG; nothing fetched), it shows, top to bottom:
a warning when the model was trained on synthetic data; the night summary with each number's
definition and the reference's value beside it; the agreement with the reference; the timeline
(signal overviews, hypnograms, events and per-unit probabilities on one time axis, see
:mod:`sleepbench.deploy.timeline_svg`); what the model cannot tell; the per-unit table (folded,
sortable); the recording and the model with its checkpoint hash. Every value from the result is
escaped. ``write_pdf`` prints the page to PDF with headless Chromium when one is installed.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sleepbench.deploy.timeline_svg import TIMELINE_CSS, timeline_html
from sleepbench.errors import UserError
from sleepbench.html_page import BASE_CSS, SORT_JS

__all__ = ["format_value", "render_report", "write_pdf"]

#: per-unit rows shown in the page's table (a night of 30-s epochs is ~1,000; frames are more)
MAX_UNIT_ROWS = 3000

_CSS = (
    BASE_CSS
    + """
.warning{border-left:6px solid #b3261e;background:#fff4f3;padding:.6rem .9rem;margin:1rem 0}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
.facts dt{font-weight:600}.facts dd{margin:0}
td.def{color:#555;font-size:.85rem;min-width:14rem}
td.value{font-weight:600}
.headline{font-size:1.25rem;margin:.3rem 0 1rem}
code{font-size:.85em;overflow-wrap:anywhere}
"""
    + TIMELINE_CSS
)


def format_value(value: Any) -> str:
    """A result value as text: numbers to 3 significant digits (integers whole), mappings as
    ``key value`` pairs, lists joined, ``None`` as "–", booleans as yes/no."""
    if value is None:
        return "\u2013"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, Mapping):
        return " · ".join(f"{k} {format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            return "; ".join(format_value(v) for v in value)
        return ", ".join(format_value(v) for v in value)
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(format_value(value))


def _summary_html(result: Mapping[str, Any]) -> str:
    """Summary numbers with the reference's value beside each and their definitions."""
    summary = result.get("summary") or {}
    reference = result.get("reference") or {}
    defs = result.get("definitions") or {}
    with_ref = bool(reference)
    head = "<th>measure</th><th>prediction</th>" + ("<th>reference</th>" if with_ref else "")
    rows = []
    for key, value in summary.items():
        ref = f"<td>{_esc(reference.get(key))}</td>" if with_ref else ""
        rows.append(
            f"<tr><th scope=row>{html.escape(key)}</th><td class=value>{_esc(value)}</td>{ref}"
            f"<td class=def>{html.escape(defs.get(key, ''))}</td></tr>"
        )
    table = (
        f'<div class="table-wrap"><table><thead><tr>{head}<th>definition</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    extra = [k for k in reference if k not in summary]
    if extra:
        table += "<h3>Reference</h3>" + _facts({k: reference[k] for k in extra}, defs)
    return table


def _facts(values: Mapping[str, Any], defs: Mapping[str, str] | None = None) -> str:
    defs = defs or {}
    items = []
    for key, value in values.items():
        title = f' title="{html.escape(defs[key])}"' if key in defs else ""
        items.append(f"<dt{title}>{html.escape(str(key))}</dt><dd>{_esc(value)}</dd>")
    return f'<dl class="facts">{"".join(items)}</dl>'


def _agreement_html(result: Mapping[str, Any]) -> str:
    agreement = result.get("agreement")
    if not agreement:
        return (
            "<p>No reference annotation was given, so there is nothing to compare with. Give "
            "the recording's scoring file with it to see the agreement.</p>"
        )
    defs = result.get("definitions") or {}
    plain = {k: v for k, v in agreement.items() if k != "confusion_matrix"}
    out = _facts(plain, defs)
    matrix = agreement.get("confusion_matrix")
    classes = result.get("classes")
    if isinstance(matrix, Mapping):  # {"classes", "rows", "columns", "counts"}
        classes = matrix.get("classes") or classes
        matrix = matrix.get("counts")
    if matrix:
        classes = classes or [str(i) for i in range(len(matrix))]
        head = "".join(f"<th class=num>{html.escape(str(c))}</th>" for c in classes)
        body = "".join(
            f"<tr><th scope=row>{html.escape(str(classes[i]))}</th>"
            + "".join(f"<td class=num>{_esc(v)}</td>" for v in row)
            + "</tr>"
            for i, row in enumerate(matrix)
        )
        out += (
            "<h3>Confusion matrix (rows: reference, columns: prediction)</h3>"
            f'<div class="table-wrap"><table><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
    return out


def _clock(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "\u2013"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _units_html(result: Mapping[str, Any]) -> str:
    """The per-unit table, folded; sortable; capped at :data:`MAX_UNIT_ROWS` rows."""
    units: Sequence[Mapping[str, Any]] = result.get("units") or []
    if not units:
        return ""
    has_ref = any("reference" in u for u in units)
    head = ["#", "onset", "duration (s)", "prediction", "probability"] + (
        ["reference"] if has_ref else []
    )
    header = "".join(
        f'<th class="{"num" if i in (0, 2, 4) else ""}"><button type=button>{h}</button></th>'
        for i, h in enumerate(head)
    )
    rows = []
    for unit in units[:MAX_UNIT_ROWS]:
        probs = unit.get("probabilities") or {}
        top = probs.get(unit.get("label")) if isinstance(probs, Mapping) else None
        onset = unit.get("onset_s")
        cells = [
            f"<td class=num>{_esc(unit.get('index'))}</td>",
            f'<td data-sort="{html.escape(str(onset))}">{_clock(onset)}</td>',
            f"<td class=num>{_esc(unit.get('duration_s'))}</td>",
            f"<td>{_esc(unit.get('label'))}</td>",
            f"<td class=num>{_esc(top)}</td>",
        ]
        if has_ref:
            cells.append(f"<td>{_esc(unit.get('reference'))}</td>")
        rows.append(f"<tbody><tr>{''.join(cells)}</tr></tbody>")
    more = (
        f"<p>First {MAX_UNIT_ROWS:,} of {len(units):,} {html.escape(result.get('unit', 'unit'))}s"
        " shown; the JSON holds all.</p>"
        if len(units) > MAX_UNIT_ROWS
        else ""
    )
    return (
        f"<details><summary>{len(units):,} \u00d7 {html.escape(str(result.get('unit', 'unit')))}"
        " (click a header to sort)</summary>"
        f'<div class="table-wrap"><table id="units"><thead><tr>{header}</tr></thead>'
        f"{''.join(rows)}</table></div>{more}</details>"
    )


def _recording_html(result: Mapping[str, Any]) -> str:
    rec = dict(result.get("recording") or {})
    channels = rec.pop("channels", None) or []
    facts = _facts(rec)
    if channels:
        items = "".join(
            f"<li>{html.escape(str(c.get('name', '')))}: {_esc(c.get('fs_hz'))} Hz"
            + (f", {html.escape(str(c['unit']))}" if c.get("unit") else "")
            + "</li>"
            for c in channels
        )
        facts += f"<p>Channels used:</p><ul>{items}</ul>"
    return facts


def render_report(result: Mapping[str, Any]) -> str:
    """The night report of a prediction (:func:`sleepbench.deploy.predict.predict_files`).

    Args:
        result: the prediction JSON (``schema`` 1).

    Returns:
        One HTML document (UTF-8 text) that needs no other file and no network.
    """
    model = result.get("model") or {}
    rec = result.get("recording") or {}
    record = html.escape(str(rec.get("record_id", "")))
    task = html.escape(str(result.get("task", "")))
    summary = result.get("summary") or {}
    headline = summary.get("prediction", summary.get("severity"))
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{record} \u2013 sleepbench {task} night report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{record}: {task} night report</h1>",
        f"<p>{html.escape(str(model.get('name', '')))} \u00b7 written "
        f"{html.escape(str(result.get('created', '')))} by sleepbench "
        f"{html.escape(str(result.get('sleepbench', '')))}</p>",
    ]
    if model.get("trained_on_synthetic_data"):
        parts.append(
            '<p class="warning"><span class="badge synthetic">SYNTHETIC</span> This model was '
            "trained on synthetic data. Its output shows that the pipeline runs; it is not a "
            "finding about this person.</p>"
        )
    if headline is not None:
        parts.append(f'<p class="headline">Prediction: <strong>{_esc(headline)}</strong></p>')
    parts += [
        "</header><main>",
        '<section id="summary"><h2>Night summary</h2>',
        _summary_html(result),
        "</section>",
        '<section id="agreement"><h2>Agreement with the reference</h2>',
        _agreement_html(result),
        "</section>",
        '<section id="timeline"><h2>Timeline</h2>',
        timeline_html(result.get("timeline") or [], rec.get("duration_s")),
        "</section>",
        '<section id="limits"><h2>What the model cannot tell</h2><ul>',
        "".join(f"<li>{html.escape(str(t))}</li>" for t in result.get("limitations") or []),
        "</ul></section>",
        f'<section id="units-section"><h2>Per {html.escape(str(result.get("unit", "unit")))}</h2>',
        _units_html(result),
        "</section>",
        '<section id="recording"><h2>Recording</h2>',
        _recording_html(result),
        "</section>",
        '<section id="model"><h2>Model</h2>',
        _facts(model),
        "</section>",
        f"</main><script>{SORT_JS}</script></body></html>\n",
    ]
    return "\n".join(parts)


def write_pdf(html_path: str | Path, pdf_path: str | Path | None = None) -> Path:
    """Print a report page to PDF with headless Chromium (Debian package ``chromium``).

    Returns:
        The PDF's path (default: the page's with ``.pdf``).

    Raises:
        UserError: no Chromium on PATH, or it produced no PDF.
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise UserError("--pdf needs Chromium (Debian: apt-get install chromium)")
    html_path = Path(html_path).resolve()
    pdf_path = Path(pdf_path) if pdf_path else html_path.with_suffix(".pdf")
    with tempfile.TemporaryDirectory(prefix="sleepbench-pdf-") as profile:
        subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf_path.resolve()}",
                html_path.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    if not pdf_path.is_file() or pdf_path.stat().st_size == 0:
        raise UserError(f"chromium wrote no PDF for {html_path}")
    return pdf_path
