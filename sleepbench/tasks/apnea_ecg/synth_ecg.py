"""Synthetic Apnea-ECG, the signal: respiration, heart rate, beats, noise and R-peak detections.

Realises one record's event timeline (:mod:`~sleepbench.tasks.apnea_ecg.synth_events`) as a
100 Hz single-lead ECG in mV:

- respiration on a 10 Hz grid: rate and amplitude vary slowly and breath to breath; the amplitude
  nearly vanishes during an event (residual breathing of a hypopnea), is exaggerated during the
  recovery breaths and rises with the sigh of a spontaneous arousal;
- heart rate: VLF and LF variability, respiratory sinus arrhythmia, a progressive bradycardia
  through each event and an alpha-shaped tachycardic surge after its end (cyclic variation of
  heart rate), and the surges of arousals and limb movements outside episodes;
- sum-of-Gaussians P-QRS-T beats at the sub-sample beat times, the QRS amplitude modulated by
  respiration (ECG-derived respiration);
- baseline wander (respiratory and slower), white noise and EMG bursts, some at event ends;
- machine-style R-peak detections with ±1-sample jitter, missed beats and false beats in EMG
  bursts, as in the real, unaudited ``.qrs`` files.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np

from sleepbench.tasks.apnea_ecg.synth_events import Arousals, Cycles
from sleepbench.tasks.apnea_ecg.synth_physiology import Physiology

__all__ = ["FS_HZ", "SAMPLES_PER_MINUTE", "RenderedEcg", "synth_ecg"]

FS_HZ: Final = 100
SAMPLES_PER_MINUTE: Final = 60 * FS_HZ
# Slow processes (heart rate, respiration, baseline) live on a 10 Hz grid: respiration is below
# 0.5 Hz, and beats are placed at sub-sample precision by interpolating the integrated heart rate.
_GRID_HZ: Final = 10
# Support of each wave around the R peak, in samples at FS_HZ, wide enough for every record's
# morphology and heart rate (±4 widths): P, then Q/R/S together, then T.
_WAVE_WINDOWS: Final = (np.arange(-45, -3), np.arange(-12, 13), np.arange(0, 75))
_WAVES_IN_WINDOW: Final = ((0,), (1, 2, 3), (4,))


class RenderedEcg(NamedTuple):
    """One record's signal.

    Attributes:
        ecg_mv: ECG in mV at :data:`FS_HZ`, float64.
        beat_times_s: true R-peak times (s).
        qrs_samples: detected R peaks (sample indices, int64, with the detection errors).
    """

    ecg_mv: np.ndarray
    beat_times_s: np.ndarray
    qrs_samples: np.ndarray


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


def _respiration(
    rng: np.random.Generator,
    t: np.ndarray,
    k: np.ndarray,
    in_event: np.ndarray,
    cycles: Cycles,
    sigh_onsets_s: np.ndarray,
    phys: Physiology,
) -> np.ndarray:
    """Respiration (unitless, ~±1 at rest) on the grid ``t`` (s); ``k``: cycle index or -1.

    Breathing rate is faster in recovery; the amplitude envelope has breath-to-breath and slow
    variability, is suppressed in events, exaggerated in recovery and raised by sighs at arousals.
    """
    n_grid = t.size
    in_recovery = (k >= 0) & ~in_event
    sigh_end = sigh_onsets_s + rng.uniform(6.0, 10.0, sigh_onsets_s.size)
    sigh = _interval_index(t, sigh_onsets_s, sigh_end) >= 0
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
    envelope *= np.where(in_event, _at(cycles.depth, k, 1.0), 1.0)
    envelope *= np.where(in_recovery, phys.recovery_gain, 1.0)
    envelope *= np.where(sigh & ~in_event, rng.uniform(1.4, 2.0), 1.0)
    envelope = _moving_average(envelope, 2 * _GRID_HZ)
    envelope *= 1.0 + _moving_average(per_breath, _GRID_HZ)
    return envelope * (np.sin(phase) + 0.25 * np.sin(2 * phase + 0.6)) / 1.03


def _heart_rate(
    rng: np.random.Generator,
    t: np.ndarray,
    k: np.ndarray,
    in_event: np.ndarray,
    resp: np.ndarray,
    cycles: Cycles,
    arousals: Arousals,
    phys: Physiology,
) -> np.ndarray:
    """Heart rate (bpm, 38–140) on the grid ``t`` (s): VLF + LF, RSA, CVHR and arousal surges."""
    n_grid = t.size
    onset = _at(cycles.start, k, 0.0)
    progress = np.where(in_event, (t - onset) / (_at(cycles.event_end, k, 1.0) - onset), 0.0)
    brady = np.where(in_event, _at(cycles.brady, k, 0.0) * progress**0.8, 0.0)
    hr = (
        phys.hr_bpm
        + phys.vlf_bpm * _band_noise(rng, n_grid, _GRID_HZ, 0.0005, 0.01)
        + phys.lf_bpm * _band_noise(rng, n_grid, _GRID_HZ, 0.04, 0.15)
        + phys.rsa_bpm * resp
        - _moving_average(brady, 2 * _GRID_HZ)
        + _alpha_bumps(
            t,
            np.concatenate([cycles.event_end, arousals.onsets_s]),
            np.concatenate([cycles.surge, arousals.heights_bpm]),
            phys.surge_peak_s,
        )
    )
    return np.clip(hr, 38.0, 140.0)


def synth_ecg(
    rng: np.random.Generator, cycles: Cycles, arousals: Arousals, phys: Physiology, minutes: int
) -> RenderedEcg:
    """Render one record's ECG and its R-peak detections from its event timeline.

    Args:
        rng: source of randomness (continues the stream that drew the timeline).
        cycles: event/recovery cycles (s).
        arousals: surges outside episodes (s, bpm).
        phys: the record's constants.
        minutes: record length (min); the ECG has ``minutes * 6000`` samples at 100 Hz.

    Returns:
        The ECG (mV), the true beat times (s) and the detected R peaks (samples).
    """
    # --- slow processes on the 10 Hz grid -------------------------------------------------------
    n_grid = minutes * 60 * _GRID_HZ
    t = np.arange(n_grid) / _GRID_HZ
    k = _interval_index(t, cycles.start, cycles.end)
    in_event = t < _at(cycles.event_end, k, -np.inf)
    resp = _respiration(rng, t, k, in_event, cycles, arousals.sigh_onsets_s, phys)
    hr = _heart_rate(rng, t, k, in_event, resp, cycles, arousals, phys)

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
    emg_env, bursts = _emg_envelope(rng, n, cycles.event_end, phys)
    ecg += phys.emg_mv * emg_env * np.diff(rng.standard_normal(n + 1)) / np.sqrt(2.0)

    qrs = _detect(rng, beat_t, emg_env, bursts, n)
    return RenderedEcg(ecg, beat_t, qrs)


def _render_beats(
    rng: np.random.Generator,
    beat_t: np.ndarray,
    rr_s: np.ndarray,
    resp_at_beat: np.ndarray,
    phys: Physiology,
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
    rng: np.random.Generator, n: int, terminations_s: np.ndarray, phys: Physiology
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
