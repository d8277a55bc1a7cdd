"""``sleepbench predict`` on icbhi_lung and esc50: real ICBHI recordings (with and without their
cycle file) and a real ESC-50 clip through the tasks' own readers and item transforms, from a
checkpoint and from its ONNX export; one-line refusals of bad file sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sleepbench.cache.build import SourceRecord
from sleepbench.deploy.model import load_model
from sleepbench.deploy.predict import InputError, get_predictor, predict_files
from sleepbench.errors import RecordingError
from sleepbench.io.audio import wav_info
from sleepbench.io.icbhi import CLASSES, read_cycles
from sleepbench.tasks.esc50.synth import CATEGORIES
from sleepbench.tasks.icbhi_lung.data import IcbhiDataModule, preprocess_recording
from tests.deploy.runs import small_cfg, write_run

STEM = "103_2b2_Ar_mc_LittC2SE"  # 20 s at 44.1 kHz, PCM_24, 6 cycles, 4 with wheezes
CLIP = "4-102844-A-49.wav"  # hand_saw


@pytest.fixture(scope="module")
def icbhi(samples_dir: Path) -> tuple[Path, Path]:
    """A real ICBHI recording and its cycle file."""
    folder = samples_dir / "icbhi" / "audio_and_txt_files"
    return folder / f"{STEM}.wav", folder / f"{STEM}.txt"


@pytest.fixture(scope="module")
def clip(samples_dir: Path) -> Path:
    """A real ESC-50 clip."""
    return samples_dir / "esc50" / "audio" / CLIP


@pytest.fixture(scope="module")
def icbhi_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An icbhi_lung run folder (small LSRM, 1-s cycles)."""
    run_dir = tmp_path_factory.mktemp("run") / "icbhi"
    write_run("icbhi_lung", run_dir)
    return run_dir


