"""Synthetic SHHS, the night's stages: a hypnogram with the long wake periods of real PSG nights.

The AHI is per hour of *sleep* while the SpO2 recording covers the whole night, so the wake in
it (sleep latency, wake after sleep onset, early-morning awakening) is what separates an
oximeter's per-hour counts from the scored AHI (:func:`hypnogram_with_wake`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleepbench.tasks.sleep_edf.synth import synth_hypnogram

__all__ = ["hypnogram_with_wake", "sleep_runs"]


def sleep_runs(stages: Sequence[str]) -> list[tuple[int, int]]:
    """(first, stop) epoch indices of maximal runs of sleep (non-wake) epochs."""
    sleep = np.array([s != "W" for s in stages])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], sleep.astype(int), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def hypnogram_with_wake(
    rng: np.random.Generator, n_epochs: int, sleep_efficiency: float, slow_wave: float = 1.0
) -> list[str]:
    """R&K stages (``W 1 2 3 4 R``) of a night whose sleep efficiency is about ``sleep_efficiency``.

    The base night is :func:`~sleepbench.tasks.sleep_edf.synth.synth_hypnogram` (movement scored
    wake, unscorable epochs stage 2, so every reader agrees on total sleep time). The wake it
    lacks is added as long periods: part lengthens the sleep latency, part ends the night early,
    the rest is 1-3 blocks of wake after sleep onset of at least 5 min, each followed by a
    minute of stage 1.
    """
    stages = synth_hypnogram(rng, n_epochs, slow_wave=slow_wave)
    stages = ["W" if s == "M" else "2" if s == "?" else s for s in stages]
    s = np.array(stages, dtype="<U1")
    extra = int(round((np.mean(s != "W") - sleep_efficiency) * n_epochs))
    if extra <= 0:
        return s.tolist()
    asleep = np.flatnonzero(s != "W")
    first, last = int(asleep[0]), int(asleep[-1])
    shares = rng.dirichlet([1.0, 0.6, 2.0])
    latency, early = int(extra * shares[0]), int(extra * shares[1])
    s[first : first + latency] = "W"
    if early:
        s[last - early + 1 : last + 1] = "W"
    waso = extra - latency - early
    n_blocks = int(np.clip(waso // 10, 0, 3))  # blocks of >= 5 min (10 epochs)
    if n_blocks:
        lengths = np.maximum(10, (rng.dirichlet(np.ones(n_blocks)) * waso).astype(int))
        lo, hi = first + latency + 2, last - early - 2
        for length in lengths:
            if hi - lo <= length + 2:
                break
            a = int(rng.integers(lo, hi - length - 2))
            s[a : a + length] = "W"
            s[a + length : a + length + 2] = "1"
    # keep some sleep whatever the draw
    if not np.any(s != "W"):
        s[n_epochs // 2 : n_epochs // 2 + 20] = "2"
    return s.tolist()
