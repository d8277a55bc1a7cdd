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
- premature beats (:func:`~sleepbench.tasks.apnea_ecg.synth_events.place_ectopic_beats`):
  ventricular ones with a wide, large QRS, no P wave and a discordant T, atrial ones with a
  normal QRS after an ectopic (smaller, flat or inverted) P wave;
- baseline wander (respiratory and slower), white noise and EMG bursts, some at event ends;
- machine-style R-peak detections with ±1-sample jitter, missed beats and false beats in EMG
  bursts, as in the real, unaudited ``.qrs`` files.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np

from sleepbench.tasks.apnea_ecg.synth_events import (
    PAC,
    PVC,
    Arousals,
    Cycles,
    place_ectopic_beats,
)
from sleepbench.tasks.apnea_ecg.synth_physiology import Physiology

__all__ = ["FS_HZ", "SAMPLES_PER_MINUTE", "RenderedEcg", "synth_ecg"]

FS_HZ: Final = 100
SAMPLES_PER_MINUTE: Final = 60 * FS_HZ
# Slow processes (heart rate, respiration, baseline) live on a 10 Hz grid: respiration is below
# 0.5 Hz, and beats are placed at sub-sample precision by interpolating the integrated heart rate.
_GRID_HZ: Final = 10
# Support of each wave around the R peak, in samples at FS_HZ, wide enough for every record's
# morphology and heart rate (±4 widths): P, Q, R, S, T; then the two QRS lobes and the T wave of a
# ventricular beat.
_QRS_WINDOW: Final = np.arange(-12, 13)
_WAVE_WINDOWS: Final = (np.arange(-45, -3), _QRS_WINDOW, _QRS_WINDOW, _QRS_WINDOW, np.arange(0, 75))
_PVC_WINDOWS: Final = (np.arange(-15, 16), np.arange(-15, 16), np.arange(-10, 71))


class RenderedEcg(NamedTuple):
    """One record's signal.

    Attributes:
        ecg_mv: ECG in mV at :data:`FS_HZ`, float64.
        beat_times_s: true R-peak times (s).
        qrs_samples: detected R peaks (sample indices, int64, with the detection errors).
        beat_kinds: kind of each true beat (``SINUS``, ``PVC``, ``PAC`` of
            :mod:`~sleepbench.tasks.apnea_ecg.synth_events`, int8).
    """

    ecg_mv: np.ndarray
    beat_times_s: np.ndarray
    qrs_samples: np.ndarray
    beat_kinds: np.ndarray


