"""Night structure of the synthetic Sleep-EDF nights: one R&K stage per 30-s epoch.

A night starts with lights-off wake, falls asleep through stage 1, runs ~90-min NREM-REM cycles
(slow-wave sleep, stages 3 and 4, early; REM periods growing later), has brief awakenings at
cycle ends and out of stage 2 (some through movement time), a few unscorable epochs, and ends
awake. :func:`drowsy_wake` marks which wake epochs are relaxed eyes-closed wake (before sleep
onset, in some awakenings) rather than active wake; both are scored W.
:func:`hypnogram_annotations` turns the epochs into Sleep-EDF hypnogram annotation runs.

``sleepbench.tasks.shhs_spo2`` builds its nights on :func:`synth_hypnogram` too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleepbench.recording import Event

__all__ = [
    "ANNOTATION_TEXT",
    "EPOCH_S",
    "STAGES",
    "hypnogram_annotations",
    "drowsy_wake",
    "synth_hypnogram",
]

EPOCH_S = 30.0
#: R&K epoch codes, in the order used by the per-stage tables of the signal modules.
STAGES: tuple[str, ...] = ("W", "1", "2", "3", "4", "R", "?", "M")
#: epoch code -> Sleep-EDF hypnogram annotation text.
ANNOTATION_TEXT: dict[str, str] = {
    "W": "Sleep stage W",
    "1": "Sleep stage 1",
    "2": "Sleep stage 2",
    "3": "Sleep stage 3",
    "4": "Sleep stage 4",
    "R": "Sleep stage R",
    "?": "Sleep stage ?",
    "M": "Movement time",
}


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (sum preserved)."""
    raw = weights / weights.sum() * total
    parts = np.floor(raw).astype(int)
    parts[np.argsort(raw - parts)[::-1][: total - parts.sum()]] += 1
    return parts


def _cycle(rng: np.random.Generator, n: int, p: float, first: bool, slow_wave: float) -> list[str]:
    """One NREM-REM cycle of ``n`` epochs at relative night position ``p`` in [0, 1]."""
    frac_sws = max(0.0, (0.5 * (1.0 - p) ** 2.5 + rng.uniform(-0.03, 0.03)) * slow_wave)
    frac_rem = 0.10 + 0.28 * p + rng.uniform(-0.03, 0.03)
    frac_n1 = 0.0 if first else 0.04
    n_sws = round(n * min(frac_sws, 0.6))
    n_rem = max(1, round(n * frac_rem))
    n_n1 = round(n * frac_n1)
    n_n2 = max(1, n - n_sws - n_rem - n_n1)
    n_rem = n - n_sws - n_n1 - n_n2
    n2_before = round(n_n2 * 0.45)
    # Stage 4 is the deepest core of the slow-wave block, present early in the night only.
    n4 = round(n_sws * float(np.clip(0.75 * (1.0 - p) - 0.15, 0.0, 0.6)))
    n3_before = (n_sws - n4) // 2
    seq = (
        ["1"] * n_n1
        + ["2"] * n2_before
        + ["3"] * n3_before
        + ["4"] * n4
        + ["3"] * (n_sws - n4 - n3_before)
        + ["2"] * (n_n2 - n2_before)
        + ["R"] * n_rem
    )
    return seq


