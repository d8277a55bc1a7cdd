"""Synthetic horizontal EOG (µV): the eye movements of each R&K stage.

- active wake: saccades (fast steps of 40-150 µV that the EOG amplifier's AC coupling lets decay),
  blinks (small on a horizontal derivation), muscle activity;
- stage 1: slow rolling eye movements (0.15-0.6 Hz, up to ~100 µV peak to peak);
- stages 2-4: quiet eyes (the EOG then shows mostly the frontal EEG it picks up, added by the
  caller);
- REM: rapid eye movements, bursts of 2-8 sharp conjugate deflections of 50-200 µV, in phasic
  stretches that alternate with tonic ones (few movements), denser in later REM periods;
- drowsy (eyes-closed) wake: slow eye movements, fewer blinks and saccades.

:func:`synth_eye` returns the ocular sources separately, so the caller can mix them into the EOG
and, attenuated, into the frontal EEG lead (as on a real Fpz-Cz).
"""

from __future__ import annotations

import numpy as np

from sleepbench.tasks.sleep_edf.synth_signal import (
    Grid,
    add_templates,
    event_onsets,
    shaped_noise,
    slow_gain,
)

__all__ = ["EyeSources", "synth_eye"]

# per-state tables, columns follow STATES:       W     1     2     3     4     R     ?     M     D
_SEM_SD = np.array([6.0, 20.0, 4.0, 2.0, 2.0, 5.0, 8.0, 15.0, 8.0], dtype=np.float32)  # µV
_NOISE_SD = np.array([4.0, 2.5, 2.5, 2.5, 2.5, 3.0, 4.0, 8.0, 3.5], dtype=np.float32)  # µV
_MUSCLE_SD = np.array([5.0, 0.8, 0.8, 0.6, 0.6, 0.6, 3.0, 20.0, 2.0], dtype=np.float32)  # µV
_BLINK_RATE = np.array([10, 2, 0, 0, 0, 0, 3, 6, 4], dtype=np.float32)  # per minute
_SACCADE_RATE = np.array([14, 1, 0, 0, 0, 0.3, 4, 10, 3], dtype=np.float32)
_REM_BURST_RATE = np.array([0, 0, 0, 0, 0, 2.0, 0, 0, 0], dtype=np.float32)


class EyeSources:
    """Ocular signals of one night (float32 µV, one value per sample).

    Attributes:
        moves: saccades, rapid and slow eye movements (the corneo-retinal dipole turning).
        blinks: eyelid artefacts.
        noise: electrode/amplifier noise and muscle activity picked up at the outer canthi.
    """

    def __init__(self, moves: np.ndarray, blinks: np.ndarray, noise: np.ndarray) -> None:
        self.moves, self.blinks, self.noise = moves, blinks, noise


def _band(freqs: np.ndarray, lo: float, hi: float, pink: bool = False) -> np.ndarray:
    """Power fractions (summing to 1) of a band with 0.1-Hz-wide cosine edges."""
    edge = 0.1
    w = np.clip((freqs - (lo - edge)) / (2 * edge), 0, 1) * np.clip(
        ((hi + edge) - freqs) / (2 * edge), 0, 1
    )
    w = np.sin(0.5 * np.pi * w) ** 2
    if pink:
        w = w / np.maximum(freqs, lo)
    w[0] = 0.0
    return w / w.sum()


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


def _burst_offsets(gaps: np.ndarray, n_moves: np.ndarray) -> np.ndarray:
    """Offsets of each movement from its burst onset: cumulative gaps, restarting per burst."""
    ends = np.cumsum(n_moves)
    cum = np.cumsum(gaps) - gaps  # exclusive running sum
    return cum - np.repeat(cum[ends - n_moves], n_moves)


def _rem_density(rng: np.random.Generator, stage_idx: np.ndarray) -> np.ndarray:
    """Per-epoch scale of the REM-burst rate: phasic stretches (many eye movements) alternate
    with tonic ones (almost none) every 1-4 min, and later REM periods are denser."""
    n = stage_idx.size
    block = np.repeat(np.arange(n // 2 + 1), rng.integers(2, 9, n // 2 + 1))[:n]
    phasic = rng.random(block[-1] + 1 if n else 0)[block] < 0.55
    position = np.arange(n) / max(n - 1, 1)
    return np.where(phasic, 1.6, 0.15) * (0.6 + 0.8 * position)


def _rapid_eye_movements(rng: np.random.Generator, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Onsets and templates of REM-sleep eye movements: bursts of 2-8 alternating deflections."""
    fs = grid.fs
    burst_on = event_onsets(
        rng, grid.stage_idx, _REM_BURST_RATE, grid.spe, _rem_density(rng, grid.stage_idx)
    )
    n_moves = rng.integers(2, 9, burst_on.size)
    gaps = rng.uniform(0.3, 1.0, int(n_moves.sum())) * fs
    within = np.arange(int(n_moves.sum())) - np.repeat(np.cumsum(n_moves) - n_moves, n_moves)
    onsets = np.repeat(burst_on, n_moves) + _burst_offsets(gaps, n_moves).astype(np.int64)
    sign = np.where(within % 2 == 0, 1.0, -1.0) * np.repeat(
        rng.choice([-1.0, 1.0], burst_on.size), n_moves
    )
    amp = sign * rng.uniform(50.0, 200.0, onsets.size)
    return onsets, _eye_steps(amp, fs, 0.06, rng.uniform(0.5, 1.2, onsets.size))


def synth_eye(rng: np.random.Generator, grid: Grid) -> EyeSources:
    """The ocular sources of the night on ``grid``."""
    fs, spe, stage_idx, freqs = grid.fs, grid.spe, grid.stage_idx, grid.freqs
    sem_power = grid.power(
        [_SEM_SD[:, None] ** 2 * _band(freqs, 0.15, 0.6)[None, :]],
        [slow_gain(rng, grid.n_seg, 0.3)],
    )
    sem, _ = shaped_noise(rng, grid, sem_power)
    noise_power = grid.power(
        [
            _NOISE_SD[:, None] ** 2 * _band(freqs, 0.3, 0.45 * fs, pink=True)[None, :],
            _MUSCLE_SD[:, None] ** 2 * _band(freqs, 20.0, 0.45 * fs)[None, :],
        ],
        [np.ones(grid.n_seg, np.float32), slow_gain(rng, grid.n_seg, 0.6)],
    )
    noise, _ = shaped_noise(rng, grid, noise_power)

    moves = sem
    sc_on = event_onsets(rng, stage_idx, _SACCADE_RATE, spe)
    sc_amp = rng.uniform(40.0, 150.0, sc_on.size) * rng.choice([-1.0, 1.0], sc_on.size)
    add_templates(moves, sc_on, _eye_steps(sc_amp, fs, 0.05, rng.uniform(0.8, 2.0, sc_on.size)))
    add_templates(moves, *_rapid_eye_movements(rng, grid))
    blinks = np.zeros(grid.n, dtype=np.float32)
    bl_on = event_onsets(rng, stage_idx, _BLINK_RATE, spe)
    add_templates(blinks, bl_on, _blinks(rng, bl_on.size, fs))
    return EyeSources(moves, blinks, noise)
