"""In-memory form of one recording, as every reader returns it.

Units live in the field names: ``fs_hz`` (samples per second), ``onset_s`` / ``duration_s``
(seconds from the start of the recording). Signals are float32 in their physical unit.
No patient-identifying header field (name, birth date) is ever stored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Signal:
    """One channel.

    Args:
        name: channel label as in the source file (``"ECG"``, ``"EEG Fpz-Cz"``, ``"SaO2"``).
        data: 1-D float32 samples in ``unit``.
        fs_hz: sampling rate in Hz.
        unit: physical unit (``"mV"``, ``"uV"``, ``"%"``, ``""`` when the file gives none).
    """

    name: str
    data: np.ndarray
    fs_hz: float
    unit: str = ""

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 1:
            raise ValueError(f"Signal {self.name!r} must be 1-D, got shape {self.data.shape}")
        if not self.fs_hz > 0:
            raise ValueError(f"Signal {self.name!r} has a non-positive rate {self.fs_hz}")

    @property
    def duration_s(self) -> float:
        """Length of the channel in seconds."""
        return self.data.shape[0] / self.fs_hz


@dataclass
class Event:
    """A scored event (apnea, hypopnea, arousal, stage run, respiratory cycle...).

    Args:
        onset_s: start, seconds from recording start.
        duration_s: length in seconds (0 for point events).
        label: the event's name as the source spells it, or a task's normalised label.
        channel: channel the event was scored on, when the source says (``SignalLocation``).
        attrs: extra source fields (``{"spo2_nadir": 88.0}``...).
    """

    onset_s: float
    duration_s: float
    label: str
    channel: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def offset_s(self) -> float:
        """End of the event in seconds."""
        return self.onset_s + self.duration_s


@dataclass
class Recording:
    """One night (or clip) with its signals, events and per-epoch labels.

    Args:
        record_id: unique name within its dataset (``"a01"``, ``"SC4001E0"``, ``"shhs1-200001"``).
        subject_id: the person it belongs to; splits group by this.
        signals: channel name -> :class:`Signal`.
        events: scored events, sorted by onset.
        epoch_labels: one label string per epoch of ``epoch_s`` seconds, or ``None``.
        epoch_s: epoch length in seconds for ``epoch_labels`` (60 for Apnea-ECG minutes, 30 for
            sleep stages).
        meta: non-identifying facts (``{"sex": "M", "age": 51, "ahi": 12.3}``).
    """

    record_id: str
    subject_id: str
    signals: dict[str, Signal] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    epoch_labels: list[str] | None = None
    epoch_s: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def signal(self, *aliases: str) -> Signal:
        """Return the first channel whose name matches one of ``aliases`` (case-insensitive).

        Raises:
            KeyError: none of the aliases is present.
        """
        by_lower = {k.lower(): v for k, v in self.signals.items()}
        for alias in aliases:
            if alias.lower() in by_lower:
                return by_lower[alias.lower()]
        raise KeyError(f"{self.record_id}: none of {aliases} in channels {sorted(self.signals)}")
