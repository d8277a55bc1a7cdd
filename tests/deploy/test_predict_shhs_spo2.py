"""``sleepbench predict`` on shhs_spo2: a synthetic SHHS night (EDF + NSRR XML) through the task's
own reader and preprocessing, from a checkpoint and from its ONNX export; the JSON, the report,
and one-line refusals of bad file sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleepbench.cache.build import SourceRecord
from sleepbench.cli import main
from sleepbench.deploy.model import load_model
from sleepbench.deploy.predict import InputError, get_predictor, predict_files, write_prediction
from sleepbench.errors import RecordingError
from sleepbench.io.nsrr_xml import ahi_from_events, read_nsrr_xml
from sleepbench.metrics.severity import SEVERITY_NAMES, ahi_to_severity
from sleepbench.tasks.shhs_spo2.data import preprocess_record
from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs
from tests.deploy.runs import write_run


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One synthetic SHHS1 night of 2 h with scored events: its EDF and NSRR XML (the severe
    one of four participants, so the events track is never empty)."""
    root = tmp_path_factory.mktemp("shhs")
    records = write_synthetic_shhs(root, n_subjects=4, visits=("shhs1",), hours=2.0, seed=3)
    severe = max(records, key=lambda r: r.ahi_a0h3a)
    return Path(severe.edf_path), Path(severe.xml_path)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shhs_spo2 run folder (small network, 2,048 samples)."""
    run_dir = tmp_path_factory.mktemp("run") / "shhs"
    write_run("shhs_spo2", run_dir)
    return run_dir


def test_a_night_with_its_xml(night: tuple[Path, Path], run: Path) -> None:
    edf, xml = night
    model = load_model("shhs_spo2", run)
    result = predict_files(model, [xml, edf])  # any order
    json.dumps(result, allow_nan=False)  # strict JSON

    (unit,) = result["units"]
    probs = result["summary"]["probabilities"]
    assert list(probs) == list(SEVERITY_NAMES) == result["classes"]
    assert sum(probs.values()) == pytest.approx(1.0)
    assert result["summary"]["severity"] == unit["label"] == max(probs, key=probs.get)
    assert result["summary"]["p_ahi_ge_5"] == pytest.approx(1.0 - probs["normal"])

    # the network saw exactly what the cache build would have stored for this night
    pre = get_predictor(model).preprocess_config()
    meta = {"edf": str(edf), "xml": str(xml), "visit": "shhs1", "nsrrid": "1"}
    source = SourceRecord(edf.stem, "1", (edf, xml), meta)
    cached = preprocess_record(source, pre).arrays["x"]
    expected = model.logits(cached[None])[0]
    np.testing.assert_allclose(unit["logits"], expected, rtol=0, atol=1e-6)

    # the reference AHI is the XML's, with the run's rule
    ahi = ahi_from_events(read_nsrr_xml(xml), rule="3a")
    ref = result["reference"]
    assert ref["ahi_events_per_h"] == pytest.approx(ahi)
    assert ref["severity"] == SEVERITY_NAMES[ahi_to_severity(ahi)]
    assert result["agreement"]["class_match"] == (ref["class"] == unit["label"])
    assert result["model"]["sha256"] and result["model"]["config_hash"]
    assert result["recording"]["files"] == [edf.name, xml.name]
    kinds = [t["kind"] for t in result["timeline"]]
    assert (
        kinds == ["signal", "events"]
        and len(result["timeline"][1]["events"]) == ref["n_ahi_events"]
    )


def test_without_xml_there_is_no_reference(night: tuple[Path, Path], run: Path) -> None:
    result = predict_files(load_model("shhs_spo2", run), [night[0]])
    assert result["reference"] is None and result["agreement"] is None
    assert 0 <= result["summary"]["odi3_per_h"] < 120
    assert 50 <= result["summary"]["nadir_spo2_pct"] <= result["summary"]["mean_spo2_pct"] <= 100


def test_onnx_gives_the_checkpoints_answer(
    night: tuple[Path, Path], run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    from sleepbench.deploy.export import export_onnx

    export_onnx("shhs_spo2", run, tmp_path / "m.onnx")
    from_ckpt = predict_files(load_model("shhs_spo2", run), list(night))
    from_onnx = predict_files(load_model("shhs_spo2", tmp_path / "m.onnx"), list(night))
    assert from_onnx["model"]["format"] == "onnx"
    np.testing.assert_allclose(
        from_onnx["units"][0]["logits"], from_ckpt["units"][0]["logits"], atol=1e-4
    )
    assert from_onnx["summary"]["severity"] == from_ckpt["summary"]["severity"]
    assert from_onnx["reference"] == from_ckpt["reference"]


def test_bad_file_sets_are_refused_with_the_file_named(
    night: tuple[Path, Path], run: Path, tmp_path: Path
) -> None:
    edf, xml = night
    model = load_model("shhs_spo2", run)
    truncated = tmp_path / edf.name
    truncated.write_bytes(edf.read_bytes()[: len(edf.read_bytes()) // 3])
    with pytest.raises(RecordingError, match=edf.name):
        predict_files(model, [truncated])
    other = tmp_path / "shhs1-999999-nsrr.xml"
    other.write_bytes(xml.read_bytes())
    with pytest.raises(InputError, match="shhs1-999999-nsrr.xml is not the annotation of"):
        predict_files(model, [edf, other])
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not an EDF"):
        predict_files(model, [edf, notes])
    with pytest.raises(InputError, match="exactly one EDF, got 2"):
        predict_files(model, [edf, truncated])
    with pytest.raises(InputError, match="no such file"):
        predict_files(model, [tmp_path / "absent.edf"])


def test_cli_writes_json_and_report(
    night: tuple[Path, Path], run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "pred"
    argv = [
        "predict",
        "--task",
        "shhs_spo2",
        "--ckpt",
        str(run),
        "--out",
        str(out),
        *map(str, night),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    stem = night[0].stem
    assert f"shhs_spo2 {stem}: prediction" in printed and "agreement with the reference" in printed
    saved = json.loads((out / f"{stem}.json").read_text())
    page = (out / f"{stem}.html").read_text()
    assert saved["summary"]["severity"] in page and "Agreement with the reference" in page
    # a truncated EDF: one line, exit 2, nothing written
    bad = tmp_path / "bad" / night[0].name
    bad.parent.mkdir()
    bad.write_bytes(night[0].read_bytes()[:300])
    assert main([*argv[:-2], str(bad)]) == 2
    assert night[0].name in capsys.readouterr().err


def test_the_result_file_is_replaced_whole(
    night: tuple[Path, Path], run: Path, tmp_path: Path
) -> None:
    result = predict_files(load_model("shhs_spo2", run), [night[0]])
    paths = write_prediction(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [paths["json"].name, paths["html"].name]
    )
