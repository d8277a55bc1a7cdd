"""PSG-Audio reader: bracketed part names, part order, gaps from start times and from RML
segments, channel by label, bad parts, and block-wise resampling equal to the whole signal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from sleepbench.errors import RecordingError
from sleepbench.io.edf_write import write_edf
from sleepbench.io.psg_audio import (
    discover_nights,
    parse_part_name,
    place_parts,
    read_part_info,
    stream_audio,
)
from sleepbench.io.rml import read_rml
from sleepbench.io.rml_write import write_rml
from sleepbench.recording import Signal
from sleepbench.signal.resample import StreamingResampler, stream_resampled

START = dt.datetime(2010, 5, 7, 22, 0, 0)
FS = 800.0


def _part(path: Path, seconds: int, start: dt.datetime, level: float, fs: float = FS) -> Path:
    """A part whose Mic is a ramp around ``level`` (distinct per part) plus a Flow channel."""
    n = int(seconds * fs)
    mic = level + 0.1 * np.sin(np.arange(n) * 0.05)
    return write_edf(
        path,
        [
            Signal("Flow", np.cos(np.arange(seconds * 10.0)), 10.0, "a.u."),
            Signal("Mic", mic, fs, "V"),
        ],
        start=start,
        physical_ranges={"Mic": (-2.0, 2.0), "Flow": (-2.0, 2.0)},
    )


def _rml(path: Path, duration: float, segments=None, start: dt.datetime = START) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_rml(
        path,
        recording_start=start,
        duration_s=duration,
        stage_runs=[(0.0, duration, "N2")],
        segments=segments,
    )


def _infos(night_dir: Path, night: str, numbers) -> list:
    return [read_part_info(night_dir / f"{night}[{k:03d}].edf", "Mic", k) for k in numbers]


def test_part_names_parse_and_nights_are_listed_not_globbed(tmp_path: Path) -> None:
    assert parse_part_name("00000995-100507[002].edf") == ("00000995-100507", 2)
    assert parse_part_name("00000995-100507.edf") is None
    night = "00000995-100507"
    d = tmp_path / "APNEA_EDF" / night
    for k in (10, 2, 1):  # numeric order, not name order of "[010]" vs "[002]"
        _part(d / f"{night}[{k:03d}].edf", 2, START, 0.1 * k)
    _rml(tmp_path / "APNEA_RML" / f"{night}.rml", 6)
    _rml(tmp_path / "APNEA_RML_clean" / f"{night}.rml", 6)
    _rml(tmp_path / "APNEA_RML" / "00000001-000001.rml", 6)  # annotations without parts
    _part(tmp_path / "APNEA_EDF" / "00000002-000002[001].edf", 2, START, 0.0)  # flat, no RML

    nights = {n.night_id: n for n in discover_nights(tmp_path)}
    assert nights[night].part_numbers == (1, 2, 10)
    assert [p.name for p in nights[night].parts] == [f"{night}[{k:03d}].edf" for k in (1, 2, 10)]
    assert nights[night].rml == tmp_path / "APNEA_RML" / f"{night}.rml"
    assert nights["00000001-000001"].parts == ()
    assert nights["00000002-000002"].rml is None
    clean = {n.night_id: n for n in discover_nights(tmp_path, "APNEA_RML_clean")}
    assert clean[night].rml == tmp_path / "APNEA_RML_clean" / f"{night}.rml"
    with pytest.raises(ValueError, match="annotations"):
        discover_nights(tmp_path, "APNEA_XML")


def test_flat_copy_finds_the_rml_beside_the_parts(tmp_path: Path) -> None:
    night = "00000003-000003"
    _part(tmp_path / night / f"{night}[001].edf", 2, START, 0.0)
    _rml(tmp_path / night / f"{night}.rml", 2)
    (found,) = discover_nights(tmp_path)
    assert found.rml == tmp_path / night / f"{night}.rml" and len(found.parts) == 1


def test_parts_concatenate_in_order(tmp_path: Path) -> None:
    night = "00000004-000004"
    for k, secs in ((1, 3), (2, 3), (3, 2)):
        _part(
            tmp_path / f"{night}[{k:03d}].edf",
            secs,
            START + dt.timedelta(seconds=3 * (k - 1)),
            0.2 * k,
        )
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 8))
    layout = place_parts(_infos(tmp_path, night, (1, 2, 3)), rml)
    assert layout.gaps == [] and layout.offsets_s == [0.0, 3.0, 6.0]
    audio = np.concatenate(list(stream_audio(layout, block_s=1.3)))
    assert audio.size == 8 * FS
    from sleepbench.io.edf import read_edf

    parts = [
        read_edf(tmp_path / f"{night}[{k:03d}].edf", ["Mic"]).signals["Mic"].data for k in (1, 2, 3)
    ]
    np.testing.assert_array_equal(audio, np.concatenate(parts))
    # each part sits where its level says: part k's mean is 0.2 k
    means = [audio[int(a * FS) : int(b * FS)].mean() for a, b in ((0, 3), (3, 6), (6, 8))]
    np.testing.assert_allclose(means, [0.2, 0.4, 0.6], atol=0.02)


def test_gap_from_part_start_times_is_reported_and_zero(tmp_path: Path) -> None:
    night = "00000005-000005"
    for k in (1, 3):  # part 2 (seconds 4-8) is missing
        _part(tmp_path / f"{night}[{k:03d}].edf", 4, START + dt.timedelta(seconds=4 * (k - 1)), 0.5)
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 12))  # one segment: the RML does not know
    layout = place_parts(_infos(tmp_path, night, (1, 3)), rml)
    assert layout.placed_by == "start times"
    assert layout.missing_parts == [2]
    assert layout.gaps == [(4.0, 8.0)]
    audio = np.concatenate(list(stream_audio(layout)))
    assert audio.size == 12 * FS
    assert not audio[int(4 * FS) : int(8 * FS)].any()
    assert abs(audio[int(8 * FS) :].mean() - 0.5) < 0.02


def test_start_time_jitter_within_a_second_is_not_a_gap(tmp_path: Path) -> None:
    night = "00000006-000006"
    # part 1 lasts 4 s and part 2's header says it starts at 5 s: within the 1-s resolution of
    # EDF start times that is contiguous; with a stricter tolerance it is a 1-s gap
    _part(tmp_path / f"{night}[001].edf", 4, START, 0.1)
    _part(tmp_path / f"{night}[002].edf", 4, START + dt.timedelta(seconds=5), 0.3)
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 8))
    layout = place_parts(_infos(tmp_path, night, (1, 2)), rml, tolerance_s=1.0)
    assert layout.offsets_s == [0.0, 4.0] and layout.gaps == []
    strict = place_parts(_infos(tmp_path, night, (1, 2)), rml, tolerance_s=0.5)
    assert strict.gaps == [(4.0, 5.0)]


def test_gap_from_rml_segments_when_start_times_are_anonymised(tmp_path: Path) -> None:
    night = "00000007-000007"
    for k in (1, 2):  # both parts claim the same start: placement falls back to the RML
        _part(tmp_path / f"{night}[{k:03d}].edf", 4, START, 0.2 * k)
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 14, segments=[(0.0, 4.0), (10.0, 4.0)]))
    layout = place_parts(_infos(tmp_path, night, (1, 2)), rml)
    assert layout.placed_by == "consecutive + RML segments"
    assert layout.offsets_s == [0.0, 10.0]
    assert layout.gaps == [(4.0, 10.0)]
    audio = np.concatenate(list(stream_audio(layout)))
    assert not audio[int(4 * FS) : int(10 * FS)].any()
    assert abs(audio[int(10 * FS) :].mean() - 0.4) < 0.02


def test_missing_part_that_nothing_places_is_refused(tmp_path: Path) -> None:
    night = "00000008-000008"
    for k in (1, 3):
        _part(tmp_path / f"{night}[{k:03d}].edf", 4, START, 0.2)
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 12))
    with pytest.raises(RecordingError, match=r"part\(s\) \[2\] missing"):
        place_parts(_infos(tmp_path, night, (1, 3)), rml)


def test_trailing_gap_from_session_duration(tmp_path: Path) -> None:
    night = "00000009-000009"
    _part(tmp_path / f"{night}[001].edf", 4, START, 0.2)
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 10))
    layout = place_parts(_infos(tmp_path, night, (1,)), rml)
    assert layout.gaps == [(4.0, 10.0)] and layout.n_samples == 10 * FS


def test_channel_by_label_missing_channel_and_truncated_part(tmp_path: Path) -> None:
    path = _part(tmp_path / "x[001].edf", 2, START, 0.1)
    info = read_part_info(path, "mic")  # case-insensitive, the file's label kept
    assert info.channel == "Mic" and info.fs_hz == FS and info.n_samples == 2 * FS
    with pytest.raises(
        RecordingError, match=r"'Tracheal' not found; channels present: \['Flow', 'Mic'\]"
    ):
        read_part_info(path, "Tracheal")
    data = path.read_bytes()
    cut = tmp_path / "y[001].edf"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(RecordingError, match="truncated"):
        read_part_info(cut, "Mic")


def test_parts_at_different_rates_are_refused(tmp_path: Path) -> None:
    night = "00000010-000010"
    _part(tmp_path / f"{night}[001].edf", 2, START, 0.1, fs=800.0)
    _part(tmp_path / f"{night}[002].edf", 2, START + dt.timedelta(seconds=2), 0.1, fs=400.0)
    with pytest.raises(RecordingError, match="rate differs"):
        place_parts(_infos(tmp_path, night, (1, 2)), None)


@pytest.mark.parametrize("fs_in", [48000.0, 8000.0, 44100.0, 16000.0])
def test_streaming_resample_equals_whole_signal(fs_in: float) -> None:
    rng = np.random.default_rng(int(fs_in))
    x = rng.standard_normal(120_001).astype(np.float32)
    r = StreamingResampler(fs_in, 16000.0)
    whole = resample_poly(x, r.up, r.down).astype(np.float32) if r.up != r.down else x
    cuts = np.cumsum(rng.integers(1, 25_000, 30))
    blocks = np.split(x, cuts[cuts < x.size])
    out = np.concatenate(list(stream_resampled(blocks, fs_in, 16000.0)))
    assert out.size == whole.size == -(-x.size * r.up // r.down)
    np.testing.assert_allclose(out, whole, rtol=0, atol=1e-6)


def test_48k_night_streams_part_by_part_like_the_whole(tmp_path: Path) -> None:
    night = "00000011-000011"
    for k in (1, 2):
        _part(
            tmp_path / f"{night}[{k:03d}].edf",
            3,
            START + dt.timedelta(seconds=3 * (k - 1)),
            0.1 * k,
            fs=48000.0,
        )
    layout = place_parts(_infos(tmp_path, night, (1, 2)), None)
    source = np.concatenate(list(stream_audio(layout, block_s=0.7)))
    streamed = np.concatenate(
        list(stream_resampled(stream_audio(layout, block_s=0.7), 48000.0, 16000.0))
    )
    np.testing.assert_allclose(streamed, resample_poly(source, 1, 3), rtol=0, atol=1e-6)
    assert streamed.size == 6 * 16000


def test_rml_clock_far_from_the_edf_clock_keeps_the_parts_relative_times(tmp_path: Path) -> None:
    night = "00000012-000012"
    anonymised = dt.datetime(1985, 1, 1, 0, 0, 0)  # EDF "unknown date" vs a real RML date
    for k in (1, 3):
        _part(
            tmp_path / f"{night}[{k:03d}].edf",
            4,
            anonymised + dt.timedelta(seconds=4 * (k - 1)),
            0.3,
        )
    rml = read_rml(_rml(tmp_path / f"{night}.rml", 12))
    layout = place_parts(_infos(tmp_path, night, (1, 3)), rml)
    assert layout.offsets_s == [0.0, 8.0] and layout.gaps == [(4.0, 8.0)]
    assert "EDF clock" in layout.placed_by
