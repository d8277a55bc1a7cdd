"""Rendering the audio of a synthetic PSG-Audio night from its plan, one EDF part at a time.

The plan (:class:`Plan`: breath times and loudness, events, movements, room noise, gains) is drawn
by :mod:`~sleepbench.tasks.psg_audio_osa.synth` before any sample exists; :func:`render_part`
turns the stretch ``[a, b)`` s of it into ``Mic`` / ``Tracheal`` audio (and the snore envelope),
so that even an 8-h 48-kHz night is never held in memory as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt

__all__ = ["Plan", "Renderer", "render_part", "snore_channel"]


@dataclass
class Plan:
    """Everything random about a night, decided before any sample is rendered."""

    duration_s: float
    stages: list[str | None]
    events: list[tuple[float, float, int, str]]  # onset, duration, class, RML type
    breaths: np.ndarray  # [n, 4]: onset_s, inspiration_s, loudness, snore loudness
    moves: np.ndarray  # [n, 3]: onset_s, duration_s, loudness
    room: float
    mic_gain: float
    tracheal_gain: float
    f0_hz: float


def _band(fs: float, low: float, high: float) -> np.ndarray:
    high = min(high, 0.45 * fs)
    return butter(2, [low, high], btype="bandpass", fs=fs, output="sos")


def _envelope(n: int, t0: float, fs: float, items: np.ndarray, col: int) -> np.ndarray:
    """Sum of Hann bursts (onset, length, loudness in column ``col``) over ``[t0, t0 + n/fs)``."""
    env = np.zeros(n, dtype=np.float32)
    for row in items:
        onset, length, amp = row[0], row[1], row[col]
        if amp <= 0:
            continue
        a, m = round((onset - t0) * fs), max(2, round(length * fs))
        if a + m <= 0 or a >= n:
            continue
        w = (amp * np.hanning(m)).astype(np.float32)
        lo, hi = max(a, 0), min(a + m, n)
        env[lo:hi] += w[lo - a : hi - a]
    return env


class Renderer:
    """Renders a night's audio in consecutive stretches, carrying the filters' state across them
    (so a part written in 60-s blocks equals one rendered at once, and memory stays bounded)."""

    def __init__(self, plan: Plan, fs: float, seed: Sequence[int]) -> None:
        self.plan, self.fs = plan, fs
        self.rng = np.random.default_rng(list(seed))
        self.sos = {
            "in": _band(fs, 400, 1800),
            "ex": _band(fs, 150, 900),
            "room": butter(1, min(600.0, 0.45 * fs), fs=fs, output="sos"),
            "move": _band(fs, 60, 2500),
        }
        self.zi = {k: np.zeros((sos.shape[0], 2)) for k, sos in self.sos.items()}

    def _filter(self, key: str, x: np.ndarray) -> np.ndarray:
        y, self.zi[key] = sosfilt(self.sos[key], x, zi=self.zi[key])
        return y.astype(np.float32)

    def render(self, t0: float, t1: float) -> dict[str, np.ndarray]:
        """``Mic``, ``Tracheal`` (float32) and the snore envelope over ``[t0, t1)``."""
        plan, fs = self.plan, self.fs
        n = round((t1 - t0) * fs)
        br = plan.breaths
        near = br[(br[:, 0] > t0 - 10) & (br[:, 0] < t1)]
        exp = near.copy()
        exp[:, 0] += near[:, 1] + 0.2  # expiration follows the inspiration
        exp[:, 1] *= 1.2
        exp[:, 2] *= 0.5
        env_sn = _envelope(n, t0, fs, near, 3)
        white = self.rng.standard_normal(n).astype(np.float32)
        breath = self._filter("in", white) * _envelope(n, t0, fs, near, 2)
        breath += self._filter("ex", white) * _envelope(n, t0, fs, exp, 2)
        on = np.flatnonzero(env_sn)
        if on.size:
            phase = 2 * np.pi * plan.f0_hz * (t0 + on / fs)
            buzz = sum(np.sin(k * phase) / k for k in range(1, 6))
            breath[on] += (0.8 * buzz * env_sn[on]).astype(np.float32)
        noise = self.rng.standard_normal(n).astype(np.float32)
        room = self._filter("room", noise) * np.float32(plan.room / 0.3)
        move = self._filter("move", noise) * _envelope(n, t0, fs, plan.moves, 2)
        mic = room + plan.mic_gain * breath + 0.05 * move
        tracheal = 0.2 * room + plan.tracheal_gain * breath + 0.02 * move
        return {
            "Mic": np.clip(mic, -0.98, 0.98),
            "Tracheal": np.clip(tracheal, -0.98, 0.98),
            "snore": env_sn,
        }


def render_part(
    renderer: Renderer, a: float, b: float, channels: Sequence[str], block_s: float = 60.0
) -> dict[str, np.ndarray]:
    """The audio channels of one part ``[a, b)`` s, rendered in ``block_s`` stretches."""
    fs = renderer.fs
    n = round((b - a) * fs)
    wanted = {"Mic": "Mic", "Tracheal": "Tracheal", "Snore": "snore"}
    out = {
        key: np.empty(n if name in channels else 0, dtype=np.float32)
        for name, key in wanted.items()
    }
    pos = 0
    for t in np.arange(a, b, block_s):
        block = renderer.render(t, min(t + block_s, b))
        k = block["Mic"].size
        for c in out:
            if out[c].size:
                out[c][pos : pos + k] = block[c]
        pos += k
    return out


def snore_channel(env: np.ndarray, fs: float) -> np.ndarray:
    """The snore envelope at 500 Hz (the recorder's ``Snore`` channel), in 0-10 mV."""
    n = round(env.size / fs * 500.0)
    t = (np.arange(n) + 0.5) * fs / 500.0
    return np.clip(np.interp(t, np.arange(env.size), env) * 4.0, 0.0, 9.9)
