"""Synthetic Sleep-EDF Expanded (sleep-cassette) nights, written as the real files are.

Each night is a pair ``SC4ssNE0-PSG.edf`` (plain EDF, 30-s data records, Sleep-EDF's seven
channels and rates) and ``SC4ssNEx-Hypnogram.edf`` (annotation-only EDF+C: one annotation per
run of equal 30-s epochs, ``Sleep stage W/1/2/3/4/R/?`` and ``Movement time``; ``x`` is a scorer
letter). As in the real database the hypnogram runs past the end of the PSG with a final
``Sleep stage ?`` annotation, so readers must trim it to the signal.

The night follows sleep physiology (Rechtschaffen & Kales stages, per 30-s epoch):

- structure: lights-off wake, sleep onset through stage 1, ~90-min NREM-REM cycles with most
  slow-wave sleep (stages 3 and 4) early and longer REM periods late, brief awakenings,
  a few movement-time and unscorable epochs, wake at the end;
- EEG (Fpz-Cz, Pz-Oz, µV) over a 1/f background: eyes-closed wake alpha (8-12 Hz, occipital
  Pz-Oz strongest) with muscle activity; stage 1 theta (4-7 Hz) and vertex sharp waves; stage 2
  sleep spindles (11-16 Hz, 0.5-2 s, waxing-waning) and K-complexes; stages 3/4 high-amplitude
  0.5-2 Hz delta (> 75 µV peak to peak, more in stage 4); REM low-amplitude mixed frequency with
  sawtooth-wave trains (2-6 Hz);
- EOG (horizontal, µV): blinks and saccades in wake, slow rolling eye movements (0.2-0.5 Hz) at
  sleep onset, rapid eye movements (sharp conjugate deflections in bursts) in REM, and frontal
  EEG picked up by volume conduction; eye artefacts leak into Fpz-Cz in turn;
- 1-Hz channels: submental EMG envelope (high in wake, low in NREM, atonia with twitches in
  REM), oro-nasal respiration, rectal temperature (nocturnal decline), event marker.

Everything is vectorised numpy: stationary stretches come from spectrally shaped noise synthesised
in 10-s half-overlapping windows (one batched inverse FFT per channel), and transients are added
as template matrices. A 4-h night takes well under a second on an idle core.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import uniform_filter1d
from scipy.signal import sawtooth

from sleepbench.io.edf_write import write_edf, write_edf_annotations
from sleepbench.recording import Event, Signal

__all__ = [
    "ANNOTATION_TEXT",
    "CHANNELS",
    "EPOCH_S",
    "STAGES",
    "SleepEdfSynthNight",
    "SubjectTraits",
    "hypnogram_annotations",
    "synth_hypnogram",
    "synth_night",
    "synth_night_signals",
    "write_synthetic_sleep_edf",
]

EPOCH_S = 30.0
#: R&K epoch codes, in the order used by the amplitude tables below.
STAGES: tuple[str, ...] = ("W", "1", "2", "3", "4", "R", "?", "M")
#: epoch code -> Sleep-EDF hypnogram annotation text.
ANNOTATION_TEXT: dict[str, str] = {
    "W": "Sleep stage W",
    "1": "Sleep stage 1",
    "2": "Sleep stage 2",
    "3": "Sleep stage 3",
    "4": "Sleep stage 4",
    "R": "Sleep stage R",
    "?": "Sleep stage ?",
    "M": "Movement time",
}
#: (label, rate in Hz or None for the EEG rate, unit), in Sleep-EDF's channel order.
CHANNELS: tuple[tuple[str, float | None, str], ...] = (
    ("EEG Fpz-Cz", None, "uV"),
    ("EEG Pz-Oz", None, "uV"),
    ("EOG horizontal", None, "uV"),
    ("Resp oro-nasal", 1.0, ""),
    ("EMG submental", 1.0, "uV"),
    ("Temp rectal", 1.0, "DegC"),
    ("Event marker", 1.0, ""),
)
# Scorer letters seen in the real sleep-cassette hypnogram names, most frequent first.
_SCORERS = "CMJAPVUHGW"
_RECORD_S = 30.0  # Sleep-EDF PSG files use 30-s data records

# --------------------------------------------------------------------------------------------
# per-stage amplitude tables (µV standard deviation), columns follow STAGES:
#                 W     1     2     3     4     R     ?     M
_EEG_BANDS: dict[str, tuple[tuple[float, float], np.ndarray, np.ndarray]] = {
    # band: ((lo_hz, hi_hz), Fpz-Cz amplitudes, Pz-Oz amplitudes); "alpha" is re-centred on the
    # subject's alpha peak.
    "delta": (
        (0.5, 2.0),
        np.array([6, 10, 13, 25, 42, 8, 14, 55], dtype=np.float32),
        np.array([4, 6, 8, 15, 24, 5, 9, 35], dtype=np.float32),
    ),
    "theta": (
        (4.0, 7.5),
        np.array([5, 14, 10, 8, 8, 12, 8, 14], dtype=np.float32),
        np.array([5, 10, 8, 6, 6, 9, 7, 10], dtype=np.float32),
    ),
    "alpha": (
        (8.0, 12.0),
        np.array([10, 5, 3, 2, 2, 5, 6, 8], dtype=np.float32),
        np.array([28, 9, 4, 3, 3, 8, 12, 10], dtype=np.float32),
    ),
    "beta": (
        (16.0, 30.0),
        np.array([5, 3, 2, 1.5, 1.5, 3, 4, 10], dtype=np.float32),
        np.array([4, 2.5, 2, 1.5, 1.5, 2.5, 3, 8], dtype=np.float32),
    ),
    "muscle": (
        (30.0, 45.0),
        np.array([6, 2, 1, 1, 1, 0.5, 6, 30], dtype=np.float32),
        np.array([2, 1, 0.5, 0.5, 0.5, 0.3, 3, 15], dtype=np.float32),
    ),
    "pink": (
        (0.3, 45.0),
        np.array([8, 8, 9, 10, 10, 7, 9, 12], dtype=np.float32),
        np.array([6, 6, 7, 8, 8, 5, 7, 10], dtype=np.float32),
    ),
}
_EOG_BANDS: dict[str, tuple[tuple[float, float], np.ndarray]] = {
    # slow (rolling) eye movements: strongest in stage 1, drowsy wake and movement
    "sem": ((0.15, 0.6), np.array([12, 45, 6, 3, 3, 6, 15, 30], dtype=np.float32)),
    "muscle": ((30.0, 45.0), np.array([4, 1.5, 1, 1, 1, 0.5, 4, 25], dtype=np.float32)),
    "pink": ((0.3, 45.0), np.array([5, 5, 4, 4, 4, 4, 5, 10], dtype=np.float32)),
}
# transient rates (events per minute of each stage)
_SPINDLE_RATE = np.array([0, 0.2, 4.0, 1.0, 0.5, 0, 0, 0], dtype=np.float32)
_KCOMPLEX_RATE = np.array([0, 0, 1.5, 0.5, 0.2, 0, 0, 0], dtype=np.float32)
_VERTEX_RATE = np.array([0, 2.0, 0.3, 0, 0, 0, 0, 0], dtype=np.float32)
_SAWTOOTH_RATE = np.array([0, 0, 0, 0, 0, 0.8, 0, 0], dtype=np.float32)
_BLINK_RATE = np.array([12, 2, 0, 0, 0, 0, 4, 6], dtype=np.float32)
_SACCADE_RATE = np.array([15, 1, 0, 0, 0, 0, 5, 10], dtype=np.float32)
_REM_BURST_RATE = np.array([0, 0, 0, 0, 0, 2.0, 0, 0], dtype=np.float32)
# 1-Hz channels
_EMG_LEVEL = np.array([22, 12, 8, 7, 7, 3, 15, 60], dtype=np.float32)  # µV rms
_RESP_AMP = np.array([1.0, 0.9, 0.8, 0.85, 0.85, 0.7, 1.0, 1.4], dtype=np.float32)
_RESP_JITTER = np.array([0.04, 0.02, 0.01, 0.005, 0.005, 0.04, 0.03, 0.06], dtype=np.float32)

_SEG_S = 10.0  # synthesis window (s); hop is half of it
_TRANSITION_S = 2.0  # smoothing of per-epoch envelopes of transient-free channels


@dataclass(frozen=True)
class SubjectTraits:
    """Per-subject constants shared by all nights of one subject.

    Args:
        alpha_hz: peak frequency of the eyes-closed alpha rhythm (Hz).
        spindle_hz: mean sleep-spindle frequency (Hz).
        amplitude: overall EEG amplitude scale (skull thickness, age).
        slow_wave: scale of slow-wave amplitude and of the amount of stage 3/4 sleep (age).
        temp_c: rectal temperature at lights-off (°C).
        resp_hz: resting breathing rate (Hz).
    """

    alpha_hz: float = 10.0
    spindle_hz: float = 13.0
    amplitude: float = 1.0
    slow_wave: float = 1.0
    temp_c: float = 37.0
    resp_hz: float = 0.25

    @classmethod
    def sample(cls, rng: np.random.Generator) -> SubjectTraits:
        """Draw plausible adult traits."""
        return cls(
            alpha_hz=float(rng.uniform(8.8, 11.2)),
            spindle_hz=float(rng.uniform(12.0, 14.5)),
            amplitude=float(rng.uniform(0.85, 1.15)),
            slow_wave=float(rng.uniform(0.8, 1.2)),
            temp_c=float(rng.uniform(36.8, 37.3)),
            resp_hz=float(rng.uniform(0.22, 0.29)),
        )


# --------------------------------------------------------------------------------------------
# hypnogram


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (sum preserved)."""
    raw = weights / weights.sum() * total
    parts = np.floor(raw).astype(int)
    parts[np.argsort(raw - parts)[::-1][: total - parts.sum()]] += 1
    return parts


