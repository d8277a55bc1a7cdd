"""The night report's timeline: every track of a prediction on one time axis, as inline SVG.

Each track (see :mod:`sleepbench.deploy.predict` for the kinds) is a ``<figure data-chart>``
holding its title, its y labels in HTML and one SVG whose x axis is the recording's time, 1000
user units wide, stretched to the page's width (``preserveAspectRatio="none"``; strokes keep
their width through ``vector-effect``). Text stays HTML so it never stretches and wraps on a
phone. One axis row of clock times closes the timeline. Colours of event labels come from a fixed
palette in order of first appearance, with a legend per track.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["TIMELINE_CSS", "nice_ticks", "timeline_html"]

#: width of the SVG's x axis in user units
WIDTH = 1000.0
#: track heights in CSS px by kind
HEIGHTS = {"signal": 70, "stages": 110, "events": 26, "series": 60}
PALETTE = ("#c2410c", "#1d4ed8", "#15803d", "#7e22ce", "#b45309", "#0f766e", "#be185d", "#4d7c0f")
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800)

TIMELINE_CSS = """
.timeline{margin:1rem 0}
figure.track{margin:0 0 .7rem}
figure.track figcaption{font-size:.85rem;color:#333;margin-bottom:.15rem}
.plot{display:grid;grid-template-columns:3.4rem minmax(0,1fr)}
.ylab{position:relative;font-size:.68rem;color:#555}
.ylab span{position:absolute;right:.35rem;transform:translateY(-50%);white-space:nowrap}
.plot svg{display:block;width:100%;background:#fafafa;border:1px solid #e3e3e3}
.axis{position:relative;height:1.3rem;margin-left:3.4rem;font-size:.7rem;color:#555}
.axis span{position:absolute;top:.1rem;transform:translateX(-50%);white-space:nowrap}
ul.legend{display:flex;flex-wrap:wrap;gap:.1rem 1rem;margin:.2rem 0 0 3.4rem;padding:0;
 list-style:none;font-size:.75rem}
ul.legend i{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-.05em}
"""


def nice_ticks(duration_s: float, target: int = 8) -> list[float]:
    """Tick times (s) from 0 at a round step giving about ``target`` ticks, all before the end
    (a label at the very end would stick out past the page)."""
    if not duration_s or duration_s <= 0:
        return [0.0]
    step = next((s for s in _STEPS_S if duration_s / s <= target), _STEPS_S[-1])
    return [
        i * step for i in range(int(math.ceil(duration_s / step))) if i * step < 0.96 * duration_s
    ]


def clock(t_s: float, duration_s: float) -> str:
    """``h:mm`` for nights, ``m:ss`` for minutes, ``N s`` for clips."""
    t = int(round(t_s))
    if duration_s >= 3600:
        return f"{t // 3600}:{t // 60 % 60:02d}"
    if duration_s >= 120:
        return f"{t // 60}:{t % 60:02d}"
    return f"{t_s:g} s"


def _x(t_s: float, duration_s: float) -> float:
    return round(WIDTH * min(max(t_s, 0.0), duration_s) / duration_s, 2)


def _svg(kind: str, name: str, body: str, height: int) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH:g} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{html.escape(name)}" style="height:{height}px">{body}</svg>'
    )


def _ylab(labels: Sequence[tuple[float, str]], height: int) -> str:
    spans = "".join(
        f'<span style="top:{100 * y / height:.1f}%">{html.escape(text)}</span>'
        for y, text in labels
    )
    return f'<div class="ylab" style="height:{height}px">{spans}</div>'


def _signal(track: Mapping[str, Any], duration_s: float) -> tuple[str, str, str]:
    """Min/max envelope as filled polygons (a gap where a bin has no value)."""
    h = HEIGHTS["signal"]
    low, high = track.get("low") or [], track.get("high") or []
    values = [v for v in list(low) + list(high) if v is not None]
    if not values:
        return _ylab([], h), _svg("signal", track.get("name", ""), "", h), ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return round(h - 3 - (h - 6) * (v - lo) / span, 2)

    t0, step = float(track.get("t0_s", 0.0)), float(track.get("step_s", 1.0))
    polys, run = [], []
    for i, (a, b) in enumerate(zip(low, high, strict=False)):
        if a is None or b is None:
            if run:
                polys.append(run)
            run = []
            continue
        run.append((_x(t0 + i * step, duration_s), _x(t0 + (i + 1) * step, duration_s), y(a), y(b)))
    if run:
        polys.append(run)
    body = ""
    for poly in polys:
        top = " ".join(f"{x0},{yb} {x1},{yb}" for x0, x1, _, yb in poly)
        bottom = " ".join(f"{x1},{ya} {x0},{ya}" for x0, x1, ya, _ in reversed(poly))
        body += (
            f'<polygon points="{top} {bottom}" fill="#2563eb" fill-opacity=".55" stroke="none"/>'
        )
    labels = [(3, f"{hi:.4g}"), (h - 3, f"{lo:.4g}")]
    return _ylab(labels, h), _svg("signal", track.get("name", ""), body, h), ""


def _stages(track: Mapping[str, Any], duration_s: float) -> tuple[str, str, str]:
    """A hypnogram: one step line over the ordered levels (unscored epochs leave a gap)."""
    h = HEIGHTS["stages"]
    order = [str(o) for o in track.get("order") or []]
    labels = track.get("labels") or []
    for lab in labels:
        if lab is not None and str(lab) not in order:
            order.append(str(lab))
    n = max(len(order), 1)
    level = {name: round((i + 0.5) * h / n, 2) for i, name in enumerate(order)}
    unit_s = float(track.get("unit_s", 30.0))
    t0 = float(track.get("t0_s", 0.0))
    path, prev = [], None
    for i, lab in enumerate(labels):
        if lab is None:
            prev = None
            continue
        y = level[str(lab)]
        x0, x1 = _x(t0 + i * unit_s, duration_s), _x(t0 + (i + 1) * unit_s, duration_s)
        path.append(f"{'L' if prev is not None else 'M'}{x0},{y}H{x1}")
        prev = y
    body = (
        f'<path d="{"".join(path)}" fill="none" stroke="#1d1d1f" stroke-width="1.5" '
        'vector-effect="non-scaling-stroke"/>'
        if path
        else ""
    )
    return (
        _ylab([(level[o], o) for o in order], h),
        _svg("stages", track.get("name", ""), body, h),
        "",
    )


def _events(track: Mapping[str, Any], duration_s: float) -> tuple[str, str, str]:
    """Events as bars (at least one pixel-ish wide) coloured by label, with a legend."""
    h = HEIGHTS["events"]
    colours: dict[str, str] = {}
    counts: dict[str, int] = {}
    body = []
    for e in track.get("events") or []:
        label = str(e.get("label", ""))
        colour = colours.setdefault(label, PALETTE[len(colours) % len(PALETTE)])
        counts[label] = counts.get(label, 0) + 1
        x0 = _x(float(e.get("onset_s", 0.0)), duration_s)
        x1 = _x(float(e.get("onset_s", 0.0)) + float(e.get("duration_s", 0.0)), duration_s)
        body.append(
            f'<rect x="{x0}" y="3" width="{max(x1 - x0, 1.0):.2f}" height="{h - 6}" '
            f'fill="{colour}"><title>{html.escape(label)}</title></rect>'
        )
    legend = "".join(
        f'<li><i style="background:{c}"></i>{html.escape(lab)} ({counts[lab]})</li>'
        for lab, c in colours.items()
    )
    legend_html = (
        f'<ul class="legend">{legend}</ul>' if legend else '<ul class="legend"><li>none</li></ul>'
    )
    return _ylab([], h), _svg("events", track.get("name", ""), "".join(body), h), legend_html


def _series(track: Mapping[str, Any], duration_s: float) -> tuple[str, str, str]:
    """Per-unit values as a step line within ``range``."""
    h = HEIGHTS["series"]
    values = track.get("values") or []
    finite = [v for v in values if v is not None]
    lo, hi = track.get("range") or [min(finite, default=0.0), max(finite, default=1.0)]
    span = (hi - lo) or 1.0
    unit_s = float(track.get("unit_s", 1.0))
    t0 = float(track.get("t0_s", 0.0))
    path, prev = [], None
    for i, v in enumerate(values):
        if v is None:
            prev = None
            continue
        y = round(h - 3 - (h - 6) * (min(max(v, lo), hi) - lo) / span, 2)
        x0, x1 = _x(t0 + i * unit_s, duration_s), _x(t0 + (i + 1) * unit_s, duration_s)
        path.append(f"{'L' if prev is not None else 'M'}{x0},{y}H{x1}")
        prev = y
    body = (
        f'<path d="{"".join(path)}" fill="none" stroke="#7e22ce" stroke-width="1.5" '
        'vector-effect="non-scaling-stroke"/>'
        if path
        else ""
    )
    labels = [(3, f"{hi:.3g}"), (h - 3, f"{lo:.3g}")]
    return _ylab(labels, h), _svg("series", track.get("name", ""), body, h), ""


_DRAW = {"signal": _signal, "stages": _stages, "events": _events, "series": _series}


def _extent(tracks: Sequence[Mapping[str, Any]]) -> float:
    """The latest time any track reaches (s), for results without a recording duration."""
    end = 0.0
    for t in tracks:
        kind = t.get("kind")
        if kind == "signal":
            end = max(
                end, float(t.get("t0_s", 0)) + float(t.get("step_s", 0)) * len(t.get("low") or [])
            )
        elif kind in ("stages", "series"):
            n = len(t.get("labels") or t.get("values") or [])
            end = max(end, float(t.get("t0_s", 0)) + float(t.get("unit_s", 0)) * n)
        elif kind == "events":
            for e in t.get("events") or []:
                end = max(end, float(e.get("onset_s", 0)) + float(e.get("duration_s", 0)))
    return end


def timeline_html(tracks: Sequence[Mapping[str, Any]], duration_s: float | None = None) -> str:
    """The timeline of a prediction's tracks.

    Args:
        tracks: the result's ``timeline`` (kinds ``signal``, ``stages``, ``events``, ``series``;
            an unknown kind is listed by name, not drawn).
        duration_s: length of the time axis in seconds (default: the latest time of any track).

    Returns:
        HTML: one ``<figure class="track" data-chart>`` per track and the time axis.
    """
    if not tracks:
        return "<p>No timeline for this task.</p>"
    duration = float(duration_s or 0.0) or _extent(tracks) or 1.0
    parts = ['<div class="timeline">']
    for track in tracks:
        kind = str(track.get("kind", ""))
        name = html.escape(str(track.get("name", kind)))
        draw = _DRAW.get(kind)
        if draw is None:
            parts.append(f"<p>{name}: a track of kind {html.escape(kind)} is not drawn.</p>")
            continue
        ylab, svg, legend = draw(track, duration)
        parts.append(
            f'<figure class="track" data-chart data-kind="{html.escape(kind)}">'
            f'<figcaption>{name}</figcaption><div class="plot">{ylab}{svg}</div>{legend}</figure>'
        )
    ticks = "".join(
        f'<span style="left:{100 * t / duration:.2f}%">{html.escape(clock(t, duration))}</span>'
        for t in nice_ticks(duration)
    )
    unit = "h:mm" if duration >= 3600 else ("m:ss" if duration >= 120 else "s")
    parts.append(f'<div class="axis" aria-label="time from the start ({unit})">{ticks}</div></div>')
    return "".join(parts)
