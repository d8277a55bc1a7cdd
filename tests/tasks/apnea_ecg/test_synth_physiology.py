"""Physiology of the synthetic Apnea-ECG database, measured on the written files.

Every figure comes from what a user of the database reads back (the ECG with ``wfdb.rdrecord``,
R peaks from ``.qrs``, labels from ``.apn`` and ``event-2-answers``, classes from
``event-1-answers``), never from the generator's internals, so the tests check what an apnea
detector would see. The database has 8 released + 4 withheld records of 240 minutes (the
default plan before it grew to 12 + 8; the same generator, three fifths of the records): class A
needs at least 100 apnea minutes, so shorter records cannot show all three classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.ndimage import binary_dilation, median_filter, uniform_filter1d
from scipy.signal import butter, find_peaks, periodogram, sosfiltfilt, welch

from sleepbench.io.apnea_ecg_labels import (
    apnea_class,
    read_apn,
    read_event1_answers,
    read_event2_answers,
)
from sleepbench.tasks.apnea_ecg.synth import (
    APNEA_FRACTION_RANGE,
    FS_HZ,
    SAMPLES_PER_MINUTE,
    write_synthetic_apnea_ecg,
)

N_RELEASED, N_WITHHELD, MINUTES, SEED = 8, 4, 240, 0
HR_FS = 2.0  # Hz, evenly resampled heart rate
EDR_FS = 4.0  # Hz, evenly resampled R amplitude
SURGE_BPM = 8.0  # a surge: 3-s mean heart rate this far above its 5-minute running median


@dataclass(frozen=True)
class Record:
    """One record as read back, with the series the tests measure on."""

    name: str
    planned_class: str  # from the record name (released) or event-1-answers (withheld)
    sig_len: int  # samples at 100 Hz
    apnea: np.ndarray  # bool per minute
    qrs: np.ndarray  # R-peak samples
    rr_s: np.ndarray  # RR intervals (s), one per qrs[1:]
    rr_ok: np.ndarray  # RR within 20 % of its 9-beat running median (no detection error)
    premature: np.ndarray  # the RR ends on an early beat followed by a full cycle (_premature)
    compensatory: np.ndarray  # ... and the two intervals add up to twice the median RR
    hr_bpm: np.ndarray  # heart rate at HR_FS from the clean RR intervals
    r_amp_mv: np.ndarray  # R-wave amplitude above the PR segment, per beat
    iso_mv: np.ndarray  # ECG level in the PR segment (isoelectric line), per beat
    beat_s: np.ndarray  # time of the beats of r_amp_mv / iso_mv (s)
    qrs_ptp_mv: np.ndarray  # peak-to-peak ECG within ±80 ms of each qrs[1:] beat
    qrs_width_s: np.ndarray  # width at half maximum of the QRS's largest deflection, per qrs[1:]

    @property
    def minutes(self) -> int:
        return self.apnea.size


def _read(root: Path, name: str, planned: str, labels: list[str]) -> Record:
    ecg = wfdb.rdrecord(str(root / name)).p_signal[:, 0]
    qrs = wfdb.rdann(str(root / name), "qrs").sample
    rr_s = np.diff(qrs) / FS_HZ
    local_rr = median_filter(rr_s, 9, mode="nearest")
    rr_ok = np.abs(rr_s - local_rr) < 0.2 * local_rr
    premature, compensatory = _premature(rr_s, local_rr)
    qrs_ptp_mv, qrs_width_s = _qrs_shape(ecg, qrs[1:])
    minutes = len(labels)
    grid_s = np.arange(0.0, minutes * 60.0, 1.0 / HR_FS)
    hr_bpm = np.interp(grid_s, qrs[1:][rr_ok] / FS_HZ, 60.0 / rr_s[rr_ok])
    # Sampled at 100 Hz, the R peak falls between samples and the detection jitters by ±1 sample:
    # take the maximum within ±20 ms. The PR segment (100–70 ms before R) is the isoelectric line.
    inner = qrs[(qrs >= 12) & (qrs < ecg.size - 12)]
    waves = ecg[inner[:, None] + np.arange(-12, 13)]
    iso_mv = waves[:, 2:5].mean(axis=1)
    return Record(
        name=name,
        planned_class=planned,
        sig_len=ecg.size,
        apnea=np.array(labels) == "A",
        qrs=qrs,
        rr_s=rr_s,
        rr_ok=rr_ok,
        premature=premature,
        compensatory=compensatory,
        hr_bpm=hr_bpm,
        r_amp_mv=waves[:, 10:15].max(axis=1) - iso_mv,
        iso_mv=iso_mv,
        beat_s=inner / FS_HZ,
        qrs_ptp_mv=qrs_ptp_mv,
        qrs_width_s=qrs_width_s,
    )


def _premature(rr_s: np.ndarray, local_rr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks over ``rr_s``: the intervals ending on a premature beat, and on one with a full pause.

    Premature: 40-80 % of the local median RR, and the next interval at least 90 % of it (a false
    detection instead splits one interval into two short ones). Compensatory, the signature of a
    ventricular beat that leaves the sinus node alone: the two intervals add up to twice the
    median within 10 %.
    """
    pre, post, median = rr_s[:-1], rr_s[1:], local_rr[:-1]
    early = (pre > 0.4 * median) & (pre < 0.8 * median) & (post >= 0.9 * median)
    full_pause = np.abs(pre + post - 2.0 * median) < 0.2 * median
    return np.append(early, False), np.append(early & full_pause, False)