def _cycle(rng: np.random.Generator, n: int, p: float, first: bool, slow_wave: float) -> list[str]:
    """One NREM-REM cycle of ``n`` epochs at relative night position ``p`` in [0, 1]."""
    frac_sws = max(0.0, (0.5 * (1.0 - p) ** 2.5 + rng.uniform(-0.03, 0.03)) * slow_wave)
    frac_rem = 0.10 + 0.28 * p + rng.uniform(-0.03, 0.03)
    frac_n1 = 0.0 if first else 0.04
    n_sws = round(n * min(frac_sws, 0.6))
    n_rem = max(1, round(n * frac_rem))
    n_n1 = round(n * frac_n1)
    n_n2 = max(1, n - n_sws - n_rem - n_n1)
    n_rem = n - n_sws - n_n1 - n_n2
    n2_before = round(n_n2 * 0.45)
    # Stage 4 is the deepest core of the slow-wave block, present early in the night only.
    n4 = round(n_sws * float(np.clip(0.75 * (1.0 - p) - 0.15, 0.0, 0.6)))
    n3_before = (n_sws - n4) // 2
    seq = (
        ["1"] * n_n1
        + ["2"] * n2_before
        + ["3"] * n3_before
        + ["4"] * n4
        + ["3"] * (n_sws - n4 - n3_before)
        + ["2"] * (n_n2 - n2_before)
        + ["R"] * n_rem
    )
    return seq


