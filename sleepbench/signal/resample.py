"""Rational-ratio resampling of sampled signals (polyphase FIR, scipy ``resample_poly``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

__all__ = ["StreamingResampler", "resample_ratio", "resample_to", "stream_resampled"]


def resample_ratio(
    fs_in_hz: float, fs_out_hz: float, max_denominator: int = 1000
) -> tuple[int, int]:
    """``(up, down)`` with ``fs_in_hz * up / down == fs_out_hz``, in lowest terms.

    Args:
        fs_in_hz: input sampling rate in Hz.
        fs_out_hz: output sampling rate in Hz.
        max_denominator: largest ``down`` allowed (the polyphase filter grows with ``up`` and
            ``down``; 100 -> 128 Hz is 32/25).

    Raises:
        ValueError: a rate is not positive, or the ratio is not rational within
            ``max_denominator`` (to 1e-9 relative).
    """
    if fs_in_hz <= 0 or fs_out_hz <= 0:
        raise ValueError(f"sampling rates must be positive, got {fs_in_hz} -> {fs_out_hz} Hz")
    ratio = Fraction(fs_out_hz / fs_in_hz).limit_denominator(max_denominator)
    if abs(float(ratio) * fs_in_hz - fs_out_hz) > 1e-9 * fs_out_hz:
        raise ValueError(
            f"{fs_in_hz} -> {fs_out_hz} Hz is not a ratio p/q with q <= {max_denominator}"
        )
    return ratio.numerator, ratio.denominator


def resample_to(x: np.ndarray, fs_in_hz: float, fs_out_hz: float, axis: int = -1) -> np.ndarray:
    """Resample ``x`` from ``fs_in_hz`` to ``fs_out_hz`` along ``axis`` (anti-aliased).

    Uses :func:`scipy.signal.resample_poly` (zero-phase polyphase FIR with a Kaiser window), the
    resampler of the U-Time / U-Sleep pipelines. ``n`` input samples give
    ``ceil(n * up / down)`` output samples, so a whole number of 30-s epochs at 100 Hz (3000
    samples each) becomes exactly 3840 samples per epoch at 128 Hz.

    Args:
        x: signal(s), any shape; float input keeps its dtype, other dtypes become float32.
        fs_in_hz: input rate in Hz.
        fs_out_hz: output rate in Hz.
        axis: time axis.

    Returns:
        The resampled array (a copy even when the rates are equal).
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float32)
    up, down = resample_ratio(fs_in_hz, fs_out_hz)
    if up == down:
        return x.astype(dtype, copy=True)
    return resample_poly(x, up, down, axis=axis).astype(dtype, copy=False)


class StreamingResampler:
    """Block-wise :func:`scipy.signal.resample_poly` equal to resampling the whole stream.

    Output sample ``n`` of the whole-signal result depends on input samples within the FIR
    filter's reach (``10 * max(up, down) / up`` input samples each side). Each block is
    resampled together with ``margin`` samples of context on both sides (started on a multiple
    of ``down`` so that output samples stay on the whole signal's grid), and only outputs whose
    whole support lies inside the block are emitted; the signal's true start and end see the
    same zero padding as ``resample_poly``.

    Args:
        fs_in_hz: input rate (Hz).
        fs_out_hz: output rate (Hz).
    """

    def __init__(self, fs_in_hz: float, fs_out_hz: float) -> None:
        self.up, self.down = resample_ratio(fs_in_hz, fs_out_hz)
        reach = 10 * max(self.up, self.down) / self.up + 2
        self.margin = self.down * math.ceil(reach / self.down)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf0 = 0  # input index of _buf[0] (a multiple of down)
        self._next = 0  # next output index to emit
        self._n_in = 0

    def _run(self, n_out_end: int) -> np.ndarray:
        """Emit outputs ``[_next, n_out_end)`` from the buffer and drop input no longer needed."""
        if n_out_end <= self._next:
            return np.zeros(0, dtype=np.float32)
        if self.up == self.down:
            y = self._buf
        else:
            y = resample_poly(self._buf, self.up, self.down)
        first = self._buf0 * self.up // self.down
        out = y[self._next - first : n_out_end - first].astype(np.float32, copy=False)
        self._next = n_out_end
        keep_from = (n_out_end * self.down) // self.up - self.margin
        keep_from = max(self._buf0, (keep_from // self.down) * self.down)
        self._buf = self._buf[keep_from - self._buf0 :].copy()
        self._buf0 = keep_from
        return out

    def push(self, block: np.ndarray) -> np.ndarray:
        """Append input samples; return the output samples now final."""
        block = np.asarray(block, dtype=np.float32).ravel()
        self._n_in += block.size
        self._buf = np.concatenate([self._buf, block])
        safe_in = self._buf0 + self._buf.size - self.margin  # inputs with full right context
        if safe_in <= 0:
            return np.zeros(0, dtype=np.float32)
        return self._run((safe_in * self.up) // self.down)

    def finish(self) -> np.ndarray:
        """Return the remaining outputs (``ceil(n_in * up / down)`` in all)."""
        total = -(-self._n_in * self.up // self.down)
        return self._run(total)


def stream_resampled(
    blocks: Iterator[np.ndarray] | Sequence[np.ndarray], fs_in_hz: float, fs_out_hz: float
) -> Iterator[np.ndarray]:
    """Resample a stream of blocks from ``fs_in_hz`` to ``fs_out_hz`` (:class:`StreamingResampler`)."""
    resampler = StreamingResampler(fs_in_hz, fs_out_hz)
    for block in blocks:
        out = resampler.push(block)
        if out.size:
            yield out
    out = resampler.finish()
    if out.size:
        yield out
