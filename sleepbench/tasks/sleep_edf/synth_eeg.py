"""Synthetic sleep EEG (Fpz-Cz and Pz-Oz, µV) following the per-epoch R&K stage.

Each derivation is an aperiodic 1/f^χ background whose exponent steepens with sleep depth
(flattest in wake, steepest in stages 3/4), plus slow waves (0.5-2 Hz) whose amplitude follows a
per-epoch depth that builds up and fades over minutes (R&K: >= 75 µV waves over 20-50 % of a
stage 3 epoch, over half of a stage 4 epoch), plus rhythms whose power waxes and wanes from
window to window (alpha in relaxed wake, strongest posteriorly; theta in stage 1 and REM; a
sigma (spindle-band) rhythm in stage 2; beta and muscle (EMG) activity in wake and movement),
plus graphoelements added as transients: vertex sharp waves (stage 1), sleep spindles (11-16 Hz,
0.5-2 s) and K-complexes (stage 2, fewer in 3/4), sawtooth-wave trains (REM), and brief arousals
(a few seconds of alpha/beta) inside sleep. Pz-Oz carries more alpha and less delta and fewer
spindles than the frontal Fpz-Cz; the two share part of their background.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import sawtooth

from sleepbench.tasks.sleep_edf.synth_signal import (
    Grid,
    add_templates,
    event_onsets,
    shaped_noise,
    slow_gain,
)
from sleepbench.tasks.sleep_edf.synth_traits import SubjectTraits

__all__ = ["synth_eeg"]

# --------------------------------------------------------------------------------------------
# per-state tables, columns follow STATES:  W     1     2     3     4     R     ?     M     D
#: aperiodic background: standard deviation (µV, Fpz-Cz) and spectral exponent χ (power ~ f^-χ)
_BG_SD = np.array([12.0, 13.0, 16.0, 20.0, 22.0, 12.0, 16.0, 30.0, 12.0], dtype=np.float32)
_BG_EXP = np.array([1.1, 1.5, 1.7, 2.1, 2.3, 1.55, 1.4, 1.2, 1.3], dtype=np.float32)
#: extra steepening of the background above _KNEE_HZ (added to χ there)
_BG_HF_EXP = np.array([0.3, 0.9, 1.0, 1.2, 1.2, 0.8, 0.5, 0.0, 0.6], dtype=np.float32)
_KNEE_HZ = 12.0
#: slow waves (0.5-2 Hz, µV standard deviation): R&K stage 3 has 20-50 % of high-amplitude
#: (>= 75 µV peak to peak) delta, stage 4 more than 50 %
_SLOW_SD = np.array([0.0, 2.0, 8.0, 22.0, 32.0, 0.0, 5.0, 10.0, 0.0], dtype=np.float32)
#: rhythms (µV standard deviation on Fpz-Cz; Pz-Oz scale in _PZ_GAIN)
_ALPHA_SD = np.array([7.0, 2.5, 1.5, 1.0, 1.0, 2.5, 4.0, 4.0, 10.0], dtype=np.float32)
_THETA_SD = np.array([3.0, 6.0, 4.0, 4.0, 4.0, 4.0, 4.0, 5.0, 4.0], dtype=np.float32)
_SIGMA_SD = np.array([1.0, 1.0, 4.0, 2.0, 1.5, 0.8, 1.0, 1.0, 1.0], dtype=np.float32)
_BETA_SD = np.array([5.0, 2.0, 1.5, 1.0, 1.0, 2.5, 3.0, 8.0, 3.0], dtype=np.float32)
_MUSCLE_SD = np.array([6.0, 1.0, 0.8, 0.6, 0.6, 0.8, 4.0, 25.0, 2.5], dtype=np.float32)
#: how much each rhythm's power drifts over the windows (log-amplitude sd)
_DRIFT = {
    "bg": 0.25,
    "slow": 0.25,
    "alpha": 0.45,
    "sigma": 0.4,
    "theta": 0.3,
    "beta": 0.25,
    "muscle": 0.6,
}
#: Pz-Oz relative to Fpz-Cz (amplitude): occipital alpha, less frontal delta and muscle
_PZ_GAIN = {
    "bg": 0.7,
    "slow": 0.6,
    "alpha": 1.6,
    "sigma": 0.7,
    "theta": 0.8,
    "beta": 0.8,
    "muscle": 0.4,
}
#: transient rates (events per minute of each stage)
_SPINDLE_RATE = np.array([0, 0.2, 5.0, 1.5, 0.6, 0.1, 0, 0, 0], dtype=np.float32)
_KCOMPLEX_RATE = np.array([0, 0.1, 1.5, 0.6, 0.3, 0, 0, 0, 0], dtype=np.float32)
_VERTEX_RATE = np.array([0, 4.0, 0.3, 0, 0, 0.1, 0, 0, 0.5], dtype=np.float32)
_SAWTOOTH_RATE = np.array([0, 0, 0, 0, 0, 1.0, 0, 0, 0], dtype=np.float32)
_AROUSAL_RATE = np.array([0, 0.15, 0.12, 0.05, 0.03, 0.12, 0, 0, 0], dtype=np.float32)


def _aperiodic_spectra(
    freqs: np.ndarray, sd: np.ndarray, exponent: np.ndarray, hf_exponent: np.ndarray
) -> np.ndarray:
    """(n_stages, n_freq) power per bin of 1/f^χ noise from 0.3 Hz with the given sd per stage,
    steepening by ``hf_exponent`` above :data:`_KNEE_HZ`."""
    f = np.maximum(freqs, 0.3)
    shape = f[None, :] ** -exponent[:, None]
    shape *= np.maximum(f / _KNEE_HZ, 1.0)[None, :] ** -hf_exponent[:, None]
    shape[:, freqs < 0.15] = 0.0
    shape /= shape.sum(axis=1, keepdims=True)
    return (sd[:, None] ** 2) * shape


def _slow_wave_sd(rng: np.random.Generator, stage_idx: np.ndarray, scale: float) -> np.ndarray:
    """Slow-wave (0.5-2 Hz) amplitude per epoch (µV sd): the stage's level, smoothed over
    ~3.5 min inside NREM sleep so slow-wave activity builds up and fades gradually (the stage 2
    epochs next to stage 3 carry more delta, the edges of a stage 3 run less), with an
    epoch-to-epoch jitter."""
    level = _SLOW_SD[stage_idx].astype(np.float64)
    nrem = np.isin(stage_idx, [2, 3, 4])  # stages 2, 3, 4 (indices in STATES)
    smooth = uniform_filter1d(level, size=7, mode="nearest")
    level = np.where(nrem, smooth, level)
    jitter = uniform_filter1d(rng.normal(0.0, 0.45, stage_idx.size), size=3, mode="nearest")
    return scale * level * np.exp(jitter - 0.5 * np.var(jitter))


def _peak(freqs: np.ndarray, lo: float, hi: float, edge: float = 0.8) -> np.ndarray:
    """Power fractions (summing to 1) of a band with smooth edges of ``edge`` Hz."""
    w = np.clip((freqs - (lo - edge)) / (2 * edge), 0, 1) * np.clip(
        ((hi + edge) - freqs) / (2 * edge), 0, 1
    )
    w = np.sin(0.5 * np.pi * w) ** 2
    return w / w.sum()


def _component_spectra(freqs: np.ndarray, traits: SubjectTraits) -> dict[str, np.ndarray]:
    """Per-stage spectra (n_stages, n_freq) of each Fpz-Cz component, µV² per bin."""
    a2 = traits.amplitude**2
    nyq = freqs[-1]
    rhythms = {
        "alpha": (
            _peak(freqs, traits.alpha_hz - 1.0, traits.alpha_hz + 1.0, 0.6),
            _ALPHA_SD * traits.alpha_power,
        ),
        "theta": (_peak(freqs, 4.5, 7.0), _THETA_SD),
        "sigma": (
            _peak(freqs, traits.spindle_hz - 1.0, traits.spindle_hz + 1.0, 0.6),
            _SIGMA_SD * np.sqrt(traits.spindle_density),
        ),
        "beta": (_peak(freqs, 17.0, min(28.0, 0.8 * nyq)), _BETA_SD),
        "muscle": (_peak(freqs, 22.0, 0.9 * nyq, 3.0), _MUSCLE_SD),
    }
    out = {"bg": a2 * _aperiodic_spectra(freqs, _BG_SD, _BG_EXP, _BG_HF_EXP)}
    for name, (shape, sd) in rhythms.items():
        out[name] = a2 * (sd[:, None] ** 2) * shape[None, :]
    return out


# --------------------------------------------------------------------------------------------
# graphoelements (template rows, µV)


def _spindles(rng: np.random.Generator, n: int, fs: float, mean_hz: float) -> np.ndarray:
    """``n`` sleep spindles: 11-16 Hz, 0.5-2 s, sin^2 (waxing-waning) envelope, 20-45 µV."""
    t = np.arange(int(2.0 * fs) + 1) / fs
    dur = rng.uniform(0.5, 2.0, n)[:, None]
    freq = np.clip(mean_hz + rng.uniform(-1.0, 1.0, n), 11.0, 16.0)[:, None]
    amp = rng.uniform(20.0, 45.0, n)[:, None]
    env = np.where(t[None, :] < dur, np.sin(np.pi * t[None, :] / dur) ** 2, 0.0)
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    return amp * env * np.sin(2 * np.pi * freq * t[None, :] + phase)


def _k_complexes(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` K-complexes: sharp negative wave then a slower positive one, 100-200 µV p-p."""
    t = np.arange(int(1.5 * fs)) / fs
    a = rng.uniform(55.0, 110.0, n)[:, None]
    t1 = rng.uniform(0.18, 0.26, n)[:, None]
    neg = np.exp(-(((t[None, :] - t1) / rng.uniform(0.07, 0.1, n)[:, None]) ** 2))
    pos = np.exp(-(((t[None, :] - t1 - 0.45) / 0.2) ** 2))
    return -a * neg + 0.7 * a * pos


