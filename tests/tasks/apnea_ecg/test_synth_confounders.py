"""Confounders of the synthetic Apnea-ECG database: heart-rate cycling that is not apnea, and apnea
whose heart-rate cycling is weak.

Measured, like ``test_synth_physiology.py``, on the written files of an 8 released + 4 withheld
plan of 240-minute records, seed 0: R peaks from ``.qrs``, labels from ``.apn`` and
``event-2-answers``. Only the R peaks are read (the ECG is not needed here), so the module is quick.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.ndimage import binary_dilation, median_filter
from scipy.signal import butter, periodogram, sosfiltfilt

from sleepbench.io.apnea_ecg_labels import read_apn, read_event2_answers
from sleepbench.tasks.apnea_ecg.synth import FS_HZ, write_synthetic_apnea_ecg
from sleepbench.tasks.apnea_ecg.synth_events import (
    add_confounder_surges,
    draw_apnea_runs,
    draw_arousals,
    draw_cycles,
    scale_cycles,
)
from sleepbench.tasks.apnea_ecg.synth_physiology import confounder_rng, draw_physiology

N_RELEASED, N_WITHHELD, MINUTES, SEED = 8, 4, 240, 0
HR_FS = 2.0  # Hz, evenly resampled heart rate
WINDOW_MIN = 5  # minutes of heart rate per periodicity test
# sha256 of "<record> <labels>\n" over that plan's records, measured before the confounders
# were added: they draw from their own stream and must leave the labels as they were.
DEFAULT_LABELS_SHA256 = "172739ddd47b4a208932b81b702ebd2bc3b85032b4226cb4be7699821f328d88"


@dataclass(frozen=True)
class Record:
    """One record's labels and heart rate, as read back."""

    labels: str
    hr_bpm: np.ndarray  # at HR_FS, from the clean RR intervals

    @property
    def apnea(self) -> np.ndarray:
        return np.array(list(self.labels)) == "A"


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict[str, Record]:
    root = tmp_path_factory.mktemp("apnea_ecg_confounders")
    manifest = write_synthetic_apnea_ecg(root, N_RELEASED, N_WITHHELD, minutes=MINUTES, seed=SEED)
    answers = read_event2_answers(root / "event-2-answers")
    out = {}
    for name in manifest:
        labels = answers[name] if name.startswith("x") else "".join(read_apn(root / name))
        qrs = wfdb.rdann(str(Path(root) / name), "qrs").sample
        rr_s = np.diff(qrs) / FS_HZ
        local = median_filter(rr_s, 9, mode="nearest")
        ok = np.abs(rr_s - local) < 0.2 * local  # no missed or false beat, no ectopic interval
        grid_s = np.arange(0.0, len(labels) * 60.0, 1.0 / HR_FS)
        out[name] = Record(labels, np.interp(grid_s, qrs[1:][ok] / FS_HZ, 60.0 / rr_s[ok]))
    return out


def _cvhr_power(hr_bpm: np.ndarray) -> np.ndarray:
    """Per minute, mean square of the RR series (s) band-passed to 0.01-0.05 Hz (20-100 s)."""
    sos = butter(2, [0.01, 0.05], btype="band", fs=HR_FS, output="sos")
    rr = 60.0 / hr_bpm
    band = sosfiltfilt(sos, rr - rr.mean())
    return (band.reshape(-1, int(60 * HR_FS)) ** 2).mean(axis=1)


def _periodic_windows(record: Record) -> list[tuple[int, float]]:
    """(first minute, period in s) of the normal-breathing windows with a periodic heart rate.

    Every WINDOW_MIN-minute window at least a minute from any apnea minute whose heart-rate
    spectrum has a sharp line at 18-45 s (the line and its two neighbouring bins hold over 40 % of
    the 0.005-0.2 Hz power) of over 1.5 bpm amplitude: what limb-movement clusters look like.
    """
    far = ~binary_dilation(record.apnea, iterations=1)
    per_window = int(WINDOW_MIN * 60 * HR_FS)
    found = []
    for m in range(record.apnea.size - WINDOW_MIN + 1):
        if not far[m : m + WINDOW_MIN].all():
            continue
        hr = record.hr_bpm[int(m * 60 * HR_FS) :][:per_window]
        freqs, psd = periodogram(hr, fs=HR_FS, window="hann", detrend="linear")
        band = np.flatnonzero((freqs >= 1 / 45) & (freqs <= 1 / 18))
        k = band[np.argmax(psd[band])]
        line = psd[k - 1 : k + 2].sum()
        total = psd[(freqs >= 0.005) & (freqs <= 0.2)].sum()
        amplitude = np.sqrt(2.0 * line * (freqs[1] - freqs[0]))
        if line > 0.4 * total and amplitude > 1.5:
            found.append((m, 1.0 / freqs[k]))
    return found


