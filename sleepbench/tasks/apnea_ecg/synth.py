"""Synthetic PhysioNet Apnea-ECG database with known per-minute apnea labels.

Writes records in the layout of Apnea-ECG 1.0.0 (Penzel et al., Computers in Cardiology 2000):
a 100 Hz single-lead ECG per record (``.hea`` + ``.dat``: format 16, 200 adu/mV, 12-bit ADC),
machine-style R-peak annotations (``.qrs``, every beat ``N``), per-minute labels (``.apn``, ``A`` or
``N`` at sample 6000·i, byte-for-byte the encoding of the real files) for the released records, and
the challenge answer files ``event-1-answers`` (class per withheld record) and ``event-2-answers``
(per-minute labels) in the real text layout, plus ``RECORDS`` and ``list``.

The ECG carries what ECG apnea detectors use:

- cyclic variation of heart rate (CVHR): progressive bradycardia during each obstructive event and a
  tachycardic surge after its termination, repeating with 25–100 s cycles through an episode;
- ECG-derived respiration (EDR): breathing modulates the QRS amplitude and the baseline; the
  modulation nearly vanishes during an event and is exaggerated during the recovery breaths;
- apnea minutes come in runs clustered through the night, with severity set by the record class
  (A: 30–60 % apnea minutes, B: 5–15 %, C: under 2 %).

Confounders keep the task from being trivial: spontaneous arousals (isolated heart-rate surges with
a sigh) during normal breathing, hypopneas with residual breathing, LF and VLF heart-rate
variability, baseline wander, EMG bursts and a few QRS detection errors, as in the real ``.qrs``
files (machine-generated and unaudited).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import wfdb

__all__ = [
    "ADC_GAIN_PER_MV",
    "APNEA_FRACTION_RANGE",
    "FS_HZ",
    "SAMPLES_PER_MINUTE",
    "SyntheticApneaRecord",
    "allocate_classes",
    "format_event1_answers",
    "format_event2_answers",
    "record_plan",
    "simulate_apnea_ecg_record",
    "write_apn",
    "write_synthetic_apnea_ecg",
]

FS_HZ: Final = 100
SAMPLES_PER_MINUTE: Final = 60 * FS_HZ
#: Real headers: ``a01.dat 16 200 12 0 ...`` (200 adu/mV, 12-bit resolution, ADC zero 0).
ADC_GAIN_PER_MV: Final = 200
_ADC_RESOLUTION_BITS: Final = 12
_ADC_MIN, _ADC_MAX = -(2 ** (_ADC_RESOLUTION_BITS - 1)), 2 ** (_ADC_RESOLUTION_BITS - 1) - 1

#: Share of apnea minutes per record class (C is half-open: strictly below 2 %).
APNEA_FRACTION_RANGE: Final[Mapping[str, tuple[float, float]]] = {
    "A": (0.30, 0.60),
    "B": (0.05, 0.15),
    "C": (0.0, 0.02),
}
# The real learning set has 20 A, 5 B and 10 C records; the withheld set has the same mix.
_CLASS_WEIGHTS: Final = {"A": 20, "B": 5, "C": 10}

_MINUTE_S: Final = 60.0
# Slow processes (heart rate, respiration, baseline) live on a 10 Hz grid: respiration is below
# 0.5 Hz, and beats are placed at sub-sample precision by interpolating the integrated heart rate.
_GRID_HZ: Final = 10
# An episode edge is drawn within this many seconds of a minute boundary; below 30 s, so a minute
# is labelled A exactly when most of it lies inside an episode.
_EDGE_JITTER_S: Final = 12.0
# Support of each wave around the R peak, in samples at FS_HZ, wide enough for every record's
# morphology and heart rate (±4 widths): P, then Q/R/S together, then T.
_WAVE_WINDOWS: Final = (np.arange(-45, -3), np.arange(-12, 13), np.arange(0, 75))
_WAVES_IN_WINDOW: Final = ((0,), (1, 2, 3), (4,))


@dataclass(frozen=True)
class SyntheticApneaRecord:
    """One simulated Apnea-ECG record with its ground truth.

    Attributes:
        name: record name (``a01``, ``x03``...).
        apnea_class: ``A`` (apnea), ``B`` (borderline) or ``C`` (control).
        ecg_mv: ECG in mV at :data:`FS_HZ`, float32, ``minutes * 6000`` samples.
        minute_labels: one ``A``/``N`` character per minute (``A`` when most of the minute lies
            inside an apnea episode).
        qrs_samples: detected R peaks (sample indices, int64, with the few detection errors).
        beat_times_s: true R-peak times in seconds.
        event_intervals_s: ``(n, 2)`` onset and end, in seconds, of each apnea/hypopnea event.
        recovery_intervals_s: ``(n, 2)`` the recovery breathing after each event, in seconds.
    """

    name: str
    apnea_class: str
    ecg_mv: np.ndarray
    minute_labels: str
    qrs_samples: np.ndarray
    beat_times_s: np.ndarray
    event_intervals_s: np.ndarray
    recovery_intervals_s: np.ndarray

    @property
    def apnea_minutes(self) -> int:
        """Number of minutes labelled ``A``."""
        return self.minute_labels.count("A")


@dataclass(frozen=True)
class _Physiology:
    """Per-record physiological constants (units in the names)."""

    apnea_fraction: float
    mean_run_min: float
    cycle_s: float
    hr_bpm: float
    rsa_bpm: float
    lf_bpm: float
    vlf_bpm: float
    brady_bpm: float
    surge_bpm: float
    surge_peak_s: float
    resp_hz: float
    hypopnea_share: float
    recovery_gain: float
    edr_gain: float
    resp_baseline_mv: float
    wander_mv: float
    noise_mv: float
    emg_per_h: float
    emg_mv: float
    arousal_per_h: float
    plm_trains_per_h: float
    breath_variability: float
    # (5, 3): offset from R (s, at RR = 1 s), Gaussian width (s), amplitude (mV) of P, Q, R, S, T.
    morphology: np.ndarray


def allocate_classes(n: int) -> dict[str, int]:
    """Split ``n`` records over classes A/B/C in the real database's 20:5:10 proportion.

    Largest-remainder rounding; every class gets at least one record when ``n >= 3``.

    Args:
        n: number of records (>= 0).

    Returns:
        ``{"A": n_a, "B": n_b, "C": n_c}`` summing to ``n``.
    """
    if n < 0:
        raise ValueError(f"number of records must be >= 0, got {n}")
    classes = list(_CLASS_WEIGHTS)
    raw = (
        np.array([_CLASS_WEIGHTS[c] for c in classes], dtype=float)
        * n
        / sum(_CLASS_WEIGHTS.values())
    )
    counts = np.floor(raw).astype(int)
    if n >= len(classes):
        counts = np.maximum(counts, 1)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]:
        counts[i] += 1
    return {c: int(k) for c, k in zip(classes, counts)}


def record_plan(n_released: int, n_withheld: int, seed: int = 0) -> list[tuple[str, str]]:
    """Record names and classes, released (``a01``.., ``b01``.., ``c01``..) then withheld (``x01``..).

    As in the real database, the class of a withheld record is not readable from its name: the
    ``x`` records get a shuffled A/B/C mix (seeded by ``seed``).

    Args:
        n_released: number of released (labelled) records.
        n_withheld: number of withheld test records.
        seed: seed of the withheld-class shuffle.

    Returns:
        ``[(name, class), ...]`` in file order.
    """
    plan = [
        (f"{cls.lower()}{i + 1:02d}", cls)
        for cls, k in allocate_classes(n_released).items()
        for i in range(k)
    ]
    withheld = [cls for cls, k in allocate_classes(n_withheld).items() for _ in range(k)]
    order = np.random.default_rng([seed, 0x78]).permutation(len(withheld))
    plan += [(f"x{i + 1:02d}", withheld[j]) for i, j in enumerate(order)]
    return plan


def _draw_physiology(rng: np.random.Generator, apnea_class: str) -> _Physiology:
    """Per-record constants: severity, heart-rate and breathing behaviour, morphology, noise."""
    lo, hi = APNEA_FRACTION_RANGE[apnea_class]
    # ECGSYN-like template (McSharry et al. 2003) in the time domain, varied per record.
    base = np.array(
        [
            [-0.200, 0.025, rng.uniform(0.05, 0.20)],  # P
            [-0.040, 0.013, -rng.uniform(0.02, 0.15)],  # Q
            [0.000, 0.015, rng.uniform(0.5, 1.6)],  # R
            [0.040, 0.014, -rng.uniform(0.1, 0.6)],  # S
            [0.280, 0.055, rng.uniform(0.12, 0.45)],  # T
        ]
    )
    base[:, 0] *= rng.uniform(0.9, 1.1, 5)
    base[:, 1] *= rng.uniform(0.85, 1.2, 5)
    return _Physiology(
        apnea_fraction=rng.uniform(lo, hi),
        mean_run_min={"A": rng.uniform(3.0, 8.0), "B": rng.uniform(1.2, 2.5), "C": 1.0}[
            apnea_class
        ],
        cycle_s=rng.uniform(30.0, 80.0),
        hr_bpm=rng.uniform(55.0, 78.0),
        rsa_bpm=rng.uniform(1.5, 4.0),
        lf_bpm=rng.uniform(1.0, 2.5),
        vlf_bpm=rng.uniform(1.5, 4.0),
        brady_bpm=rng.uniform(3.0, 8.0),
        surge_bpm=rng.uniform(6.0, 20.0),
        surge_peak_s=rng.uniform(4.0, 7.0),
        resp_hz=rng.uniform(0.2, 0.3),
        hypopnea_share=rng.uniform(0.2, 0.6),
        recovery_gain=rng.uniform(1.4, 2.2),
        # The sign of the EDR modulation depends on the lead axis relative to the chest.
        edr_gain=rng.choice([-1.0, 1.0]) * rng.uniform(0.10, 0.22),
        resp_baseline_mv=rng.uniform(0.02, 0.07),
        wander_mv=rng.uniform(0.04, 0.12),
        noise_mv=rng.uniform(0.005, 0.02),
        emg_per_h=rng.uniform(5.0, 20.0),
        emg_mv=rng.uniform(0.02, 0.06),
        arousal_per_h=rng.uniform(3.0, 10.0),
        plm_trains_per_h=rng.uniform(0.0, 1.5),
        breath_variability=rng.uniform(0.08, 0.2),
        morphology=base,
    )


def _band_noise(
    rng: np.random.Generator, n: int, fs_hz: float, lo_hz: float, hi_hz: float
) -> np.ndarray:
    """Unit-variance Gaussian noise band-limited to [lo_hz, hi_hz] (shaped in the FFT domain)."""
    freqs = np.fft.rfftfreq(n, 1.0 / fs_hz)
    spectrum = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    spectrum[(freqs < lo_hz) | (freqs > hi_hz)] = 0.0
    x = np.fft.irfft(spectrum, n)
    std = x.std()
    return x / std if std > 0 else x


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average (edge-padded) over ``width`` grid points."""
    if width <= 1:
        return x
    padded = np.pad(x, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def _apnea_minute_count(minutes: int, apnea_class: str, fraction: float) -> int:
    """Apnea minutes of a record: ``fraction`` of it, kept inside its class.

    Within the class's share (:data:`APNEA_FRACTION_RANGE`), the count also meets the challenge's
    class criteria whenever the record is long enough for them: C has fewer than 5 apnea minutes,
    B 5–99, A at least 100 (records shorter than a night cannot reach 100 at 60 %).
    """
    lo, hi = APNEA_FRACTION_RANGE[apnea_class]
    most = int(np.ceil(hi * minutes)) - 1 if apnea_class == "C" else int(np.floor(hi * minutes))
    least = {"A": 100, "B": 5, "C": 0}[apnea_class]
    count = int(round(fraction * minutes))
    if least <= most:
        count = max(count, least)
    if apnea_class == "C":
        count = min(count, most, 4)
    elif apnea_class == "B":
        count = min(count, 99)
    # A and B always carry at least one apnea minute, even in records of a few minutes.
    return int(np.clip(count, 0 if apnea_class == "C" else 1, minutes))


def _draw_apnea_runs(
    rng: np.random.Generator, minutes: int, apnea_class: str, phys: _Physiology
) -> list[tuple[int, int]]:
    """Runs of apnea minutes ``[(first, end), ...]`` with the class's apnea share, clustered."""
    n_apnea = _apnea_minute_count(minutes, apnea_class, phys.apnea_fraction)
    if n_apnea == 0:
        return []
    lengths: list[int] = []
    while sum(lengths) < n_apnea:
        lengths.append(min(int(rng.geometric(1.0 / phys.mean_run_min)), n_apnea - sum(lengths)))
    n_normal = minutes - n_apnea
    while len(lengths) > 1 and len(lengths) - 1 > n_normal:  # runs need a normal minute between
        lengths[-2] += lengths.pop()
    # A sparse Dirichlet makes most gaps short and a few long: runs cluster, as in real nights.
    gaps = rng.multinomial(
        n_normal - (len(lengths) - 1), rng.dirichlet(np.full(len(lengths) + 1, 0.3))
    )
    gaps[1:-1] += 1
    runs, start = [], 0
    for gap, length in zip(gaps, lengths):
        start += int(gap)
        runs.append((start, start + length))
        start += length
    return runs


def _draw_cycles(
    rng: np.random.Generator, runs: list[tuple[int, int]], total_s: float, phys: _Physiology
) -> dict[str, np.ndarray]:
    """Event/recovery cycles filling each episode (times in s, depths, heart-rate changes in bpm)."""
    starts, ends = [], []
    for first, end in runs:
        s0 = max(0.0, first * _MINUTE_S + rng.uniform(-_EDGE_JITTER_S, _EDGE_JITTER_S))
        s1 = min(total_s, end * _MINUTE_S + rng.uniform(-_EDGE_JITTER_S, _EDGE_JITTER_S))
        length = s1 - s0
        cycle = float(np.clip(phys.cycle_s * rng.uniform(0.8, 1.25), 25.0, 100.0))
        n = int(np.clip(round(length / cycle), np.ceil(length / 100.0), max(1, length // 25.0)))
        weights = rng.uniform(0.85, 1.15, n)
        bounds = s0 + length * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        starts.append(bounds[:-1])
        ends.append(bounds[1:])
    start = np.concatenate(starts) if starts else np.zeros(0)
    end = np.concatenate(ends) if ends else np.zeros(0)
    n = start.size
    event_end = start + (end - start) * rng.uniform(0.55, 0.75, n)
    hypopnea = rng.random(n) < phys.hypopnea_share
    depth = np.where(hypopnea, rng.uniform(0.3, 0.6, n), rng.uniform(0.03, 0.15, n))
    # Hypopneas end with a weaker arousal, hence a smaller surge.
    surge = phys.surge_bpm * rng.uniform(0.7, 1.3, n) * np.where(hypopnea, 0.7, 1.0)
    brady = phys.brady_bpm * rng.uniform(0.7, 1.3, n)
    return {
        "start": start,
        "event_end": event_end,
        "end": end,
        "depth": depth,
        "surge": surge,
        "brady": brady,
    }


def _minute_labels(cycles: dict[str, np.ndarray], minutes: int) -> str:
    """``A`` for minutes more than half covered by an episode, else ``N``.

    An episode is a run of consecutive event/recovery cycles, so its coverage is the sum of its
    cycles' coverage.
    """
    edges = np.arange(minutes + 1) * _MINUTE_S
    covered = np.zeros(minutes)
    for s0, s1 in zip(cycles["start"], cycles["end"]):
        covered += np.clip(np.minimum(edges[1:], s1) - np.maximum(edges[:-1], s0), 0.0, None)
    return "".join(np.where(covered > _MINUTE_S / 2, "A", "N"))


def _at(values: np.ndarray, k: np.ndarray, default: float) -> np.ndarray:
    """``values[k]`` where ``k >= 0``, ``default`` elsewhere (``values`` may be empty)."""
    if values.size == 0:
        return np.full(k.shape, default)
    return np.where(k >= 0, values[np.maximum(k, 0)], default)


def _interval_index(t: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Index of the sorted, disjoint interval containing each time, or -1."""
    idx = np.searchsorted(start, t, side="right") - 1
    inside = idx >= 0
    inside[inside] = t[inside] < end[idx[inside]]
    return np.where(inside, idx, -1)


def _alpha_bumps(
    t: np.ndarray, onsets: np.ndarray, heights: np.ndarray, peak_s: float
) -> np.ndarray:
    """Sum of alpha-function bumps ``h·(τ/p)·exp(1 − τ/p)`` after each onset (two latest kept)."""
    out = np.zeros_like(t)
    if onsets.size == 0:
        return out
    order = np.argsort(onsets)
    onsets, heights = onsets[order], heights[order]
    last = np.searchsorted(onsets, t, side="right") - 1
    for lag in (0, 1):
        j = last - lag
        ok = j >= 0
        tau = t[ok] - onsets[j[ok]]
        out[ok] += heights[j[ok]] * (tau / peak_s) * np.exp(1.0 - tau / peak_s)
    return out


def _far_from(times: np.ndarray, start: np.ndarray, end: np.ndarray, margin_s: float) -> np.ndarray:
    """Mask of times at least ``margin_s`` away from every interval ``[start, end)``."""
    if start.size == 0:
        return np.ones(times.shape, dtype=bool)
    gap = np.maximum(start[None, :] - times[:, None], times[:, None] - end[None, :])
    return gap.min(axis=1) >= margin_s


def _draw_arousals(
    rng: np.random.Generator, cycles: dict[str, np.ndarray], total_s: float, phys: _Physiology
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heart-rate surges outside apnea episodes: onsets (s), heights (bpm), sigh onsets (s).

    Spontaneous arousals come alone, with a sigh. Periodic limb movements come in trains of
    20–40 s cycles for 2–6 minutes with no breathing change: a cyclic heart rate that is not apnea,
    the classic false positive of heart-rate-only detectors.
    """
    hours = total_s / 3600.0
    spontaneous = rng.uniform(0.0, total_s, rng.poisson(phys.arousal_per_h * hours))
    trains = []
    for _ in range(rng.poisson(phys.plm_trains_per_h * hours)):
        start, period = rng.uniform(0.0, total_s), rng.uniform(20.0, 40.0)
        n = int(rng.uniform(120.0, 360.0) // period)
        trains.append(start + period * np.arange(n) + rng.uniform(-2.0, 2.0, n))
    plm = np.concatenate([np.zeros(0), *trains])
    spontaneous = spontaneous[_far_from(spontaneous, cycles["start"], cycles["end"], 30.0)]
    plm = plm[(plm < total_s) & _far_from(plm, cycles["start"], cycles["end"], 30.0)]
    onsets = np.concatenate([spontaneous, plm])
    heights = phys.surge_bpm * np.concatenate(
        [rng.uniform(0.3, 0.8, spontaneous.size), rng.uniform(0.3, 0.7, plm.size)]
    )
    return onsets, heights, np.sort(spontaneous)


def simulate_apnea_ecg_record(
    name: str, apnea_class: str, minutes: int, rng: np.random.Generator
) -> SyntheticApneaRecord:
    """Simulate one night of single-lead ECG with clustered obstructive apnea episodes.

    Args:
        name: record name stored in the result.
        apnea_class: ``A``, ``B`` or ``C``; sets the share of apnea minutes
            (:data:`APNEA_FRACTION_RANGE`).
        minutes: record length in minutes (the ECG has ``minutes * 6000`` samples at 100 Hz).
        rng: source of randomness; the same generator state gives the same record.

    Returns:
        The ECG (mV), per-minute labels, R-peak detections and event timing.
    """
    if apnea_class not in APNEA_FRACTION_RANGE:
        raise ValueError(f"apnea_class must be one of A, B, C, got {apnea_class!r}")
    if minutes < 1:
        raise ValueError(f"minutes must be >= 1, got {minutes}")
    phys = _draw_physiology(rng, apnea_class)
    total_s = minutes * _MINUTE_S
    runs = _draw_apnea_runs(rng, minutes, apnea_class, phys)
    cyc = _draw_cycles(rng, runs, total_s, phys)
    labels = _minute_labels(cyc, minutes)

    # --- slow processes on the 10 Hz grid -------------------------------------------------------
    n_grid = minutes * 60 * _GRID_HZ
    t = np.arange(n_grid) / _GRID_HZ
    k = _interval_index(t, cyc["start"], cyc["end"])
    in_event = t < _at(cyc["event_end"], k, -np.inf)
    in_recovery = (k >= 0) & ~in_event

    # Respiration: breathing rate (faster in recovery), amplitude envelope (breath-to-breath and
    # slow variability; suppressed in events, exaggerated in recovery, sighs at arousals).
    arousal_t, arousal_bpm, sigh_t = _draw_arousals(rng, cyc, total_s, phys)
    sigh = _interval_index(t, sigh_t, sigh_t + rng.uniform(6.0, 10.0, sigh_t.size)) >= 0
    resp_hz = phys.resp_hz * (1.0 + 0.05 * _band_noise(rng, n_grid, _GRID_HZ, 0.0005, 0.01))
    resp_hz = _moving_average(resp_hz + 0.05 * in_recovery, 3 * _GRID_HZ)
    phase = 2 * np.pi * np.cumsum(resp_hz) / _GRID_HZ + rng.uniform(0, 2 * np.pi)
    breath = np.floor(phase / (2 * np.pi)).astype(np.int64)
    per_breath = 0.12 * rng.standard_normal(breath[-1] - breath[0] + 1)[breath - breath[0]]
    envelope = np.maximum(
        0.3,
        1.0
        + 0.1 * _band_noise(rng, n_grid, _GRID_HZ, 0.0005, 0.01)
        + phys.breath_variability * _band_noise(rng, n_grid, _GRID_HZ, 0.005, 0.05),
    )
    envelope *= np.where(in_event, _at(cyc["depth"], k, 1.0), 1.0)
    envelope *= np.where(in_recovery, phys.recovery_gain, 1.0)
    envelope *= np.where(sigh & ~in_event, rng.uniform(1.4, 2.0), 1.0)
    envelope = _moving_average(envelope, 2 * _GRID_HZ)
    envelope *= 1.0 + _moving_average(per_breath, _GRID_HZ)
    resp = envelope * (np.sin(phase) + 0.25 * np.sin(2 * phase + 0.6)) / 1.03

    # Heart rate (bpm): VLF + LF variability, respiratory sinus arrhythmia, CVHR, arousal surges.
    onset = _at(cyc["start"], k, 0.0)
    progress = np.where(in_event, (t - onset) / (_at(cyc["event_end"], k, 1.0) - onset), 0.0)
    brady = np.where(in_event, _at(cyc["brady"], k, 0.0) * progress**0.8, 0.0)
    hr = (
        phys.hr_bpm
        + phys.vlf_bpm * _band_noise(rng, n_grid, _GRID_HZ, 0.0005, 0.01)
        + phys.lf_bpm * _band_noise(rng, n_grid, _GRID_HZ, 0.04, 0.15)
        + phys.rsa_bpm * resp
        - _moving_average(brady, 2 * _GRID_HZ)
        + _alpha_bumps(
            t,
            np.concatenate([cyc["event_end"], arousal_t]),
            np.concatenate([cyc["surge"], arousal_bpm]),
            phys.surge_peak_s,
        )
    )
    hr = np.clip(hr, 38.0, 140.0)

    # --- beats -----------------------------------------------------------------------------------
    beats_done = np.concatenate([[0.0], np.cumsum(hr[:-1]) / (60.0 * _GRID_HZ)])
    beat_index = np.arange(np.floor(beats_done[-1] - 1e-9)) + rng.uniform(0.0, 1.0)
    beat_t = np.interp(beat_index[beat_index < beats_done[-1]], beats_done, t)
    rr_s = 60.0 / np.interp(beat_t, t, hr)
    resp_at_beat = np.interp(beat_t, t, resp)
    ecg = _render_beats(rng, beat_t, rr_s, resp_at_beat, phys, minutes * SAMPLES_PER_MINUTE)

    # --- baseline and noise at 100 Hz ------------------------------------------------------------
    n = minutes * SAMPLES_PER_MINUTE
    t_fs = np.arange(n) / FS_HZ
    baseline = phys.wander_mv * _band_noise(rng, n_grid, _GRID_HZ, 0.02, 0.3)
    baseline += 0.5 * phys.wander_mv * _band_noise(rng, n_grid, _GRID_HZ, 0.0005, 0.02)
    baseline += phys.resp_baseline_mv * resp
    ecg += np.interp(t_fs, t, baseline)
    ecg += phys.noise_mv * rng.standard_normal(n)
    emg_env, bursts = _emg_envelope(rng, n, cyc["event_end"], phys)
    ecg += phys.emg_mv * emg_env * np.diff(rng.standard_normal(n + 1)) / np.sqrt(2.0)

    qrs = _detect(rng, beat_t, emg_env, bursts, n)
    return SyntheticApneaRecord(
        name=name,
        apnea_class=apnea_class,
        ecg_mv=ecg.astype(np.float32),
        minute_labels=labels,
        qrs_samples=qrs,
        beat_times_s=beat_t,
        event_intervals_s=np.stack([cyc["start"], cyc["event_end"]], axis=1),
        recovery_intervals_s=np.stack([cyc["event_end"], cyc["end"]], axis=1),
    )


def _render_beats(
    rng: np.random.Generator,
    beat_t: np.ndarray,
    rr_s: np.ndarray,
    resp_at_beat: np.ndarray,
    phys: _Physiology,
    n: int,
) -> np.ndarray:
    """Sum-of-Gaussians P-QRS-T beats at sub-sample R times, respiration-modulated, in mV."""
    offset, width, amp = phys.morphology.T
    # QT and PR scale roughly with sqrt(RR) (Bazett); QRS duration does not.
    stretch = np.sqrt(np.clip(rr_s, 0.4, 1.6))[:, None]
    rate_scaled = np.array([True, False, False, False, True])
    # EDR: the QRS (and, less, T) amplitude follows respiration through the heart's electrical
    # axis and thoracic impedance; 2 % beat-to-beat jitter.
    qrs_gain = (1.0 + phys.edr_gain * resp_at_beat) * (
        1.0 + 0.02 * rng.standard_normal(len(beat_t))
    )
    t_gain = 1.0 + 0.5 * phys.edr_gain * resp_at_beat
    gains = [np.ones_like(qrs_gain), qrs_gain, qrs_gain, qrs_gain, t_gain]

    anchor = np.floor(beat_t * FS_HZ).astype(np.int64)
    ecg = np.zeros(n)
    for window, waves in zip(_WAVE_WINDOWS, _WAVES_IN_WINDOW):
        idx = anchor[:, None] + window[None, :]
        rel_s = idx / FS_HZ - beat_t[:, None]
        values = np.zeros(idx.shape)
        for w in waves:
            mu = offset[w] * (stretch if rate_scaled[w] else 1.0)
            sd = width[w] * (stretch if w == 4 else 1.0)
            values += (amp[w] * gains[w])[:, None] * np.exp(-0.5 * ((rel_s - mu) / sd) ** 2)
        keep = (idx >= 0) & (idx < n)
        ecg += np.bincount(idx[keep], weights=values[keep], minlength=n)
    return ecg


def _emg_envelope(
    rng: np.random.Generator, n: int, terminations_s: np.ndarray, phys: _Physiology
) -> tuple[np.ndarray, np.ndarray]:
    """Envelope (0..1 at 100 Hz) of EMG bursts: random ones plus some at event terminations."""
    n_random = rng.poisson(phys.emg_per_h * n / (FS_HZ * 3600.0))
    onsets = np.concatenate(
        [
            rng.uniform(0.0, n / FS_HZ, n_random),
            terminations_s[rng.random(terminations_s.size) < 0.2],
        ]
    )
    durations = rng.uniform(0.5, 3.0, onsets.size)
    envelope = np.zeros(n)
    for onset, duration in zip(onsets, durations):
        a, b = int(onset * FS_HZ), min(n, int((onset + duration) * FS_HZ))
        if b > a:
            envelope[a:b] = np.maximum(envelope[a:b], np.hanning(b - a + 2)[1:-1])
    return envelope, np.stack([onsets, onsets + durations], axis=1)


def _detect(
    rng: np.random.Generator, beat_t: np.ndarray, emg_env: np.ndarray, bursts: np.ndarray, n: int
) -> np.ndarray:
    """Machine-style R-peak detections: ±1-sample jitter, misses and false beats in EMG bursts."""
    r = np.rint(beat_t * FS_HZ).astype(np.int64)
    r = r[(r >= 0) & (r < n)]
    r += np.where(rng.random(r.size) < 0.2, rng.integers(-1, 2, r.size), 0)
    noisy = emg_env[np.clip(r, 0, n - 1)] > 0.5
    r = r[rng.random(r.size) >= np.where(noisy, 0.05, 0.0005)]
    false_counts = rng.poisson(0.3, len(bursts))
    false_t = np.concatenate(
        [rng.uniform(a, b, c) for (a, b), c in zip(bursts, false_counts)] + [np.zeros(0)]
    )
    r = np.concatenate([r, np.rint(false_t * FS_HZ).astype(np.int64)])
    return np.unique(r[(r >= 0) & (r < n)])


def write_apn(record_name: str, labels: str, directory: Path) -> None:
    """Write ``<record_name>.apn``: one ``A``/``N`` annotation per minute at sample 6000·i.

    Written without a stored sampling frequency, which gives exactly the bytes of the real files
    (``N`` = code 1 and ``A`` = code 8 of the standard WFDB table, each preceded by a SKIP).

    Args:
        record_name: record name (file stem).
        labels: one character per minute, ``A`` or ``N``.
        directory: folder to write into.
    """
    if set(labels) - {"A", "N"}:
        raise ValueError(f"labels must be A or N, got {sorted(set(labels) - {'A', 'N'})}")
    wfdb.wrann(
        record_name,
        "apn",
        np.arange(len(labels), dtype=np.int64) * SAMPLES_PER_MINUTE,
        symbol=list(labels),
        write_dir=str(directory),
    )


def _write_record(record: SyntheticApneaRecord, directory: Path, released: bool) -> None:
    digital = np.clip(np.rint(record.ecg_mv * ADC_GAIN_PER_MV), _ADC_MIN, _ADC_MAX).astype(np.int64)
    header = wfdb.Record(
        record_name=record.name,
        n_sig=1,
        fs=FS_HZ,
        sig_len=digital.size,
        file_name=[f"{record.name}.dat"],
        fmt=["16"],
        adc_gain=[ADC_GAIN_PER_MV],
        baseline=[0],
        units=["mV"],
        adc_res=[_ADC_RESOLUTION_BITS],
        adc_zero=[0],
        block_size=[0],
        sig_name=["ECG"],
        d_signal=digital[:, None],
    )
    header.set_d_features(do_adc=False)  # init_value and checksum, as in the real headers
    header.wrsamp(write_dir=str(directory))
    wfdb.wrann(
        record.name,
        "qrs",
        record.qrs_samples,
        symbol=["N"] * record.qrs_samples.size,
        write_dir=str(directory),
    )
    if released:
        write_apn(record.name, record.minute_labels, directory)


def format_event1_answers(classes: Mapping[str, str]) -> str:
    """Text of ``event-1-answers``: one ``<record> <A|B|C>`` line per record."""
    return "".join(f"{name} {cls}\n" for name, cls in classes.items())


def format_event2_answers(labels: Mapping[str, str]) -> str:
    """Text of ``event-2-answers``: per record its name, then one line per hour.

    Each hour line is the hour index right-aligned in two columns, a space and up to 60 ``A``/``N``
    characters; a blank line follows every record (the real file's layout).
    """
    parts = []
    for name, minute_labels in labels.items():
        hours = [minute_labels[i : i + 60] for i in range(0, len(minute_labels), 60)]
        parts.append(f"{name}\n" + "".join(f"{h:2d} {row}\n" for h, row in enumerate(hours)) + "\n")
    return "".join(parts)


def write_synthetic_apnea_ecg(
    root: Path,
    n_released: int = 6,
    n_withheld: int = 4,
    minutes: int = 120,
    seed: int = 0,
) -> dict[str, dict[str, object]]:
    """Write a synthetic Apnea-ECG database into ``root`` (created if needed).

    Released records (``a01``.., ``b01``.., ``c01``..) get ``.hea``/``.dat``/``.qrs``/``.apn``;
    withheld records (``x01``..) get ``.hea``/``.dat``/``.qrs`` only, and their classes and
    per-minute labels go to ``event-1-answers`` and ``event-2-answers``. ``RECORDS`` and ``list``
    name every record, one per line. Each record's signal depends only on ``seed`` and its name.
    Files of the same names are overwritten; other files in ``root`` are left alone.

    Args:
        root: output folder.
        n_released: number of released (labelled) records, >= 1.
        n_withheld: number of withheld test records, >= 0.
        minutes: length of every record in minutes (6000 samples at 100 Hz each), >= 1.
        seed: random seed; the same arguments give byte-identical files.

    Returns:
        Manifest ``{record: {"class": "A"|"B"|"C", "apnea_minutes": int, "minutes": int}}``.
    """
    if n_released < 1:
        raise ValueError(f"n_released must be >= 1, got {n_released}")
    if n_withheld < 0:
        raise ValueError(f"n_withheld must be >= 0, got {n_withheld}")
    if minutes < 1:
        raise ValueError(f"minutes must be >= 1, got {minutes}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, dict[str, object]] = {}
    withheld_classes: dict[str, str] = {}
    withheld_labels: dict[str, str] = {}
    for name, cls in record_plan(n_released, n_withheld, seed):
        rng = np.random.default_rng([seed, ord(name[0]), int(name[1:])])
        record = simulate_apnea_ecg_record(name, cls, minutes, rng)
        released = not name.startswith("x")
        _write_record(record, root, released)
        if not released:
            withheld_classes[name] = cls
            withheld_labels[name] = record.minute_labels
        manifest[name] = {"class": cls, "apnea_minutes": record.apnea_minutes, "minutes": minutes}
    (root / "event-1-answers").write_text(format_event1_answers(withheld_classes))
    (root / "event-2-answers").write_text(format_event2_answers(withheld_labels))
    names = "".join(f"{name}\n" for name in manifest)
    (root / "RECORDS").write_text(names)
    (root / "list").write_text(names)
    return manifest
