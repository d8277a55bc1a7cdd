"""Physiology of the synthetic Sleep-EDF nights, measured on the written files.

Every figure here comes from the EDF files read back with the project's readers (PSG channels
with ``read_edf``, stages from the hypnogram's annotations), never from the generator's tables:
band powers per stage, the 1/f slope, detections by YASA's independent spindle, slow-wave and
rapid-eye-movement detectors, and the R&K slow-wave criterion.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from sleepbench.io.edf import read_edf, read_edf_annotations
from sleepbench.tasks.sleep_edf.synth import ANNOTATION_TEXT, write_synthetic_sleep_edf

FS = 100.0
SPE = int(30 * FS)
CHANNELS = ("EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal")
_CODE = {text: code for code, text in ANNOTATION_TEXT.items()}
#: R&K code -> YASA's integer stage (0 W, 1 N1, 2 N2, 3 N3, 4 REM; -1 not scored)
_YASA_STAGE = {"W": 0, "1": 1, "2": 2, "3": 3, "4": 3, "R": 4}


def _read_night(psg: Path, hypnogram: Path, n_epochs: int) -> dict[str, np.ndarray]:
    rec = read_edf(psg, channels=list(CHANNELS), expected_fs_hz=FS)
    out = {c: rec.signals[c].data.astype(np.float64)[: n_epochs * SPE] for c in CHANNELS}
    codes = []
    for event in read_edf_annotations(hypnogram):
        codes += [_CODE[event.label]] * int(round(event.duration_s / 30.0))
    out["stage"] = np.array(codes[:n_epochs])
    return out


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("sleep-cassette")
    written = write_synthetic_sleep_edf(root, n_subjects=2, nights_per_subject=1, minutes=240)
    return [_read_night(n.psg_path, n.hypnogram_path, n.n_epochs) for n in written]


@pytest.fixture(scope="module")
def spectra(nights) -> dict[str, np.ndarray]:
    """Per-epoch Welch spectra (4-s segments) of the three channels, nights concatenated."""
    out: dict[str, list[np.ndarray]] = {c: [] for c in CHANNELS}
    for night in nights:
        for c in CHANNELS:
            f, p = welch(night[c].reshape(-1, SPE), fs=FS, nperseg=400, axis=1)
            out[c].append(p)
    res = {c: np.concatenate(v) for c, v in out.items()}
    res["freqs"] = f
    res["stage"] = np.concatenate([n["stage"] for n in nights])
    return res


def _band(spectra: dict[str, np.ndarray], channel: str, lo: float, hi: float) -> np.ndarray:
    f = spectra["freqs"]
    return spectra[channel][:, (f >= lo) & (f < hi)].sum(axis=1) * (f[1] - f[0])


def _rel(spectra: dict[str, np.ndarray], channel: str, lo: float, hi: float) -> np.ndarray:
    return _band(spectra, channel, lo, hi) / _band(spectra, channel, 0.5, 30.0)


def _median_by_stage(values: np.ndarray, stage: np.ndarray) -> dict[str, float]:
    groups = {"W": ["W"], "N1": ["1"], "N2": ["2"], "N3": ["3", "4"], "REM": ["R"]}
    return {k: float(np.median(values[np.isin(stage, v)])) for k, v in groups.items()}


def test_amplitudes_in_microvolts(nights) -> None:
    sd = np.concatenate([n["EEG Fpz-Cz"].reshape(-1, SPE).std(axis=1) for n in nights])
    stage = np.concatenate([n["stage"] for n in nights])
    m = _median_by_stage(sd, stage)
    assert 8 < m["W"] < 40 and 8 < m["N1"] < 30 and 10 < m["N2"] < 35
    assert 20 < m["N3"] < 80  # high-amplitude slow-wave sleep
    assert 6 < m["REM"] < 25  # low-amplitude REM
    assert m["REM"] < m["N2"] < m["N3"]


def test_one_over_f_background_steepens_with_depth(spectra) -> None:
    f, stage = spectra["freqs"], spectra["stage"]
    sel = (f >= 2.0) & (f <= 30.0)
    slope = {}
    for name, codes in {"W": ["W"], "N2": ["2"], "N3": ["3", "4"], "REM": ["R"]}.items():
        mean = spectra["EEG Fpz-Cz"][np.isin(stage, codes)][:, sel].mean(axis=0)
        slope[name] = np.polyfit(np.log10(f[sel]), np.log10(mean), 1)[0]
    assert all(-3.5 < s < -0.3 for s in slope.values()), slope
    assert slope["W"] > slope["REM"] > slope["N2"] > slope["N3"], slope


def test_wake_alpha_and_muscle(spectra) -> None:
    stage = spectra["stage"]
    alpha_pz = _median_by_stage(_rel(spectra, "EEG Pz-Oz", 8.0, 12.0), stage)
    alpha_fpz = _median_by_stage(_rel(spectra, "EEG Fpz-Cz", 8.0, 12.0), stage)
    assert alpha_pz["W"] > 2.0 * alpha_pz["N2"] and alpha_pz["W"] > 3.0 * alpha_pz["N3"]
    assert alpha_pz["W"] > 1.5 * alpha_pz["REM"] and alpha_pz["W"] > 1.5 * alpha_pz["N1"]
    assert alpha_pz["W"] > alpha_fpz["W"]  # posterior alpha
    high = _median_by_stage(_band(spectra, "EEG Fpz-Cz", 20.0, 45.0), stage)  # beta + EMG
    assert high["W"] > 3.0 * high["N2"] and high["W"] > 3.0 * high["REM"]


def test_theta_in_n1_and_rem(spectra) -> None:
    theta = _median_by_stage(_rel(spectra, "EEG Fpz-Cz", 4.0, 8.0), spectra["stage"])
    assert theta["N1"] > 1.3 * theta["W"] and theta["REM"] > 1.3 * theta["W"]
    assert theta["N1"] > theta["N2"] > theta["N3"]


def _detections_per_minute(nights, detect) -> dict[int, float]:
    """Events per minute of each YASA stage (0 W .. 4 REM), pooled over the nights."""
    counts, minutes = np.zeros(5), np.zeros(5)
    for night in nights:
        hypno = np.repeat([_YASA_STAGE.get(s, -1) for s in night["stage"]], SPE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = detect(night, hypno)
        summary = res.summary() if res is not None else None
        for k in range(5):
            minutes[k] += np.sum(hypno == k) / FS / 60.0
            if summary is not None:
                counts[k] += np.sum(summary["Stage"] == k)
    return {k: counts[k] / minutes[k] for k in range(5)}


def test_spindles_in_n2(nights) -> None:
    import yasa

    summaries = []

    def detect(night, hypno):
        res = yasa.spindles_detect(
            night["EEG Fpz-Cz"], FS, hypno=hypno, include=(0, 1, 2, 3, 4), verbose=False
        )
        summaries.append(res.summary())
        return res

    rate = _detections_per_minute(nights, detect)
    assert rate[2] > 2.0, rate  # N2: spindles every half minute or more
    assert rate[2] > 4.0 * rate[4] and rate[2] > 4.0 * rate[0] and rate[2] > 2.0 * rate[3], rate
    found = np.concatenate(
        [s.loc[s["Stage"] == 2, ["Frequency", "Duration"]].to_numpy() for s in summaries]
    )
    assert 11.0 <= np.median(found[:, 0]) <= 16.0  # sigma band
    assert 0.5 <= np.median(found[:, 1]) <= 2.0  # 0.5-2 s


def test_k_complexes_and_slow_waves(nights) -> None:
    import yasa

    rate = _detections_per_minute(
        nights,
        lambda night, hypno: yasa.sw_detect(
            night["EEG Fpz-Cz"], FS, hypno=hypno, include=(0, 1, 2, 3, 4), verbose=False
        ),
    )
    assert rate[3] > 5.0, rate  # N3: many >= 75 µV slow waves per minute
    assert rate[3] > 3.0 * rate[2], rate
    assert rate[2] > 0.3, rate  # N2: K-complexes
    assert rate[2] > 5.0 * max(rate[4], rate[0], 0.02), rate  # none in REM or wake


def test_n3_high_amplitude_delta(nights) -> None:
    """R&K: stage 3 has 20-50 %, stage 4 over 50 % of 0.5-2 Hz waves >= 75 µV peak to peak."""
    sos = butter(4, [0.5, 2.0], "bandpass", fs=FS, output="sos")
    frac, stage = [], []
    for night in nights:
        slow = sosfiltfilt(sos, night["EEG Fpz-Cz"]).reshape(-1, 15, int(2 * FS))  # 2-s windows
        frac.append((np.ptp(slow, axis=2) >= 75.0).mean(axis=1))
        stage.append(night["stage"])
    frac, stage = np.concatenate(frac), np.concatenate(stage)
    n3 = np.isin(stage, ["3", "4"])
    assert np.median(frac[n3]) >= 0.2 and np.mean(frac[n3] >= 0.2) > 0.7
    assert np.median(frac[stage == "4"]) > 0.5
    assert np.median(frac[stage == "2"]) < 0.2
    assert np.median(frac[stage == "R"]) == 0.0 and np.median(frac[stage == "W"]) == 0.0


def test_eye_movements(nights, spectra) -> None:
    import yasa

    # rapid eye movements and saccades: YASA's REM detector on the horizontal EOG (its two
    # inputs are LOC and ROC, which see a horizontal movement with opposite signs)
    rate = _detections_per_minute(
        nights,
        lambda night, hypno: yasa.rem_detect(
            night["EOG horizontal"],
            -night["EOG horizontal"],
            FS,
            hypno=hypno,
            include=(0, 1, 2, 3, 4),
            verbose=False,
        ),
    )
    assert rate[4] > 3.0 and rate[4] > 5.0 * rate[2], rate  # REM bursts, quiet eyes in N2
    assert rate[0] > 3.0 and rate[0] > 5.0 * rate[2], rate  # saccades in wake
    # slow rolling eye movements (0.15-0.6 Hz) at sleep onset
    f, p = welch(
        np.concatenate([n["EOG horizontal"] for n in nights]).reshape(-1, SPE),
        fs=FS,
        nperseg=1000,
        axis=1,
    )
    sem = _median_by_stage(p[:, (f >= 0.15) & (f < 0.6)].sum(axis=1), spectra["stage"])
    assert sem["N1"] > 3.0 * sem["N2"] and sem["N1"] > 1.5 * sem["REM"], sem


def test_night_structure(nights) -> None:
    for night in nights:
        st = night["stage"]
        assert st[0] == "W" and st[-1] == "W"
        first = np.flatnonzero(st != "W")[0]
        assert st[first] == "1"  # sleep onset through stage 1
        idx = np.arange(st.size)
        assert np.mean(idx[np.isin(st, ["3", "4"])] < st.size / 2) > 0.7  # SWS early
        assert np.mean(idx[st == "R"] > st.size / 2) > 0.6  # REM late
        rem = (st == "R").astype(int)
        assert np.sum(np.diff(rem) == 1) >= 2  # at least two NREM-REM cycles
