"""Per-minute heart-rate variability, CVHR and ECG-derived respiration from R peaks.

The classical single-lead ECG apnea features (Penzel et al. 2002; de Chazal et al. 2003; Varon
et al. 2015), computed for every minute of a recording:

- RR cleaning: intervals outside ``[0.3, 2.0]`` s, or more than 20 % away from the median of
  their neighbours (missed or false beats), are dropped. Each RR interval belongs to the minute
  in which it ends.
- Time domain, per minute: mean RR, SDNN, RMSSD, pNN50, RR range, mean heart rate.
- Cyclic variation of heart rate (CVHR): the clean RR series evenly resampled at 4 Hz, its
  periodogram over a context window centred on the minute (``context_min`` minutes either side,
  shifted to stay inside the recording), the power in 0.01-0.05 Hz (apnea cycles of 20-100 s)
  and its share of the 0-0.5 Hz power, plus the share of the respiratory band (0.15-0.4 Hz).
- ECG-derived respiration (EDR): the R-peak amplitude (ECG at the R peak minus the median ECG
  over +-0.3 s around it) modulated by breathing. Per minute its standard deviation (absolute
  and relative to the record's median amplitude); over the context window its power in
  0.1-0.5 Hz and that power's share of the 0-0.5 Hz power.

Minutes with fewer than ``min_rr`` clean intervals get NaN time-domain and EDR features; context
windows less than half covered by clean intervals get NaN spectral features. Classifiers fill
them in (``sklearn.impute.SimpleImputer``).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import periodogram

__all__ = [
    "FEATURE_NAMES",
    "band_power",
    "clean_rr",
    "minute_features",
    "r_amplitudes",
]

RR_RANGE_S: Final = (0.3, 2.0)
#: an interval further than this fraction from its neighbours' median is a detection error
MAX_JUMP: Final = 0.2
#: neighbours (odd) of the running median the jump test compares with
MEDIAN_BEATS: Final = 5
GRID_HZ: Final = 4.0
CVHR_BAND_HZ: Final = (0.01, 0.05)
HF_BAND_HZ: Final = (0.15, 0.4)
RESP_BAND_HZ: Final = (0.1, 0.5)
TOTAL_BAND_HZ: Final = (0.0, 0.5)

#: column names of :func:`minute_features`, with their units
FEATURE_NAMES: Final = (
    "mean_rr_s",
    "sdnn_s",
    "rmssd_s",
    "pnn50",  # fraction of successive differences > 50 ms
    "rr_range_s",
    "mean_hr_bpm",
    "cvhr_power_s2",  # RR power in 0.01-0.05 Hz (s^2)
    "cvhr_ratio",  # ... over the 0-0.5 Hz RR power
    "hf_ratio",  # RR power in 0.15-0.4 Hz over the 0-0.5 Hz RR power
    "edr_std_mv",
    "edr_rel_std",  # EDR std over the record's median R amplitude
    "edr_resp_power_mv2",  # EDR power in 0.1-0.5 Hz (mV^2)
    "edr_resp_ratio",  # ... over the 0-0.5 Hz EDR power
)


def clean_rr(peaks_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RR intervals of sorted beat times and which of them are physiologically plausible.

    Args:
        peaks_s: R-peak times in seconds, increasing.

    Returns:
        ``(t_s, rr_s, keep)``: end time (s) and length (s) of every interval between successive
        beats, and a boolean mask of the clean ones (inside :data:`RR_RANGE_S` and within
        :data:`MAX_JUMP` of the running median of the plausible ones).
    """
    peaks_s = np.asarray(peaks_s, dtype=np.float64)
    rr = np.diff(peaks_s)
    t = peaks_s[1:]
    keep = (rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1])
    if keep.any():
        # the median of plausible neighbours only: a missed beat must not drag it up
        med = median_filter(rr[keep], size=MEDIAN_BEATS, mode="nearest")
        ok = np.abs(rr[keep] - med) <= MAX_JUMP * med
        keep[np.flatnonzero(keep)[~ok]] = False
    return t, rr, keep


def band_power(x: np.ndarray, fs_hz: float, band: tuple[float, float]) -> np.ndarray:
    """Power of each row of ``x`` in a frequency band (Hann-windowed, linearly detrended
    periodogram).

    Args:
        x: ``(..., n)`` evenly sampled series (any unit ``u``).
        fs_hz: their sampling rate (Hz).
        band: ``(low, high)`` in Hz; low exclusive, high inclusive.

    Returns:
        ``(...)`` power in ``u^2`` (the periodogram density summed over the band times the bin
        width).
    """
    f, pxx = periodogram(x, fs=fs_hz, window="hann", detrend="linear", axis=-1)
    sel = (f > band[0]) & (f <= band[1])
    df = f[1] - f[0] if f.size > 1 else 0.0
    return pxx[..., sel].sum(axis=-1) * df


