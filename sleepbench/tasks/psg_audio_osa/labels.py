"""Frame labels of the psg_audio_osa task from a night's RML (SPECS §1.1, §1.5).

- :func:`rasterise_events`: one class per 80-ms frame (0 normal, 1 hypopnea, 2 apnea); an
  event ``[onset, onset + duration)`` fills frames ``floor(onset / 0.08)`` ...
  ``floor(end / 0.08) - 1`` and a later event overwrites an earlier one. On windows starting at
  multiples of 30 s this is exactly the upstream per-window rule
  ``floor(start / 60 * 750) ... floor(end / 60 * 750) - 1``.
- :func:`frame_mask`: 1 where a frame's centre lies inside the region of interest (lights off ->
  on, else first -> last scored sleep epoch: :meth:`RmlAnnotations.region_of_interest`) and
  outside every gap.
- :func:`reference_ahi`: the reference AHI = apneas + hypopneas with onset inside the ROI per
  hour of total sleep time (epochs staged N1/N2/N3/REM) inside the ROI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.rml import RmlAnnotations
from sleepbench.metrics.severity import ahi_to_severity

__all__ = [
    "FRAME_S",
    "STAGE_CODES",
    "STAGE_EPOCH_S",
    "LABELS_PER_S",
    "NightReference",
    "frame_mask",
    "rasterise_events",
    "reference_ahi",
]

#: Label frame length (s): 750 frames per 60-s window.
FRAME_S = 0.08
#: Staging epoch (s) and the int8 codes of the cached hypnogram (-1: not scored).
STAGE_EPOCH_S = 30.0
STAGE_CODES: dict[str | None, int] = {"W": 0, "N1": 1, "N2": 2, "N3": 3, "REM": 4, None: -1}
LABELS_PER_S = 12.5
_EPS = 1e-6  # absorbs float error of onset * 12.5 at exact frame boundaries


def rasterise_events(events: Sequence[tuple[float, float, int]], n_labels: int) -> np.ndarray:
    """Frame classes of a night from ``(onset_s, duration_s, class)`` events, in list order.

    Args:
        events: respiratory events (class 1 hypopnea, 2 apnea); later entries overwrite.
        n_labels: frames of the night.

    Returns:
        int8 ``[n_labels]``.
    """
    y = np.zeros(int(n_labels), dtype=np.int8)
    for onset, duration, cls in events:
        first = math.floor(onset * LABELS_PER_S + _EPS)
        stop = math.floor((onset + duration) * LABELS_PER_S + _EPS)
        y[max(first, 0) : max(min(stop, n_labels), 0)] = cls
    return y


def frame_mask(
    n_labels: int, roi: tuple[float, float], gaps: Sequence[tuple[float, float]] = ()
) -> np.ndarray:
    """uint8 ``[n_labels]``: 1 where the frame centre is in ``[roi)`` and in no gap."""
    centre = (np.arange(n_labels) + 0.5) * FRAME_S
    keep = (centre >= roi[0]) & (centre < roi[1])
    for start, end in gaps:
        keep &= ~((centre >= start) & (centre < end))
    return keep.astype(np.uint8)


@dataclass(frozen=True)
class NightReference:
    """Reference facts of one night (seconds from the session start, AHI in events/h)."""

    roi_start_s: float
    roi_end_s: float
    tst_s: float
    n_events: int
    ahi: float
    severity: int


def reference_ahi(rml: RmlAnnotations) -> NightReference:
    """ROI, total sleep time in it, and the reference AHI and severity class of a night.

    Raises:
        RecordingError: the RML has no user staging, or no sleep inside the ROI.
    """
    if not any(label is not None for _, _, label in rml.stages):
        raise RecordingError(rml.path, "no user sleep staging (UserStaging) to derive TST/ROI")
    start, end = rml.region_of_interest()
    tst = rml.sleep_time_s(start, end)
    if tst <= 0:
        raise RecordingError(rml.path, f"no sleep epoch scored inside the ROI {start:g}-{end:g} s")
    n = sum(1 for ev, _ in rml.respiratory_events() if start <= ev.onset_s < end)
    ahi = n / (tst / 3600.0)
    return NightReference(start, end, tst, n, ahi, int(ahi_to_severity(ahi)))
