"""W&B logging (sleepbench.wandb_log), offline and without a key, checked by reading the offline
run files back.

An offline run is one ``run-<id>.wandb`` file: LevelDB-log framing (a 7-byte ``:W&B`` header, then
32 KiB blocks of ``crc32 | length | type | data`` chunks) around ``wandb.proto`` ``Record``
messages. The SDK's own Python reader (``wandb.sdk.internal.datastore``) is gone since the Go
core took over, so :func:`read_run` reads the framing itself and parses the records with the
SDK's protobuf classes.
"""

from __future__ import annotations

import json
import math
import struct
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from sleepbench import wandb_log
from sleepbench.config import isolated_outputs
from sleepbench.results import ResultsStore, RunResult

_BLOCK = 32768
_HEADER = 7


def _records(path: Path) -> list[Any]:
    """The ``Record`` messages of an offline ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _magic, _version = struct.unpack("<4sHB", data[:_HEADER])
    assert ident == b":W&B", f"{path} is not a W&B run file"
    out, pending, pos = [], b"", _HEADER
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a chunk header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0:  # zero padding up to the end of the block
            pos += left
            continue
        if pos + _HEADER + length > len(data):  # still being written
            break
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad chunk at {pos}"
        pos += _HEADER + length
        pending += chunk
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def _apply(target: dict[str, Any], item: Any) -> None:
    """One config/summary/history item (``key`` or ``nested_key`` path) into ``target``."""
    path = [item.key] if item.key else list(item.nested_key)
    node = target
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = json.loads(item.value_json)


def read_run(folder: Path) -> dict[str, Any]:
    """What an offline run under ``folder`` logged: ``run`` (the run record), ``config``,
    ``summary``, ``history`` (keys -> last value), ``files`` (paths saved), ``artifacts``."""
    (path,) = folder.glob("**/offline-run-*/run-*.wandb")
    # run.finish() can return before W&B's core process has flushed the file: wait for the
    # run's exit record, which is written last
    deadline = time.monotonic() + 30.0
    records = _records(path)
    while not any(r.HasField("exit") for r in records) and time.monotonic() < deadline:
        time.sleep(0.1)
        records = _records(path)
    assert any(r.HasField("exit") for r in records), f"{path}: no exit record after 30 s"
    out: dict[str, Any] = {
        "run": None,
        "config": {},
        "summary": {},
        "history": {},
        "files": [],
        "artifacts": [],
    }
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            for item in record.run.config.update:
                _apply(out["config"], item)
        elif kind == "config":
            for item in record.config.update:
                _apply(out["config"], item)
        elif kind == "summary":
            for item in record.summary.update:
                _apply(out["summary"], item)
        elif kind == "history":
            for item in record.history.item:
                _apply(out["history"], item)
        elif kind == "files":
            out["files"] += [f.path for f in record.files.files]
        elif kind == "artifact":
            out["artifacts"].append(record.artifact)
    return out


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W&B offline, no key, every W&B folder (run files, staging, cache, settings) in tmp."""
    for name in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_GROUP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        (tmp_path / name.lower()).mkdir()
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    return tmp_path


def _row(model: str, metrics: dict[str, float], **extra: Any) -> dict[str, Any]:
    return RunResult(
        task="shhs_spo2",
        model=model,
        protocol="shhs1_holdout",
        fold=0,
        seed=42,
        config_hash="abc123abc123",
        metrics=metrics,
        data={"synthetic": True},
        timings={"train_s": 1.0, "test_s": 0.5},
        **extra,
    ).to_dict()


# ---- pure parts --------------------------------------------------------------------------------
def test_confusion_matrices_in_every_format_the_tasks_write() -> None:
    apnea = {"rows=target,cols=pred": [[5, 1], [2, 7]]}
    assert list(wandb_log.confusion_matrices(apnea)) == [("", ["0", "1"], [[5, 1], [2, 7]])]
    staging = {"rows=reference,cols=predicted": [[1, 2], [3, 4]], "classes": ["W", "N1"]}
    assert list(wandb_log.confusion_matrices(staging))[0][1] == ["W", "N1"]
    lsrm = {"classes": ["a", "b"], "rows_are": "reference", "counts": [[9, 0], [1, 8]]}
    assert list(wandb_log.confusion_matrices(lsrm)) == [("", ["a", "b"], [[9, 0], [1, 8]])]
    shhs = {
        "shhs1_test/severity": {"labels": ["n", "m", "s"], "rows=target,cols=pred": [[1] * 3] * 3},
        "shhs2/ahi5": {"labels": ["neg", "pos"], "rows=target,cols=pred": [[3, 1], [0, 2]]},
    }
    found = {entry: labels for entry, labels, _ in wandb_log.confusion_matrices(shhs)}
    assert found == {"shhs1_test/severity": ["n", "m", "s"], "shhs2/ahi5": ["neg", "pos"]}
    transposed = {"rows=pred,cols=target": [[5, 1], [2, 7]]}
    assert list(wandb_log.confusion_matrices(transposed))[0][2] == [[5, 2], [1, 7]]
    for not_a_matrix in ([{"record": "a"}], {"events": {"nights": {}}}, {"counts": [[1, 2]]}):
        assert list(wandb_log.confusion_matrices(not_a_matrix)) == []


