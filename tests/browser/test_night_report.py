"""The night report: self-contained and escaped; in headless Chromium, nothing wider than the
screen at desktop and phone widths, every timeline track drawn, a header click sorts the units."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sleepbench.deploy.predict import envelope
from sleepbench.deploy.report import format_value, render_report
from sleepbench.deploy.timeline_svg import clock, nice_ticks
from tests.browser.chromium import page_checks

STAGES = ["W", "N1", "N2", "N3", "REM"]


def _result(synthetic: bool = True) -> dict[str, Any]:
    """A prediction of a 7.5-h night with every kind of timeline track and a reference."""
    n = 900  # 30-s epochs
    labels = [STAGES[(i // 37) % 5] for i in range(n)]
    reference = [STAGES[(i // 41) % 5] for i in range(n)]
    ecg = [((i * 7919) % 1000) / 500.0 - 1.0 for i in range(27_000)]
    units = [
        {
            "index": i,
            "onset_s": 30.0 * i,
            "duration_s": 30.0,
            "label": lab,
            "probabilities": {s: (0.6 if s == lab else 0.1) for s in STAGES},
            "reference": reference[i],
        }
        for i, lab in enumerate(labels)
    ]
    return {
        "schema": 1,
        "sleepbench": "0.1.0",
        "created": "2026-12-03T23:00:00+00:00",
        "task": "sleep_edf",
        "model": {
            "task": "sleep_edf",
            "name": "TinyUStaging",
            "file": "best.ckpt",
            "format": "checkpoint",
            "sha256": "ab" * 32,
            "config_hash": "0123456789ab",
            "protocol": "sleepedf20_loso",
            "trained_on_synthetic_data": synthetic,
        },
        "recording": {
            "record_id": "SC4001E0<script>alert(1)</script>",
            "files": ["SC4001E0-PSG.edf", "SC4001EC-Hypnogram.edf"],
            "duration_s": 30.0 * n,
            "channels": [{"name": "EEG Fpz-Cz", "fs_hz": 100.0, "unit": "uV"}],
        },
        "unit": "epoch",
        "unit_s": 30.0,
        "classes": STAGES,
        "units": units,
        "events": [],
        "summary": {"prediction": "N2", "tst_min": 402.5, "stage_pct": {"N2": 48.1, "REM": 20.2}},
        "definitions": {"tst_min": "total sleep time, minutes"},
        "reference": {"tst_min": 398.0, "stage_pct": {"N2": 50.0, "REM": 19.0}},
        "agreement": {
            "accuracy": 0.81,
            "kappa": 0.74,
            "confusion_matrix": {
                "classes": STAGES,
                "rows": "reference",
                "columns": "predicted",
                "counts": [[5, 1, 0, 0, 0]] * 5,
            },
        },
        "limitations": ["One EEG and one EOG channel only."],
        "timeline": [
            envelope(ecg, 1.0, "EEG Fpz-Cz (uV)"),
            {
                "kind": "stages",
                "name": "Predicted",
                "unit_s": 30.0,
                "labels": labels,
                "order": ["W", "REM", "N1", "N2", "N3"],
            },
            {
                "kind": "stages",
                "name": "Reference",
                "unit_s": 30.0,
                "labels": [None] * 10 + reference[10:],
                "order": ["W", "REM", "N1", "N2", "N3"],
            },
            {
                "kind": "events",
                "name": "Arousals",
                "events": [
                    {
                        "onset_s": 600.0 * k,
                        "duration_s": 15.0,
                        "label": "arousal" if k % 3 else "apnea",
                    }
                    for k in range(1, 40)
                ],
            },
            {
                "kind": "series",
                "name": "P(W)",
                "unit_s": 30.0,
                "range": [0, 1],
                "values": [0.6 if lab == "W" else 0.1 for lab in labels],
            },
        ],
    }


def test_report_is_self_contained_and_escaped() -> None:
    page = render_report(_result())
    assert "<script>alert(1)</script>" not in page
    assert "SC4001E0&lt;script&gt;" in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must load nothing"
    assert "<link" not in page
    assert "SYNTHETIC" in page and "trained on synthetic data" in page
    assert page.count('data-chart data-kind="stages"') == 2
    assert "398" in page and "402" in page  # reference beside the prediction
    row = "<th scope=row>N3</th><td class=num>5</td><td class=num>1</td><td class=num>0</td>"
    assert row in page  # the confusion matrix's counts, under their classes
    assert "SYNTHETIC" not in render_report(_result(synthetic=False))


def test_value_formatting_and_ticks() -> None:
    assert format_value(None) == "\u2013" and format_value(True) == "yes"
    assert format_value(0.123456) == "0.123" and format_value(12345) == "12,345"
    assert format_value({"a": 0.5, "b": [1, 2]}) == "a 0.5 · b 1, 2"
    ticks = nice_ticks(8 * 3600)
    assert ticks[0] == 0 and ticks[1] == 3600 and ticks[-1] < 8 * 3600 * 0.96
    assert clock(5400, 8 * 3600) == "1:30" and clock(90, 100) == "90 s"


@pytest.mark.parametrize("width", [1280, 375])
def test_report_in_chromium(chromium: str, tmp_path: Path, width: int) -> None:
    page = tmp_path / "night.html"
    page.write_text(render_report(_result()), encoding="utf-8")
    # the units table folds into <details>: open it so its header can be clicked
    page.write_text(page.read_text().replace("<details>", "<details open>"), encoding="utf-8")
    got = page_checks(
        page,
        width,
        sort_headers=["#units thead th:nth-child(4) button"],
        chart_selector="figure.track svg",
        chromium=chromium,
    )
    assert got["scrollWidth"] <= got["clientWidth"], got["overflowing"]
    assert not got["overflowing"]
    assert len(got["charts"]) == 5
    for chart in got["charts"]:
        assert chart["width"] > 0.6 * min(width, 1216) - 80 and chart["height"] >= 20, chart
    (sort,) = got["sorts"]
    assert sort["found"]
    before = [r["cells"][3] for r in sort["before"]]
    once = [r["cells"][3] for r in sort["once"]]
    twice = [r["cells"][3] for r in sort["twice"]]
    assert before != once and once == sorted(before) and twice == sorted(before, reverse=True)