def test_confounders_leave_the_minute_labels_as_they_were(records):
    text = "".join(f"{name} {record.labels}\n" for name, record in records.items())
    assert hashlib.sha256(text.encode()).hexdigest() == DEFAULT_LABELS_SHA256


def test_limb_movement_clusters_cycle_the_heart_rate_in_normal_minutes(records):
    # Some records have clusters of periodic heart-rate surges at 20-40 s in normal breathing
    # (periodic limb movements), others none; inside a cluster the heart rate cycles in the CVHR
    # band within an order of magnitude of apnea (a third of the apnea minutes' median on the
    # default plan), far more than in the rest of normal breathing (6x): the classic false
    # positive of heart-rate apnea detectors.
    windows = {name: _periodic_windows(record) for name, record in records.items()}
    counts = np.array([len(w) for w in windows.values()])
    assert (counts >= 5).sum() >= 2 and (counts == 0).sum() >= 3, counts
    periods = np.array([p for w in windows.values() for _, p in w])
    assert 20.0 <= np.median(periods) <= 40.0
    cluster, apnea, normal = [], [], []
    for name, record in records.items():
        power = _cvhr_power(record.hr_bpm)
        in_cluster = np.zeros(record.apnea.size, dtype=bool)
        for m, _ in windows[name]:
            in_cluster[m : m + WINDOW_MIN] = True
        cluster.append(power[in_cluster])
        apnea.append(power[record.apnea])
        normal.append(power[~record.apnea & ~in_cluster])
    cluster_median = np.median(np.concatenate(cluster))
    assert cluster_median > 0.15 * np.median(np.concatenate(apnea))
    assert cluster_median > 3.0 * np.median(np.concatenate(normal))


def test_heart_rate_cycling_of_apnea_differs_between_records(records):
    # How much apnea makes the heart rate cycle, relative to the record's normal breathing, differs
    # between subjects (autonomic responsiveness, event depth, limb movements in normal minutes):
    # weak in some apnoeic records, strong in others.
    contrast = []
    for record in records.values():
        if record.apnea.sum() >= 10:
            power = _cvhr_power(record.hr_bpm)
            contrast.append(np.median(power[record.apnea]) / np.median(power[~record.apnea]))
    assert len(contrast) >= 6
    assert min(contrast) > 1.5  # still there in every record: the labels stay in the ECG
    assert max(contrast) > 3.0 * min(contrast)


def test_confounders_change_the_heart_rate_but_not_the_timeline():
    rng = np.random.default_rng([3, 7])
    confounders = confounder_rng(rng)
    phys = draw_physiology(rng, "A", confounders=confounders)
    total_s = 240 * 60.0
    runs = draw_apnea_runs(rng, 240, "A", phys)
    cycles = draw_cycles(rng, runs, total_s, phys)
    arousals = draw_arousals(rng, cycles, total_s, phys)
    scaled = scale_cycles(confounders, cycles, phys)
    for field in ("start", "event_end", "end", "depth"):
        np.testing.assert_array_equal(getattr(scaled, field), getattr(cycles, field))
    gain = scaled.surge / cycles.surge
    np.testing.assert_allclose(scaled.brady / cycles.brady, gain)
    assert gain.std() > 0.1 and gain[cycles.depth >= 0.3].mean() < gain[cycles.depth < 0.3].mean()
    more = add_confounder_surges(confounders, arousals, cycles, total_s, phys)
    n = arousals.onsets_s.size
    np.testing.assert_array_equal(more.onsets_s[:n], arousals.onsets_s)
    np.testing.assert_array_equal(more.sigh_onsets_s, arousals.sigh_onsets_s)
    assert more.onsets_s.size > n and np.all((more.onsets_s >= 0) & (more.onsets_s < total_s))
