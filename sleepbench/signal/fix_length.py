"""Fixed-length windows: ICBHI cycles repeated to 8 s (Patch-Mix convention), zero padding.

The convention of the Patch-Mix code (``raymin0223/patch-mix_contrastive_learning`` @ 836b09f,
``util/icbhi_util.py``, ``cut_pad_sample_torchaudio`` with ``pad_types="repeat"``; SPECS §4.1,
§4.7), for a cycle of ``m`` samples and a target of ``n`` samples (``desired_length * sr``):

- ``m > n``: keep the first ``n`` samples (no fade);
- ``m <= n``: tile the cycle ``ceil(n / m)`` times end to end, keep the first ``n`` samples, then
  apply ``torchaudio.transforms.Fade(fade_in_len=0, fade_out_len=sr // 16, "linear")`` to the
  result: the **last** ``sr // 16`` samples (1000 at 16 kHz) are multiplied by
  ``linspace(1, 0, sr // 16)``. The joins between the copies are left as they are: there is no
  fade at each join, only one fade-out at the end of the window (SPECS §4.7's "fade-out at the
  joins" describes this loosely). A cycle of exactly ``n`` samples is faded too.

Separately, the same code fades the **whole recording** in and out (``Fade(sr // 16,
sr // 16)``) after resampling it and before cutting the cycles (``get_individual_cycles_
torchaudio``), so a cycle that starts at the recording's first sample starts silent;
:func:`fade_in_out` does that. Cycles are cut there at ``int(t * sr)`` (floor), clipped to the
recording.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fade_in_out", "fix_length", "pad_to"]


def _fade_out_gain(n: int) -> np.ndarray:
    """``torchaudio``'s linear fade-out of ``n`` samples: ``linspace(1, 0, n)`` (1 ... 0)."""
    return np.linspace(1.0, 0.0, n, dtype=np.float32)


def fix_length(x: np.ndarray, n: int, fade_samples: int) -> np.ndarray:
    """Cut or repeat-pad a cycle to ``n`` samples (Patch-Mix's ``repeat`` padding).

    Args:
        x: the cycle, 1-D, any float or int dtype, at least one sample.
        n: samples wanted (8 s at 16 kHz: 128000).
        fade_samples: length of the linear fade-out over the window's last samples when the
            cycle was repeated (``sr // 16``: 1000 at 16 kHz); 0 for none; at most ``n`` used.

    Returns:
        float32 ``[n]``: ``x[:n]`` when ``x`` is longer than ``n``; else ``x`` tiled to ``n``
        samples with its last ``fade_samples`` faded out linearly (module docstring).

    Raises:
        ValueError: ``x`` is not 1-D or empty, ``n < 1`` or ``fade_samples < 0``.
    """
    x = np.asarray(x)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"fix_length needs a non-empty 1-D cycle, got shape {x.shape}")
    if n < 1 or fade_samples < 0:
        raise ValueError(f"need n >= 1 and fade_samples >= 0, got n={n}, fade={fade_samples}")
    if x.size > n:
        return x[:n].astype(np.float32)
    out = np.tile(x.astype(np.float32), -(-n // x.size))[:n]
    fade = min(int(fade_samples), n)
    if fade:
        out[n - fade :] *= _fade_out_gain(fade)
    return out


def fade_in_out(x: np.ndarray, fade_samples: int) -> np.ndarray:
    """Fade a whole recording in and out linearly, as Patch-Mix does before cutting cycles.

    Args:
        x: 1-D recording (any float dtype).
        fade_samples: fade length at each end (``sr // 16``); both fades are clipped to the
            recording's length.

    Returns:
        float32 copy: the first ``fade_samples`` samples times ``linspace(0, 1, fade_samples)``,
        the last times ``linspace(1, 0, fade_samples)`` (overlapping fades multiply).
    """
    out = np.array(x, dtype=np.float32)
    fade = min(max(int(fade_samples), 0), out.size)
    if fade:
        out[:fade] *= _fade_out_gain(fade)[::-1]
        out[out.size - fade :] *= _fade_out_gain(fade)
    return out


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad at the end, or cut, to ``n`` samples.

    Note: HTS-AT's ``ESC_Dataset`` (``data_generator.py``, which LSRM imports) does **not**
    zero-pad ESC-50's 5-s clips to 10 s: it concatenates each clip with itself
    (``np.concatenate((w, w))``), i.e. ``fix_length(w, 2 * len(w), fade_samples=0)``.

    Args:
        x: 1-D signal.
        n: samples wanted (``n >= 0``).

    Returns:
        float32 ``[n]``: ``x[:n]`` followed by zeros.
    """
    x = np.asarray(x, dtype=np.float32).ravel()
    if n < 0:
        raise ValueError(f"pad_to needs n >= 0, got {n}")
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, x.size)] = x[:n]
    return out
