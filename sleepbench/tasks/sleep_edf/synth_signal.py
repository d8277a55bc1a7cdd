"""Signal-building blocks shared by the synthetic EEG and EOG: stage-following coloured noise and
transients added as template rows.

Stationary stretches come from spectrally shaped noise synthesised in 10-s half-overlapping
windows (one batched inverse FFT per channel): each window's power spectrum is the per-stage
spectrum of the epochs it overlaps (so stage changes cross-fade over a few seconds), times a
slowly drifting gain (so a stage is not one stationary process). Transients (spindles, eye
movements, ...) are template matrices added at Poisson onsets whose rate follows the stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft as sp_fft
from scipy.ndimage import uniform_filter1d

from sleepbench.tasks.sleep_edf.synth_hypnogram import EPOCH_S, STAGES

#: Physiological states the signal tables are indexed by: the R&K codes of :data:`STAGES`, then
#: ``"D"``, relaxed eyes-closed (drowsy) wake, which is scored W.
STATES: tuple[str, ...] = (*STAGES, "D")

__all__ = [
    "SEG_S",
    "STATES",
    "Grid",
    "add_templates",
    "event_onsets",
    "per_second",
    "shaped_noise",
    "slow_gain",
    "stage_index",
]

SEG_S = 10.0  # synthesis window (s); hop is half of it


def stage_index(stages: Sequence[str], drowsy: np.ndarray | None = None) -> np.ndarray:
    """Index into :data:`STATES` of each epoch (``ValueError`` on an unknown stage code).

    Args:
        stages: R&K codes of :data:`STAGES`, one per epoch.
        drowsy: per-epoch flags; flagged wake epochs become the drowsy-wake state ``"D"``.
    """
    code = {s: i for i, s in enumerate(STAGES)}
    try:
        idx = np.array([code[s] for s in stages], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"unknown stage code {err.args[0]!r}; expected one of {STAGES}") from None
    if drowsy is not None:
        idx[np.asarray(drowsy, dtype=bool) & (idx == code["W"])] = STATES.index("D")
    return idx


class Grid:
    """The synthesis windows of one night: sizes, frequencies and per-window state weights.

    ``stage_idx`` holds one index into :data:`STATES` per epoch. Window ``j`` spans samples
    ``[(j - 1) * hop, (j - 1) * hop + seg)``. ``mix[j, s]`` is the share of state ``s`` in window
    ``j``, weighted by the window (sin^2), so per-stage spectra
    mixed with it cross-fade over a few seconds at stage changes.
    """

    def __init__(self, stage_idx: np.ndarray, fs: float) -> None:
        self.fs = fs
        self.stage_idx = stage_idx
        self.spe = int(round(EPOCH_S * fs))
        self.n = stage_idx.size * self.spe
        self.seg = int(round(SEG_S * fs))
        self.hop = self.seg // 2
        self.n_seg = -(-self.n // self.hop) + 1
        self.freqs = np.fft.rfftfreq(self.seg, 1.0 / fs)
        q = 10
        offs = (np.arange(q) + 0.5) / q * self.seg
        weights = np.sin(np.pi * offs / self.seg) ** 2
        pos = (np.arange(self.n_seg)[:, None] - 1) * self.hop + offs[None, :]
        ep = np.clip((pos // self.spe).astype(int), 0, stage_idx.size - 1)
        self._ep, self._w = ep, weights / weights.sum()
        mix = np.zeros((self.n_seg, len(STATES)), dtype=np.float32)
        np.add.at(
            mix,
            (np.repeat(np.arange(self.n_seg), q), stage_idx[ep].ravel()),
            np.tile(self._w, self.n_seg),
        )
        self.mix = mix

    def per_window(self, epoch_values: np.ndarray) -> np.ndarray:
        """Per-window (sin^2-weighted) mean of a per-epoch series, float32 ``(n_seg,)``."""
        return (np.asarray(epoch_values)[self._ep] @ self._w).astype(np.float32)

    def power(
        self, spectra: Sequence[np.ndarray], gains: Sequence[np.ndarray] | None = None
    ) -> np.ndarray:
        """``(n_seg, n_freq)`` float32 power per window: each component's per-stage spectrum
        ``(n_stages, n_freq)`` mixed by the window's stages, times its per-window gain
        ``(n_seg,)`` (``None``: 1), summed over the components (one matrix product)."""
        k = len(spectra)
        g = np.ones((self.n_seg, k), np.float32) if gains is None else np.stack(gains, axis=1)
        weights = (g[:, :, None] * self.mix[:, None, :]).reshape(self.n_seg, -1)
        table = np.concatenate(spectra, axis=0).astype(np.float32)
        return weights.astype(np.float32) @ table


def slow_gain(rng: np.random.Generator, n_seg: int, sd: float, smooth: int = 6) -> np.ndarray:
    """Per-window power gain that drifts slowly: lognormal with ``sd`` (natural log units of
    amplitude) after smoothing over ``smooth`` windows; mean power about 1."""
    if sd <= 0:
        return np.ones(n_seg, dtype=np.float32)
    z = uniform_filter1d(rng.standard_normal(n_seg + 2 * smooth), size=smooth, mode="nearest")
    z = z[smooth : smooth + n_seg] / max(np.std(z), 1e-9)
    return np.exp(2.0 * sd * z - 2.0 * sd * sd).astype(np.float32)


def shaped_noise(
    rng: np.random.Generator,
    grid: Grid,
    power: np.ndarray,
    common: np.ndarray | None = None,
    common_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Noise with a given power spectrum per synthesis window, by windowed overlap-add.

    Args:
        rng: random generator.
        grid: the night's synthesis windows.
        power: ``(n_seg, n_freq)`` power per window and frequency bin; a window's time-domain
            variance is the sum over its bins (e.g. ``grid.mix @ stage_spectra``).
        common: complex white spectrum to share with another channel (``None`` for none).
        common_weight: correlation with ``common`` (0..1).

    Returns:
        ``(signal, white)``: float32 signal of ``grid.n`` samples and the complex white spectrum
        used (for sharing with a correlated channel).
    """
    seg, hop, n_seg = grid.seg, grid.hop, grid.n_seg
    # Complex white noise with E|z|^2 = 1, drawn straight into complex64 (interleaved real and
    # imaginary parts) to keep the whole path single precision.
    white = rng.standard_normal((n_seg, 2 * power.shape[1]), dtype=np.float32).view(np.complex64)
    white *= np.float32(np.sqrt(0.5))
    if common is not None:
        white *= np.float32(np.sqrt(1.0 - common_weight**2))
        white += np.float32(common_weight) * common
    # E|X_k|^2 = (seg^2 / 2) * power_k gives a time-domain variance of sum(power).
    spec = white * np.sqrt(power.astype(np.float32) * np.float32(seg * seg / 2.0))
    frames = sp_fft.irfft(spec, n=seg, axis=1).astype(np.float32)
    frames *= np.sin(np.pi * (np.arange(seg) + 0.5) / seg).astype(np.float32)  # w^2 sums to 1
    out = np.zeros((n_seg + 1) * hop, dtype=np.float32)
    even, odd = frames[0::2], frames[1::2]
    out[: even.shape[0] * seg] += even.reshape(-1)
    out[hop : hop + odd.shape[0] * seg] += odd.reshape(-1)
    return out[hop : hop + grid.n], white