def test_summary_has_the_model_metrics_paper_and_peers_by_name() -> None:
    model = _row("M", {"test/acc": 0.8, "val/loss": 0.3}, reference={"metrics": {"acc": 0.81}})
    peer = _row("YASA", {"test/acc": 0.7})
    out = wandb_log.summary([model, peer])
    assert out["test/acc"] == 0.8 and out["val/loss"] == 0.3 and out["model"] == "M"
    assert out["paper/acc"] == 0.81 and out["YASA/test/acc"] == 0.7
    assert out["synthetic"] is True and out["timings/train_s"] == 1.0


def test_config_never_carries_a_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLEEPBENCH_TEST_TOKEN", "tok-0123456789abcdef")
    cfg = OmegaConf.create(
        {
            "task": "t",
            "logger": {"entity": "tok-0123456789abcdef"},
            "paths": ["x", "/a/tok-0123456789abcdef"],
        }
    )
    plain = wandb_log.public_config(cfg)
    assert "tok-0123456789abcdef" not in json.dumps(plain)
    assert plain["logger"]["entity"] == wandb_log.REDACTED and plain["paths"][0] == "x"
    assert plain["task"] == "t"


def test_nothing_happens_with_the_logger_off(tmp_path: Path) -> None:
    cfg = OmegaConf.create(
        {
            "task": "t",
            "logger": {"wandb": False},
            "output": {"leaderboard": str(tmp_path / "lb.md")},
        }
    )
    assert wandb_log.make_loggers(cfg, tmp_path / "run") == []
    wandb_log.log_leaderboard(cfg)
    assert list(tmp_path.iterdir()) == []