class _BeatDraws:
    """Per-beat random draws that leave the record's stream as it was before ectopy.

    Atrial premature beats reset the sinus node and add a few beats at the end of the record; the
    first ``n_sinus`` draws come from the record's stream (the count it always drew, so its later
    draws, noise and detection errors, do not move) and the added beats' from the ectopy stream.
    """

    def __init__(self, rng: np.random.Generator, extra: np.random.Generator, n_sinus: int) -> None:
        self._rng, self._extra, self._n_sinus = rng, extra, n_sinus

    def _split(self, n: int) -> tuple[int, int]:
        head = min(n, self._n_sinus)
        return head, n - head

    def random(self, n: int) -> np.ndarray:
        """``n`` uniform draws in [0, 1)."""
        head, tail = self._split(n)
        return np.concatenate([self._rng.random(head), self._extra.random(tail)])

    def standard_normal(self, n: int) -> np.ndarray:
        """``n`` standard normal draws."""
        head, tail = self._split(n)
        return np.concatenate([self._rng.standard_normal(head), self._extra.standard_normal(tail)])

    def integers(self, low: int, high: int, n: int) -> np.ndarray:
        """``n`` integers in [low, high)."""
        head, tail = self._split(n)
        return np.concatenate(
            [self._rng.integers(low, high, head), self._extra.integers(low, high, tail)]
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
    rng: np.random.Generator,
    cycles: Cycles,
    arousals: Arousals,
    phys: Physiology,
    minutes: int,
    ectopy: np.random.Generator,
) -> RenderedEcg:
    """Render one record's ECG and its R-peak detections from its event timeline.

    Args:
        rng: source of randomness (continues the stream that drew the timeline).
        cycles: event/recovery cycles (s).
        arousals: surges outside episodes (s, bpm).
        phys: the record's constants.
        minutes: record length (min); the ECG has ``minutes * 6000`` samples at 100 Hz.
        ectopy: the ectopy stream (continues the one that drew ``phys.ectopy``).

    Returns:
        The ECG (mV), the true beat times (s) and kinds, and the detected R peaks (samples).
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
    sinus_phase = beat_index[beat_index < beats_done[-1]]
    phase, kinds = place_ectopic_beats(ectopy, sinus_phase, beats_done[-1], minutes / 60.0, phys)
    beat_t = np.interp(phase, beats_done, t)
    draws = _BeatDraws(rng, ectopy, sinus_phase.size)
    rr_s = 60.0 / np.interp(beat_t, t, hr)
    resp_at_beat = np.interp(beat_t, t, resp)
    ecg = _render_beats(
        draws, beat_t, kinds, rr_s, resp_at_beat, phys, minutes * SAMPLES_PER_MINUTE
    )

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

    qrs = _detect(rng, draws, beat_t, emg_env, bursts, n)
    return RenderedEcg(ecg, beat_t, qrs, kinds)


def _add_waves(
    ecg: np.ndarray,
    beat_t: np.ndarray,
    window: np.ndarray,
    mu_s: np.ndarray | float,
    sd_s: np.ndarray | float,
    amp_mv: np.ndarray,
) -> None:
    """Add one Gaussian wave per beat to ``ecg`` (in place), evaluated over ``window`` samples.

    ``mu_s`` (offset from the beat time) and ``sd_s`` (width) are in s, per beat or shared;
    ``amp_mv`` per beat.
    """
    anchor = np.floor(beat_t * FS_HZ).astype(np.int64)
    idx = anchor[:, None] + window[None, :]
    rel_s = idx / FS_HZ - beat_t[:, None]
    mu, sd = np.reshape(mu_s, (-1, 1)), np.reshape(sd_s, (-1, 1))
    values = amp_mv[:, None] * np.exp(-0.5 * ((rel_s - mu) / sd) ** 2)
    keep = (idx >= 0) & (idx < ecg.size)
    ecg += np.bincount(idx[keep], weights=values[keep], minlength=ecg.size)


def _render_beats(
    draws: _BeatDraws,
    beat_t: np.ndarray,
    kinds: np.ndarray,
    rr_s: np.ndarray,
    resp_at_beat: np.ndarray,
    phys: Physiology,
    n: int,
) -> np.ndarray:
    """Sum-of-Gaussians beats at sub-sample R times, respiration-modulated, in mV.

    Sinus and atrial premature beats get the record's P-QRS-T (an atrial beat its ectopic P);
    ventricular ones the record's ventricular QRS and discordant T, without a P wave.
    """
    offset, width, amp = phys.morphology.T
    # QT and PR scale roughly with sqrt(RR) (Bazett); QRS duration does not.
    stretch = np.sqrt(np.clip(rr_s, 0.4, 1.6))
    rate_scaled = np.array([True, False, False, False, True])
    # EDR: the QRS (and, less, T) amplitude follows respiration through the heart's electrical
    # axis and thoracic impedance; 2 % beat-to-beat jitter.
    qrs_gain = (1.0 + phys.edr_gain * resp_at_beat) * (
        1.0 + 0.02 * draws.standard_normal(len(beat_t))
    )
    t_gain = 1.0 + 0.5 * phys.edr_gain * resp_at_beat
    p_gain = np.where(kinds == PAC, phys.ectopy.pac_p_gain, 1.0)
    gains = [p_gain, qrs_gain, qrs_gain, qrs_gain, t_gain]

    ecg = np.zeros(n)
    sup = kinds != PVC  # supraventricular: sinus and atrial premature beats
    for w, window in enumerate(_WAVE_WINDOWS):
        mu = offset[w] * (stretch[sup] if rate_scaled[w] else 1.0)
        sd = width[w] * (stretch[sup] if w == 4 else 1.0)
        _add_waves(ecg, beat_t[sup], window, mu, sd, amp[w] * gains[w][sup])
    pvc = ~sup
    pvc_offset, pvc_width, pvc_amp = phys.ectopy.pvc_morphology.T
    for w, window in enumerate(_PVC_WINDOWS):
        gain = (t_gain if w == 2 else qrs_gain)[pvc]
        _add_waves(ecg, beat_t[pvc], window, pvc_offset[w], pvc_width[w], pvc_amp[w] * gain)
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
    rng: np.random.Generator,
    draws: _BeatDraws,
    beat_t: np.ndarray,
    emg_env: np.ndarray,
    bursts: np.ndarray,
    n: int,
) -> np.ndarray:
    """Machine-style R-peak detections: ±1-sample jitter, misses and false beats in EMG bursts.

    Every beat is detected alike, ectopic or not (the real annotator labelled them all ``N``).
    """
    r = np.rint(beat_t * FS_HZ).astype(np.int64)
    r = r[(r >= 0) & (r < n)]
    r += np.where(draws.random(r.size) < 0.2, draws.integers(-1, 2, r.size), 0)
    noisy = emg_env[np.clip(r, 0, n - 1)] > 0.5
    r = r[draws.random(r.size) >= np.where(noisy, 0.05, 0.0005)]
    false_counts = rng.poisson(0.3, len(bursts))
    false_t = np.concatenate(
        [rng.uniform(a, b, c) for (a, b), c in zip(bursts, false_counts)] + [np.zeros(0)]
    )
    r = np.concatenate([r, np.rint(false_t * FS_HZ).astype(np.int64)])
    return np.unique(r[(r >= 0) & (r < n)])