def synth_hypnogram(rng: np.random.Generator, n_epochs: int, slow_wave: float = 1.0) -> list[str]:
    """A plausible night of R&K stages, one code of :data:`STAGES` per 30-s epoch.

    Lights-off wake, sleep onset through stage 1, NREM-REM cycles of about 90 min (fewer but at
    least two for short nights; stages 3/4 concentrated early, REM growing late), awakenings at
    some cycle ends and within stage 2, a few movement-time (``M``) and unscorable (``?``)
    epochs, and wake at the end.

    Args:
        rng: random generator.
        n_epochs: night length in 30-s epochs (at least 40).
        slow_wave: scales the amount of stage 3/4 sleep (young sleepers > 1, elderly < 1).

    Returns:
        ``n_epochs`` stage codes.
    """
    if n_epochs < 40:
        raise ValueError(f"a synthetic night needs at least 40 epochs (20 min), got {n_epochs}")
    w_start = int(np.clip(round(n_epochs * rng.uniform(0.03, 0.07)), 2, 60))
    w_end = int(np.clip(round(n_epochs * rng.uniform(0.02, 0.05)), 2, 40))
    n1_onset = int(np.clip(round(n_epochs * rng.uniform(0.01, 0.03)), 2, 14))
    body = n_epochs - w_start - w_end - n1_onset
    n_cycles = max(2, round(body / 180))  # 180 epochs = 90 min
    lengths = _split(body, rng.uniform(0.85, 1.15, n_cycles))
    seq = ["W"] * w_start + ["1"] * n1_onset
    for k, n in enumerate(lengths):
        cyc = _cycle(rng, int(n), k / (n_cycles - 1), k == 0, slow_wave)
        if k < n_cycles - 1 and cyc.count("R") > 3 and rng.random() < 0.7:
            # brief awakening that ends a cycle
            n_w = int(rng.integers(1, 3))
            cyc[-n_w:] = ["W"] * n_w
        seq += cyc
    seq += ["W"] * w_end
    stages = np.array(seq, dtype="<U1")
    sleep = slice(w_start + n1_onset, n_epochs - w_end)
    body_idx = np.arange(n_epochs)[sleep]

    # Fragmentation: a fraction of stage 4 epochs are scored 3, of 3 scored 2, REM scored 1/W.
    u = rng.random(n_epochs)
    stages[(stages == "4") & (u < 0.15)] = "3"
    stages[(stages == "3") & (u > 0.92)] = "2"
    stages[(stages == "R") & (u < 0.04)] = "1"
    stages[(stages == "R") & (u > 0.985)] = "W"
    stages[(stages == "2") & (u < 0.02)] = "1"
    # Awakenings out of stage 2 (~1.5 per hour of stage 2), some with movement time.
    n2 = body_idx[stages[body_idx] == "2"]
    n_wake = min(len(n2) // 20, rng.poisson(1.5 * len(n2) / 120.0))
    for i in rng.choice(n2, size=n_wake, replace=False) if n_wake else ():
        stop = min(i + 3, sleep.stop)
        if rng.random() < 0.35:
            stages[i:stop] = ["M", "W", "1"][: stop - i]
        else:
            stages[i:stop] = ["W", "1", "2"][: stop - i]
    # A few unscorable epochs (artefacts) anywhere in the sleep period.
    n_unscored = int(rng.integers(1, 3))
    stages[rng.choice(body_idx, size=n_unscored, replace=False)] = "?"
    return stages.tolist()


def hypnogram_annotations(stages: Sequence[str], trailing_unscored_s: float = 0.0) -> list[Event]:
    """Sleep-EDF hypnogram annotations: one event per run of equal epochs.

    Args:
        stages: one code of :data:`STAGES` per 30-s epoch.
        trailing_unscored_s: length of a final ``Sleep stage ?`` annotation starting where the
            epochs end (the real hypnograms run past the PSG this way); 0 for none.

    Returns:
        Events with onset/duration in seconds and the exact Sleep-EDF annotation text.
    """
    codes = np.asarray(stages)
    if codes.size == 0:
        return []
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [codes.size]])
    events = [
        Event(float(a * EPOCH_S), float((b - a) * EPOCH_S), ANNOTATION_TEXT[str(codes[a])])
        for a, b in zip(starts, stops)
    ]
    if trailing_unscored_s > 0:
        onset = codes.size * EPOCH_S
        if events[-1].label == ANNOTATION_TEXT["?"]:
            last = events.pop()
            onset, trailing_unscored_s = last.onset_s, last.duration_s + trailing_unscored_s
        events.append(Event(onset, float(trailing_unscored_s), ANNOTATION_TEXT["?"]))
    return events


