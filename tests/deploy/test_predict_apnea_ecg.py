"""``sleepbench predict`` on apnea_ecg: a synthetic Apnea-ECG record (WFDB + .apn) through the
task's own reader, minute cutting and normalisation, from a checkpoint and from its ONNX export;
a record of another name with a partial last minute and a patient field in its header; the JSON
and one-line refusals of bad file sets."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb
from sklearn.metrics import accuracy_score, cohen_kappa_score, recall_score

from sleepbench.cache.build import SourceRecord
from sleepbench.cli import main
from sleepbench.deploy.model import load_model
from sleepbench.deploy.predict import InputError, get_predictor, predict_files
from sleepbench.errors import RecordingError, UserError
from sleepbench.io.apnea_ecg_labels import apnea_class, read_apn
from sleepbench.tasks.apnea_ecg.data import ECGTransform, preprocess_record
from sleepbench.tasks.apnea_ecg.synth import write_apn, write_synthetic_apnea_ecg
from tests.deploy.runs import INPUT_STATE, write_run

MINUTES = 12
PATIENT = "Jane_Roe"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic released record a01 (12 min): its .hea, .dat, .apn and .qrs."""
    root = tmp_path_factory.mktemp("apnea")
    write_synthetic_apnea_ecg(root, n_released=1, n_withheld=0, minutes=MINUTES, seed=5)
    return {ext: root / f"a01.{ext}" for ext in ("hea", "dat", "apn", "qrs")}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An apnea_ecg run folder (tiny network, saved ECG normalisation)."""
    run_dir = tmp_path_factory.mktemp("run") / "apnea"
    write_run("apnea_ecg", run_dir)
    return run_dir


def test_a_record_with_its_apn(record: dict[str, Path], run: Path) -> None:
    model = load_model("apnea_ecg", run)
    result = predict_files(model, [record["apn"], record["dat"], record["qrs"], record["hea"]])
    json.dumps(result, allow_nan=False)  # strict JSON
    units = result["units"]
    assert result["unit"] == "minute" and result["unit_s"] == 60
    assert result["classes"] == ["normal", "apnea"] and len(units) == MINUTES
    probs = np.array([u["probabilities"]["apnea"] for u in units])
    for u in units:
        assert sum(u["probabilities"].values()) == pytest.approx(1.0)
        assert u["label"] == ("apnea" if u["probabilities"]["apnea"] > 0.5 else "normal")
    assert result["recording"]["files"] == ["a01.hea", "a01.dat", "a01.apn"]
    assert result["recording"]["ignored_files"] == ["a01.qrs"]

    # the network saw the cache's minutes, scaled as the test windows are
    pre = get_predictor(model).preprocess_config()
    source = SourceRecord("a01", "a01", (record["hea"], record["dat"], record["apn"]), {})
    cached = preprocess_record(source, pre).arrays["x"].reshape(MINUTES, 1, 6000)
    state = INPUT_STATE["apnea_ecg"]
    scale = ECGTransform(state["ecg_mean_mv"], state["ecg_std_mv"], augment=False)
    items = np.stack([scale(m, np.zeros(1), np.random.default_rng())[0] for m in cached])
    expected = model.logits(items).reshape(-1)
    np.testing.assert_allclose([u["logit"] for u in units], expected, rtol=0, atol=1e-6)

    pred = np.array([u["label"] == "apnea" for u in units], dtype=int)
    s = result["summary"]
    assert s["apnea_minutes"] == pred.sum()
    assert s["apnea_index_per_h"] == pytest.approx(pred.sum() / (MINUTES / 60))
    assert s["diagnosis"] == ("apnea" if s["apnea_index_per_h"] >= 5 else "normal")
    assert s["apnea_ecg_class"] == apnea_class(["A" if p else "N" for p in pred])
    assert sum(e["duration_s"] for e in result["events"]) == 60 * pred.sum()
    # the seed service's fields
    assert result["probability"] == pytest.approx(probs.mean())
    assert result["logit"] == pytest.approx(expected.mean(), abs=1e-6)
    assert result["diagnosis"] == s["diagnosis"]
    index = s["apnea_index_per_h"]
    assert result["risk"] == ("low" if index < 5 else "moderate" if index < 15 else "high")

    # reference and agreement (sklearn as the independent check)
    ref = np.array([a == "A" for a in read_apn(record["hea"].with_suffix(""))], dtype=int)
    assert [u["reference"] for u in units] == ["apnea" if r else "normal" for r in ref]
    assert result["reference"]["apnea_minutes"] == ref.sum()
    a = result["agreement"]
    assert a["compared_minutes"] == MINUTES
    assert a["accuracy"] == pytest.approx(accuracy_score(ref, pred), abs=1e-6)
    assert a["kappa"] == pytest.approx(cohen_kappa_score(ref, pred), abs=1e-6)
    assert a["sensitivity"] == pytest.approx(recall_score(ref, pred, zero_division=0), abs=1e-6)
    assert a["specificity"] == pytest.approx(
        recall_score(1 - ref, 1 - pred, zero_division=0), abs=1e-6
    )
    assert a["apnea_index_difference_per_h"] == pytest.approx(5 * (pred.sum() - ref.sum()))
    assert a["diagnosis_match"] == (result["reference"]["diagnosis"] == s["diagnosis"])

    kinds = [(t["kind"], t["name"]) for t in result["timeline"]]
    assert [k for k, _ in kinds] == ["signal", "series", "events", "events"]
    assert len(result["timeline"][1]["values"]) == MINUTES
    ref_events = result["timeline"][3]["events"]
    assert sum(e["duration_s"] for e in ref_events) == 60 * ref.sum()
    for key in [*s, *a, "probability", "logit", "risk"]:
        assert key in result["definitions"], key


def test_any_record_name_a_partial_minute_and_no_patient_field(
    record: dict[str, Path], run: Path, tmp_path: Path
) -> None:
    """A WFDB record named freely, 10.5 min long, whose header carries patient comments."""
    ecg = wfdb.rdrecord(str(record["hea"].with_suffix(""))).p_signal[: 10 * 6000 + 3000]
    wfdb.wrsamp(
        "night7",
        fs=100,
        units=["mV"],
        sig_name=["ECG"],
        p_signal=ecg,
        fmt=["16"],
        comments=[f"patient {PATIENT} born 12-MAR-1951"],
        write_dir=str(tmp_path),
    )
    assert PATIENT in (tmp_path / "night7.hea").read_text()
    result = predict_files(
        load_model("apnea_ecg", run), [tmp_path / "night7.hea", tmp_path / "night7.dat"]
    )
    assert result["recording"]["record_id"] == "night7"
    assert len(result["units"]) == 11 and result["units"][-1]["duration_s"] == pytest.approx(30)
    assert result["recording"]["duration_s"] == pytest.approx(630)
    assert result["summary"]["analysed_minutes"] == 11
    assert result["reference"] is None and result["agreement"] is None
    assert all("reference" not in u for u in result["units"])
    assert [t["kind"] for t in result["timeline"]] == ["signal", "series", "events"]
    assert any("edge-padded" in line for line in result["limitations"])
    text = json.dumps(result)
    # the birth year as a token: the digits 1951 may turn up inside a probability's decimals
    assert PATIENT not in text and not re.search(r"(?<![\d.])1951(?!\d)", text)


def test_onnx_gives_the_checkpoints_answer(
    record: dict[str, Path], run: Path, tmp_path: Path
) -> None:
    from sleepbench.deploy.export import export_onnx

    files = [record["hea"], record["dat"], record["apn"]]
    export_onnx("apnea_ecg", run, tmp_path / "m.onnx")
    from_ckpt = predict_files(load_model("apnea_ecg", run), files)
    from_onnx = predict_files(load_model("apnea_ecg", tmp_path / "m.onnx"), files)
    assert from_onnx["model"]["format"] == "onnx"
    assert [u["label"] for u in from_onnx["units"]] == [u["label"] for u in from_ckpt["units"]]
    np.testing.assert_allclose(
        [u["logit"] for u in from_onnx["units"]],
        [u["logit"] for u in from_ckpt["units"]],
        atol=1e-4,
    )
    assert from_onnx["summary"] == pytest.approx(from_ckpt["summary"])
    assert from_onnx["reference"] == from_ckpt["reference"]


def test_bad_file_sets_are_refused_with_the_file_named(
    record: dict[str, Path], run: Path, tmp_path: Path
) -> None:
    model = load_model("apnea_ecg", run)
    hea, dat, apn = record["hea"], record["dat"], record["apn"]
    with pytest.raises(InputError, match="a01.hea: its signal file a01.dat was not given"):
        predict_files(model, [hea, apn])
    other = tmp_path / "a02.dat"
    shutil.copy(dat, other)
    with pytest.raises(InputError, match="a02.dat does not belong to a01.hea"):
        predict_files(model, [hea, other])
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not a file of a WFDB record"):
        predict_files(model, [hea, dat, notes])
    with pytest.raises(InputError, match="exactly one header"):
        predict_files(model, [dat])

    # a truncated signal file: the reader's message, naming it
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(hea, cut / hea.name)
    (cut / dat.name).write_bytes(dat.read_bytes()[:5000])
    with pytest.raises(RecordingError, match=r"a01\.dat: truncated \.dat"):
        predict_files(model, [cut / hea.name, cut / dat.name])

    # an .apn labelling more minutes than the signal has
    long = tmp_path / "long"
    long.mkdir()
    for f in (hea, dat):
        shutil.copy(f, long / f.name)
    write_apn("a01", "N" * (MINUTES + 3), long)
    with pytest.raises(RecordingError, match=r"a01\.apn: 15 labelled minutes"):
        predict_files(model, [long / "a01.hea", long / "a01.dat", long / "a01.apn"])

    # a checkpoint without the saved ECG normalisation
    bare = dataclasses.replace(model, input_state={})
    with pytest.raises(UserError, match="predates saved normalisation"):
        predict_files(bare, [hea, dat])


@pytest.mark.samples
def test_real_files_are_refused_for_what_they_lack(samples_dir: Path, run: Path) -> None:
    model = load_model("apnea_ecg", run)
    real = samples_dir / "apnea_ecg"
    # the real a01 header and labels, without its signal file
    with pytest.raises(InputError, match="a01.hea: its signal file a01.dat was not given"):
        predict_files(model, [real / "a01.hea", real / "a01.apn", real / "a01.qrs"])
    # MIT-BIH record 100 is at 360 Hz: the network reads 100 Hz
    mitdb = samples_dir / "wfdb_sample"
    with pytest.raises(RecordingError, match=r"100: sampling rate 360\.0 Hz, expected 100\.0"):
        predict_files(model, [mitdb / "100.hea", mitdb / "100.dat", mitdb / "100.atr"])


def test_cli_writes_the_json(
    record: dict[str, Path], run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "pred"
    files = [str(record[k]) for k in ("hea", "dat", "apn")]
    argv = ["predict", "--task", "apnea_ecg", "--ckpt", str(run), "--out", str(out), *files]
    assert main(argv) == 0
    saved = json.loads((out / "a01.json").read_text())
    assert len(saved["units"]) == MINUTES and saved["agreement"] is not None
    assert (out / "a01.html").is_file()
    capsys.readouterr()
    assert main([*argv[:-3], files[0]]) == 2  # the header alone: one line, exit 2
    assert "a01.dat was not given" in capsys.readouterr().err
