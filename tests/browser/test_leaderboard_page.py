"""The leaderboard page: self-contained, escaped, linked; and in headless Chromium: nothing wider
than the screen at desktop and phone widths, every chart drawn, a header click sorts."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from sleepbench.leaderboard import write_leaderboard
from sleepbench.registry import get_task
from sleepbench.results import ResultsStore, RunResult
from tests.browser.chromium import page_checks

APNEA, STAGING = "apnea_ecg", "sleep_edf"
LONG_TAGS = {
    "channels": "EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal, EMG submental",
    "not_patient_disjoint": "patients " + " ".join(str(i) for i in range(100, 140)),
    "partial_copy": "x" * 180,  # one unbroken word: must wrap, not widen the page
    "note": "<script>alert('tag')</script>",
}


def _reference(task: str) -> dict:
    return yaml.safe_load((get_task(task).folder / "reference.yaml").read_text())["results"][0]


def _row(task: str, protocol: str, fold: int, runs_dir: Path, **kw) -> dict:
    metric = get_task(task).spec.headline_metrics[0]
    values = kw.pop("values", {metric: 0.5 + 0.01 * fold})
    return RunResult(
        task=task,
        model=kw.pop("model", get_task(task).spec.model),
        protocol=protocol,
        fold=fold,
        seed=kw.pop("seed", 42),
        config_hash=kw.pop("config_hash", "abc123def456"),
        metrics={f"test/{k}": v for k, v in values.items()},
        config={"output": {"runs_dir": str(runs_dir)}},
        **kw,
    ).to_dict()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A leaderboard page written from a store of two tasks' rows.

    apnea_ecg: 10 parity runs with long tags (and the paper's row), 1 synthetic official run,
    2 real official runs of another model, so the "runs" column reads 1, 10, 2 (numbers and text
    sort differently).
    sleep_edf: a TinyUStaging run with a YASA peer in the same run folder, one synthetic run.
    Only some run folders exist on disk.
    """
    root = tmp_path_factory.mktemp("board")
    runs = root / "runs"
    apnea_ref, staging_ref = _reference(APNEA), _reference(STAGING)
    rows = [
        _row(APNEA, "parity", f, runs, reference=apnea_ref, protocol_tags=LONG_TAGS)
        for f in range(10)
    ]
    rows.append(_row(APNEA, "official", 0, runs, data={"synthetic": True}, config_hash="s1"))
    rows += [_row(APNEA, "official", f, runs, model="SimpleCNN", config_hash="r2") for f in (0, 1)]
    rows.append(_row(STAGING, "sc-cv", 0, runs, reference=staging_ref, protocol_tags=LONG_TAGS))
    rows.append(_row(STAGING, "sc-cv", 0, runs, model="YASA", protocol_tags={"peer_of": "x"}))
    rows.append(_row(STAGING, "sc-cv", 1, runs, data={"synthetic": True}, config_hash="s2"))
    for folder, figures in {
        f"{APNEA}/parity/fold0-seed42-abc123def456": ["confusion_matrix.png"],
        f"{APNEA}/parity/fold1-seed42-abc123def456": [],
        f"{STAGING}/sc-cv/fold0-seed42-abc123def456": ["hypnogram.png", "yasa/hypnogram_yasa.png"],
    }.items():
        (runs / folder).mkdir(parents=True)
        for name in figures:
            (runs / folder / name).parent.mkdir(parents=True, exist_ok=True)
            (runs / folder / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    store = ResultsStore(root / "results.jsonl")
    for row in rows:
        store.append(row)
    return write_leaderboard(store.path, root / "board" / "leaderboard.md").with_suffix(".html")


def _tbodies(page: str, task: str) -> list[str]:
    section = page.split(f'<section id="task-{task}">')[1].split("</section>")[0]
    return re.findall(r"<tbody>(.*?)</tbody>", section, re.DOTALL)


def test_page_is_self_contained_and_escaped(board: Path) -> None:
    page = board.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from the network
    assert "<link" not in page and "<script src" not in page
    assert page.count('<img data-chart src="data:image/png;base64,') == 2  # one chart per task
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;tag&#x27;)" in page
    assert page.index('<section id="overview">') < page.index(f'<section id="task-{APNEA}">')


def test_synthetic_rows_are_marked_and_tags_fold(board: Path) -> None:
    page = board.read_text()
    synthetic_rows = re.findall(r'<tr class="ours synthetic">.*?</tr>', page)
    assert len(synthetic_rows) == 4  # two in the overview, one per task table
    assert all('<span class="badge synthetic">SYNTHETIC</span>' in r for r in synthetic_rows)
    assert "<details><summary>channels=EEG Fpz-Cz" in page


def test_the_paper_row_stays_in_the_group_of_ours(board: Path) -> None:
    groups = _tbodies(board.read_text(), APNEA)
    parity = next(g for g in groups if ">parity<" in g and "10</td>" in g)
    ours, paper = re.findall(r'<tr class="([a-z ]+)">', parity)
    assert (ours, paper) == ("ours", "paper")
    assert f">{_reference(APNEA)['protocol']}<" in parity.split('<tr class="paper">')[1]


def test_links_go_to_existing_run_folders_and_their_figures(board: Path) -> None:
    groups = _tbodies(board.read_text(), APNEA)
    parity = next(g for g in groups if ">parity<" in g)
    assert "<summary>2 run folders</summary>" in parity  # 10 runs, 2 folders on disk
    folder = "../runs/apnea_ecg/parity/fold0-seed42-abc123def456"
    assert f'href="{folder}/"' in parity and f'href="{folder}/confusion_matrix.png"' in parity
    official = [g for g in groups if ">official<" in g]
    assert official and all("run folder" not in g for g in official)
    staging = "".join(_tbodies(board.read_text(), STAGING))
    ours, peer = (
        re.search(rf'<tr class="ours">(?:(?!</tr>).)*>{model}<.*?</tr>', staging).group(0)
        for model in ("TinyUStaging", "YASA")
    )
    assert "hypnogram.png" in ours and "hypnogram_yasa" not in ours  # the model's figures
    assert "yasa/hypnogram_yasa.png" in peer and '/hypnogram.png"' not in peer


def _numbers(texts: list[str]) -> list[float]:
    return [float(t.split()[0]) if t != "–" else math.inf for t in texts]


@pytest.mark.parametrize("width", [1280, 390])
def test_page_in_chromium(board: Path, chromium: str, width: int) -> None:
    header = ["model", "protocol", "tags", "data", "runs"]
    runs_header = f"#task-{APNEA} th:nth-child({header.index('runs') + 1}) > button"
    ours_header = "#overview th:nth-child(7) > button"  # "ours": "0.545 ± 0.030"-style cells
    got = page_checks(board, width, sort_headers=[runs_header, ours_header], chromium=chromium)

    assert got["innerWidth"] == width
    assert got["scrollWidth"] <= got["clientWidth"] <= width, got["overflowing"]
    assert got["overflowing"] == []
    assert len(got["charts"]) == 2
    for chart in got["charts"]:
        assert chart["width"] > 0 and chart["height"] > 0 and chart["naturalWidth"] > 0, chart
        assert chart["width"] <= got["clientWidth"]

    runs, ours = got["sorts"]
    assert runs["found"] and runs["column"] == 4

    def firsts(snapshot: list[dict], col: int) -> list[str]:
        """The cell in ``col`` of each group's first row (the row sorting goes by)."""
        seen: set[int] = set()
        out = []
        for row in snapshot:
            if row["group"] not in seen:
                seen.add(row["group"])
                out.append(row["cells"][col])
        return out

    assert firsts(runs["once"], 4) == ["1", "2", "10"]  # numbers as numbers, not "1", "10", "2"
    assert firsts(runs["twice"], 4) == ["10", "2", "1"]
    assert firsts(runs["once"], 0) != firsts(runs["before"], 0)  # the rows really moved
    # a paper line moves with the line of ours before it
    parity = next(r for r in runs["once"] if r["cells"][1] == "parity")
    partner = [r for r in runs["once"] if r["group"] == parity["group"]]
    assert [r["cells"][0].startswith("paper") for r in partner] == [False, True]

    values = _numbers(firsts(ours["once"], 6))
    assert values == sorted(values) and len(values) == 6
    assert _numbers(firsts(ours["twice"], 6)) == sorted(values, reverse=True)
