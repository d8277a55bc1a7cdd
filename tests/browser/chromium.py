"""Check an HTML page in a real browser: headless Chromium, no driver or extra package.

:func:`page_checks` loads the page in an ``<iframe>`` of the wanted width inside a small harness
page, lets the page settle, reads what the browser laid out (widths, chart boxes, a table's rows
before and after clicks on a header) and prints it into the harness, which ``--dump-dom`` hands
back. The iframe is what makes narrow widths possible: headless Chromium will not make its window
narrower than 500 px, but an iframe's viewport is exactly as wide as the iframe (media queries
and all). ``--allow-file-access-from-files`` lets the harness read the framed ``file:`` page.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "SLEEPBENCH_REQUIRE_BROWSER"
_MIN_WINDOW = 500  # headless Chromium's narrowest window

_HARNESS = """<!doctype html>
<html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" src="{src}" style="display:block;border:0;width:{width}px;height:{height}px">
</iframe>
<pre id="selftest" style="position:absolute;left:0;top:0;visibility:hidden"></pre>
<script>
var OPTS = {opts};
function describe(el) {{
  return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.split(" ")[0] : "");
}}
function snapshot(table) {{
  var rows = [];
  Array.prototype.forEach.call(table.tBodies, function (tb, group) {{
    Array.prototype.forEach.call(tb.rows, function (tr) {{
      rows.push({{group: group, cells: Array.prototype.map.call(tr.cells, function (c) {{
        return c.textContent.trim();
      }})}});
    }});
  }});
  return rows;
}}
function checks(w, d) {{
  var root = d.documentElement, out = {{
    innerWidth: w.innerWidth, clientWidth: root.clientWidth, scrollWidth: root.scrollWidth,
    overflowing: [], charts: [], sorts: []
  }};
  // what sticks out past the viewport outside any box that scrolls or clips it (diagnostics)
  var all = d.body.querySelectorAll("*");
  for (var i = 0; i < all.length && out.overflowing.length < 10; i++) {{
    var el = all[i], r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= root.clientWidth + 0.5) continue;
    var clipped = false;
    for (var p = el.parentElement; p && p !== d.body; p = p.parentElement) {{
      if (w.getComputedStyle(p).overflowX !== "visible") {{ clipped = true; break; }}
    }}
    if (!clipped) out.overflowing.push(describe(el) + " right=" + Math.round(r.right));
  }}
  d.querySelectorAll(OPTS.charts).forEach(function (el) {{
    var r = el.getBoundingClientRect(), img = el.tagName === "IMG";
    out.charts.push({{tag: el.tagName.toLowerCase(), width: r.width, height: r.height,
                     naturalWidth: img ? el.naturalWidth : null}});
  }});
  OPTS.sorts.forEach(function (selector) {{
    var button = d.querySelector(selector);
    if (!button) {{ out.sorts.push({{selector: selector, found: false}}); return; }}
    var table = button.closest("table"), res = {{selector: selector, found: true,
      column: button.closest("th").cellIndex, before: snapshot(table)}};
    button.click();
    res.once = snapshot(table);
    button.click();
    res.twice = snapshot(table);
    out.sorts.push(res);
  }});
  return out;
}}
window.addEventListener("load", function () {{
  var out;
  try {{
    var frame = document.getElementById("page");
    out = checks(frame.contentWindow, frame.contentDocument);
  }} catch (err) {{
    out = {{error: String(err)}};
  }}
  document.getElementById("selftest").textContent = JSON.stringify(out);
}});
</script></body></html>
"""


def chromium_binary() -> str | None:
    """Path of the Chromium executable (Debian's ``chromium``), or ``None`` when absent."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    """The Chromium executable; skips the test without one, or fails it when
    ``SLEEPBENCH_REQUIRE_BROWSER=1`` (as in CI, which installs it)."""
    found = chromium_binary()
    if found is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but no chromium executable is on PATH")
        pytest.skip("chromium not installed (Debian package 'chromium'); browser checks skipped")
    return found


def page_checks(
    html_path: Path,
    width: int,
    *,
    height: int = 900,
    sort_headers: Sequence[str] = (),
    chart_selector: str = "[data-chart]",
    chromium: str | None = None,
    timeout_s: float = 90.0,
) -> dict[str, Any]:
    """Open ``html_path`` in headless Chromium at a viewport ``width`` px wide and measure it.

    Args:
        html_path: the page (a file; its relative links and images resolve as usual).
        width, height: the viewport in CSS px (any width, also below Chromium's 500 px window).
        sort_headers: CSS selectors of header buttons; each is clicked twice.
        chart_selector: CSS selector of the page's charts.
        chromium: the executable (default: :func:`chromium_binary`).
        timeout_s: limit for the browser run.

    Returns:
        ``innerWidth``, ``clientWidth``, ``scrollWidth`` of the page's viewport; ``overflowing``:
        up to 10 elements past the viewport's right edge and in no scrolling box;
        ``charts``: per chart ``tag``, laid-out ``width``/``height``, ``naturalWidth`` (images);
        ``sorts``: per selector ``found``, the header's ``column`` and the table's rows
        (``{"group": tbody index, "cells": [text, ...]}``) ``before``, after ``once`` and
        ``twice`` clicked.

    Raises:
        RuntimeError: when the browser fails or the harness reports no result.
    """
    exe = chromium or chromium_binary()
    if exe is None:
        raise RuntimeError("no chromium executable")
    opts = json.dumps({"charts": chart_selector, "sorts": list(sort_headers)})
    with tempfile.TemporaryDirectory(prefix="sleepbench-browser-") as tmp:
        harness = Path(tmp) / "harness.html"
        harness.write_text(
            _HARNESS.format(
                src=html.escape(Path(html_path).resolve().as_uri()),
                width=int(width),
                height=int(height),
                opts=opts.replace("</", "<\\/"),  # a selector cannot end the script early
            )
        )
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",  # CI runs as root in a container
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--allow-file-access-from-files",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={max(int(width), _MIN_WINDOW) + 40},{int(height) + 40}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            harness.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    found = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', proc.stdout, re.DOTALL)
    if proc.returncode != 0 or found is None or not found.group(1).strip():
        raise RuntimeError(
            f"chromium gave no result (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    result = json.loads(html.unescape(found.group(1)))
    if "error" in result:
        raise RuntimeError(f"the page checks failed in the browser: {result['error']}")
    return result
