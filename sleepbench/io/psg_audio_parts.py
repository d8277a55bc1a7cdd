"""PSG-Audio night timeline: read the header of each EDF part of a night, place the parts on
the night's timeline, and stream one audio channel without ever holding the night in memory.
The parts themselves are found by :func:`sleepbench.io.psg_audio.discover_nights`.

Timeline. Time 0 is the RML session's ``RecordingStart`` (else the first part's start). Each
part is placed by its EDF header start time; a part that starts within ``tolerance_s`` (the
header's 1-s resolution) of the previous part's end continues it, a later start leaves a
**gap**. When the start times cannot place the parts (they overlap: anonymised copies give every
part the same start), parts are laid end to end and the RML's session segments supply the gaps;
a missing part number that nothing can place raises :class:`RecordingError` rather than closing
the gap silently. Stretches of the session no segment covers are gaps as well. Gap audio is
zeros; the task masks the gaps from loss and metrics and reports them.

Audio is read by channel **label** (``Mic`` / ``Tracheal``; indices differ between nights), at
the part's own rate, block by block from edfio's lazy reader (each block re-opens the file, so
no mapping of a 700-MB part stays resident), and resampled block-wise with the polyphase filter
of :func:`scipy.signal.resample_poly` (:class:`~sleepbench.signal.resample.StreamingResampler` overlaps blocks by the
filter's reach, so the result equals ``resample_poly`` of the whole night).

:mod:`sleepbench.io.psg_audio` re-exports the public names.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import edfio
import numpy as np

from sleepbench.errors import RecordingError
from sleepbench.io.bounds import MAX_RECORDING_S
from sleepbench.io.edf import read_edf_header
from sleepbench.io.rml import RmlAnnotations

__all__ = [
    "NightLayout",
    "PartInfo",
    "place_parts",
    "read_part_info",
    "stream_audio",
]

# --------------------------------------------------------------------------------------------
# parts and their placement


@dataclass(frozen=True)
class PartInfo:
    """Header facts of one EDF part for one channel.

    Args:
        path: the part.
        number: its part number.
        channel: the file's own label of the channel.
        fs_hz: the channel's rate (Hz).
        n_samples: the channel's samples in the part.
        start: the header's start date-time (``None`` when unparsable).
    """

    path: Path
    number: int
    channel: str
    fs_hz: float
    n_samples: int
    start: dt.datetime | None

    @property
    def duration_s(self) -> float:
        """Part length in seconds."""
        return self.n_samples / self.fs_hz


def read_part_info(path: str | Path, channel: str, number: int = 0) -> PartInfo:
    """Check one part's header and find ``channel`` by label (case-insensitive).

    Raises:
        RecordingError: not an EDF, truncated (size disagrees with the header), or no such
            channel (the message lists the channels present).
    """
    path = Path(path)
    header = read_edf_header(path)
    labels = [c.strip().lower() for c in header["channels"]]
    if labels.count(channel.strip().lower()) != 1:
        what = "occurs twice" if channel.strip().lower() in labels else "not found"
        raise RecordingError(
            path, f"audio channel {channel!r} {what}; channels present: {header['channels']}"
        )
    i = labels.index(channel.strip().lower())
    return PartInfo(
        path=path,
        number=number,
        channel=header["channels"][i],
        fs_hz=float(header["fs_hz"][i]),
        n_samples=int(header["samples_per_record"][i]) * int(header["n_records"]),
        start=header["start_datetime"],
    )


@dataclass
class NightLayout:
    """Where each part lies on the night's timeline (seconds from the session start).

    Args:
        parts: the parts, in order.
        offsets_s: start of each part on the timeline.
        fs_hz: the channel's rate, equal in every part.
        duration_s: timeline length (the session's, or further if audio runs past it).
        gaps: ``(start_s, end_s)`` stretches without audio, merged and sorted.
        placed_by: ``"start times"`` or ``"consecutive + RML segments"``.
        missing_parts: part numbers absent from the sequence 1..last.
    """

    parts: list[PartInfo]
    offsets_s: list[float]
    fs_hz: float
    duration_s: float
    gaps: list[tuple[float, float]] = field(default_factory=list)
    placed_by: str = "start times"
    missing_parts: list[int] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Timeline length in samples at :attr:`fs_hz`."""
        return round(self.duration_s * self.fs_hz)


def _merge(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def place_parts(
    parts: Sequence[PartInfo], rml: RmlAnnotations | None, tolerance_s: float = 1.0
) -> NightLayout:
    """Place a night's parts on its timeline and find its gaps (module docstring).

    Args:
        parts: in part-number order (at least one).
        rml: the night's annotations (session start, duration, segments) or ``None``.
        tolerance_s: start-time jitter accepted as contiguous (EDF start times are whole
            seconds).

    Raises:
        RecordingError: parts at different rates; a part placed before the session start; parts
            that cannot be placed (overlapping start times with a missing part number and no
            RML segment gap to explain it).
    """
    if not parts:
        raise ValueError("place_parts needs at least one part")
    rates = {p.fs_hz for p in parts}
    if len(rates) != 1:
        raise RecordingError(parts[0].path, f"channel rate differs between parts: {sorted(rates)}")
    numbers = [p.number for p in parts]
    missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers)) if min(numbers) >= 1 else []
    origin = rml.recording_start if rml is not None and rml.recording_start else parts[0].start
    rml_gaps = rml.gaps(tolerance_s) if rml is not None else []

    offsets = _by_start_times(parts, origin, tolerance_s)
    placed_by = "start times"
    if offsets is not None and rml is not None and not -tolerance_s <= offsets[0] < rml.duration_s:
        # the RML's clock and the EDF headers' disagree (anonymised dates, time zones): keep
        # the parts' own relative start times and put the first part at the session start
        placed_by = f"start times (EDF clock; RML RecordingStart differs by {offsets[0]:.0f} s)"
        offsets = _by_start_times(parts, parts[0].start, tolerance_s)
    if offsets is None:
        placed_by = "consecutive + RML segments"
        offsets = _consecutive(parts, rml_gaps, tolerance_s)
        jumped = any(
            offsets[i + 1] - (offsets[i] + parts[i].duration_s) > tolerance_s
            for i in range(len(parts) - 1)
        )
        if missing and not jumped:
            raise RecordingError(
                parts[0].path,
                f"part(s) {missing} missing and the parts' start times overlap (anonymised?): "
                "no start time or RML segment says where the later parts belong",
            )
    if offsets[0] < -tolerance_s:
        raise RecordingError(
            parts[0].path, f"first part starts {-offsets[0]:.1f} s before the session start"
        )
    offsets[0] = max(offsets[0], 0.0)
    end = offsets[-1] + parts[-1].duration_s
    session = rml.duration_s if rml is not None else end
    duration = max(session, end)
    if duration > MAX_RECORDING_S:  # a start time days off would otherwise allocate a gap of days
        raise RecordingError(
            parts[-1].path,
            f"parts span {duration / 3600:.1f} h by their start times (limit "
            f"{MAX_RECORDING_S / 3600:.0f} h): start times are inconsistent",
        )
    holes, cursor = [], 0.0
    for off, part in zip(offsets, parts):
        if off - cursor > tolerance_s:
            holes.append((cursor, off))
        cursor = max(cursor, off + part.duration_s)
    if duration - cursor > tolerance_s:
        holes.append((cursor, duration))
    return NightLayout(
        parts=list(parts),
        offsets_s=offsets,
        fs_hz=rates.pop(),
        duration_s=duration,
        gaps=_merge(holes + list(rml_gaps)),
        placed_by=placed_by,
        missing_parts=missing,
    )