def event_onsets(
    rng: np.random.Generator,
    stage_idx: np.ndarray,
    rate_per_min: np.ndarray,
    spe: int,
    scale: np.ndarray | None = None,
) -> np.ndarray:
    """Sample onsets (samples) of a Poisson process whose rate depends on the epoch's state
    (times a per-epoch ``scale`` when given)."""
    rate = rate_per_min[stage_idx] if scale is None else rate_per_min[stage_idx] * scale
    counts = rng.poisson(rate * EPOCH_S / 60.0)
    epochs = np.repeat(np.arange(stage_idx.size), counts)
    return np.sort(epochs * spe + rng.integers(0, spe, size=epochs.size)).astype(np.int64)


def add_templates(signal: np.ndarray, onsets: np.ndarray, templates: np.ndarray) -> None:
    """Add template rows (n, L) into ``signal`` at ``onsets``, clipping at the end."""
    if onsets.size == 0:
        return
    idx = onsets[:, None] + np.arange(templates.shape[1])[None, :]
    keep = idx < signal.size
    np.add.at(signal, idx[keep], templates[keep].astype(signal.dtype))


def per_second(stage_idx: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Per-second values of a per-stage table, cross-faded over 5 s."""
    x = np.repeat(table[stage_idx], int(EPOCH_S)).astype(np.float32)
    return uniform_filter1d(x, size=5, mode="nearest")
