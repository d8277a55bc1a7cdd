"""Results store (append / get / keys, concurrent appends) and the leaderboard built from it."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
import yaml

from sleepbench.leaderboard import build_board, build_tables, to_markdown, write_leaderboard
from sleepbench.leaderboard_page import page_html
from sleepbench.registry import get_task
from sleepbench.results import ResultsStore, RunResult, run_key

TASK = "apnea_ecg"


@pytest.fixture(scope="module")
def parity_reference() -> dict:
    """The first ``parity`` entry of the task's real ``reference.yaml`` (the paper's numbers)."""
    entries = yaml.safe_load((get_task(TASK).folder / "reference.yaml").read_text())["results"]
    return next(e for e in entries if e["protocol"] == "parity")


def result(fold: int, f1: float, protocol: str = "official", **kw) -> RunResult:
    return RunResult(
        task=TASK,
        model="ESI-ConvNeXtV2-BiLSTM",
        protocol=protocol,
        fold=fold,
        seed=42,
        config_hash="abc123def456",
        metrics={"test/f1": f1, "test/acc": f1 + 0.05, "val/f1": 0.5},
        **kw,
    )


def test_run_key_and_round_trip(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "res" / "results.jsonl")
    assert list(store) == [] and store.keys() == set() and store.get("x") is None
    row = result(0, 0.8, n_params=np.int64(12), timings={"train_s": np.float32(1.5)})
    assert row.key == "apnea_ecg/ESI-ConvNeXtV2-BiLSTM/official/fold0/seed42/abc123def456"
    assert row.key == run_key(TASK, row.model, "official", 0, 42, "abc123def456")
    store.append(row)
    store.append({"key": "other", "task": "x", "value": 1})
    got = store.get(row.key)
    assert got["metrics"] == row.metrics and got["n_params"] == 12
    assert got["timings"] == {"train_s": 1.5}
    assert store.keys() == {row.key, "other"}
    assert [json.loads(line)["key"] for line in store.path.read_text().splitlines()] == [
        row.key,
        "other",
    ]


def test_get_returns_the_latest_row_of_a_key(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(result(0, 0.1))
    store.append(result(1, 0.2))
    store.append(result(0, 0.3))
    assert store.get(result(0, 0).key)["metrics"]["test/f1"] == 0.3
    assert len(store.keys()) == 2 and len(list(store)) == 3


def _append_many(path: str, worker: int) -> None:
    store = ResultsStore(Path(path))
    for i in range(40):
        store.append({"key": f"w{worker}-{i}", "pad": "x" * 5000})


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    keys = ResultsStore(path).keys()  # every line parses as JSON
    assert keys == {f"w{w}-{i}" for w in range(3) for i in range(40)}


def rows_for_board(reference: dict) -> list[dict]:
    """Two parity folds (f1 0.80, 0.90), a superseded row, and one synthetic official run."""
    rows = [
        result(0, 0.10, "parity", reference=reference, protocol_tags={"leaky": True}),
        result(0, 0.80, "parity", reference=reference, protocol_tags={"leaky": True}),
        result(1, 0.90, "parity", reference=reference, protocol_tags={"leaky": True}),
        result(0, 0.60, "official", data={"synthetic": True}),
    ]
    return [r.to_dict() for r in rows]


def test_tables_give_mean_and_std_over_folds_and_the_paper_numbers(parity_reference) -> None:
    tables = build_tables(rows_for_board(parity_reference))
    assert [t[0] for t in tables] == ["All tasks", TASK]
    _, header, overview = tables[0]
    by_protocol = {r[header.index("protocol")]: dict(zip(header, r)) for r in overview}
    parity = by_protocol["parity"]
    std = np.std([0.8, 0.9], ddof=1)
    assert parity["ours"] == f"0.850 ± {std:.3f}"  # the superseded 0.10 row is not counted
    assert parity["runs"] == "2" and parity["data"] == "real"
    assert parity["primary metric"] == "f1"
    assert parity["paper"] == f"{parity_reference['metrics']['f1']:.3f}"
    official = by_protocol["official"]
    assert official["data"] == "SYNTHETIC" and official["ours"] == "0.600"
    assert official["paper"] == "–"

    _, task_header, task_rows = tables[1]
    assert task_header[:5] == ["model", "protocol", "tags", "data", "runs"]
    assert task_header[5:] == list(get_task(TASK).spec.headline_metrics)
    # each group is followed by the paper's row when it has one
    ours_row = next(r for r in task_rows if r[1] == "parity" and r[0] != "paper (README)")
    paper_row = task_rows[task_rows.index(ours_row) + 1]
    col = {m: 5 + i for i, m in enumerate(task_header[5:])}
    assert ours_row[2] == "leaky=True"
    assert ours_row[col["f1"]] == f"0.850 ± {std:.3f}"
    assert ours_row[col["acc"]] == f"0.900 ± {std:.3f}"
    assert ours_row[col["mcc"]] == "–"  # never reported by these rows
    assert paper_row[0] == "paper (README)" and paper_row[1] == "parity"
    for metric, value in parity_reference["metrics"].items():
        if metric in col:
            assert paper_row[col[metric]] == f"{value:.3f}"


def test_markdown_and_html_render_every_cell(parity_reference, tmp_path: Path) -> None:
    tables = build_tables(rows_for_board(parity_reference))
    md = to_markdown(tables)
    assert "## All tasks" in md and f"## {TASK}" in md
    std = np.std([0.8, 0.9], ddof=1)
    assert f"| 0.850 ± {std:.3f} |" in md
    lines = [line for line in md.splitlines() if line.startswith("|")]
    widths = {line.count("|") for line in lines if "---" not in line}
    assert len(widths) == 2  # two tables, each with rows as wide as its header
    html = page_html(build_board(rows_for_board(parity_reference)), {}, tmp_path)
    assert html.count("<table>") == 2 and f"0.850 ± {std:.3f}" in html


def test_write_leaderboard_from_the_store(tmp_path: Path, parity_reference) -> None:
    store = ResultsStore(tmp_path / "results.jsonl")
    for row in rows_for_board(parity_reference):
        store.append(row)
    md = write_leaderboard(store.path, tmp_path / "board" / "leaderboard.md")
    text = md.read_text()
    assert "0.850 ± " in text
    assert f"{parity_reference['metrics']['f1']:.3f}" in text
    assert "SYNTHETIC" in text
    png = md.with_name(f"leaderboard-{TASK}.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = md.with_suffix(".html").read_text()
    assert page.count('<img data-chart src="data:image/png;base64,') == 1  # the chart, inline


def test_missing_metric_values_show_a_dash() -> None:
    row = result(0, 0.5).to_dict()
    row["metrics"] = {"test/f1": float("nan")}
    _, header, overview = build_tables([row])[0]
    assert overview[0][header.index("ours")] == "–"


def test_a_torn_line_is_skipped_reported_and_not_glued_onto(tmp_path: Path, caplog) -> None:
    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(result(0, 0.7))
    whole = result(1, 0.8).to_dict()
    torn = json.dumps(whole)[: len(json.dumps(whole)) // 2]
    with open(store.path, "a") as fh:  # a crash mid-write: half a line, no newline
        fh.write(torn)
    assert [b.line_no for b in store.bad_lines()] == [2]
    with caplog.at_level("WARNING"):
        assert [r["fold"] for r in store] == [0]
    assert "line 2 skipped" in caplog.text
    store.append(result(2, 0.9))  # starts on a new line: the torn line stays alone
    assert [r["fold"] for r in store] == [0, 2]
    lines = store.path.read_text().splitlines()
    assert lines[1] == torn and json.loads(lines[2])["fold"] == 2


def test_lines_that_are_not_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'[1, 2]\n{"no_key": 1}\n\xff\xfe garbage\n')
    store = ResultsStore(path)
    assert list(store) == [] and len(store.bad_lines()) == 3
    with pytest.raises(ValueError, match="key"):
        store.append({"task": "x"})


def test_leaderboard_survives_a_torn_last_line_and_bad_rows(
    tmp_path: Path, parity_reference
) -> None:
    store = ResultsStore(tmp_path / "results.jsonl")
    for row in rows_for_board(parity_reference):
        store.append(row)
    store.append({"key": "hand-edited", "task": TASK})  # no model, protocol or metrics
    bad_metrics = result(3, 0.5).to_dict()
    bad_metrics["metrics"] = {"test/f1": "n/a"}
    store.append(bad_metrics)
    with open(store.path, "a") as fh:
        fh.write('{"key": "torn", "task": "apn')
    md = write_leaderboard(store.path, tmp_path / "leaderboard.md").read_text()
    assert "0.850 ± " in md and "SYNTHETIC" in md


def test_cli_leaderboard_exits_zero_on_a_torn_results_file(tmp_path: Path, capsys) -> None:
    from sleepbench.cli import main

    store = ResultsStore(tmp_path / "results.jsonl")
    store.append(result(0, 0.75))
    with open(store.path, "a") as fh:
        fh.write('{"key": "torn"')
    out = tmp_path / "board.md"
    assert main(["leaderboard", "--results", str(store.path), "--out", str(out)]) == 0
    assert "0.750" in capsys.readouterr().out


def test_chart_names_the_protocol_of_each_paper_bar(parity_reference) -> None:
    from sleepbench.leaderboard import chart_bars

    # an official run beside a paper number measured under the parity protocol
    row = result(0, 0.6, "official", reference=parity_reference).to_dict()
    bars = chart_bars(TASK, [row])
    assert [b.paper for b in bars] == [False, True]
    assert bars[1].label == "paper\nparity protocol\n(other protocol)"
    assert bars[1].value == pytest.approx(parity_reference["metrics"]["f1"])
    # like for like: the paper's protocol is the run's own
    same = chart_bars(TASK, rows_for_board(parity_reference)[:3])
    assert same[-1].label == "paper\nparity protocol"
    assert same[0].error == pytest.approx(np.std([0.8, 0.9], ddof=1))
