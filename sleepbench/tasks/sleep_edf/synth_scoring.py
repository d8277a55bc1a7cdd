"""What a human scorer writes for a synthetic night: the hypnogram file's stages.

The signals are generated from physiological stages; the hypnogram holds what a scorer, looking
at those signals, would write. Two things make them differ, as they do between real scorers
(inter-scorer κ on real nights is about 0.75, with most disagreement at transitions and
between stages 2 and 3):

- the slow-wave criterion is applied to the signal itself: stage 2, 3 and 4 epochs are scored
  by the share of the epoch holding 0.5-2 Hz waves of at least 75 µV peak to peak on Fpz-Cz
  (R&K: stage 3 from 20 %, stage 4 above 50 %), judged by eye, so with some noise around the
  thresholds;
- transitions: a boundary between two scorable runs moves by one epoch, earlier or later, with
  some probability, never emptying a run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from sleepbench.tasks.sleep_edf.synth_hypnogram import EPOCH_S

__all__ = ["score_hypnogram", "slow_wave_share"]

_WINDOW_S = 2.0  # slow waves are judged in 2-s windows (one 0.5-Hz half wave fits)
_PTP_UV = 75.0  # R&K: high-amplitude delta is >= 75 µV peak to peak
_STAGE3_SHARE, _STAGE4_SHARE = 0.2, 0.5


def slow_wave_share(eeg: np.ndarray, fs: float) -> np.ndarray:
    """Per 30-s epoch: share of 2-s windows whose 0.5-2 Hz wave is >= 75 µV peak to peak.

    Args:
        eeg: the scored derivation (µV), a whole number of epochs long.
        fs: its rate (Hz).
    """
    sos = butter(4, [0.5, 2.0], "bandpass", fs=fs, output="sos")
    slow = sosfiltfilt(sos, np.asarray(eeg, dtype=np.float64))
    per_win = int(round(_WINDOW_S * fs))
    n_win = int(round(EPOCH_S / _WINDOW_S))
    n_ep = slow.size // (per_win * n_win)
    win = slow[: n_ep * n_win * per_win].reshape(n_ep, n_win, per_win)
    return (np.ptp(win, axis=2) >= _PTP_UV).mean(axis=1)


def score_hypnogram(
    rng: np.random.Generator,
    stages: Sequence[str],
    slow_share: np.ndarray | None = None,
    p_shift: float = 0.4,
    eye_sd: float = 0.3,
) -> list[str]:
    """The scored stages of a night whose physiological stages are ``stages``.

    Args:
        rng: random generator.
        stages: the stages the signals were generated from (R&K codes).
        slow_share: :func:`slow_wave_share` of the scored EEG per epoch; ``None`` keeps the
            physiological stages 2/3/4.
        p_shift: probability that a boundary between scorable runs moves by one epoch.
        eye_sd: spread (log units) of the scorer's reading of the slow-wave share; it drifts
            over a few epochs, as a scorer's calibration does.

    Returns:
        The scored stages, same length.
    """
    codes = np.array(stages, dtype="<U1")
    if slow_share is not None:
        nrem = np.isin(codes, ["2", "3", "4"])
        eye = uniform_filter1d(rng.normal(0.0, eye_sd, codes.size), size=3, mode="nearest")
        seen = np.asarray(slow_share)[: codes.size] * np.exp(eye * np.sqrt(3.0))
        by_rule = np.where(seen > _STAGE4_SHARE, "4", np.where(seen >= _STAGE3_SHARE, "3", "2"))
        codes = np.where(nrem, by_rule, codes)
    scored = codes.copy()
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1  # first epoch of each new run
    if change.size == 0:
        return scored.tolist()
    starts = np.concatenate([[0], change])
    remaining = np.diff(np.concatenate([starts, [codes.size]]))  # epochs left in each run
    move = rng.random(change.size) < p_shift
    later = rng.random(change.size) < 0.5
    for k, b in enumerate(change):  # boundary k: between run k and run k + 1
        if not move[k] or codes[b - 1] in "?M" or codes[b] in "?M":
            continue
        if later[k] and remaining[k + 1] > 1:
            scored[b] = codes[b - 1]  # the old stage is scored one epoch longer
            remaining[k + 1] -= 1
        elif not later[k] and remaining[k] > 1:
            scored[b - 1] = codes[b]  # the new stage is scored one epoch earlier
            remaining[k] -= 1
    return scored.tolist()
