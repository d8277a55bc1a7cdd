"""``sleepbench predict`` on psg_audio_osa: a synthetic PSG-Audio night (EDF parts + RML) through
the cache's own audio reading, the test stage's windows, transform and stitching; per-second
units, the task's event extraction and night evaluation; the same events without the RML; no
header patient field in the result; one-line refusals of bad file sets."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sleepbench.deploy.model import load_model
from sleepbench.deploy.predict import InputError, predict_files
from sleepbench.errors import RecordingError
from sleepbench.metrics.severity import SEVERITY_NAMES, ahi_to_severity
from sleepbench.tasks.psg_audio_osa.data import (
    PsgAudioDataModule,
    PsgAudioTransform,
    preprocess_night,
)
from sleepbench.tasks.psg_audio_osa.synth import PsgAudioSynthNight, write_synthetic_psg_audio
from tests.deploy.runs import write_run

PRE = {"channel": "Mic", "gap_tolerance_s": 1.0, "annotations": "APNEA_RML"}
PATIENT = b"Jane_Roe"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> PsgAudioSynthNight:
    """A synthetic severe night of 8.5 min (4 parts of 150 s, Mic at 4 kHz; 1 apnea, 4
    hypopneas): the fourth of four written (severity classes are dealt over the nights)."""
    root = tmp_path_factory.mktemp("psga")
    nights = write_synthetic_psg_audio(
        root, n_subjects=4, minutes=8.0, fs_hz=4000.0, seed=0, part_s=150.0, channels=("Mic",)
    )
    assert nights[3].severity == 3 and len(nights[3].parts) == 4
    return nights[3]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A psg_audio_osa run folder (small CRNN)."""
    run_dir = tmp_path_factory.mktemp("run") / "psga"
    write_run("psg_audio_osa", run_dir)
    return run_dir


@pytest.fixture(scope="module")
def with_rml(night: PsgAudioSynthNight, run: Path) -> dict:
    """The prediction of the night given with its RML."""
    return predict_files(load_model("psg_audio_osa", run), [night.rml, *reversed(night.parts)])


