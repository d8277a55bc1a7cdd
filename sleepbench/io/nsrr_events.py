"""Scored events of NSRR annotations: which are respiratory, desaturations or arousals, and an
AHI recomputed from them (:func:`ahi_from_events`, NSRR's ``ahi_a0h3a`` / ``ahi_a0h4`` rules).
They take the annotations :func:`sleepbench.io.nsrr_xml.read_nsrr_xml` returns; that module
re-exports them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from sleepbench.errors import RecordingError
from sleepbench.recording import Event

if TYPE_CHECKING:  # the reader imports this module: no import back at run time
    from sleepbench.io.nsrr_xml import NsrrAnnotations

__all__ = [
    "SLEEP_LABELS",
    "RespiratoryKind",
    "ahi_events",
    "ahi_from_events",
    "arousals",
    "desaturations",
    "respiratory_events",
    "respiratory_kind",
]

#: Stages that count as sleep (the AHI's denominator).
SLEEP_LABELS = frozenset({"N1", "N2", "N3", "REM"})
#: Respiratory event kinds that :func:`respiratory_events` returns.
RespiratoryKind = Literal["obstructive_apnea", "central_apnea", "mixed_apnea", "apnea", "hypopnea"]

# --------------------------------------------------------------------------------------------
# event selection


def respiratory_kind(event: Event) -> RespiratoryKind | None:
    """Classify an event as an apnea (obstructive, central, mixed, unspecified) or hypopnea.

    Uses the concept name; events whose NSRR ``EventType`` is not ``Respiratory`` (arousals,
    stages, limb movements) and desaturation / artefact / RERA events return ``None``.
    """
    event_type = event.attrs.get("event_type")
    if event_type is not None and event_type.lower() != "respiratory":
        return None
    name = event.label.lower()
    if "hypopnea" in name:
        return "hypopnea"
    if "apnea" not in name:
        return None
    for kind in ("obstructive", "central", "mixed"):
        if kind in name:
            return f"{kind}_apnea"  # type: ignore[return-value]
    return "apnea"


def respiratory_events(
    ann: NsrrAnnotations, kinds: Iterable[RespiratoryKind] | None = None
) -> list[Event]:
    """Apneas and hypopneas, sorted by onset.

    Args:
        ann: annotations from :func:`read_nsrr_xml`.
        kinds: keep only these kinds (see :func:`respiratory_kind`); ``None`` keeps all.

    Returns:
        The matching events (the objects of ``ann.events``).
    """
    wanted = None if kinds is None else set(kinds)
    out = [
        e
        for e in ann.events
        if (kind := respiratory_kind(e)) is not None and (wanted is None or kind in wanted)
    ]
    return sorted(out, key=lambda e: e.onset_s)


def desaturations(ann: NsrrAnnotations) -> list[Event]:
    """SpO2 desaturation events (``attrs`` carries ``spo2_nadir`` / ``spo2_baseline``), by onset."""
    out = [e for e in ann.events if "desaturation" in e.label.lower()]
    return sorted(out, key=lambda e: e.onset_s)


def arousals(ann: NsrrAnnotations) -> list[Event]:
    """Arousal events, by onset.

    NSRR: ``EventType`` ``Arousals`` (``Arousal|Arousal ()``, ``ASDA arousal``...). Profusion
    (no type): concept names containing "arousal".
    """
    out = []
    for e in ann.events:
        event_type = e.attrs.get("event_type")
        if event_type is not None and event_type != "":
            if event_type.lower() == "arousals":
                out.append(e)
        elif "arousal" in e.label.lower():
            out.append(e)
    return sorted(out, key=lambda e: e.onset_s)


# --------------------------------------------------------------------------------------------
# AHI


def ahi_events(
    ann: NsrrAnnotations,
    rule: Literal["3", "3a", "4", "4a"] = "3a",
    sleep_only: bool = True,
    *,
    desat_window_s: float = 30.0,
    arousal_window_s: float = 5.0,
) -> list[Event]:
    """The apneas and hypopneas that count towards the AHI under ``rule``.

    NSRR definitions (sleepdata.org variables ``ahi_a0h3``, ``ahi_a0h3a``, ``ahi_a0h4``,
    ``ahi_a0h4a``): **every apnea** (obstructive, central, mixed; no desaturation threshold),
    plus **hypopneas** with a desaturation of at least 3 % / 4 % of SpO2 — or, for the rules
    ending in ``a``, with an arousal instead.

    Association (NSRR does not publish one; this is the rule chosen here):

    - a desaturation belongs to a hypopnea when it *starts* in
      ``[hypopnea onset, hypopnea end + desat_window_s]`` (SpO2 lags the airflow by the
      circulation time, 20-40 s) and its drop ``SpO2Baseline - SpO2Nadir`` reaches the
      threshold; desaturations without both values are unusable;
    - an arousal belongs to a hypopnea when it starts in
      ``[hypopnea onset, hypopnea end + arousal_window_s]`` (arousals terminate the event).

    One desaturation or arousal may support several hypopneas.

    Args:
        ann: annotations from :func:`read_nsrr_xml`.
        rule: ``"3a"`` (AASM recommended, ``ahi_a0h3a``), ``"4"`` (``ahi_a0h4``), ``"3"`` or
            ``"4a"``.
        sleep_only: count only events whose onset falls in an epoch staged N1/N2/N3/REM.
        desat_window_s: seconds after the hypopnea end in which a desaturation may start.
        arousal_window_s: seconds after the hypopnea end in which an arousal may start.

    Returns:
        The counted events, sorted by onset.
    """
    if rule not in ("3", "3a", "4", "4a"):
        raise ValueError(f"rule must be '3', '3a', '4' or '4a', got {rule!r}")
    threshold = float(rule[0])
    use_arousals = rule.endswith("a")
    desats = [
        e
        for e in desaturations(ann)
        if "spo2_nadir" in e.attrs
        and "spo2_baseline" in e.attrs
        # A small tolerance so that 94.7 - 91.7 counts as the 3 % it is.
        and e.attrs["spo2_baseline"] - e.attrs["spo2_nadir"] >= threshold - 1e-6
    ]
    arousal_onsets = [e.onset_s for e in arousals(ann)] if use_arousals else []
    epochs = ann.epoch_stages() if sleep_only else []

    counted = []
    for event in respiratory_events(ann):
        if sleep_only:
            i = math.floor(event.onset_s / ann.epoch_length_s)
            if not (0 <= i < len(epochs) and epochs[i] in SLEEP_LABELS):
                continue
        if respiratory_kind(event) != "hypopnea":
            counted.append(event)
            continue
        desat_end = event.offset_s + desat_window_s
        if any(event.onset_s <= d.onset_s <= desat_end for d in desats):
            counted.append(event)
            continue
        arousal_end = event.offset_s + arousal_window_s
        if any(event.onset_s <= t <= arousal_end for t in arousal_onsets):
            counted.append(event)
    return counted


def ahi_from_events(
    ann: NsrrAnnotations,
    rule: Literal["3", "3a", "4", "4a"] = "3a",
    sleep_only: bool = True,
    *,
    desat_window_s: float = 30.0,
    arousal_window_s: float = 5.0,
) -> float:
    """Apnea-hypopnea index: counted events (:func:`ahi_events`) per hour of sleep.

    Args:
        ann: annotations from :func:`read_nsrr_xml`.
        rule: see :func:`ahi_events` (``"3a"`` ~ ``ahi_a0h3a``, ``"4"`` ~ ``ahi_a0h4``).
        sleep_only: count only events starting in sleep epochs (the denominator is total
            sleep time either way).
        desat_window_s: see :func:`ahi_events`.
        arousal_window_s: see :func:`ahi_events`.

    Returns:
        Events per hour of sleep (total sleep time from the stage runs).

    Raises:
        RecordingError: no epoch is staged as sleep (the AHI is undefined).
    """
    sleep_h = ann.sleep_time_s / 3600.0
    if sleep_h <= 0:
        raise RecordingError(ann.path, "no epoch is scored as sleep: the AHI is undefined")
    events = ahi_events(
        ann,
        rule,
        sleep_only,
        desat_window_s=desat_window_s,
        arousal_window_s=arousal_window_s,
    )
    return len(events) / sleep_h
