"""Synthetic Apnea-ECG database: real file layout, record plan, determinism and learnability.

The physiology of the generated files is measured in ``test_synth_physiology.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.ndimage import median_filter
from scipy.signal import periodogram
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sleepbench.io.apnea_ecg_labels import read_apn, read_event1_answers, read_event2_answers
from sleepbench.tasks.apnea_ecg import synth_ecg as synth_ecg_module
from sleepbench.tasks.apnea_ecg.synth import (
    FS_HZ,
    SAMPLES_PER_MINUTE,
    allocate_classes,
    format_event2_answers,
    record_plan,
    simulate_apnea_ecg_record,
    write_apn,
    write_synthetic_apnea_ecg,
)
from sleepbench.tasks.apnea_ecg.synth_events import PAC, PVC, SINUS, place_ectopic_beats
from sleepbench.tasks.apnea_ecg.synth_physiology import draw_physiology

MINUTES = 60
N_RELEASED, N_WITHHELD = 6, 4


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("apnea_ecg")
    manifest = write_synthetic_apnea_ecg(root, N_RELEASED, N_WITHHELD, minutes=MINUTES, seed=0)
    return root, manifest


def _released(manifest: dict) -> list[str]:
    return [name for name in manifest if not name.startswith("x")]


def _withheld(manifest: dict) -> list[str]:
    return [name for name in manifest if name.startswith("x")]


# --- layout ------------------------------------------------------------------------------------


def test_manifest_names_and_files(database):
    root, manifest = database
    assert list(manifest) == ["a01", "a02", "a03", "b01", "c01", "c02", "x01", "x02", "x03", "x04"]
    for name, entry in manifest.items():
        assert entry["class"] in "ABC" and entry["minutes"] == MINUTES
        assert 0 <= entry["apnea_minutes"] <= MINUTES
        for ext in ("hea", "dat", "qrs"):
            assert (root / f"{name}.{ext}").is_file()
        assert (root / f"{name}.apn").is_file() == (not name.startswith("x"))
    assert [manifest[n]["class"] for n in _released(manifest)] == ["A", "A", "A", "B", "C", "C"]
    for listing in ("RECORDS", "list"):
        assert (root / listing).read_text().split() == list(manifest)


def test_signals_and_annotations_read_back_with_wfdb(database):
    root, manifest = database
    for name, entry in manifest.items():
        record = wfdb.rdrecord(str(root / name))
        assert record.fs == FS_HZ and record.n_sig == 1
        assert record.sig_len == MINUTES * SAMPLES_PER_MINUTE
        assert record.sig_name == ["ECG"] and record.units == ["mV"] and record.fmt == ["16"]
        assert record.adc_gain == [200.0]
        ecg = record.p_signal[:, 0]
        assert np.isfinite(ecg).all() and 0.05 < ecg.std() < 2.0

        qrs = wfdb.rdann(str(root / name), "qrs")
        assert set(qrs.symbol) == {"N"}
        rr_s = np.diff(qrs.sample) / FS_HZ
        assert 0.6 < np.median(rr_s) < 1.4  # 43–100 bpm
        # R peaks sit on the QRS: the ECG there is far above its median (R waves are positive).
        assert np.median(np.abs(ecg[qrs.sample] - np.median(ecg))) > 0.3

        if name.startswith("x"):
            continue
        apn = wfdb.rdann(str(root / name), "apn")
        assert apn.ann_len == MINUTES
        np.testing.assert_array_equal(apn.sample, np.arange(MINUTES) * SAMPLES_PER_MINUTE)
        assert set(apn.symbol) <= {"A", "N"}
        assert apn.symbol.count("A") == entry["apnea_minutes"]
        assert read_apn(root / name) == apn.symbol


@pytest.mark.samples
def test_apn_bytes_and_header_mirror_the_real_database(samples_dir, tmp_path, database):
    real = samples_dir / "apnea_ecg"
    labels = "".join(wfdb.rdann(str(real / "a01"), "apn").symbol)
    write_apn("a01", labels, tmp_path)
    assert (tmp_path / "a01.apn").read_bytes() == (real / "a01.apn").read_bytes()

    root, _ = database
    ours, theirs = wfdb.rdheader(str(root / "a01")), wfdb.rdheader(str(real / "a01"))
    for field in ("n_sig", "fs", "fmt", "adc_gain", "adc_res", "adc_zero", "baseline", "units"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.sig_name == theirs.sig_name == ["ECG"]
    ours_apn = wfdb.rdann(str(root / "a01"), "apn", return_label_elements=["label_store"])
    theirs_apn = wfdb.rdann(str(real / "a01"), "apn", return_label_elements=["label_store"])
    assert set(ours_apn.label_store) == set(theirs_apn.label_store) == {1, 8}  # N, A


@pytest.mark.samples
def test_answer_files_parse_like_the_real_ones(samples_dir, database):
    real = samples_dir / "apnea_ecg"
    real_labels = read_event2_answers(real / "event-2-answers")
    assert len(real_labels) == 35 and real_labels["x01"].count("A") == 375
    assert len(read_event1_answers(real / "event-1-answers")) == 35
    # The writer reproduces the real text exactly from the parsed labels.
    text = format_event2_answers({k: "".join(v) for k, v in real_labels.items()})
    assert text == (real / "event-2-answers").read_text()

    root, manifest = database
    classes = read_event1_answers(root / "event-1-answers")
    labels = read_event2_answers(root / "event-2-answers")
    assert list(classes) == list(labels) == _withheld(manifest)
    for name in _withheld(manifest):
        assert classes[name] == manifest[name]["class"]
        assert len(labels[name]) == MINUTES
        assert labels[name].count("A") == manifest[name]["apnea_minutes"]


# --- determinism and record plan ---------------------------------------------------------------


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    def files(seed: int, folder: str) -> dict[str, bytes]:
        write_synthetic_apnea_ecg(tmp_path / folder, 2, 1, minutes=3, seed=seed)
        return {p.name: p.read_bytes() for p in sorted((tmp_path / folder).iterdir())}

    first, again, other = files(7, "a"), files(7, "b"), files(8, "c")
    assert first == again
    assert first.keys() == other.keys()
    assert first["a01.dat"] != other["a01.dat"]


def test_record_plan_follows_the_real_class_mix():
    assert allocate_classes(35) == {"A": 20, "B": 5, "C": 10}
    assert allocate_classes(6) == {"A": 3, "B": 1, "C": 2}
    for n in range(40):
        counts = allocate_classes(n)
        assert sum(counts.values()) == n
        assert n < 3 or min(counts.values()) >= 1
    plan = record_plan(35, 35, seed=0)
    names = [name for name, _ in plan]
    assert names[:35] == [f"a{i:02d}" for i in range(1, 21)] + [
        f"{c}{i:02d}" for c, k in (("b", 5), ("c", 10)) for i in range(1, k + 1)
    ]
    assert names[35:] == [f"x{i:02d}" for i in range(1, 36)]
    withheld = [cls for _, cls in plan[35:]]
    assert sorted(withheld) == ["A"] * 20 + ["B"] * 5 + ["C"] * 10
    assert withheld != sorted(withheld)  # class not readable from the x number


@pytest.mark.parametrize("kwargs", [{"n_released": 0}, {"n_withheld": -1}, {"minutes": 0}], ids=str)
def test_invalid_arguments_are_rejected(tmp_path, kwargs):
    with pytest.raises(ValueError):
        write_synthetic_apnea_ecg(tmp_path, **kwargs)


# --- one record ----------------------------------------------------------------------------------


def test_simulated_record_is_consistent_and_reproducible():
    minutes = 5
    record = simulate_apnea_ecg_record("a01", "A", minutes, np.random.default_rng(0))
    assert record.ecg_mv.dtype == np.float32 and record.ecg_mv.shape == (minutes * 6000,)
    assert len(record.minute_labels) == minutes and set(record.minute_labels) <= {"A", "N"}
    assert record.apnea_minutes >= 1  # A and B records always carry apnea, even short ones
    qrs = record.qrs_samples
    assert qrs.dtype == np.int64 and (np.diff(qrs) > 0).all()
    assert qrs[0] >= 0 and qrs[-1] < record.ecg_mv.size
    events, recoveries = record.event_intervals_s, record.recovery_intervals_s
    assert events.shape == recoveries.shape and events.shape[1] == 2
    np.testing.assert_array_equal(events[:, 1], recoveries[:, 0])  # recovery follows its event
    again = simulate_apnea_ecg_record("a01", "A", minutes, np.random.default_rng(0))
    np.testing.assert_array_equal(record.ecg_mv, again.ecg_mv)
    np.testing.assert_array_equal(record.qrs_samples, again.qrs_samples)


def test_ectopic_beats_leave_the_rest_of_the_record_as_it_was(monkeypatch):
    # The ectopy draws from its own stream: without it, the record is the same sinus beats, events
    # and noise; with it, only the ectopic beats (and, after an atrial beat resets the sinus node,
    # the later beat times) differ.
    minutes = 30
    record = simulate_apnea_ecg_record("a01", "A", minutes, np.random.default_rng(3))
    monkeypatch.setattr(
        synth_ecg_module,
        "place_ectopic_beats",
        lambda rng, phase, end, hours, phys: (phase, np.zeros(phase.size, dtype=np.int8)),
    )
    sinus = simulate_apnea_ecg_record("a01", "A", minutes, np.random.default_rng(3))
    assert set(sinus.beat_symbols) == {"N"} and {"V", "A"} <= set(record.beat_symbols)
    np.testing.assert_array_equal(record.event_intervals_s, sinus.event_intervals_s)
    assert record.minute_labels == sinus.minute_labels
    first_pac = np.flatnonzero(record.beat_symbols == "A")[0]
    same = record.beat_symbols[:first_pac] == "N"
    np.testing.assert_array_equal(
        record.beat_times_s[:first_pac][same], sinus.beat_times_s[:first_pac][same]
    )
    # Far (> 1.5 s) from every ectopic beat and before the first reset, the ECG is unchanged.
    near = np.zeros(record.ecg_mv.size, dtype=bool)
    for sample in np.concatenate([record.pvc_samples, record.pac_samples]):
        near[max(0, sample - 150) : sample + 150] = True
    far = ~near[: record.pac_samples.min()]
    np.testing.assert_array_equal(record.ecg_mv[: far.size][far], sinus.ecg_mv[: far.size][far])


def test_premature_beats_are_timed_like_ventricular_and_atrial_ectopy():
    phys = draw_physiology(np.random.default_rng(0), "B")
    frequent = dataclasses.replace(
        phys, ectopy=dataclasses.replace(phys.ectopy, pvc_per_h=600.0, pac_per_h=300.0)
    )
    sinus = np.arange(4000) + 0.25  # phases: one unit is the running RR
    phase, kind = place_ectopic_beats(np.random.default_rng(1), sinus, 4000.0, 1.0, frequent)
    assert (np.diff(phase) > 0).all() and phase[-1] < 4000.0
    pvc, pac = np.flatnonzero(kind == PVC), np.flatnonzero(kind == PAC)
    assert 450 < pvc.size < 650 and 200 < pac.size < 330
    assert not (np.diff(np.flatnonzero(kind != SINUS)) == 1).any()  # isolated, no couplets
    rr = np.diff(phase)
    eps = 1e-9  # phases are sums of floats
    # Ventricular: premature at 55-82 % of RR, then a fully compensatory pause.
    assert ((rr[pvc - 1] >= 0.55 - eps) & (rr[pvc - 1] <= 0.82 + eps)).all()
    np.testing.assert_allclose(rr[pvc - 1] + rr[pvc], 2.0)
    # Atrial: premature, then one RR plus the sinus node's conduction delay (non-compensatory);
    # the reset moves the later beats earlier, so a few sinus beats are added at the end.
    assert ((rr[pac - 1] >= 0.5 - eps) & (rr[pac - 1] <= 0.85 + eps)).all()
    assert (
        (rr[pac] >= 1.0 - eps) & (rr[pac] <= 1.0 + 1.5 * phys.ectopy.pac_reset_delay + eps)
    ).all()
    assert (rr[pac - 1] + rr[pac] < 2.0).all()
    assert phase.size > sinus.size
    sinus_rr = rr[(kind[:-1] == SINUS) & (kind[1:] == SINUS)]
    np.testing.assert_allclose(sinus_rr, 1.0)


@pytest.mark.parametrize(("apnea_class", "minutes"), [("D", 5), ("A", 0)])
def test_simulate_rejects_bad_class_and_length(apnea_class, minutes):
    with pytest.raises(ValueError):
        simulate_apnea_ecg_record("a01", apnea_class, minutes, np.random.default_rng(0))


# --- learnability ------------------------------------------------------------------------------


def _minute_features(stem: Path, minutes: int) -> np.ndarray:
    """Per-minute HR spread (from .qrs) and EDR band power level and swing (from the ECG)."""
    ecg = wfdb.rdrecord(str(stem)).p_signal[:, 0]
    r = wfdb.rdann(str(stem), "qrs").sample
    rr = np.diff(r) / FS_HZ
    median_rr = median_filter(rr, 5, mode="nearest")
    clean = (rr > 0.3) & (rr < 2.0) & (np.abs(rr - median_rr) < 0.3 * median_rr)
    hr, t_hr = 60 / rr[clean], r[1:][clean] / FS_HZ
    window = ecg[np.clip(r[:, None] + np.arange(-8, 9), 0, ecg.size - 1)]
    amplitude = window[:, 5:12].max(1) - window.min(1)
    amplitude /= np.median(amplitude)
    freqs = np.fft.rfftfreq(60, 0.25)
    band = (freqs >= 0.15) & (freqs <= 0.4)
    features = []
    for m in range(minutes):
        h = hr[(t_hr >= 60 * m) & (t_hr < 60 * m + 60)]
        h = h if h.size > 5 else np.full(6, np.median(hr))
        edr = np.interp(60 * m + np.arange(240) / 4, r / FS_HZ, amplitude).reshape(4, 60)
        power = periodogram(edr, fs=4, detrend="linear", axis=1)[1][:, band].sum(1) + 1e-6
        features.append(
            [
                h.std(),
                np.ptp(np.percentile(h, [5, 95])),
                np.log(power.mean()),
                np.log(power.max() / power.min()),
            ]
        )
    return np.array(features)


def test_minutes_are_learnable_from_simple_ecg_features(database):
    root, manifest = database
    answers = read_event2_answers(root / "event-2-answers")
    x_train = np.concatenate([_minute_features(root / n, MINUTES) for n in _released(manifest)])
    y_train = np.concatenate([np.array(read_apn(root / n)) == "A" for n in _released(manifest)])
    x_test = np.concatenate([_minute_features(root / n, MINUTES) for n in _withheld(manifest)])
    y_test = np.concatenate([np.array(answers[n]) == "A" for n in _withheld(manifest)])
    assert 0.1 < y_train.mean() < 0.5 and 0.1 < y_test.mean() < 0.5

    model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    predicted = model.fit(x_train, y_train).predict(x_test)
    majority = max(y_test.mean(), 1 - y_test.mean())
    assert balanced_accuracy_score(y_test, predicted) > 0.8
    assert accuracy_score(y_test, predicted) > majority + 0.1
