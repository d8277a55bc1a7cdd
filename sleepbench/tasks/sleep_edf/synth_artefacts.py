"""Recording artefacts of the synthetic Sleep-EDF nights (µV, added to the EEG and EOG).

- body movements: a few seconds of high-amplitude muscle activity and slow electrode swing on
  every head channel, in movement time, in wake and with some arousals out of sleep;
- electrode pops: a sharp step that decays within a second on one channel, rare, any stage;
- sweat artefact: minutes of slow (0.1-0.4 Hz) high-amplitude sway on the EEG, in some nights
  during long sleep stretches.
"""

from __future__ import annotations

import numpy as np

from sleepbench.tasks.sleep_edf.synth_signal import Grid, add_templates, event_onsets

__all__ = ["synth_artefacts"]

# per-state rates (per minute), columns follow STATES: W    1     2     3     4     R    ?    M    D
_MOVEMENT_RATE = np.array([0.4, 0.1, 0.03, 0.01, 0.01, 0.03, 1.0, 4.0, 0.1], dtype=np.float32)
_POP_RATE = np.array([0.02, 0.02, 0.02, 0.02, 0.02, 0.02, 0.1, 0.1, 0.02], dtype=np.float32)


def _movements(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` body-movement bursts (2-10 s): broadband muscle noise plus a slow swing."""
    t = np.arange(int(10.0 * fs)) / fs
    dur = rng.uniform(2.0, 10.0, n)[:, None]
    env = np.clip(np.minimum(t[None, :] / 0.3, (dur - t[None, :]) / 0.5), 0.0, 1.0)
    muscle = rng.standard_normal((n, t.size)) * rng.uniform(20.0, 60.0, n)[:, None]
    swing = np.sin(np.pi * np.clip(t[None, :] / dur, 0.0, 1.0)) * rng.uniform(-150, 150, n)[:, None]
    return env * muscle + swing


def _pops(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """``n`` electrode pops: a step of 100-300 µV decaying over 0.2-0.6 s."""
    t = np.arange(int(2.0 * fs)) / fs
    amp = rng.uniform(100.0, 300.0, n) * rng.choice([-1.0, 1.0], n)
    return amp[:, None] * np.exp(-t[None, :] / rng.uniform(0.2, 0.6, n)[:, None])


def _sweat(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Slow sway during 0-2 stretches of a few minutes inside sleep (none in most nights)."""
    out = np.zeros(grid.n, dtype=np.float32)
    asleep = np.flatnonzero(np.isin(grid.stage_idx, [2, 3, 4]))  # stages 2-4
    n_stretch = int(rng.choice([0, 0, 1, 2]))
    if asleep.size < 20 or n_stretch == 0:
        return out
    for ep in rng.choice(asleep, size=n_stretch, replace=False):
        length = int(rng.uniform(2.0, 8.0) * 60 * grid.fs)
        start = int(ep) * grid.spe
        stop = min(grid.n, start + length)
        t = np.arange(stop - start) / grid.fs
        f = rng.uniform(0.1, 0.4)
        env = np.sin(np.pi * t / max(t[-1], 1e-9)) if t.size > 1 else np.zeros(1)
        out[start:stop] = rng.uniform(40.0, 100.0) * env * np.sin(2 * np.pi * f * t)
    return out


def synth_artefacts(rng: np.random.Generator, grid: Grid) -> tuple[np.ndarray, ...]:
    """Artefacts to add to (Fpz-Cz, Pz-Oz, EOG): three float32 arrays of ``grid.n`` samples."""
    fs = grid.fs
    out = tuple(np.zeros(grid.n, dtype=np.float32) for _ in range(3))
    mv_on = event_onsets(rng, grid.stage_idx, _MOVEMENT_RATE, grid.spe)
    moves = _movements(rng, mv_on.size, fs)
    for sig, gain in zip(out, (1.0, 0.8, 1.0)):
        add_templates(sig, mv_on, gain * moves)
    pop_on = event_onsets(rng, grid.stage_idx, _POP_RATE, grid.spe)
    channel = rng.integers(0, 3, pop_on.size)
    pops = _pops(rng, pop_on.size, fs)
    for c, sig in enumerate(out):
        add_templates(sig, pop_on[channel == c], pops[channel == c])
    sweat = _sweat(rng, grid)
    out[0][:] += sweat
    out[1][:] += 0.7 * sweat
    return out
