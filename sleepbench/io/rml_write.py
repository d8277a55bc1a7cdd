"""Write Respironics RML annotation files (for synthetic PSG-Audio nights and reader tests).

The layout is the one :func:`sleepbench.io.rml.read_rml` reads (SPECS §1.8): a namespaced
``PatientStudy`` with one ``Session`` (start, duration, lights off/on, segments), scored
``Event`` elements and a ``UserStaging`` of stage change points.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from sleepbench.io.rml import RML_NAMESPACE, RML_STAGES
from sleepbench.recording import Event

__all__ = ["write_rml"]

_STAGE_TYPE = {label: kind for kind, label in reversed(list(RML_STAGES.items()))}


def write_rml(
    path: str | Path,
    *,
    recording_start: dt.datetime,
    duration_s: float,
    events: Sequence[Event] = (),
    stage_runs: Sequence[tuple[float, float, str | None]] = (),
    segments: Sequence[tuple[float, float]] | None = None,
    lights_off_s: float | None = None,
    lights_on_s: float | None = None,
) -> Path:
    """Write one night's RML file.

    Args:
        path: the ``.rml`` file to write.
        recording_start: the session's start (written as an ISO date-time).
        duration_s: the session's length in seconds.
        events: scored events; ``label`` is the RML ``Type``, ``attrs["family"]`` the
            ``Family`` (``"Respiratory"`` when absent), ``attrs["machine"]`` marks machine
            scoring, ``attrs["o2_before"]`` / ``attrs["o2_min"]`` the desaturation values,
            ``channel`` the ``Input``.
        stage_runs: ``(onset_s, duration_s, label)`` with AASM labels (W/N1/N2/N3/REM/None);
            written as change points (a run continuing the previous label adds none).
        segments: ``(start_s, duration_s)`` continuous stretches (default: one for the session).
        lights_off_s, lights_on_s: seconds from the start, written when given.

    Returns:
        ``path``.
    """
    ET.register_namespace("", RML_NAMESPACE)

    def sub(parent: ET.Element, tag: str, text: object = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{RML_NAMESPACE}}}{tag}", attrs)
        if text is not None:
            el.text = str(text)
        return el

    root = ET.Element(f"{{{RML_NAMESPACE}}}PatientStudy")
    session = sub(sub(sub(root, "Acquisition"), "Sessions"), "Session")
    sub(session, "RecordingStart", recording_start.isoformat(timespec="seconds"))
    sub(session, "Duration", f"{duration_s:g}")
    if lights_off_s is not None:
        sub(session, "LightsOff", f"{lights_off_s:g}")
    if lights_on_s is not None:
        sub(session, "LightsOn", f"{lights_on_s:g}")
    seg_root = sub(session, "Segments")
    for start, length in segments if segments is not None else [(0.0, duration_s)]:
        seg = sub(seg_root, "Segment")
        sub(seg, "StartTime", (recording_start + dt.timedelta(seconds=start)).isoformat())
        sub(seg, "Duration", f"{length:g}")

    scoring = sub(root, "ScoringData")
    events_el = sub(scoring, "Events")
    for event in sorted(events, key=lambda e: e.onset_s):
        attrs = {
            "Family": str(event.attrs.get("family", "Respiratory")),
            "Type": event.label,
            "Start": f"{event.onset_s:.3f}",
            "Duration": f"{event.duration_s:.3f}",
        }
        if event.attrs.get("machine"):
            attrs["Machine"] = "true"
        el = sub(events_el, "Event", **attrs)
        if event.channel:
            sub(el, "Input", event.channel)
        for key, tag in (("o2_before", "O2Before"), ("o2_min", "O2Min")):
            if key in event.attrs:
                sub(el, tag, f"{event.attrs[key]:g}")
    staging = sub(sub(sub(scoring, "StagingData"), "UserStaging"), "NeuroAdultAASMStaging")
    previous: object = object()
    for onset, _, label in sorted(stage_runs, key=lambda run: run[0]):
        if label != previous:
            sub(staging, "Stage", Type=_STAGE_TYPE[label], Start=f"{onset:g}")
            previous = label
    path = Path(path)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