# ---- offline runs read back --------------------------------------------------------------------
def _fake_run_folder(run_dir: Path) -> None:
    """A run folder as the shhs_spo2 model and a sleep_edf-like peer (``yasa/``) leave it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (run_dir / "yasa").mkdir(parents=True)
    (run_dir / "checkpoints").mkdir()
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1, 0])
    for path in (run_dir / "hypnogram_n1.png", run_dir / "yasa" / "hypnogram_n1.png"):
        fig.savefig(path)
    plt.close(fig)
    confmats = {
        "shhs1_test/severity": {"labels": ["a", "b"], "rows=target,cols=pred": [[3, 1], [0, 2]]}
    }
    (run_dir / "confusion_matrix.json").write_text(json.dumps(confmats))
    yasa_cm = {"rows=reference,cols=predicted": [[4, 0], [1, 3]], "classes": ["W", "N1"]}
    (run_dir / "yasa" / "confusion_matrix.json").write_text(json.dumps(yasa_cm))
    per_record = [{"record": "r1", "ahi": 3.5, "probs": [0.1, 0.9]}, {"record": "r2", "ahi": None}]
    (run_dir / "per_record.json").write_text(json.dumps(per_record))
    (run_dir / "checkpoints" / "not_logged.json").write_text("[]")
    (run_dir / "config.yaml").write_text("task: shhs_spo2\n")
    (run_dir / "result.json").write_text("[]")


def test_run_folder_logged_as_summary_charts_images_tables(offline_wandb: Path) -> None:
    import wandb

    run_dir = offline_wandb / "runs" / "shhs_spo2" / "shhs1_holdout" / "fold0-seed42-abc"
    _fake_run_folder(run_dir)
    rows = [_row("M", {"test/acc": 0.75}), _row("YASA", {"test/acc": 0.6})]
    run = wandb.init(project="sleepbench", mode="offline", dir=str(offline_wandb / "wb"))
    wandb_log.log_results(run, rows, run_dir)
    run.finish()

    got = read_run(offline_wandb / "wb")
    assert got["summary"]["test/acc"] == 0.75 and got["summary"]["YASA/test/acc"] == 0.6
    history = got["history"]
    for key in ("figures/M/hypnogram_n1", "figures/yasa/hypnogram_n1"):
        assert history[key]["_type"] == "image-file", key
    assert history["tables/M/per_record"]["_type"] == "table-file"
    assert not any("not_logged" in k for k in history)
    panels = got["config"]["_wandb"]["visualize"]
    for key in ("confusion_matrix/M/shhs1_test/severity", "confusion_matrix/yasa"):
        assert panels[key]["panel_config"]["panelDefId"] == "wandb/confusion_matrix/v1", key
        assert history[f"{key}_table"]["_type"] == "table-file"
    assert sum(f.startswith("media/images/") for f in got["files"]) == 2
    # the table's rows, as W&B stored them (nested values as JSON text)
    (table_file,) = (offline_wandb / "wb").glob("**/files/media/table/tables/M/per_record*.json")
    table = json.loads(table_file.read_text())
    assert table["columns"] == ["record", "ahi", "probs"]
    assert table["data"][0] == ["r1", 3.5, "[0.1, 0.9]"]
    (files,) = [a for a in got["artifacts"] if a.type == "run-files"]
    assert sorted(c.path for c in files.manifest.contents) == [
        "config.yaml",
        "confusion_matrix.json",
        "per_record.json",
        "result.json",
        "yasa/confusion_matrix.json",
    ]


def test_leaderboard_logged_as_tables_of_its_own_run(offline_wandb: Path) -> None:
    results = offline_wandb / "results.jsonl"
    store = ResultsStore(results)
    store.append(_row("M", {"test/acc": 0.75}, reference={"metrics": {"acc": 0.8}}))
    cfg = OmegaConf.create(
        {
            "logger": {"wandb": True, "project": "sleepbench", "entity": None},
            "output": {"results": str(results), "leaderboard": str(offline_wandb / "lb" / "lb.md")},
        }
    )
    wandb_log.log_leaderboard(cfg)

    got = read_run(offline_wandb / "lb" / "wandb")
    assert got["run"].job_type == "leaderboard" and got["run"].run_group == "leaderboard"
    for key in ("leaderboard/all_tasks", "leaderboard/shhs_spo2"):
        assert got["history"][key]["_type"] == "table-file", key
    (overview,) = (offline_wandb / "lb").glob("**/media/table/leaderboard/all_tasks*.json")
    table = json.loads(overview.read_text())
    assert table["columns"][:3] == ["task", "model", "protocol"]
    assert table["columns"][-2:] == ["line", "synthetic"]
    assert table["data"][0][:3] == ["shhs_spo2", "M", "shhs1_holdout"]
    assert table["data"][0][-2:] == ["ours", True]


@pytest.mark.integration
def test_tiny_training_run_reaches_wandb(offline_wandb: Path) -> None:
    """sleep_edf (hypnogram figures and a YASA peer row) with ``logger.wandb=true``."""
    from sleepbench.train import run

    overrides = [
        *isolated_outputs(offline_wandb),
        "logger.wandb=true",
        "data.synthetic=true",
        "synthetic.n_subjects=5",
        "synthetic.nights_per_subject=1",
        "synthetic.minutes=40",
        "data.seq_epochs=5",
        "data.train_sequences_per_epoch=16",
        "preprocess.trim_wake_min=10",
        "trainer.max_epochs=1",
    ]
    ours, yasa = run("sleep_edf", overrides)
    run_dir = next((offline_wandb / "runs" / "sleep_edf" / ours["protocol"]).iterdir())
    got = read_run(run_dir / "wandb")

    config = got["config"]
    for key in ("task", "protocol", "fold", "seed", "config_hash"):
        assert config[key] == ours[key], key
    assert config["model"] == "TinyUStaging"
    assert got["run"].run_group == f"sleep_edf/{ours['protocol']}"
    assert got["run"].job_type == "TinyUStaging"
    assert {"sleep_edf", "TinyUStaging", "synthetic"} <= set(got["run"].tags)
    summary = got["summary"]
    for key, value in ours["metrics"].items():
        # W&B stores a NaN (a spread over one subject) as null
        assert summary[key] == (pytest.approx(value) if math.isfinite(value) else None), key
    assert summary["YASA/test/kappa"] == pytest.approx(yasa["metrics"]["test/kappa"])
    history = got["history"]
    figures = [
        k for k, v in history.items() if k.startswith("figures/") and v["_type"] == "image-file"
    ]
    assert any(k.startswith("figures/TinyUStaging/hypnogram_") for k in figures)
    assert any(k.startswith("figures/yasa/hypnogram_") for k in figures)
    assert history["tables/TinyUStaging/per_subject"]["_type"] == "table-file"
    assert {"confusion_matrix/TinyUStaging", "confusion_matrix/yasa"} <= set(
        config["_wandb"]["visualize"]
    )
    assert any(k.startswith("train/loss") for k in history)  # Lightning's curves, same run
