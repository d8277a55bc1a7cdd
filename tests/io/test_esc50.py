"""ESC-50 readers: the real metadata table and clips, and every malformed-input error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleepbench.errors import RecordingError
from sleepbench.io.audio import read_wav
from sleepbench.io.esc50 import (
    ESC50_HEADER,
    Esc50Clip,
    discover_esc50,
    parse_esc50_name,
    read_esc50_meta,
)

_HEADER = ",".join(ESC50_HEADER)
_ROWS = [
    "1-100032-A-0.wav,1,0,dog,True,100032,A",
    "5-9032-B-49.wav,5,49,hand_saw,False,9032,B",
]


def _csv(tmp_path: Path, *rows: str, header: str = _HEADER, name: str = "esc50.csv") -> Path:
    path = tmp_path / name
    path.write_text("\r\n".join([header, *rows]) + "\r\n")
    return path


def _reason(call, *args) -> str:
    with pytest.raises(RecordingError) as info:
        call(*args)
    assert info.value.path
    return info.value.reason


@pytest.mark.samples
def test_real_meta_and_clips_agree(samples_dir: Path) -> None:
    meta, audio = discover_esc50(samples_dir / "esc50")
    assert meta == samples_dir / "esc50" / "meta" / "esc50.csv"
    assert audio == samples_dir / "esc50" / "audio"
    clips = read_esc50_meta(meta)
    assert len(clips) == 50
    assert sorted(c.target for c in clips) == list(range(50))  # one clip per class
    assert {c.fold for c in clips} == {4}
    assert sorted(c.filename for c in clips) == sorted(p.name for p in audio.glob("*.wav"))
    by_target = {c.target: c for c in clips}
    assert by_target[0].category == "dog" and by_target[0].esc10
    assert by_target[49].category == "hand_saw" and not by_target[49].esc10
    assert sum(c.esc10 for c in clips) == 10
    for clip in clips:
        fold, source, take, target = parse_esc50_name(clip.filename)
        assert (fold, source, take, target) == (clip.fold, clip.src_file, clip.take, clip.target)
        x, info = read_wav(audio / clip.filename)
        assert (info.fs_hz, x.size, info.channels) == (44100.0, 220_500, 1)


def test_parse_esc50_name() -> None:
    assert parse_esc50_name("1-100032-A-0.wav") == (1, "100032", "A", 0)
    assert parse_esc50_name("5-9032-B-49.wav") == (5, "9032", "B", 49)
    assert "fold 6" in _reason(parse_esc50_name, "6-100032-A-0.wav")
    assert "fold 0" in _reason(parse_esc50_name, "0-100032-A-0.wav")
    assert "target 50" in _reason(parse_esc50_name, "1-100032-A-50.wav")
    for bad in ("1-100032-A-0.ogg", "1-100032-0.wav", "100032-A-0.wav", ""):
        assert "not an ESC-50 clip name" in _reason(parse_esc50_name, bad)


def test_read_esc50_meta(tmp_path: Path) -> None:
    clips = read_esc50_meta(_csv(tmp_path, *_ROWS))
    assert clips == [
        Esc50Clip("1-100032-A-0.wav", 1, 0, "dog", True, "100032", "A"),
        Esc50Clip("5-9032-B-49.wav", 5, 49, "hand_saw", False, "9032", "B"),
    ]


@pytest.mark.parametrize(
    ("rows", "header", "reason"),
    [
        (_ROWS, "filename,fold,target,category", "header"),
        (_ROWS, "file,fold,target,category,esc10,src_file,take", "header"),
        ([], _HEADER, "no clip"),
        (["1-100032-A-0.wav,1,0,dog,True,100032"], _HEADER, "6 fields"),
        (["6-100032-A-0.wav,6,0,dog,True,100032,A"], _HEADER, "fold 6 is outside 1..5"),
        (["1-100032-A-0.wav,1,-1,dog,True,100032,A"], _HEADER, "target '-1'"),
        (["1-100032-A-50.wav,1,50,dog,True,100032,A"], _HEADER, "target 50 is outside 0..49"),
        (["1-100032-A-0.wav,x,0,dog,True,100032,A"], _HEADER, "fold 'x'"),
        (["1-100032-A-0.wav,1,0,dog,yes,100032,A"], _HEADER, "esc10"),
        (["1-100032-A-0.wav,1,0,,True,100032,A"], _HEADER, "category"),
        (["1-100032-A-0.wav,2,0,dog,True,100032,A"], _HEADER, "says (fold, source, take, target)"),
        (["1-100032-A-0.wav,1,0,dog,True,100033,A"], _HEADER, "says (fold, source, take, target)"),
        ([_ROWS[0], _ROWS[0]], _HEADER, "listed twice"),
        ([_ROWS[0], "2-1-A-0.wav,2,0,cat,True,1,A"], _HEADER, "target 0 is 'cat' here"),
        (["1-100032-A-0.ogg,1,0,dog,True,100032,A"], _HEADER, "not an ESC-50 clip name"),
    ],
)
def test_read_esc50_meta_refuses_bad_rows(
    tmp_path: Path, rows: list[str], header: str, reason: str
) -> None:
    assert reason in _reason(read_esc50_meta, _csv(tmp_path, *rows, header=header))


def test_read_esc50_meta_refuses_unreadable_files(tmp_path: Path) -> None:
    assert "cannot read" in _reason(read_esc50_meta, tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "not a text file" in _reason(read_esc50_meta, binary)


def test_discover_esc50(tmp_path: Path) -> None:
    assert discover_esc50(tmp_path) == (None, None)
    root = tmp_path / "ESC-50-master"
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    meta = _csv(root / "meta", *_ROWS)
    assert discover_esc50(tmp_path) == (meta, None)  # an audio folder without wav files
    (root / "audio" / "1-100032-A-0.wav").touch()
    other = tmp_path / "a_copy" / "audio"
    other.mkdir(parents=True)
    (other / "x.wav").touch()
    assert discover_esc50(tmp_path) == (meta, root / "audio")  # the one beside meta/
    assert "not found" in _reason(discover_esc50, tmp_path / "missing")