def r_amplitudes(
    ecg: np.ndarray,
    peaks: np.ndarray,
    fs_hz: float,
    baseline_s: float = 0.3,
    search_s: float = 0.03,
) -> np.ndarray:
    """R-wave amplitude of each beat: ECG extreme near the peak minus the local baseline.

    The record's polarity (upright or inverted QRS) is the sign of the median deflection at the
    given peaks; each amplitude is the largest deflection in that direction within ``search_s``
    of the peak (detectors are off by a sample or two), so it is positive.

    Args:
        ecg: 1-D ECG (mV).
        peaks: R-peak sample indices inside ``ecg``.
        fs_hz: sampling rate (Hz).
        baseline_s: half-width (s) of the window whose median is the baseline.
        search_s: half-width (s) of the search for the extreme.

    Returns:
        float64 ``[len(peaks)]`` amplitudes (mV).
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    peaks = np.asarray(peaks, dtype=np.int64)
    if peaks.size == 0:
        return np.zeros(0)
    last = ecg.size - 1
    half = max(1, int(round(baseline_s * fs_hz)))
    base = np.median(ecg[np.clip(peaks[:, None] + np.arange(-half, half + 1), 0, last)], axis=1)
    s = max(0, int(round(search_s * fs_hz)))
    near = ecg[np.clip(peaks[:, None] + np.arange(-s, s + 1), 0, last)] - base[:, None]
    polarity = 1.0 if np.median(ecg[peaks] - base) >= 0 else -1.0
    return (polarity * near).max(axis=1)


def _context_windows(n_minutes: int, context_min: int) -> tuple[np.ndarray, int]:
    """First grid minute of each minute's context window, and the window length in minutes."""
    width = min(2 * context_min + 1, n_minutes)
    start = np.clip(np.arange(n_minutes) - context_min, 0, n_minutes - width)
    return start, width


def minute_features(
    peaks: np.ndarray,
    ecg: np.ndarray,
    fs_hz: float,
    n_minutes: int,
    context_min: int = 2,
    min_rr: int = 10,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """HRV, CVHR and EDR features of every minute of a recording.

    Args:
        peaks: R-peak sample indices (any order; duplicates and indices outside ``ecg`` ignored).
        ecg: 1-D ECG (mV) that the indices refer to.
        fs_hz: its sampling rate (Hz).
        n_minutes: minutes to describe; minute ``i`` is ``[60 i, 60 (i + 1))`` s.
        context_min: minutes either side of a minute in its spectral (CVHR, EDR) window.
        min_rr: fewest clean RR intervals a minute needs for its time-domain and EDR features.

    Returns:
        ``(features, names)``: float64 ``[n_minutes, len(FEATURE_NAMES)]`` (NaN where a minute
        or its context has too few clean beats) and :data:`FEATURE_NAMES` (units in the names).
    """
    ecg = np.asarray(ecg, dtype=np.float64)
    p = np.unique(np.asarray(peaks, dtype=np.int64))
    p = p[(p >= 0) & (p < ecg.size)]
    out = np.full((n_minutes, len(FEATURE_NAMES)), np.nan)
    if n_minutes < 1 or p.size < 3:
        return out, FEATURE_NAMES
    t, rr, keep = clean_rr(p / fs_hz)
    amp = r_amplitudes(ecg, p, fs_hz)[1:]  # the beat that ends each interval
    tk, rrk, ampk, nk = t[keep], rr[keep], amp[keep], np.flatnonzero(keep)
    ref_amp = float(np.median(ampk)) if ampk.size else np.nan

    edges = np.arange(n_minutes + 1) * 60.0
    lo, hi = np.searchsorted(tk, edges[:-1]), np.searchsorted(tk, edges[1:])
    for m in np.flatnonzero(hi - lo >= min_rr):
        r = rrk[lo[m] : hi[m]]
        # successive differences only between clean intervals that are adjacent beats
        d = np.diff(r)[np.diff(nk[lo[m] : hi[m]]) == 1]
        a = ampk[lo[m] : hi[m]]
        out[m, :6] = (
            r.mean(),
            r.std(),
            np.sqrt(np.mean(d**2)) if d.size else np.nan,
            np.mean(np.abs(d) > 0.05) if d.size else np.nan,
            r.max() - r.min(),
            np.mean(60.0 / r),
        )
        out[m, 9] = a.std()
        out[m, 10] = a.std() / ref_amp if ref_amp > 0 else np.nan

    if tk.size < 2:
        return out, FEATURE_NAMES
    grid = np.arange(int(n_minutes * 60 * GRID_HZ)) / GRID_HZ
    rr_grid = np.interp(grid, tk, rrk)
    edr_grid = np.interp(grid, tk, ampk)
    start, width = _context_windows(n_minutes, context_min)
    per_min = int(60 * GRID_HZ)
    idx = (start * per_min)[:, None] + np.arange(width * per_min)[None, :]
    # coverage: seconds of clean RR intervals ending inside each context window
    covered = np.concatenate([[0.0], np.cumsum(rrk)])
    c_lo = np.searchsorted(tk, start * 60.0)
    c_hi = np.searchsorted(tk, (start + width) * 60.0)
    ok = (covered[c_hi] - covered[c_lo]) >= 0.5 * width * 60.0
    rr_win, edr_win = rr_grid[idx], edr_grid[idx]
    rr_total = band_power(rr_win, GRID_HZ, TOTAL_BAND_HZ)
    cvhr = band_power(rr_win, GRID_HZ, CVHR_BAND_HZ)
    hf = band_power(rr_win, GRID_HZ, HF_BAND_HZ)
    edr_total = band_power(edr_win, GRID_HZ, TOTAL_BAND_HZ)
    edr_resp = band_power(edr_win, GRID_HZ, RESP_BAND_HZ)
    with np.errstate(invalid="ignore", divide="ignore"):
        spectral = np.stack(
            [cvhr, cvhr / rr_total, hf / rr_total, edr_resp, edr_resp / edr_total], axis=1
        )
    spectral[~ok] = np.nan
    out[:, [6, 7, 8, 11, 12]] = spectral
    return out, FEATURE_NAMES