def _qrs_shape(ecg: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak-to-peak amplitude (mV) within ±80 ms of each beat, and width (s) at half maximum of
    the largest deflection of |ECG| within ±20 ms of it (baseline wander removed, 0.7 Hz)."""
    x = sosfiltfilt(butter(2, 0.7, btype="high", fs=FS_HZ, output="sos"), ecg)
    window = x[np.clip(beats[:, None] + np.arange(-8, 9), 0, x.size - 1)]
    magnitude, rows = np.abs(window), np.arange(beats.size)
    peak = 6 + np.argmax(magnitude[:, 6:11], axis=1)
    above = magnitude >= 0.5 * magnitude[rows, peak][:, None]
    width = np.ones(beats.size)  # samples above half maximum, contiguous with the peak
    for direction in (-1, 1):
        steps = np.arange(1, 9)[None, :]
        inside = np.clip(peak[:, None] + direction * steps, 0, 16)
        width += np.cumprod(above[rows[:, None], inside], axis=1).sum(axis=1)
    return np.ptp(window, axis=1), width / FS_HZ


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> tuple[Path, dict[str, Record]]:
    root = tmp_path_factory.mktemp("apnea_ecg_physiology")
    manifest = write_synthetic_apnea_ecg(root, N_RELEASED, N_WITHHELD, minutes=MINUTES, seed=SEED)
    classes = read_event1_answers(root / "event-1-answers")
    answers = read_event2_answers(root / "event-2-answers")
    records = {}
    for name in manifest:
        if name.startswith("x"):
            records[name] = _read(root, name, classes[name], list(answers[name]))
        else:
            records[name] = _read(root, name, name[0].upper(), read_apn(root / name))
    return root, records


def _band_power_per_minute(x: np.ndarray, fs: float, lo: float, hi: float) -> np.ndarray:
    """Mean square of ``x`` band-passed to [lo, hi] Hz (zero phase), per minute of ``x``."""
    band = sosfiltfilt(butter(2, [lo, hi], btype="band", fs=fs, output="sos"), x - x.mean())
    per_minute = int(60 * fs)
    return (band[: band.size // per_minute * per_minute].reshape(-1, per_minute) ** 2).mean(1)


def _surge_excess(hr_bpm: np.ndarray) -> np.ndarray:
    """3-s mean heart rate minus its 5-minute running median (bpm), at HR_FS."""
    smooth = uniform_filter1d(hr_bpm, int(3 * HR_FS))
    return smooth - median_filter(smooth, int(300 * HR_FS), mode="nearest")


def _surge_peaks(hr_bpm: np.ndarray, height_bpm: float) -> np.ndarray:
    """Grid indices of heart-rate surges at least ``height_bpm`` high, 15 s apart or more."""
    return find_peaks(_surge_excess(hr_bpm), height=height_bpm, distance=int(15 * HR_FS))[0]


def _minute_of(index: np.ndarray, fs: float) -> np.ndarray:
    return (index / fs // 60).astype(int)


def _runs(apnea: np.ndarray) -> list[int]:
    """Lengths of the runs of consecutive apnea minutes."""
    return [len(run) for run in "".join(np.where(apnea, "A", "N")).split("N") if run]


def _edr_band(record: Record) -> np.ndarray:
    """Relative R amplitude at EDR_FS, band-passed to respiration (0.15–0.5 Hz)."""
    grid_s = np.arange(0.0, record.minutes * 60.0, 1.0 / EDR_FS)
    amplitude = np.interp(grid_s, record.beat_s, record.r_amp_mv) / np.median(record.r_amp_mv)
    sos = butter(2, [0.15, 0.5], btype="band", fs=EDR_FS, output="sos")
    return sosfiltfilt(sos, amplitude - amplitude.mean())


# --- labels and severity -----------------------------------------------------------------------


def test_labels_sit_on_minute_marks_and_cover_the_signal(database):
    root, records = database
    for name, record in records.items():
        # Label i covers samples [6000 i, 6000 (i + 1)): one label per whole minute of signal.
        assert record.minutes == record.sig_len // SAMPLES_PER_MINUTE == MINUTES, name
        if not name.startswith("x"):
            apn = wfdb.rdann(str(root / name), "apn")
            np.testing.assert_array_equal(apn.sample, np.arange(MINUTES) * SAMPLES_PER_MINUTE)


def test_record_classes_span_a_b_c_by_the_database_rule(database):
    _, records = database
    measured = {name: apnea_class(np.where(r.apnea, "A", "N")) for name, r in records.items()}
    assert measured == {name: r.planned_class for name, r in records.items()}
    assert set(measured.values()) == {"A", "B", "C"}
    assert {measured[n] for n in records if n.startswith("x")} == {"A", "B", "C"}
    fractions = {name: r.apnea.mean() for name, r in records.items()}
    for name, fraction in fractions.items():
        lo, hi = APNEA_FRACTION_RANGE[measured[name]]
        assert lo <= fraction <= hi and (measured[name] != "C" or fraction < hi), (name, fraction)
    by_class = {c: [f for n, f in fractions.items() if measured[n] == c] for c in "ABC"}
    assert len(set(by_class["A"])) > 1  # severity varies within a class
    assert min(by_class["A"]) > max(by_class["B"]) > max(by_class["C"])


def test_apnea_minutes_come_in_runs(database):
    _, records = database
    runs = np.concatenate([_runs(r.apnea) for r in records.values() if r.apnea.any()])
    assert runs.mean() >= 3.0
    assert np.mean(runs == 1) < 0.5  # isolated apnea minutes are a minority of the runs
    assert (runs == 1).sum() / runs.sum() < 0.15  # ... and few of the apnea minutes
    for record in records.values():
        if record.planned_class == "A":
            assert np.mean(_runs(record.apnea)) >= 2.5, record.name


# --- heart rate --------------------------------------------------------------------------------


def test_cyclic_variation_of_heart_rate_in_apnea_minutes(database):
    _, records = database
    power = {True: [], False: []}  # RR power in 0.01–0.05 Hz (periods 20–100 s), s² per minute
    spread = {True: [], False: []}  # max − min clean RR per minute (s)
    for record in records.values():
        rr_grid = 60.0 / record.hr_bpm
        band = _band_power_per_minute(rr_grid, HR_FS, 0.01, 0.05)
        minute = _minute_of(record.qrs[1:], FS_HZ)
        for m, apnea in enumerate(record.apnea):
            power[bool(apnea)].append(band[m])
            spread[bool(apnea)].append(np.ptp(record.rr_s[record.rr_ok & (minute == m)]))
    assert np.median(power[True]) > 10 * np.median(power[False])
    assert np.median(spread[True]) > 1.4 * np.median(spread[False])


def test_heart_rate_surges_after_bradycardia_in_apnea_episodes(database):
    _, records = database
    with_surge = {True: [], False: []}
    for record in records.values():
        has = np.zeros(record.minutes, dtype=bool)
        has[_minute_of(_surge_peaks(record.hr_bpm, SURGE_BPM), HR_FS)] = True
        for apnea in (True, False):
            with_surge[apnea].append(has[record.apnea == apnea])
    share = {k: np.concatenate(v).mean() for k, v in with_surge.items()}
    assert share[True] > 0.6 and share[True] > 3 * share[False]

    # Heart rate around each surge inside an episode, relative to the normal-breathing heart rate
    # of the surrounding half hour: below it before the surge (the bradycardia at the end of the
    # event), far above it at the peak (the tachycardia of the recovery). Averaging over surges
    # blurs the trough (events differ in length): ~-3 bpm here, ~-6 bpm at the true event ends.
    traces = []
    for record in records.values():
        smooth = uniform_filter1d(record.hr_bpm, int(3 * HR_FS))
        minute_hr = np.median(smooth.reshape(record.minutes, -1), axis=1)
        for peak in _surge_peaks(record.hr_bpm, SURGE_BPM):
            m = int(peak / HR_FS // 60)
            if not record.apnea[m] or peak < 30 * HR_FS or peak + 15 * HR_FS > smooth.size:
                continue
            near = slice(max(0, m - 15), m + 16)
            normal = minute_hr[near][~record.apnea[near]]
            if normal.size >= 3:
                trace = smooth[peak - int(30 * HR_FS) : peak + int(15 * HR_FS)]
                traces.append(trace - np.median(normal))
    mean = np.mean(traces, axis=0)
    before = mean[int(10 * HR_FS) : int(27 * HR_FS)]  # 20 to 3 s before the peak
    assert len(traces) > 300
    assert before.min() < -2.0
    assert mean[int(30 * HR_FS)] > 10.0


def test_heart_rate_cycles_with_25_to_100_s_periods_in_apnea_runs(database):
    # The dominant period of the heart rate through each run of 4 or more apnea minutes is the
    # apnea cycle (event + recovery) in most runs; not in all (0.85 measured): events that barely
    # move the heart rate and REM swings over the run put some runs' peak outside 25-100 s.
    _, records = database
    periods = []
    for record in records.values():
        edges = np.diff(np.concatenate([[0], record.apnea.astype(int), [0]]))
        for first, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
            if end - first >= 4:
                hr = record.hr_bpm[int(first * 60 * HR_FS) : int(end * 60 * HR_FS)]
                freqs, psd = periodogram(hr, fs=HR_FS, detrend="linear", nfft=8192)
                band = (freqs >= 0.005) & (freqs <= 0.1)
                periods.append(1.0 / freqs[band][np.argmax(psd[band])])
    periods = np.array(periods)
    assert periods.size > 50
    assert 30.0 < np.median(periods) < 80.0
    assert np.mean((periods >= 25.0) & (periods <= 100.0)) > 0.75


def test_arousal_surges_outside_apnea_come_with_a_sigh(database):
    _, records = database
    surges, hours, sigh, background = 0, 0.0, [], []
    for record in records.values():
        far = ~binary_dilation(record.apnea, iterations=3)  # 3 minutes or more from any apnea
        peaks = _surge_peaks(record.hr_bpm, SURGE_BPM)
        peaks = peaks[far[_minute_of(peaks, HR_FS)]]
        surges += peaks.size
        hours += far.sum() / 60.0
        # A spontaneous arousal comes with a sigh: deeper breaths, hence a larger EDR swing, in
        # the 10 s before the surge peak (limb-movement surges come without one).
        power = uniform_filter1d(_edr_band(record) ** 2, int(10 * EDR_FS))  # running 10-s power
        normal = power[np.repeat(far, int(60 * EDR_FS))]
        level = np.median(normal)
        before_peak = np.maximum(0, (peaks / HR_FS - 5.0) * EDR_FS).astype(int)
        sigh += list(power[before_peak] > 1.5 * level)
        background.append(np.mean(normal > 1.5 * level))
    assert surges / hours > 3.0  # per hour of normal breathing
    assert np.mean(sigh) > 2 * np.mean(background)
    for record in records.values():
        if record.planned_class == "C":  # controls have surges too: no shortcut to the class
            assert _surge_peaks(record.hr_bpm, SURGE_BPM).size / (record.minutes / 60) > 1.0


# --- ECG-derived respiration -------------------------------------------------------------------


def test_edr_vanishes_in_events_and_grows_in_recovery(database):
    # Per minute, the respiratory-band power of the R amplitude is about the same in apnea and
    # normal minutes (median ratio ~1): the near-absent modulation of an event and the exaggerated
    # recovery breaths balance out. What marks apnea is the swing between them, seen in 10-s
    # windows compared with the record's normal breathing.
    _, records = database
    faint, strong = {True: [], False: []}, {True: [], False: []}
    for record in records.values():
        power = (_edr_band(record).reshape(-1, int(10 * EDR_FS)) ** 2).mean(axis=1)  # per 10 s
        apnea = np.repeat(record.apnea, 6)
        level = np.median(power[~apnea])
        for k in (True, False):
            faint[k].append(power[apnea == k] < 0.2 * level)
            strong[k].append(power[apnea == k] > 2.0 * level)
    faint_share = {k: np.concatenate(v).mean() for k, v in faint.items()}
    strong_share = {k: np.concatenate(v).mean() for k, v in strong.items()}
    assert faint_share[True] > 0.2 and faint_share[True] > 10 * faint_share[False]
    assert strong_share[True] > 0.1 and strong_share[True] > 3 * strong_share[False]


# --- signal realism ----------------------------------------------------------------------------


def _around_premature(record: Record) -> np.ndarray:
    """Mask over ``rr_s``: the interval that ends on a premature beat and the one after it."""
    return record.premature | np.roll(record.premature, 1)


def test_qrs_has_a_few_detection_errors(database):
    _, records = database
    for record in records.values():
        # Missed beats (long RR) and false beats in EMG bursts (short RR), as in the real files;
        # the early beats and pauses of ectopy are not detection errors.
        errors = ~record.rr_ok & ~_around_premature(record)
        assert 0.0 < np.mean(errors) < 0.02, record.name
    rr = np.concatenate([r.rr_s[~_around_premature(r)] for r in records.values()])
    local = np.concatenate(
        [median_filter(r.rr_s, 9, mode="nearest")[~_around_premature(r)] for r in records.values()]
    )
    assert (rr > 1.5 * local).sum() > 10 and (rr < 0.7 * local).sum() > 10


def test_ectopic_beats_are_premature_with_a_wide_large_qrs(database):
    # From the R peaks alone: premature beats followed by a compensatory pause (ventricular
    # beats) at plausible rates, in most records. In the ECG, most of them have a QRS larger
    # (peak to peak) and wider (at half maximum) than the record's normal beats; premature beats
    # with a shorter, non-compensatory pause (atrial beats) and normal beats almost never do.
    _, records = database
    per_hour: dict[str, list[float]] = {"compensatory": [], "wide and large": []}
    shape: dict[str, list[np.ndarray]] = {"normal": [], "compensatory": [], "non-compensatory": []}
    for record in records.values():
        normal = record.rr_ok & ~_around_premature(record)
        ptp = record.qrs_ptp_mv / np.median(record.qrs_ptp_mv[normal])
        width = record.qrs_width_s / np.median(record.qrs_width_s[normal])
        wide_and_large = (ptp > 1.3) & (width >= 1.5)
        shape["normal"].append(wide_and_large[normal])
        shape["compensatory"].append(wide_and_large[record.compensatory])
        shape["non-compensatory"].append(wide_and_large[record.premature & ~record.compensatory])
        hours = record.minutes / 60.0
        per_hour["compensatory"].append(record.compensatory.sum() / hours)
        per_hour["wide and large"].append((wide_and_large & record.compensatory).sum() / hours)
    share = {k: np.concatenate(v).mean() for k, v in shape.items()}
    beats = sum(r.qrs.size for r in records.values())
    assert 0.001 < sum(r.compensatory.sum() for r in records.values()) / beats < 0.05
    assert np.mean(np.array(per_hour["compensatory"]) > 1.0) > 0.75  # in most records
    assert np.mean(np.array(per_hour["wide and large"]) > 0.0) > 0.75
    assert max(per_hour["compensatory"]) < 600.0  # under ~15 % of beats everywhere
    assert share["compensatory"] > 0.6
    assert share["normal"] < 0.01 and share["non-compensatory"] < 0.2


def test_ecg_amplitude_and_baseline_wander(database):
    _, records = database
    for record in records.values():
        assert 0.4 < np.median(record.r_amp_mv) < 3.0, record.name  # R wave (mV)
        # The isoelectric line wanders (respiration, electrode motion) by tens of µV, slowly.
        assert 0.03 < record.iso_mv.std() < 0.5, record.name
        grid_s = np.arange(0.0, record.minutes * 60.0, 1.0 / HR_FS)
        iso = np.interp(grid_s, record.beat_s, record.iso_mv)
        freqs, psd = welch(iso - iso.mean(), fs=HR_FS, nperseg=1024)
        assert psd[freqs < 0.5].sum() > 0.9 * psd.sum(), record.name