def _by_start_times(
    parts: Sequence[PartInfo], origin: dt.datetime | None, tolerance_s: float
) -> list[float] | None:
    """Offsets from the header start times; ``None`` when they overlap or are unknown."""
    if origin is None or any(p.start is None for p in parts):
        return None
    offsets: list[float] = []
    for i, part in enumerate(parts):
        off = (part.start - origin).total_seconds()  # type: ignore[operator]
        if i:
            prev_end = offsets[-1] + parts[i - 1].duration_s
            if off < prev_end - tolerance_s:
                return None
            if off - prev_end <= tolerance_s:
                off = prev_end  # clock resolution, not a gap
        offsets.append(off)
    return offsets


def _consecutive(
    parts: Sequence[PartInfo], rml_gaps: Sequence[tuple[float, float]], tolerance_s: float
) -> list[float]:
    """Parts end to end, each jumping over an RML gap that starts where it would begin."""
    offsets, cursor = [], 0.0
    for part in parts:
        for start, end in rml_gaps:
            if abs(cursor - start) <= tolerance_s:
                cursor = end
        offsets.append(cursor)
        cursor += part.duration_s
    return offsets


# --------------------------------------------------------------------------------------------
# streaming


def _read_block(part: PartInfo, first: int, stop: int) -> np.ndarray:
    """Samples ``[first, stop)`` of the part's channel in physical units (float32).

    The file is opened for this block only (edfio memory-maps it lazily and reads just the
    data records asked for); closing it lets the pages go.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            edf = edfio.read_edf(part.path, lazy_load_data=True)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise RecordingError(part.path, f"edfio cannot parse the file: {err}") from err
    want = part.channel.strip().lower()
    sig = next(s for s in edf.signals if s.label.strip().lower() == want)
    if sig.physical_max == sig.physical_min or sig.digital_max <= sig.digital_min:
        raise RecordingError(part.path, f"channel {part.channel!r} has an empty calibration range")
    data = sig.get_data_slice(first / part.fs_hz, stop / part.fs_hz)
    return np.asarray(data, dtype=np.float32)


def stream_audio(layout: NightLayout, block_s: float = 30.0) -> Iterator[np.ndarray]:
    """The night's channel at its own rate, in blocks of about ``block_s`` seconds.

    Parts come at their offsets, zeros fill the gaps; the blocks add up to
    :attr:`NightLayout.n_samples` samples. Blocks are cut on EDF data-record boundaries inside a
    part (whole seconds for 1-s records).
    """
    fs = layout.fs_hz
    step = max(1, round(block_s * fs))
    pos = 0
    total = layout.n_samples
    for off, part in zip(layout.offsets_s, layout.parts):
        start = round(off * fs)
        while pos < start:  # gap before this part
            n = min(step, start - pos)
            yield np.zeros(n, dtype=np.float32)
            pos += n
        skip = pos - start  # overlap within tolerance: drop the part's first samples
        n_part = min(part.n_samples, total - start)
        for first in range(skip, n_part, step):
            block = _read_block(part, first, min(first + step, n_part))
            yield block
            pos += block.size
    while pos < total:
        n = min(step, total - pos)
        yield np.zeros(n, dtype=np.float32)
        pos += n