def test_a_night_with_its_rml(night: PsgAudioSynthNight, run: Path, with_rml: dict) -> None:
    result = with_rml
    json.dumps(result, allow_nan=False)  # strict JSON
    (source,) = [
        s
        for s in PsgAudioDataModule.list_sources(night.rml.parents[1], None)
        if s.record_id == night.night_id
    ]
    cached = preprocess_night(source, PRE)
    n_labels = cached.attrs["n_labels"]
    units = result["units"]
    assert result["unit"] == "second" and result["unit_s"] == 1.0
    assert result["classes"] == ["normal", "hypopnea", "apnea"]
    assert len(units) == -(-n_labels * 2 // 25)  # 12.5 frames of 80 ms a second
    for u in units:
        assert sum(u["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        # the label is the argmax before the probabilities were rounded to 4 decimals
        assert u["probabilities"][u["label"]] >= max(u["probabilities"].values()) - 1e-4

    # the first 30 s are covered by the first 60-s window alone: its softmax, frame by frame
    model = load_model("psg_audio_osa", run)
    item, _ = PsgAudioTransform(train=False)(cached.arrays["x"][:, :6000], np.zeros(750), None)
    probs = torch.softmax(torch.from_numpy(model.logits(item[None])[0]), dim=-1).numpy()
    for k in range(30):
        expected = probs[np.arange(25 * k, 25 * k + 25) // 2].mean(axis=0)  # 40-ms halves
        got = [units[k]["probabilities"][c] for c in result["classes"]]
        np.testing.assert_allclose(got, expected, atol=6e-5)

    s, events = result["summary"], result["events"]
    assert s["n_events"] == len(events) == s["n_apneas"] + s["n_hypopneas"]
    assert s["recording_h"] == pytest.approx(n_labels * 0.08 / 3600) and s["gap_h"] == 0
    assert s["ahi_per_h_recording"] == pytest.approx(len(events) / s["recording_h"])
    assert s["severity"] == SEVERITY_NAMES[ahi_to_severity(s["ahi_per_h_recording"])]
    for e in events:
        assert e["label"] in ("apnea", "hypopnea") and e["duration_s"] >= 10.0
        assert 0 <= e["onset_s"] and e["onset_s"] + e["duration_s"] <= n_labels * 0.08 + 1e-6

    ref, agree = result["reference"], result["agreement"]
    assert ref["ahi_per_h_sleep"] == pytest.approx(night.ahi)
    assert ref["n_apneas"] == night.n_apnea and ref["n_hypopneas"] == night.n_hypopnea
    assert ref["tst_h"] == pytest.approx(night.tst_s / 3600)
    assert agree["ahi_difference"] == pytest.approx(agree["ahi_pred_per_h_sleep"] - night.ahi)
    assert agree["severity_match"] == (agree["severity_pred"] == ref["severity"])
    for key in ("frame_accuracy", "event_precision", "event_recall", "event_f1", "collar_f1"):
        assert 0 <= agree[key] <= 1
    assert -1 <= agree["frame_kappa"] <= 1
    assert agree["n_frames_scored"] == int(cached.arrays["mask"].sum())
    assert agree["n_reference_events_in_roi"] == ref["n_events_in_roi"]
    scored = [u for u in units if u["reference"] is not None]
    assert scored and {u["reference"] for u in scored} <= set(result["classes"])

    kinds = [t["kind"] for t in result["timeline"]]
    assert kinds == ["signal", "series", "series", "events", "events", "stages"]
    assert len(result["timeline"][4]["events"]) == night.n_apnea + night.n_hypopnea
    assert result["recording"]["files"] == [p.name for p in night.parts] + [night.rml.name]
    assert result["recording"]["channels"][0] == {"name": "Mic", "fs_hz": 4000.0, "unit": "V"}


def test_without_rml_the_same_events_and_no_patient_field(
    night: PsgAudioSynthNight, run: Path, with_rml: dict, tmp_path: Path
) -> None:
    parts = []
    for p in night.parts:  # the EDF header's patient field holds a name
        data = bytearray(p.read_bytes())
        data[8:88] = PATIENT.ljust(80)
        (tmp_path / p.name).write_bytes(bytes(data))
        parts.append(tmp_path / p.name)
    result = predict_files(load_model("psg_audio_osa", run), parts)
    assert PATIENT.decode() not in json.dumps(result)
    assert result["reference"] is None and result["agreement"] is None
    assert "reference" not in result["units"][0]
    assert result["events"] == with_rml["events"]
    assert result["summary"] == with_rml["summary"]
    assert [t["kind"] for t in result["timeline"]] == ["signal", "series", "series", "events"]


def test_a_gap_between_parts_is_not_predicted(
    night: PsgAudioSynthNight, run: Path, tmp_path: Path
) -> None:
    # part 2 left out and the later parts renumbered: only their start times tell the gap
    for number, part in zip((1, 2, 3), (night.parts[0], *night.parts[2:]), strict=True):
        shutil.copy(part, tmp_path / f"{night.night_id}[{number:03d}].edf")
    result = predict_files(load_model("psg_audio_osa", run), sorted(tmp_path.glob("*.edf")))
    assert result["recording"]["gaps_s"] == [[150.0, 300.0]]
    silent = [u["index"] for u in result["units"] if u["label"] is None]
    assert silent == list(range(150, 300))
    assert all(u["probabilities"] is None for u in result["units"][150:300])
    s = result["summary"]
    assert s["gap_h"] * 3600 == pytest.approx(150) and s["recording_h"] * 3600 < 361
    for e in result["events"]:  # no event reaches into the gap
        assert e["onset_s"] + e["duration_s"] <= 150 or e["onset_s"] >= 300
    assert "2.5 min of the night have no audio" in " ".join(result["limitations"])
    energy = result["timeline"][0]
    assert energy["kind"] == "signal" and None in energy["low"]


def test_bad_file_sets_are_refused_with_the_file_named(
    night: PsgAudioSynthNight, run: Path, tmp_path: Path
) -> None:
    model = load_model("psg_audio_osa", run)
    p1, p2, p3, p4 = night.parts
    with pytest.raises(InputError, match=re.escape(f"{night.night_id}[002].edf missing")):
        predict_files(model, [p1, p3, p4])
    other_night = tmp_path / "00009999-100507[005].edf"
    shutil.copy(p1, other_night)
    with pytest.raises(InputError, match="parts of 2 nights given"):
        predict_files(model, [p1, p2, p3, p4, other_night])
    other_rml = tmp_path / "00009999-100507.rml"
    shutil.copy(night.rml, other_rml)
    with pytest.raises(InputError, match="00009999-100507.rml is not the annotation of night"):
        predict_files(model, [*night.parts, other_rml])
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not an EDF part or RML"):
        predict_files(model, [*night.parts, notes])
    unnamed = tmp_path / "night.edf"
    shutil.copy(p1, unnamed)
    with pytest.raises(InputError, match=r"night.edf: not a PSG-Audio part name"):
        predict_files(model, [unnamed])
    twice = tmp_path / "copy" / p2.name
    twice.parent.mkdir()
    shutil.copy(p2, twice)
    with pytest.raises(InputError, match="part 2 given twice"):
        predict_files(model, [*night.parts, twice])
    cut = tmp_path / "cut"
    cut.mkdir()
    for p in night.parts:
        shutil.copy(p, cut / p.name)
    (cut / p3.name).write_bytes(p3.read_bytes()[: p3.stat().st_size // 2])
    with pytest.raises(RecordingError, match=re.escape(p3.name)):
        predict_files(model, [cut / p.name for p in night.parts])