def _vertex_waves(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` vertex sharp waves: ~0.2-s sharp transient, 40-90 µV, small opposite after-wave."""
    t = np.arange(int(0.6 * fs)) / fs
    a = rng.uniform(40.0, 90.0, n)[:, None]
    return -a * np.exp(-(((t[None, :] - 0.12) / 0.045) ** 2)) + 0.25 * a * np.exp(
        -(((t[None, :] - 0.28) / 0.08) ** 2)
    )


def _sawtooth_trains(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` REM sawtooth-wave trains: 2-6 Hz, 2-8 s, 20-40 µV, ramp-shaped waves."""
    t = np.arange(int(8.0 * fs)) / fs
    dur = rng.uniform(2.0, 8.0, n)[:, None]
    freq = rng.uniform(2.0, 5.0, n)[:, None]
    amp = rng.uniform(20.0, 40.0, n)[:, None]
    ramp = np.clip(np.minimum(t[None, :], dur - t[None, :]) / 0.4, 0.0, 1.0)
    return amp * ramp * sawtooth(2 * np.pi * freq * t[None, :], width=0.8)


def _arousals(
    rng: np.random.Generator, n: int, fs: float, alpha_hz: float, alpha_power: float
) -> np.ndarray:
    """``n`` brief arousals: 3-12 s of alpha with some beta, abrupt onset (µV)."""
    t = np.arange(int(12.0 * fs)) / fs
    dur = rng.uniform(3.0, 12.0, n)[:, None]
    env = np.clip(np.minimum(t[None, :] / 0.3, (dur - t[None, :]) / 1.0), 0.0, 1.0)
    f_a = alpha_hz + rng.uniform(-0.5, 0.5, n)[:, None]
    wobble = 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8, n)[:, None] * t[None, :])
    alpha = (
        alpha_power
        * rng.uniform(10.0, 20.0, n)[:, None]
        * np.sin(2 * np.pi * f_a * t[None, :] + wobble)
    )
    beta = rng.uniform(3.0, 6.0, n)[:, None] * np.sin(2 * np.pi * 21.0 * t[None, :] + 3 * wobble)
    return env * (alpha + beta)


# --------------------------------------------------------------------------------------------


def synth_eeg(
    rng: np.random.Generator, grid: Grid, traits: SubjectTraits
) -> tuple[np.ndarray, np.ndarray]:
    """Fpz-Cz and Pz-Oz EEG (float32 µV, ``grid.n`` samples each) for the night on ``grid``."""
    fs, spe, stage_idx = grid.fs, grid.spe, grid.stage_idx
    comps = _component_spectra(grid.freqs, traits)
    gains = [slow_gain(rng, grid.n_seg, _DRIFT[name]) for name in comps]
    # slow waves follow a per-epoch depth rather than the stage table (see _slow_wave_sd)
    slow_shape = traits.amplitude**2 * _peak(grid.freqs, 0.6, 1.8, 0.3)
    comps["slow"] = np.broadcast_to(slow_shape, comps["bg"].shape)
    sd = _slow_wave_sd(rng, stage_idx, traits.slow_wave)
    gains.append(grid.per_window(sd**2) * slow_gain(rng, grid.n_seg, _DRIFT["slow"]))
    fpz_power = grid.power(list(comps.values()), gains)
    pz_power = grid.power([_PZ_GAIN[k] ** 2 * v for k, v in comps.items()], gains)
    fpz, white = shaped_noise(rng, grid, fpz_power)
    pz, _ = shaped_noise(rng, grid, pz_power, white, common_weight=0.5)

    a = traits.amplitude
    sp_on = event_onsets(rng, stage_idx, _SPINDLE_RATE * traits.spindle_density, spe)
    kc_on = event_onsets(rng, stage_idx, _KCOMPLEX_RATE, spe)
    # About 40 % of K-complexes are followed by a spindle.
    kc_sp = kc_on[rng.random(kc_on.size) < 0.4] + int(0.6 * fs)
    sp_all = np.concatenate([sp_on, kc_sp])
    spindles = a * _spindles(rng, sp_all.size, fs, traits.spindle_hz)
    kcs = a * _k_complexes(rng, kc_on.size, fs)
    vx_on = event_onsets(rng, stage_idx, _VERTEX_RATE, spe)
    vertex = a * _vertex_waves(rng, vx_on.size, fs)
    st_on = event_onsets(rng, stage_idx, _SAWTOOTH_RATE, spe)
    saw = a * _sawtooth_trains(rng, st_on.size, fs)
    ar_on = event_onsets(rng, stage_idx, _AROUSAL_RATE, spe)
    arousal = a * _arousals(rng, ar_on.size, fs, traits.alpha_hz, traits.alpha_power)
    #               spindle  K     vertex  sawtooth  arousal
    for sig, g in ((fpz, (1.0, 1.0, 1.0, 1.0, 1.0)), (pz, (0.6, 0.5, -0.6, 0.7, 1.5))):
        add_templates(sig, sp_all, g[0] * spindles)
        add_templates(sig, kc_on, g[1] * kcs)
        add_templates(sig, vx_on, g[2] * vertex)
        add_templates(sig, st_on, g[3] * saw)
        add_templates(sig, ar_on, g[4] * arousal)
    return fpz, pz