def synth_hypnogram(rng: np.random.Generator, n_epochs: int, slow_wave: float = 1.0) -> list[str]:
    """A plausible night of R&K stages, one code of :data:`STAGES` per 30-s epoch.

    Lights-off wake, sleep onset through stage 1, NREM-REM cycles of about 90 min (fewer but at
    least two for short nights; stages 3/4 concentrated early, REM growing late), awakenings at
    some cycle ends and within stage 2, a few movement-time (``M``) and unscorable (``?``)
    epochs, and wake at the end.

    Args:
        rng: random generator.
        n_epochs: night length in 30-s epochs (at least 40).
        slow_wave: scales the amount of stage 3/4 sleep (young sleepers > 1, elderly < 1).

    Returns:
        ``n_epochs`` stage codes.
    """
    if n_epochs < 40:
        raise ValueError(f"a synthetic night needs at least 40 epochs (20 min), got {n_epochs}")
    w_start = int(np.clip(round(n_epochs * rng.uniform(0.03, 0.07)), 2, 60))
    w_end = int(np.clip(round(n_epochs * rng.uniform(0.02, 0.05)), 2, 40))
    n1_onset = int(np.clip(round(n_epochs * rng.uniform(0.01, 0.03)), 2, 14))
    body = n_epochs - w_start - w_end - n1_onset
    n_cycles = max(2, round(body / 180))  # 180 epochs = 90 min
    lengths = _split(body, rng.uniform(0.85, 1.15, n_cycles))
    seq = ["W"] * w_start + ["1"] * n1_onset
    for k, n in enumerate(lengths):
        cyc = _cycle(rng, int(n), k / (n_cycles - 1), k == 0, slow_wave)
        if k < n_cycles - 1 and cyc.count("R") > 3 and rng.random() < 0.7:
            # brief awakening that ends a cycle
            n_w = int(rng.integers(1, 3))
            cyc[-n_w:] = ["W"] * n_w
        seq += cyc
    seq += ["W"] * w_end
    stages = np.array(seq, dtype="<U1")
    sleep = slice(w_start + n1_onset, n_epochs - w_end)
    body_idx = np.arange(n_epochs)[sleep]

    # Fragmentation: a fraction of stage 4 epochs are scored 3, of 3 scored 2, REM scored 1/W.
    u = rng.random(n_epochs)
    stages[(stages == "4") & (u < 0.15)] = "3"
    stages[(stages == "3") & (u > 0.92)] = "2"
    stages[(stages == "R") & (u < 0.04)] = "1"
    stages[(stages == "R") & (u > 0.985)] = "W"
    stages[(stages == "2") & (u < 0.02)] = "1"
    # Awakenings out of stage 2 (~1.5 per hour of stage 2), some with movement time.
    n2 = body_idx[stages[body_idx] == "2"]
    n_wake = min(len(n2) // 20, rng.poisson(1.5 * len(n2) / 120.0))
    for i in rng.choice(n2, size=n_wake, replace=False) if n_wake else ():
        stop = min(i + 3, sleep.stop)
        if rng.random() < 0.35:
            stages[i:stop] = ["M", "W", "1"][: stop - i]
        else:
            stages[i:stop] = ["W", "1", "2"][: stop - i]
    # A few unscorable epochs (artefacts) anywhere in the sleep period.
    n_unscored = int(rng.integers(1, 3))
    stages[rng.choice(body_idx, size=n_unscored, replace=False)] = "?"
    return stages.tolist()


def hypnogram_annotations(stages: Sequence[str], trailing_unscored_s: float = 0.0) -> list[Event]:
    """Sleep-EDF hypnogram annotations: one event per run of equal epochs.

    Args:
        stages: one code of :data:`STAGES` per 30-s epoch.
        trailing_unscored_s: length of a final ``Sleep stage ?`` annotation starting where the
            epochs end (the real hypnograms run past the PSG this way); 0 for none.

    Returns:
        Events with onset/duration in seconds and the exact Sleep-EDF annotation text.
    """
    codes = np.asarray(stages)
    if codes.size == 0:
        return []
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [codes.size]])
    events = [
        Event(float(a * EPOCH_S), float((b - a) * EPOCH_S), ANNOTATION_TEXT[str(codes[a])])
        for a, b in zip(starts, stops)
    ]
    if trailing_unscored_s > 0:
        onset = codes.size * EPOCH_S
        if events[-1].label == ANNOTATION_TEXT["?"]:
            last = events.pop()
            onset, trailing_unscored_s = last.onset_s, last.duration_s + trailing_unscored_s
        events.append(Event(onset, float(trailing_unscored_s), ANNOTATION_TEXT["?"]))
    return events


def drowsy_wake(rng: np.random.Generator, stages: Sequence[str]) -> np.ndarray:
    """Which wake epochs are relaxed, eyes-closed (drowsy) wake rather than active wake.

    Both are scored W. Drowsy wake fills the last 20-60 % of the lights-off wake before sleep
    onset, about a third of the awakenings inside the night (whole runs) and the last epoch of the
    others; the final morning wake is active.

    Returns:
        One flag per epoch.
    """
    codes = np.asarray(stages)
    flags = np.zeros(codes.size, dtype=bool)
    wake = (codes == "W").astype(int)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], wake, [0]])))
    runs = list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
    for a, b in runs:
        if a == 0:  # lights-off wake
            flags[b - max(1, int(round((b - a) * rng.uniform(0.2, 0.6)))) : b] = True
        elif b == codes.size:  # morning wake
            continue
        elif rng.random() < 0.3:
            flags[a:b] = True
        else:
            flags[b - 1] = True
    return flags
