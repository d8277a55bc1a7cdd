"""psg_audio_osa items: a cached uint8 mel window -> the CRNN's input (SPECS §1.2 steps 5-6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sleepbench.signal.mel import N_MELS, dequantize_db, energy_profile, zscore

__all__ = ["PsgAudioTransform"]

_DEFAULT_AUGMENT = {
    "enabled": True,
    "gain": [0.8, 1.2],
    "freq_mask_p": 0.5,
    "freq_mask_max": 15,
    "time_mask_p": 0.5,
    "time_mask_max": 40,
}


class PsgAudioTransform:
    """Cached uint8 mel window -> model input ``[129, T]`` (+ training augmentation).

    Rows 0-127: the window's mel dB z-scored with its own mean/std (eps 1e-6); row 128: the
    energy profile (mean dB over the bins, taken before the mel z-scoring) z-scored in the
    window. Training (``train`` and ``augment["enabled"]``): one gain ``U(gain)`` on all rows;
    with ``freq_mask_p`` a band of up to ``freq_mask_max`` mel bins and with ``time_mask_p`` a
    stretch of up to ``time_mask_max`` frames of the mel rows set to 0, drawn as torchaudio's
    ``FrequencyMasking`` / ``TimeMasking`` draw (width ``u * max``, start ``v * (size - width)``).

    Args:
        train: augment.
        augment: the ``augment`` config (defaults: SPECS §1.2 step 6).
    """

    def __init__(self, train: bool, augment: Mapping[str, Any] | None = None) -> None:
        self.train = train
        self.augment = {**_DEFAULT_AUGMENT, **dict(augment or {})}

    @staticmethod
    def features(q: np.ndarray) -> np.ndarray:
        """uint8 mel codes ``[128, T]`` -> float32 ``[129, T]`` (no augmentation)."""
        db = dequantize_db(q)
        energy = zscore(energy_profile(db))
        return np.concatenate([zscore(db), energy[None, :]], axis=0)

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = self.features(x)
        a = self.augment
        if self.train and a["enabled"]:
            out *= np.float32(rng.uniform(*map(float, a["gain"])))
            if rng.random() < float(a["freq_mask_p"]):
                _mask_axis(out[:N_MELS], 0, int(a["freq_mask_max"]), rng)
            if rng.random() < float(a["time_mask_p"]):
                _mask_axis(out[:N_MELS], 1, int(a["time_mask_max"]), rng)
        return out, np.asarray(y, dtype=np.int64)


def _mask_axis(a: np.ndarray, axis: int, max_width: int, rng: np.random.Generator) -> None:
    """torchaudio ``mask_along_axis`` on ``a`` in place, with ``rng``'s draws."""
    width = rng.random() * max_width
    start = int(rng.random() * (a.shape[axis] - width))
    stop = start + int(width)
    if axis == 0:
        a[start:stop] = 0.0
    else:
        a[:, start:stop] = 0.0
