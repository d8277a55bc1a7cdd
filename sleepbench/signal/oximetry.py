"""Overnight oximetry summary measures: oxygen desaturation index, time below a saturation, mean
and nadir. They describe the SpO2 signal itself (no model), for the night report beside a
severity prediction.

Desaturation rule (the common oximetry-software definition, e.g. AASM's 3 % ODI): at each second
the baseline is the highest SpO2 of the preceding ``baseline_s`` seconds; a desaturation is a run
of at least ``min_duration_s`` seconds during which SpO2 stays ``drop_pct`` points or more below
that baseline. Signals are in percent; artefacts (outside [50, 100] %) are interpolated first.

:func:`clean_spo2` and :func:`odi_per_hour` give the oxygen desaturation index of a night for
several thresholds at once (the ODI 3 % / 4 % peer of the ``shhs_spo2`` task). The ODI needs the
signal in percent: after a per-night min-max scaling a "3 % drop" no longer means anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from sleepbench.signal.spo2 import interpolate_artefacts, resample_to

__all__ = ["OximetrySummary", "clean_spo2", "desaturations", "odi_per_hour", "oximetry_summary"]


@dataclass(frozen=True)
class OximetrySummary:
    """Oximetry measures of one night.

    Args:
        odi_per_h: desaturations per hour of recording.
        n_desaturations: their number.
        t90_min: minutes with SpO2 below 90 %.
        t90_pct: share of the recording below 90 %, in percent.
        mean_spo2_pct: mean SpO2 (%).
        nadir_spo2_pct: lowest SpO2 (%) after artefact interpolation.
        hours: recording length analysed (h).
        drop_pct: the desaturation threshold used (percentage points).
    """

    odi_per_h: float
    n_desaturations: int
    t90_min: float
    t90_pct: float
    mean_spo2_pct: float
    nadir_spo2_pct: float
    hours: float
    drop_pct: float


def desaturations(
    spo2_1hz: np.ndarray,
    drop_pct: float = 3.0,
    baseline_s: int = 120,
    min_duration_s: int = 10,
) -> list[tuple[int, int]]:
    """Desaturation runs of a 1-Hz SpO2 signal, as ``(start, stop)`` sample indices (seconds).

    Args:
        spo2_1hz: SpO2 in percent at 1 Hz, artefact-free.
        drop_pct: fall below the baseline that counts (percentage points).
        baseline_s: window of the running-maximum baseline, seconds before each sample.
        min_duration_s: shortest run counted, seconds.
    """
    x = np.asarray(spo2_1hz, dtype=np.float64)
    if x.size == 0:
        return []
    # highest value of the preceding baseline_s seconds (the sample itself included at t = 0)
    padded = np.concatenate([np.full(baseline_s, x[0]), x])
    baseline = ndimage.maximum_filter1d(padded, size=baseline_s, origin=(baseline_s - 1) // 2)
    baseline = baseline[baseline_s - 1 : baseline_s - 1 + x.size]
    low = x <= baseline - drop_pct
    labels, n = ndimage.label(low)
    runs = ndimage.find_objects(labels)
    return [
        (sl[0].start, sl[0].stop)
        for sl in runs[:n]
        if sl is not None and sl[0].stop - sl[0].start >= min_duration_s
    ]


def oximetry_summary(
    spo2: np.ndarray, fs_hz: float, drop_pct: float = 3.0, artefact_bounds=(50.0, 100.0)
) -> OximetrySummary:
    """Oximetry measures of one night of SpO2 (percent, any rate).

    Raises:
        ValueError: no valid sample (see :func:`~sleepbench.signal.spo2.interpolate_artefacts`).
    """
    clean, _ = interpolate_artefacts(spo2, *artefact_bounds)
    x = resample_to(clean, fs_hz, 1.0)
    hours = x.size / 3600.0
    runs = desaturations(x, drop_pct=drop_pct)
    below = float(np.count_nonzero(x < 90.0))
    return OximetrySummary(
        odi_per_h=len(runs) / hours if hours > 0 else float("nan"),
        n_desaturations=len(runs),
        t90_min=below / 60.0,
        t90_pct=100.0 * below / max(x.size, 1),
        mean_spo2_pct=float(x.mean()),
        nadir_spo2_pct=float(x.min()),
        hours=hours,
        drop_pct=float(drop_pct),
    )


def clean_spo2(
    spo2: np.ndarray,
    fs_hz: float,
    artefact_bounds: tuple[float, float] = (50.0, 100.0),
    n_samples: int | None = None,
) -> np.ndarray:
    """SpO2 (%) ready for desaturation detection: samples outside ``artefact_bounds`` linearly
    interpolated, resampled to 1 Hz, then the first ``n_samples`` seconds kept (all when
    ``None``; a shorter night stays shorter, it is never padded).

    Raises:
        ValueError: no valid sample (see :func:`~sleepbench.signal.spo2.interpolate_artefacts`).
    """
    clean, _ = interpolate_artefacts(spo2, *artefact_bounds)
    x = resample_to(clean, fs_hz, 1.0)
    return x if n_samples is None else x[: int(n_samples)]


def odi_per_hour(
    spo2_1hz: np.ndarray,
    drops: tuple[float, ...] | list[float] = (3.0, 4.0),
    baseline_s: int = 120,
    min_duration_s: int = 10,
) -> dict[float, float]:
    """Oxygen desaturation index (desaturations per hour of signal) for each threshold.

    Args:
        spo2_1hz: artefact-free SpO2 in percent at 1 Hz (see :func:`clean_spo2`).
        drops: thresholds in percentage points (3 % and 4 % are the usual ODIs).
        baseline_s, min_duration_s: see :func:`desaturations`.

    Returns:
        ``{drop: events per hour}``; NaN for an empty signal.
    """
    x = np.asarray(spo2_1hz, dtype=np.float64)
    hours = x.size / 3600.0
    out = {}
    for drop in drops:
        runs = desaturations(x, float(drop), baseline_s=baseline_s, min_duration_s=min_duration_s)
        out[float(drop)] = len(runs) / hours if hours > 0 else float("nan")
    return out