@pytest.fixture(scope="module")
def esc50_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An esc50 run folder (small LSRM, 1-s clips)."""
    run_dir = tmp_path_factory.mktemp("run") / "esc50"
    write_run("esc50", run_dir)
    return run_dir


def _check_units(result: dict) -> np.ndarray:
    """Probabilities sum to 1 and the label is their argmax; returns the predicted indices."""
    classes = result["classes"]
    for u in result["units"]:
        assert list(u["probabilities"]) == classes
        assert sum(u["probabilities"].values()) == pytest.approx(1.0)
        assert u["label"] == max(u["probabilities"], key=u["probabilities"].get)
    return np.array([classes.index(u["label"]) for u in result["units"]])


@pytest.mark.samples
def test_icbhi_cycles_with_their_annotation(icbhi: tuple[Path, Path], icbhi_run: Path) -> None:
    wav, txt = icbhi
    model = load_model("icbhi_lung", icbhi_run)
    result = predict_files(model, [txt, wav])  # any order
    json.dumps(result, allow_nan=False)
    cycles = read_cycles(txt)
    assert result["unit"] == "cycle" and result["unit_s"] is None
    assert result["classes"] == list(CLASSES) and len(result["units"]) == len(cycles) == 6
    pred = _check_units(result)
    for u, c in zip(result["units"], cycles, strict=True):
        assert u["onset_s"] == c.start_s and u["duration_s"] == pytest.approx(c.end_s - c.start_s)
        assert u["reference"] == CLASSES[c.label]

    # the network read the cache's cycles through the test stage's transform
    pre = get_predictor(model).preprocess_config()
    source = SourceRecord(STEM, "103", (wav, txt), {"wav": str(wav), "txt": str(txt)})
    rec = preprocess_recording(source, pre)
    cfg = small_cfg("icbhi_lung", ("data.root=.",))
    transform = IcbhiDataModule(cfg).transform("test")
    rng = np.random.default_rng(0)
    items = np.stack(
        [
            transform(rec.arrays["x"][a:b], np.zeros(1), rng)[0]
            for a, b in zip(rec.arrays["cycle_start"], rec.arrays["cycle_stop"])
        ]
    )
    expected = model.logits(items)
    np.testing.assert_allclose([u["logits"] for u in result["units"]], expected, atol=1e-5)

    s, ref, agree = result["summary"], result["reference"], result["agreement"]
    assert s["n_units"] == 6 and sum(s["counts"].values()) == 6
    assert s["counts"] == {c: int((pred == k).sum()) for k, c in enumerate(CLASSES)}
    assert sum(s["shares"].values()) == pytest.approx(1.0)
    assert (s["device"], s["chest_location"], s["source_fs_hz"]) == ("LittC2SE", "Ar", 44100.0)
    assert ref["counts"] == {"normal": 2, "crackle": 0, "wheeze": 4, "both": 0}
    target = np.array([c.label for c in cycles])
    assert agree["accuracy"] == pytest.approx((pred == target).mean())
    confusion = np.array(agree["confusion_matrix"]["counts"])
    assert confusion.sum() == 6 and (confusion.sum(axis=1) == [2, 0, 4, 0]).all()
    sp = confusion[0, 0] / 2
    se = (confusion[2, 2]) / 4
    assert agree["icbhi_sp"] == pytest.approx(sp) and agree["icbhi_se"] == pytest.approx(se)
    assert agree["icbhi_score"] == pytest.approx((se + sp) / 2)
    kinds = [(t["kind"], t["name"]) for t in result["timeline"]]
    assert [k for k, _ in kinds] == ["signal", "events", "events"]
    reference_events = result["timeline"][2]["events"]
    assert [e["label"] for e in reference_events] == ["wheeze"] * 4


@pytest.mark.samples
def test_icbhi_without_annotation_reads_windows(icbhi: tuple[Path, Path], icbhi_run: Path) -> None:
    wav, _ = icbhi
    result = predict_files(load_model("icbhi_lung", icbhi_run), [wav])
    cycle_s = 1.0  # tests.deploy.runs.SMALLER
    n = wav_info(wav).duration_s / cycle_s
    assert result["unit"] == "window" and result["unit_s"] == cycle_s
    assert len(result["units"]) == round(n) == 20
    assert [u["onset_s"] for u in result["units"]] == [float(k) for k in range(20)]
    _check_units(result)
    assert result["reference"] is None and result["agreement"] is None
    assert "reference" not in result["units"][0]
    assert "No cycle file was given" in result["limitations"][0]
    assert [t["kind"] for t in result["timeline"]] == ["signal", "events"]


@pytest.mark.samples
def test_esc50_clip_with_its_class_from_the_name(
    clip: Path, esc50_run: Path, tmp_path: Path
) -> None:
    model = load_model("esc50", esc50_run)
    result = predict_files(model, [clip])
    json.dumps(result, allow_nan=False)
    (unit,) = result["units"]
    assert result["unit"] == "clip" and result["classes"] == list(CATEGORIES)
    assert len(CATEGORIES) == 50
    _check_units(result)
    s = result["summary"]
    probs = unit["probabilities"]
    ranked = sorted(probs, key=probs.get, reverse=True)
    assert [t["class"] for t in s["top5"]] == ranked[:5] and s["prediction"] == ranked[0]
    assert result["reference"]["class"] == unit["reference"] == "hand_saw"
    agree = result["agreement"]
    assert agree["top1_hit"] == (ranked[0] == "hand_saw")
    assert agree["top5_hit"] == ("hand_saw" in ranked[:5])
    assert agree["reference_rank"] == ranked.index("hand_saw") + 1
    assert "only its first 1 s" in result["limitations"][0]  # a 5-s clip, a 1-s network
    assert [t["kind"] for t in result["timeline"]] == ["signal"]

    # another name: no reference
    renamed = tmp_path / "my_recording.wav"
    shutil.copy(clip, renamed)
    other = predict_files(model, [renamed])
    assert other["reference"] is None and other["agreement"] is None
    assert other["units"][0]["probabilities"] == probs


@pytest.mark.samples
def test_onnx_gives_the_checkpoints_answer(
    icbhi: tuple[Path, Path], icbhi_run: Path, tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from sleepbench.deploy.export import export_onnx

    export_onnx("icbhi_lung", icbhi_run, tmp_path / "m.onnx")
    from_ckpt = predict_files(load_model("icbhi_lung", icbhi_run), list(icbhi))
    from_onnx = predict_files(load_model("icbhi_lung", tmp_path / "m.onnx"), list(icbhi))
    assert from_onnx["model"]["format"] == "onnx"
    assert [u["label"] for u in from_onnx["units"]] == [u["label"] for u in from_ckpt["units"]]
    np.testing.assert_allclose(
        [u["logits"] for u in from_onnx["units"]],
        [u["logits"] for u in from_ckpt["units"]],
        atol=1e-3,
    )
    assert from_onnx["agreement"] == from_ckpt["agreement"]


@pytest.mark.samples
def test_bad_file_sets_are_refused_with_the_file_named(
    icbhi: tuple[Path, Path], clip: Path, icbhi_run: Path, esc50_run: Path, tmp_path: Path
) -> None:
    wav, txt = icbhi
    model = load_model("icbhi_lung", icbhi_run)
    other_txt = tmp_path / "101_1b1_Al_sc_Meditron.txt"
    shutil.copy(txt, other_txt)
    with pytest.raises(
        InputError, match=f"101_1b1_Al_sc_Meditron.txt is not the cycle file of {STEM}"
    ):
        predict_files(model, [wav, other_txt])
    notes = tmp_path / "notes.csv"
    notes.write_text("a,b\n")
    with pytest.raises(InputError, match="notes.csv: not a .wav or cycle .txt"):
        predict_files(model, [wav, notes])
    with pytest.raises(InputError, match="exactly one .wav, got 2"):
        predict_files(model, [wav, clip])
    # a wav cut to a third: its cycles lie past its end
    short = tmp_path / "cut" / wav.name
    short.parent.mkdir()
    short.write_bytes(wav.read_bytes()[: wav.stat().st_size // 3])
    with pytest.raises(RecordingError, match=f"{STEM}.txt.*beyond the recording"):
        predict_files(model, [short, txt])
    # a wav cut inside its header
    broken = tmp_path / "broken" / wav.name
    broken.parent.mkdir()
    broken.write_bytes(wav.read_bytes()[:20])
    with pytest.raises(RecordingError, match=f"{STEM}.wav"):
        predict_files(model, [broken])

    esc = load_model("esc50", esc50_run)
    with pytest.raises(InputError, match="one clip at a time, got 2"):
        predict_files(esc, [clip, wav])
    with pytest.raises(InputError, match="notes.csv: not a .wav"):
        predict_files(esc, [notes])
    empty = tmp_path / "empty" / CLIP
    empty.parent.mkdir()
    empty.write_bytes(clip.read_bytes()[:44])  # the header, no sample
    with pytest.raises(RecordingError, match=CLIP):
        predict_files(esc, [empty])
