"""On-the-fly waveform augmentations (numpy, per item, driven by the item's ``rng``).

Each takes ``x`` of shape ``[channels, samples]`` and returns a new array of the same shape.
"""

from __future__ import annotations

import numpy as np


def amplitude_scale(
    x: np.ndarray, rng: np.random.Generator, low: float = 0.8, high: float = 1.2
) -> np.ndarray:
    """Multiply by one gain drawn from U(low, high)."""
    return x * rng.uniform(low, high)


def gaussian_noise(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Add white Gaussian noise of std ``sigma`` (in the signal's unit)."""
    return x + rng.normal(0.0, sigma, size=x.shape).astype(x.dtype)


def baseline_wander(
    x: np.ndarray, rng: np.random.Generator, amplitude: float, periods: float = 2.0
) -> np.ndarray:
    """Add a sinusoid of ``amplitude`` spanning ``periods`` periods over the window, random phase."""
    t = np.arange(x.shape[-1], dtype=np.float32) / x.shape[-1]
    phase = rng.uniform(0, 2 * np.pi)
    return x + (amplitude * np.sin(2 * np.pi * periods * t + phase)).astype(x.dtype)
