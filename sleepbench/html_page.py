"""What every HTML page sleepbench writes shares: the base style and the table-sorting script.

Pages (the leaderboard, the night report) are self-contained: this CSS and script go inline, no
CDN. Tables sort on a click of a header ``<th><button>``; rows sort by ``<tbody>`` group (one
group: a line and the rows that belong with it); a cell's ``data-sort`` attribute overrides its
text.
"""

from __future__ import annotations

__all__ = ["BASE_CSS", "SORT_JS"]

#: page, heading, link, table (scrolling in its own box), sortable header and badge styles
BASE_CSS = """
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0 auto;max-width:76rem;padding:1rem 1.25rem 3rem;color:#1d1d1f;background:#fff;
 font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",sans-serif;
 overflow-wrap:anywhere}
h1,h2{line-height:1.2}
h2{margin-top:2.5rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
a{color:#0a58ca}
nav ul{display:flex;flex-wrap:wrap;gap:.2rem 1.2rem;padding:0;list-style:none}
.table-wrap{max-width:100%;overflow-x:auto;border:1px solid #ddd;border-radius:4px}
table{border-collapse:collapse;width:100%;font-size:.9rem;overflow-wrap:normal}
th,td{padding:.35rem .6rem;text-align:left;vertical-align:top}
td{max-width:24rem;overflow-wrap:break-word}
thead th{background:#f3f4f6;border-bottom:2px solid #ccc}
tbody{border-top:1px solid #e3e3e3}
th.num,td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
th button{all:unset;cursor:pointer;font-weight:600;white-space:nowrap}
th button:focus-visible{outline:2px solid #0a58ca;outline-offset:2px}
th button::after{content:" \\2195";color:#999}
th[aria-sort=ascending] button::after{content:" \\25B2";color:inherit}
th[aria-sort=descending] button::after{content:" \\25BC";color:inherit}
.badge{display:inline-block;padding:0 .45em;border-radius:3px;font-size:.72rem;font-weight:700;
 letter-spacing:.03em}
.badge.synthetic{background:#b3261e;color:#fff}
details summary{cursor:pointer}
@media (max-width:600px){body{padding:.6rem .6rem 2rem;font-size:14px}th,td{padding:.3rem .4rem}}
"""

# Sorts a table's <tbody> groups (one group: a line of ours and the paper's line beside it) by
# the clicked column of each group's first row: numbers as numbers, text naturally, a missing
# value ("–") last in either direction; a second click on the same header reverses.
SORT_JS = """
(function () {
  "use strict";
  var NUM = /^[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?(?=\\s|$)/i;
  function key(tbody, col) {
    var cell = tbody.rows.length ? tbody.rows[0].cells[col] : null;
    if (!cell) return null;
    var text = (cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort")
                                               : cell.textContent).trim();
    if (text === "" || text === "\\u2013") return null;
    var m = text.match(NUM);
    return {num: m ? parseFloat(m[0]) : null, text: text};
  }
  function compare(a, b) {
    if (a.num !== null && b.num !== null) return a.num - b.num;
    if (a.num !== null || b.num !== null) return a.num !== null ? -1 : 1;
    return a.text.localeCompare(b.text, undefined, {numeric: true, sensitivity: "base"});
  }
  function sortBy(th) {
    var table = th.closest("table"), col = th.cellIndex;
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(th.parentNode.cells, function (c) {
      c.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var groups = Array.prototype.map.call(table.tBodies, function (tb) {
      return [key(tb, col), tb];
    });
    groups.sort(function (x, y) {
      if (x[0] === null || y[0] === null) return (x[0] === null) - (y[0] === null);
      return dir * compare(x[0], y[0]);
    });
    groups.forEach(function (g) { table.appendChild(g[1]); });
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target instanceof Element ? ev.target.closest("th > button") : null;
    if (button) sortBy(button.parentNode);
  });
})();
"""