# --------------------------------------------------------------------------------------------
# signal synthesis helpers


def _band_power_shape(lo: float, hi: float, freqs: np.ndarray, pink: bool = False) -> np.ndarray:
    """Per-bin power fractions (summing to 1) of a band with 0.1-Hz-wide cosine edges."""
    edge = 0.1
    w = np.clip((freqs - (lo - edge)) / (2 * edge), 0, 1) * np.clip(
        ((hi + edge) - freqs) / (2 * edge), 0, 1
    )
    w = np.sin(0.5 * np.pi * w) ** 2
    if pink:
        w = w / np.maximum(freqs, lo)
    w[0] = 0.0
    return (w / w.sum()).astype(np.float32)


def _window_stage_power(
    stage_idx: np.ndarray, table: np.ndarray, n_seg: int, seg: int, hop: int, spe: int
) -> np.ndarray:
    """Mean squared amplitude of ``table[stage]`` seen through each synthesis window.

    Window ``j`` spans samples ``[(j - 1) * hop, (j - 1) * hop + seg)``; its power is the
    window-weighted (sin^2) average over the epochs it overlaps, so stage changes cross-fade
    over a few seconds instead of jumping.
    """
    q = 10
    offs = (np.arange(q) + 0.5) / q * seg
    weights = np.sin(np.pi * offs / seg) ** 2
    pos = (np.arange(n_seg)[:, None] - 1) * hop + offs[None, :]
    ep = np.clip((pos // spe).astype(int), 0, stage_idx.size - 1)
    power = table[stage_idx[ep]] ** 2  # (n_seg, q)
    return (power * weights).sum(axis=1) / weights.sum()


def _shaped_noise(
    rng: np.random.Generator,
    n: int,
    fs: float,
    stage_idx: np.ndarray,
    bands: Sequence[tuple[np.ndarray, np.ndarray]],
    common: np.ndarray | None = None,
    common_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise whose band powers follow the per-epoch stage, by windowed overlap-add synthesis.

    Args:
        rng: random generator.
        n: output length in samples.
        fs: sampling rate (Hz).
        stage_idx: stage index per 30-s epoch.
        bands: ``(power_shape, amplitude_per_stage)`` pairs; the shape's bins sum to 1 and the
            amplitude is the band's standard deviation (µV) in each stage.
        common: complex white spectrum to share with another channel (``None`` for none).
        common_weight: correlation with ``common`` (0..1).

    Returns:
        ``(signal, white)``: float32 signal of ``n`` samples whose variance in each stage is the
        sum of the squared band amplitudes, and the complex white spectrum used (for sharing).
    """
    seg = int(round(_SEG_S * fs))
    hop = seg // 2
    spe = int(round(EPOCH_S * fs))
    n_seg = -(-n // hop) + 1
    amps = np.stack(
        [_window_stage_power(stage_idx, amp, n_seg, seg, hop, spe) for _, amp in bands], axis=1
    ).astype(np.float32)
    shapes = np.stack([shape for shape, _ in bands]).astype(np.float32)
    power = amps @ shapes  # (n_seg, n_freq) power per window and frequency bin
    # Complex white noise with E|z|^2 = 1, drawn straight into complex64 (interleaved real and
    # imaginary parts) to keep the whole path single precision.
    white = rng.standard_normal((n_seg, 2 * power.shape[1]), dtype=np.float32).view(np.complex64)
    white *= np.float32(np.sqrt(0.5))
    if common is not None:
        white *= np.float32(np.sqrt(1.0 - common_weight**2))
        white += np.float32(common_weight) * common
    # E|X_k|^2 = (seg^2 / 2) * power_k gives a time-domain variance of sum(power).
    spec = white * np.sqrt(power * np.float32(seg * seg / 2.0))
    frames = sp_fft.irfft(spec, n=seg, axis=1).astype(np.float32)
    frames *= np.sin(np.pi * (np.arange(seg) + 0.5) / seg).astype(np.float32)  # w^2 sums to 1
    out = np.zeros((n_seg + 1) * hop, dtype=np.float32)
    even, odd = frames[0::2], frames[1::2]
    out[: even.shape[0] * seg] += even.reshape(-1)
    out[hop : hop + odd.shape[0] * seg] += odd.reshape(-1)
    return out[hop : hop + n], white


def _event_onsets(
    rng: np.random.Generator, stage_idx: np.ndarray, rate_per_min: np.ndarray, spe: int
) -> np.ndarray:
    """Sample onsets (samples) of a Poisson process whose rate depends on the epoch's stage."""
    counts = rng.poisson(rate_per_min[stage_idx] * EPOCH_S / 60.0)
    epochs = np.repeat(np.arange(stage_idx.size), counts)
    return (epochs * spe + rng.integers(0, spe, size=epochs.size)).astype(np.int64)


def _add_templates(signal: np.ndarray, onsets: np.ndarray, templates: np.ndarray) -> None:
    """Add template rows (n, L) into ``signal`` at ``onsets``, clipping at the end."""
    if onsets.size == 0:
        return
    idx = onsets[:, None] + np.arange(templates.shape[1])[None, :]
    keep = idx < signal.size
    np.add.at(signal, idx[keep], templates[keep].astype(signal.dtype))


def _spindles(rng: np.random.Generator, n: int, fs: float, mean_hz: float) -> np.ndarray:
    """``n`` sleep spindles: 11-16 Hz, 0.5-2 s, sin^2 (waxing-waning) envelope, 20-45 µV."""
    t = np.arange(int(2.0 * fs) + 1) / fs
    dur = rng.uniform(0.5, 2.0, n)[:, None]
    freq = np.clip(mean_hz + rng.uniform(-1.5, 1.5, n), 11.0, 16.0)[:, None]
    amp = rng.uniform(20.0, 45.0, n)[:, None]
    env = np.where(t[None, :] < dur, np.sin(np.pi * t[None, :] / dur) ** 2, 0.0)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    return amp * env * np.sin(2 * np.pi * freq * t[None, :] + phase)


def _k_complexes(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` K-complexes: sharp negative wave then a slower positive one, 100-200 µV p-p."""
    t = np.arange(int(1.5 * fs)) / fs
    a = rng.uniform(50.0, 100.0, n)[:, None]
    t1 = rng.uniform(0.18, 0.26, n)[:, None]
    neg = np.exp(-(((t[None, :] - t1) / rng.uniform(0.06, 0.09, n)[:, None]) ** 2))
    pos = np.exp(-(((t[None, :] - t1 - 0.42) / 0.2) ** 2))
    return -a * neg + 0.75 * a * pos


def _vertex_waves(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` vertex sharp waves: ~0.2-s sharp transient, 40-90 µV, small opposite after-wave."""
    t = np.arange(int(0.6 * fs)) / fs
    a = rng.uniform(40.0, 90.0, n)[:, None]
    return -a * np.exp(-(((t[None, :] - 0.12) / 0.045) ** 2)) + 0.25 * a * np.exp(
        -(((t[None, :] - 0.28) / 0.08) ** 2)
    )


def _sawtooth_trains(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` REM sawtooth-wave trains: 2-6 Hz, 2-8 s, 20-45 µV, ramp-shaped waves."""
    t = np.arange(int(8.0 * fs)) / fs
    dur = rng.uniform(2.0, 8.0, n)[:, None]
    freq = rng.uniform(2.0, 5.5, n)[:, None]
    amp = rng.uniform(20.0, 45.0, n)[:, None]
    ramp = np.clip(np.minimum(t[None, :], dur - t[None, :]) / 0.4, 0.0, 1.0)
    return amp * ramp * sawtooth(2 * np.pi * freq * t[None, :], width=0.8)


def _eye_steps(amp: np.ndarray, fs: float, rise_s: float, tau: np.ndarray) -> np.ndarray:
    """Eye-movement deflections (rows): a fast rise of ``rise_s`` seconds to ``amp`` µV, then
    the decay with time constant ``tau`` (s) that the EOG amplifier's AC coupling imposes."""
    t = np.arange(int(6.0 * fs)) / fs
    rise = np.clip(t / rise_s, 0.0, 1.0)
    decay = np.exp(-np.maximum(t[None, :] - rise_s, 0.0) / tau[:, None])
    return amp[:, None] * rise[None, :] * decay


def _blinks(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` eye blinks: ~0.3-s monophasic bumps of 30-80 µV (as seen on a frontal lead)."""
    t = np.arange(int(0.8 * fs)) / fs
    return rng.uniform(30.0, 80.0, n)[:, None] * np.exp(-(((t[None, :] - 0.3) / 0.08) ** 2))


def _per_second(stage_idx: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-second values of a per-stage table, cross-faded over 5 s."""
    x = np.repeat(table[stage_idx], int(EPOCH_S)).astype(np.float32)
    return uniform_filter1d(x, size=5, mode="nearest")


# --------------------------------------------------------------------------------------------
# whole night


def synth_night_signals(
    rng: np.random.Generator,
    stages: Sequence[str],
    fs_hz: float = 100.0,
    traits: SubjectTraits | None = None,
) -> list[Signal]:
    """All seven Sleep-EDF channels for a night whose per-epoch stages are given.

    Args:
        rng: random generator.
        stages: one code of :data:`STAGES` per 30-s epoch.
        fs_hz: rate of the EEG and EOG channels in Hz (Sleep-EDF: 100); ``5 * fs_hz`` must be
            a whole number of samples.
        traits: subject constants; ``None`` uses population means.

    Returns:
        Signals in Sleep-EDF order (:data:`CHANNELS`): EEG Fpz-Cz, EEG Pz-Oz, EOG horizontal
        (``fs_hz``, µV), Resp oro-nasal, EMG submental (µV rms), Temp rectal (°C), Event marker
        (1 Hz).
    """
    traits = traits or SubjectTraits()
    if abs(5 * fs_hz - round(5 * fs_hz)) > 1e-9:
        raise ValueError(f"fs_hz={fs_hz}: 5 s must be a whole number of samples")
    code = {s: i for i, s in enumerate(STAGES)}
    try:
        stage_idx = np.array([code[s] for s in stages], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"unknown stage code {err.args[0]!r}; expected one of {STAGES}") from None
    spe = int(round(EPOCH_S * fs_hz))
    n = stage_idx.size * spe
    seg = int(round(_SEG_S * fs_hz))
    freqs = np.fft.rfftfreq(seg, 1.0 / fs_hz)
    nyq = 0.45 * fs_hz

    def shape(name: str, lo: float, hi: float) -> np.ndarray:
        # 1/f weighting inside the delta band makes slow waves irregular, as in real SWS.
        return _band_power_shape(lo, min(hi, nyq), freqs, pink=name in ("pink", "delta"))

    # ---- EEG background: stage-dependent band powers, Pz-Oz partly shared with Fpz-Cz
    fpz_bands, pz_bands = [], []
    for name, ((lo, hi), amp_fpz, amp_pz) in _EEG_BANDS.items():
        if name == "alpha":
            lo, hi = traits.alpha_hz - 1.2, traits.alpha_hz + 1.2
        scale = traits.amplitude * (traits.slow_wave if name == "delta" else 1.0)
        fpz_bands.append((shape(name, lo, hi), amp_fpz * scale))
        pz_bands.append((shape(name, lo, hi), amp_pz * scale))
    fpz, white = _shaped_noise(rng, n, fs_hz, stage_idx, fpz_bands)
    pz, _ = _shaped_noise(rng, n, fs_hz, stage_idx, pz_bands, white, common_weight=0.5)

    # ---- EEG graphoelements
    sp_on = _event_onsets(rng, stage_idx, _SPINDLE_RATE, spe)
    kc_on = _event_onsets(rng, stage_idx, _KCOMPLEX_RATE, spe)
    # About 40 % of K-complexes are followed by a spindle.
    kc_sp = kc_on[rng.random(kc_on.size) < 0.4] + int(0.6 * fs_hz)
    sp_all = np.concatenate([sp_on, kc_sp])
    spindles = _spindles(rng, sp_all.size, fs_hz, traits.spindle_hz)
    kcs = _k_complexes(rng, kc_on.size, fs_hz)
    vx_on = _event_onsets(rng, stage_idx, _VERTEX_RATE, spe)
    vertex = _vertex_waves(rng, vx_on.size, fs_hz)
    st_on = _event_onsets(rng, stage_idx, _SAWTOOTH_RATE, spe)
    saw = _sawtooth_trains(rng, st_on.size, fs_hz)
    a = traits.amplitude
    for sig, gains in ((fpz, (1.0, 1.0, 1.0, 1.0)), (pz, (0.7, 0.5, -0.6, 0.7))):
        _add_templates(sig, sp_all, gains[0] * a * spindles)
        _add_templates(sig, kc_on, gains[1] * a * kcs)
        _add_templates(sig, vx_on, gains[2] * a * vertex)
        _add_templates(sig, st_on, gains[3] * a * saw)

    # ---- EOG: slow eye movements + noise, blinks, saccades, REM bursts, frontal EEG pickup
    eog_bands = [(shape(name, lo, hi), amp) for name, ((lo, hi), amp) in _EOG_BANDS.items()]
    eye, _ = _shaped_noise(rng, n, fs_hz, stage_idx, eog_bands)
    bl_on = _event_onsets(rng, stage_idx, _BLINK_RATE, spe)
    blinks = _blinks(rng, bl_on.size, fs_hz)
    sc_on = _event_onsets(rng, stage_idx, _SACCADE_RATE, spe)
    sc_amp = rng.uniform(40.0, 150.0, sc_on.size) * rng.choice([-1.0, 1.0], sc_on.size)
    saccades = _eye_steps(sc_amp, fs_hz, 0.05, rng.uniform(0.8, 2.0, sc_on.size))
    # REM: bursts of 2-8 rapid eye movements, 0.3-1 s apart, alternating direction.
    burst_on = _event_onsets(rng, stage_idx, _REM_BURST_RATE, spe)
    n_moves = rng.integers(2, 9, burst_on.size)
    gaps = rng.uniform(0.3, 1.0, int(n_moves.sum())) * fs_hz
    within = np.arange(int(n_moves.sum())) - np.repeat(np.cumsum(n_moves) - n_moves, n_moves)
    rem_on = np.repeat(burst_on, n_moves) + _burst_offsets(gaps, n_moves).astype(np.int64)
    sign = np.where(within % 2 == 0, 1.0, -1.0) * np.repeat(
        rng.choice([-1.0, 1.0], burst_on.size), n_moves
    )
    rems = _eye_steps(
        sign * rng.uniform(60.0, 250.0, rem_on.size),
        fs_hz,
        0.06,
        rng.uniform(0.5, 1.2, rem_on.size),
    )
    eye_moves = np.zeros(n, dtype=np.float32)
    _add_templates(eye_moves, sc_on, saccades)
    _add_templates(eye_moves, rem_on, rems)
    blink_sig = np.zeros(n, dtype=np.float32)
    _add_templates(blink_sig, bl_on, blinks)
    eog = eye + eye_moves + 0.6 * blink_sig + 0.3 * fpz  # volume-conducted frontal EEG
    fpz += 0.12 * (eye_moves + eye) + 0.5 * blink_sig  # ocular artefacts on the frontal lead
    fpz_sig = Signal("EEG Fpz-Cz", fpz, fs_hz, "uV")
    pz_sig = Signal("EEG Pz-Oz", pz, fs_hz, "uV")
    eog_sig = Signal("EOG horizontal", eog, fs_hz, "uV")

    # ---- 1-Hz channels
    n_s = stage_idx.size * int(EPOCH_S)
    emg = _per_second(stage_idx, _EMG_LEVEL) * rng.lognormal(0.0, 0.2, n_s).astype(np.float32)
    # phasic REM twitches, ~1 per minute of REM (onsets in seconds: 30 "samples" per epoch)
    twitch_on = _event_onsets(rng, stage_idx, np.where(np.array(STAGES) == "R", 1.0, 0.0), 30)
    emg[np.minimum(twitch_on, n_s - 1)] += rng.uniform(8.0, 15.0, twitch_on.size)
    jitter = _per_second(stage_idx, _RESP_JITTER) * rng.standard_normal(n_s).astype(np.float32)
    inst_hz = traits.resp_hz + uniform_filter1d(jitter, size=7) * 3.0
    resp = 150.0 * _per_second(stage_idx, _RESP_AMP) * np.sin(2 * np.pi * np.cumsum(inst_hz))
    resp += rng.normal(0.0, 8.0, n_s)
    hours = np.arange(n_s) / 3600.0
    night_h = max(n_s / 3600.0, 1e-6)
    temp = traits.temp_c - 0.5 * np.sin(np.pi * np.clip(hours / night_h, 0, 1) * 0.85) ** 1.5
    temp += uniform_filter1d(rng.normal(0.0, 0.01, n_s), size=60)
    marker = np.zeros(n_s, dtype=np.float32)
    marker[: min(5, n_s)] = 1.0  # lights-off mark at the start of the recording
    one_hz = [
        Signal("Resp oro-nasal", resp, 1.0, ""),
        Signal("EMG submental", emg, 1.0, "uV"),
        Signal("Temp rectal", temp, 1.0, "DegC"),
        Signal("Event marker", marker, 1.0, ""),
    ]
    return [fpz_sig, pz_sig, eog_sig, *one_hz]


def _burst_offsets(gaps: np.ndarray, n_moves: np.ndarray) -> np.ndarray:
    """Offsets of each movement from its burst onset: cumulative gaps, restarting per burst."""
    ends = np.cumsum(n_moves)
    cum = np.cumsum(gaps) - gaps  # exclusive running sum
    return cum - np.repeat(cum[ends - n_moves], n_moves)


def synth_night(
    rng: np.random.Generator, minutes: float, fs_hz: float = 100.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """A whole synthetic night in memory.

    Args:
        rng: random generator (also draws the subject traits).
        minutes: night length in minutes (rounded down to whole 30-s epochs; at least 20).
        fs_hz: EEG/EOG rate in Hz.

    Returns:
        ``(eeg_fpz_cz, eeg_pz_oz, eog_horizontal, stages)``: float32 µV arrays of
        ``len(stages) * 30 * fs_hz`` samples and one R&K code of :data:`STAGES` per epoch.
    """
    traits = SubjectTraits.sample(rng)
    stages = synth_hypnogram(rng, int(minutes * 60 // EPOCH_S), traits.slow_wave)
    sigs = synth_night_signals(rng, stages, fs_hz, traits)
    return sigs[0].data, sigs[1].data, sigs[2].data, stages


# --------------------------------------------------------------------------------------------
# files


@dataclass(frozen=True)
class SleepEdfSynthNight:
    """One synthetic night on disk.

    Args:
        record_id: PSG stem without ``-PSG`` (``"SC4001E0"``).
        subject_id: ``"SC400"`` for subject 00 (both nights share it, as in the reader).
        night: 1 or 2.
        psg_path: the ``*-PSG.edf`` file.
        hypnogram_path: the ``*-Hypnogram.edf`` file.
        n_epochs: 30-s epochs covered by the PSG.
        stage_counts: epochs per R&K code within the PSG.
    """

    record_id: str
    subject_id: str
    night: int
    psg_path: Path
    hypnogram_path: Path
    n_epochs: int
    stage_counts: dict[str, int] = field(default_factory=dict)


def write_synthetic_sleep_edf(
    root: str | Path,
    n_subjects: int = 4,
    nights_per_subject: int = 2,
    hours: float | None = None,
    minutes: float | None = None,
    seed: int = 0,
    fs_hz: float = 100.0,
) -> list[SleepEdfSynthNight]:
    """Write synthetic Sleep-EDF sleep-cassette nights in the database's own file layout.

    Args:
        root: output folder (created); files go directly inside, as in ``sleep-cassette/``.
        n_subjects: number of subjects (at most 100; subject numbers ``00``, ``01``, ...).
        nights_per_subject: nights per subject (1-9; the real study has 1 or 2).
        hours: night length in hours; give this or ``minutes``. Neither: 8 h.
        minutes: night length in minutes (at least 20).
        seed: seed; a given (seed, subject, night) always produces the same night, whatever
            ``n_subjects`` is.
        fs_hz: EEG/EOG rate in Hz (Sleep-EDF: 100).

    Returns:
        One :class:`SleepEdfSynthNight` per night, ordered by subject then night.
    """
    if hours is not None and minutes is not None:
        raise ValueError("give hours or minutes, not both")
    minutes = 60.0 * (8.0 if hours is None else hours) if minutes is None else minutes
    if not 1 <= n_subjects <= 100:
        raise ValueError(f"n_subjects must be 1..100 (two-digit subject numbers), got {n_subjects}")
    if not 1 <= nights_per_subject <= 9:
        raise ValueError(f"nights_per_subject must be 1..9, got {nights_per_subject}")
    n_epochs = int(minutes * 60 // EPOCH_S)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for subject in range(n_subjects):
        sub_rng = np.random.default_rng((seed, subject))
        traits = SubjectTraits.sample(sub_rng)
        first_day = dt.datetime(1989, 3, 1) + dt.timedelta(days=int(sub_rng.integers(0, 700)))
        for night in range(1, nights_per_subject + 1):
            rng = np.random.default_rng((seed, subject, night))
            stages = synth_hypnogram(rng, n_epochs, traits.slow_wave)
            signals = synth_night_signals(rng, stages, fs_hz, traits)
            start = first_day + dt.timedelta(
                days=night - 1, hours=22, minutes=int(rng.integers(0, 90))
            )
            stem = f"SC4{subject:02d}{night}"
            scorer = _SCORERS[int(rng.integers(0, len(_SCORERS)))]
            psg = write_edf(
                root / f"{stem}E0-PSG.edf",
                signals,
                start=start,
                patient_code="X",
                record_duration_s=_RECORD_S,
            )
            # As in the real files, the hypnogram ends with an unscored run past the PSG.
            trailing = EPOCH_S * int(rng.integers(20, 240))
            hyp = write_edf_annotations(
                root / f"{stem}E{scorer}-Hypnogram.edf",
                hypnogram_annotations(stages, trailing_unscored_s=trailing),
                start=start,
            )
            out.append(
                SleepEdfSynthNight(
                    record_id=f"{stem}E0",
                    subject_id=f"SC4{subject:02d}",
                    night=night,
                    psg_path=psg,
                    hypnogram_path=hyp,
                    n_epochs=n_epochs,
                    stage_counts=dict(Counter(stages)),
                )
            )
    return out
