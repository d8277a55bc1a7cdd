"""``sleepbench predict`` on sleep_edf: a synthetic Sleep-EDF night (PSG EDF with a patient field
+ hypnogram EDF+) through the cache's reader and scaling, covered by sequences as at test time,
from a checkpoint and from its ONNX export; hypnogram statistics and agreement; refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score

from sleepbench.cache.build import SourceRecord
from sleepbench.cli import main
from sleepbench.deploy.model import DeployedModel, load_model
from sleepbench.deploy.predict import InputError, get_predictor, predict_files, softmax
from sleepbench.errors import RecordingError
from sleepbench.io.edf import read_edf
from sleepbench.io.edf_write import write_edf
from sleepbench.io.sleep_edf_labels import read_hypnogram
from sleepbench.tasks.sleep_edf.data import CLASS_NAMES, preprocess_night
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf
from tests.deploy.runs import write_run

N_EPOCHS = 41  # 20.5 min: not a whole number of 3-epoch sequences
SEQ = 3  # data.seq_epochs of the small run
CLASSES = ["W", "N1", "N2", "N3", "REM"]
NAME, BIRTH = "Jane_Roe", "12-MAR-1951"


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Synthetic night SC4001E0 of 41 epochs (PSG with an identifying EDF+ patient field)."""
    root = tmp_path_factory.mktemp("sedf")
    (n,) = write_synthetic_sleep_edf(root, n_subjects=1, nights_per_subject=1, minutes=20.5, seed=3)
    raw = bytearray(n.psg_path.read_bytes())
    raw[8:88] = f"MCH-0234567 F {BIRTH} {NAME}".ljust(80).encode("ascii")
    n.psg_path.write_bytes(bytes(raw))
    return n.psg_path, n.hypnogram_path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sleep_edf run folder (small network, 3-epoch sequences at 64 Hz)."""
    run_dir = tmp_path_factory.mktemp("run") / "sedf"
    write_run("sleep_edf", run_dir)
    return run_dir


def expected_probs(model: DeployedModel, psg: Path, hyp: Path) -> np.ndarray:
    """Per-epoch probabilities (AASM order) from the cache's own input, computed directly: the
    first covering sequence of each epoch, softmax averaged over both EEG derivations."""
    pre = get_predictor(model).preprocess_config()
    cached = preprocess_night(SourceRecord("SC4001E0", "SC400", (psg, hyp), {"night": 1}), pre)
    # precondition: the synthetic hypnogram scores the first and last epoch, so the cache keeps
    # (and scales over) the whole night, as predict does
    assert (cached.attrs["epoch_offset"], cached.attrs["n_epochs"]) == (0, N_EPOCHS)
    x = cached.arrays["x"]
    spe = x.shape[1] // N_EPOCHS
    starts = [
        (i // SEQ) * SEQ if i < (N_EPOCHS // SEQ) * SEQ else N_EPOCHS - SEQ for i in range(N_EPOCHS)
    ]
    views = [  # per view, the stage probabilities of every sequence start [n_starts, 5, SEQ]
        softmax(model.logits(np.stack([x[[e, 2], a * spe : (a + SEQ) * spe] for a in starts])), 1)
        for e in (0, 1)
    ]
    mean = np.mean(views, axis=0)
    out = np.stack([mean[i, :, i - a] for i, a in enumerate(starts)])
    return out[:, [CLASS_NAMES.index(c) for c in CLASSES]]


def test_a_night_with_its_hypnogram(night: tuple[Path, Path], run: Path) -> None:
    psg, hyp = night
    model = load_model("sleep_edf", run)
    result = predict_files(model, [hyp, psg])  # any order
    text = json.dumps(result, allow_nan=False)
    assert NAME not in text and BIRTH not in text and "MCH-0234567" not in text
    units = result["units"]
    assert result["unit"] == "epoch" and result["unit_s"] == 30 and result["classes"] == CLASSES
    assert len(units) == N_EPOCHS == result["summary"]["n_epochs"]
    probs = np.array([[u["probabilities"][c] for c in CLASSES] for u in units])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    pred = [u["label"] for u in units]
    assert pred == [CLASSES[i] for i in probs.argmax(axis=1)]
    np.testing.assert_allclose(probs, expected_probs(model, psg, hyp), atol=1e-5)

    s = result["summary"]
    assert s["tib_min"] == N_EPOCHS * 0.5
    assert s["tst_min"] == sum(p != "W" for p in pred) * 0.5
    assert s["w_min"] == pred.count("W") * 0.5
    assert s["sleep_efficiency_pct"] == pytest.approx(100 * s["tst_min"] / s["tib_min"])

    # reference = the hypnogram on the PSG's epochs; agreement on its scored epochs
    ref = read_hypnogram(hyp)[:N_EPOCHS]
    assert [u["reference"] for u in units] == ref
    scored = [i for i, r in enumerate(ref) if r is not None]
    assert result["reference"]["scored_epochs"] == len(scored)
    assert result["reference"]["tst_min"] == sum(r not in ("W", None) for r in ref) * 0.5
    y_true = [CLASSES.index(ref[i]) for i in scored]
    y_pred = [CLASSES.index(pred[i]) for i in scored]
    a = result["agreement"]
    assert a["compared_epochs"] == len(scored)
    assert a["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-6)
    assert a["kappa"] == pytest.approx(cohen_kappa_score(y_true, y_pred), abs=1e-6)
    f1 = f1_score(y_true, y_pred, labels=range(5), average=None, zero_division=0)
    assert a["f1_macro"] == pytest.approx(f1.mean(), abs=1e-6)
    assert list(a["f1_per_stage"].values()) == pytest.approx(f1.tolist(), abs=1e-6)
    cm = a["confusion_matrix"]
    assert cm["classes"] == CLASSES and cm["rows"] == "reference"
    assert cm["counts"] == confusion_matrix(y_true, y_pred, labels=range(5)).tolist()

    tracks = result["timeline"]
    assert [t["kind"] for t in tracks] == ["signal"] * 3 + ["stages"] * 2
    assert tracks[3]["labels"] == pred and tracks[4]["labels"] == ref
    assert tracks[3]["order"] == ["W", "REM", "N1", "N2", "N3"]
    for key in [*s, *result["reference"], *a]:
        assert key in result["definitions"] or key == "file", key


def test_without_hypnogram_the_same_night_is_staged(night: tuple[Path, Path], run: Path) -> None:
    model = load_model("sleep_edf", run)
    alone = predict_files(model, [night[0]])
    paired = predict_files(model, list(night))
    assert alone["reference"] is None and alone["agreement"] is None
    assert all("reference" not in u for u in alone["units"])
    assert [u["label"] for u in alone["units"]] == [u["label"] for u in paired["units"]]
    assert [t["kind"] for t in alone["timeline"]] == ["signal"] * 3 + ["stages"]
    assert alone["recording"]["files"] == [night[0].name]
    assert alone["recording"]["record_id"] == "SC4001E0"


def test_onnx_gives_the_checkpoints_answer(
    night: tuple[Path, Path], run: Path, tmp_path: Path
) -> None:
    from sleepbench.deploy.export import export_onnx

    export_onnx("sleep_edf", run, tmp_path / "m.onnx")
    from_ckpt = predict_files(load_model("sleep_edf", run), list(night))
    from_onnx = predict_files(load_model("sleep_edf", tmp_path / "m.onnx"), list(night))
    assert from_onnx["model"]["format"] == "onnx"
    assert [u["label"] for u in from_onnx["units"]] == [u["label"] for u in from_ckpt["units"]]
    for a, b in zip(from_onnx["units"], from_ckpt["units"], strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)
    assert from_onnx["reference"] == from_ckpt["reference"]


def test_bad_file_sets_are_refused_with_the_file_named(
    night: tuple[Path, Path], run: Path, tmp_path: Path
) -> None:
    psg, hyp = night
    model = load_model("sleep_edf", run)
    other = tmp_path / "SC4011EA-Hypnogram.edf"
    shutil.copy(hyp, other)
    with pytest.raises(InputError, match="SC4011EA-Hypnogram.edf is not the hypnogram of"):
        predict_files(model, [psg, other])
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(InputError, match="notes.txt: not an EDF file"):
        predict_files(model, [psg, notes])
    with pytest.raises(InputError, match="exactly one PSG EDF, got 0"):
        predict_files(model, [hyp])
    copy = tmp_path / "SC4002E0-PSG.edf"
    shutil.copy(psg, copy)
    with pytest.raises(InputError, match="exactly one PSG EDF, got 2"):
        predict_files(model, [psg, copy])

    truncated = tmp_path / "cut" / psg.name
    truncated.parent.mkdir()
    truncated.write_bytes(psg.read_bytes()[: len(psg.read_bytes()) // 3])
    with pytest.raises(RecordingError, match=psg.name):
        predict_files(model, [truncated])

    # two epochs: shorter than one 3-epoch sequence
    rec = read_edf(psg, ["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"])
    for s in rec.signals.values():
        s.data = s.data[:6000]
    short = write_edf(tmp_path / "short" / "SC4001E0-PSG.edf", list(rec.signals.values()))
    with pytest.raises(RecordingError, match="SC4001E0-PSG.edf: 2 whole 30-s epochs"):
        predict_files(model, [short])


@pytest.mark.samples
def test_a_real_hypnogram_longer_than_the_psg_is_refused(
    samples_dir: Path, night: tuple[Path, Path], run: Path
) -> None:
    """The real SC4001EC hypnogram scores ~22 h; beside a 20-min PSG of the same name it means a
    truncated PSG (the cache build's rule)."""
    real = samples_dir / "sleep_edf" / "SC4001EC-Hypnogram.edf"
    with pytest.raises(RecordingError, match="SC4001EC-Hypnogram.edf: hypnogram scores"):
        predict_files(load_model("sleep_edf", run), [night[0], real])


def test_cli_writes_the_json(
    night: tuple[Path, Path], run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "pred"
    argv = ["predict", "--task", "sleep_edf", "--ckpt", str(run), "--out", str(out)]
    assert main([*argv, *map(str, night)]) == 0
    saved = json.loads((out / "SC4001E0.json").read_text())
    assert len(saved["units"]) == N_EPOCHS and saved["agreement"] is not None
    assert (out / "SC4001E0.html").is_file()
    capsys.readouterr()
    assert main([*argv, str(night[1])]) == 2  # the hypnogram alone
    assert "exactly one PSG EDF" in capsys.readouterr().err
