"""Night statistics of a hypnogram (one AASM stage per epoch): TIB, TST, efficiency, latencies,
WASO, time per stage, awakenings.

One implementation for every place that summarises a night's staging (``sleepbench predict`` for
the predicted and the reference hypnogram alike), so the two are always computed the same way.

Conventions (AASM terms; the recordings carry no lights-off/on markers, so the recording is the
time in bed):

* time in bed (TIB) is every epoch given, scored or not;
* sleep onset is the first epoch of any sleep stage (N1, N2, N3, REM); the sleep period runs
  from it to the end of the last sleep epoch;
* WASO counts wake epochs inside the sleep period (wake after the final awakening is not WASO,
  which keeps long wake tails of a 20-h recording out of it); an awakening is a run of wake
  epochs inside the sleep period;
* unscored epochs (``None``: movement, ``?``) are time in bed but neither sleep nor wake.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["HYPNOGRAM_DEFINITIONS", "SLEEP_STAGES", "STAGES", "hypnogram_statistics"]

#: AASM stages in report order.
STAGES: tuple[str, ...] = ("W", "N1", "N2", "N3", "REM")
#: Stages that count as sleep.
SLEEP_STAGES: frozenset[str] = frozenset(("N1", "N2", "N3", "REM"))

#: What each key of :func:`hypnogram_statistics` means, with its unit.
HYPNOGRAM_DEFINITIONS: dict[str, str] = {
    "tib_min": "time in bed: every epoch of the recording, scored or not, minutes",
    "tst_min": "total sleep time: epochs staged N1, N2, N3 or REM, minutes",
    "spt_min": "sleep period time: from sleep onset to the end of the last sleep epoch, minutes",
    "sleep_efficiency_pct": "sleep efficiency: TST / TIB x 100, %",
    "sleep_onset_latency_min": "sleep onset latency: recording start to the first sleep epoch "
    "(any of N1, N2, N3, REM), minutes (None: no sleep)",
    "rem_latency_min": "REM latency: sleep onset to the first REM epoch, minutes (None: no REM)",
    "waso_min": "wake after sleep onset: wake epochs between sleep onset and the end of the last "
    "sleep epoch, minutes",
    "n_awakenings": "number of runs of wake epochs between sleep onset and the last sleep epoch",
    "unscored_min": "epochs without a stage (movement, unscored), minutes",
    **{f"{s.lower()}_min": f"time staged {s}, minutes" for s in STAGES},
    **{
        f"{s.lower()}_pct_tst": f"time staged {s} as a share of TST, % (None: no sleep)"
        for s in STAGES
        if s in SLEEP_STAGES
    },
}


def hypnogram_statistics(stages: Sequence[str | None], epoch_s: float = 30.0) -> dict[str, Any]:
    """Statistics of one night's hypnogram (conventions in the module docstring).

    Args:
        stages: one label per epoch from the recording start: ``"W"``, ``"N1"``, ``"N2"``,
            ``"N3"``, ``"REM"`` or ``None`` (unscored).
        epoch_s: epoch length in seconds.

    Returns:
        The keys of :data:`HYPNOGRAM_DEFINITIONS`: durations in minutes (float), percentages in
        % (float), ``n_awakenings`` (int); latencies and the shares of TST are ``None`` when
        there is no sleep (or no REM).

    Raises:
        ValueError: a label outside :data:`STAGES` and ``None``, or ``epoch_s <= 0``.
    """
    if not epoch_s > 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s}")
    unknown = {s for s in stages if s is not None and s not in STAGES}
    if unknown:
        raise ValueError(f"unknown stage labels {sorted(unknown)}; expected {STAGES} or None")
    per_min = epoch_s / 60.0
    counts = {s: sum(1 for x in stages if x == s) for s in STAGES}
    tst = sum(counts[s] for s in SLEEP_STAGES)
    sleep = [i for i, s in enumerate(stages) if s in SLEEP_STAGES]
    out: dict[str, Any] = {
        "tib_min": len(stages) * per_min,
        "tst_min": tst * per_min,
        "spt_min": 0.0,
        "sleep_efficiency_pct": 100.0 * tst / len(stages) if stages else None,
        "sleep_onset_latency_min": None,
        "rem_latency_min": None,
        "waso_min": 0.0,
        "n_awakenings": 0,
        "unscored_min": sum(1 for x in stages if x is None) * per_min,
    }
    if sleep:
        onset, last = sleep[0], sleep[-1]
        period = stages[onset : last + 1]
        out["spt_min"] = len(period) * per_min
        out["sleep_onset_latency_min"] = onset * per_min
        rem = next((i for i, s in enumerate(stages) if s == "REM"), None)
        if rem is not None:
            out["rem_latency_min"] = (rem - onset) * per_min
        out["waso_min"] = sum(1 for s in period if s == "W") * per_min
        # a wake run starts where wake follows a scored sleep epoch (unscored epochs between
        # two wake epochs do not split the run)
        previous: str | None = None
        for s in period:
            if s is None:
                continue
            if s == "W" and previous in SLEEP_STAGES:
                out["n_awakenings"] += 1
            previous = s
    for s in STAGES:
        out[f"{s.lower()}_min"] = counts[s] * per_min
        if s in SLEEP_STAGES:
            out[f"{s.lower()}_pct_tst"] = 100.0 * counts[s] / tst if tst else None
    return out
