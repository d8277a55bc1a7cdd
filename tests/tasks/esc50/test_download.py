"""``sleepbench download esc50``: the explanation (no network), the check and copy of a local copy
(the real 50-clip sample, small written trees with missing, foreign and odd clips, the archive's
zip), the HTTP fetch through a ``file://`` URL, and the one-line errors."""

from __future__ import annotations

import shutil
import socket
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sleepbench.errors import RecordingError, UserError
from sleepbench.tasks.esc50 import download as esc50_download
from sleepbench.tasks.esc50.download import ESC50_URL, download_esc50, verify_esc50

HEADER = "filename,fold,target,category,esc10,src_file,take\n"
ROWS = (
    ("1-100032-A-0.wav", 1, 0, "dog", "True", "100032", "A"),
    ("1-100032-B-0.wav", 1, 0, "dog", "True", "100032", "B"),
    ("2-102414-A-17.wav", 2, 17, "pouring_water", "False", "102414", "A"),
    ("3-104958-A-49.wav", 3, 49, "hand_saw", "False", "104958", "A"),
)


def _quiet(_: str) -> None:
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def write_clip(path: Path, fs: int = 44100, seconds: float = 5.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(fs * seconds), np.int16), fs, subtype="PCM_16")


def write_tree(root: Path, rows: tuple[tuple, ...] = ROWS) -> Path:
    """The repository's layout (``ESC-50-master/{audio,meta}``, LICENSE) with a few clips."""
    top = root / "ESC-50-master"
    (top / "meta").mkdir(parents=True)
    (top / "meta" / "esc50.csv").write_text(
        HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows)
    )
    for row in rows:
        write_clip(top / "audio" / row[0])
    (top / "LICENSE").write_text("CC BY-NC 3.0\n")
    return root


def zip_tree(root: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            zf.write(path, path.relative_to(root))
    return archive


def test_explain_mode_prints_where_to_get_it_and_touches_nothing(
    tmp_path: Path, no_network: None
) -> None:
    lines: list[str] = []
    report = download_esc50(tmp_path / "d", None, print_fn=lines.append)
    assert report["status"] == "manual" and report["text"] == lines[0]
    for needle in (ESC50_URL, "CC BY-NC 3.0", "~600 MB", "--offline-from"):
        assert needle in report["text"]
    assert not (tmp_path / "d").exists()


@pytest.mark.samples
def test_real_sample_copy_is_reported_partial_with_its_counts(
    samples_dir: Path, tmp_path: Path, no_network: None
) -> None:
    src = tmp_path / "usb" / "esc50"
    shutil.copytree(samples_dir / "esc50", src)
    dest = tmp_path / "data" / "esc50"
    lines: list[str] = []
    report = download_esc50(dest, src, print_fn=lines.append)
    assert report["status"] == "partial"
    assert (report["listed"], report["present"], report["classes"], report["folds"]) == (
        50,
        50,
        50,
        1,
    )
    assert report["per_fold"] == {4: 50}
    assert report["full"] == {"clips": 2000, "classes": 50, "folds": 5}
    assert report["problems"] == 0 and not report["missing"] and not report["odd_clips"]
    assert lines[1].startswith("partial copy") and "50 of 2000 clips" in lines[1]
    assert len(list((dest / "audio").glob("*.wav"))) == 50
    assert (dest / "meta" / "esc50.csv").is_file() and (dest / "LICENSE").is_file()
    assert report["copied"] == 53  # 50 clips, the csv, LICENSE, README.md
    again = download_esc50(dest, dest, print_fn=_quiet)
    assert again["present"] == 50 and again["copied"] == 0


def test_missing_unlisted_and_odd_clips_are_reported(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    audio = src / "ESC-50-master" / "audio"
    (audio / ROWS[3][0]).unlink()
    write_clip(audio / ROWS[2][0], fs=22050)
    write_clip(audio / "5-999999-A-3.wav")
    dest = tmp_path / "d"
    lines: list[str] = []
    report = download_esc50(dest, src, print_fn=lines.append)
    assert report["status"] == "partial"
    assert report["missing"] == [ROWS[3][0]]
    assert report["unlisted"] == ["5-999999-A-3.wav"]
    assert (
        set(report["odd_clips"]) == {ROWS[2][0]} and "22050 Hz" in report["odd_clips"][ROWS[2][0]]
    )
    assert (report["present"], report["classes"], report["folds"]) == (3, 2, 2)
    assert any("clips listed in esc50.csv but not found" in line for line in lines)
    assert sorted(p.name for p in (dest / "audio").iterdir()) == sorted(r[0] for r in ROWS[:3])


def test_a_full_copy_is_reported_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(esc50_download, "FULL_SET", {"clips": 4, "classes": 3, "folds": 3})
    report = verify_esc50(write_tree(tmp_path / "usb"))
    assert report["status"] == "complete" and report["problems"] == 0


def test_the_archive_is_unpacked_checked_and_copied(tmp_path: Path) -> None:
    archive = zip_tree(write_tree(tmp_path / "tree"), tmp_path / "master.zip")
    dest = tmp_path / "d"
    report = download_esc50(dest, archive, print_fn=_quiet)
    assert report["present"] == 4 and report["copied"] == 6  # 4 clips, csv, LICENSE
    assert sorted(p.name for p in dest.iterdir()) == ["LICENSE", "audio", "meta"]


def test_fetch_over_a_url_then_skip_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = zip_tree(write_tree(tmp_path / "tree"), tmp_path / "master.zip")
    dest = tmp_path / "d"
    lines: list[str] = []
    report = download_esc50(dest, fetch=True, url=archive.as_uri(), print_fn=lines.append)
    assert report["fetched"] and report["present"] == 4 and report["copied"] == 6
    assert not (dest / ".staging").exists()
    monkeypatch.setattr(esc50_download, "FULL_SET", {"clips": 4, "classes": 3, "folds": 3})
    archive.unlink()  # a second fetch would now fail
    again = download_esc50(dest, fetch=True, url=archive.as_uri(), print_fn=_quiet)
    assert again["status"] == "complete" and not again["fetched"] and again["copied"] == 0


def test_a_failed_fetch_is_a_user_error(tmp_path: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    with pytest.raises(UserError, match="could not fetch"):
        download_esc50(tmp_path / "d", fetch=True, url=url, print_fn=_quiet)
    with pytest.raises(UserError, match="either --offline-from or --fetch"):
        download_esc50(tmp_path / "d", tmp_path, fetch=True, print_fn=_quiet)
    # a fetched file that is no zip (an error page) is thrown away, not reused next time
    page = tmp_path / "error.html"
    page.write_text("<html>rate limited</html>")
    with pytest.raises(UserError, match="not a readable zip"):
        download_esc50(tmp_path / "d", fetch=True, url=page.as_uri(), print_fn=_quiet)
    assert not (tmp_path / "d" / ".staging").exists()


def test_a_missing_meta_csv_is_a_clear_user_error(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    (src / "ESC-50-master" / "meta" / "esc50.csv").unlink()
    with pytest.raises(UserError, match=r"no meta/esc50\.csv under") as err:
        download_esc50(tmp_path / "d", src, print_fn=_quiet)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "d" / "audio").exists()


def test_other_unusable_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        download_esc50(tmp_path / "d", tmp_path / "nowhere", print_fn=_quiet)
    src = write_tree(tmp_path / "usb")
    shutil.rmtree(src / "ESC-50-master" / "audio")
    with pytest.raises(UserError, match="none of the 4 clips"):
        download_esc50(tmp_path / "d", src, print_fn=_quiet)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable zip"):
        download_esc50(tmp_path / "d", tmp_path / "broken.zip", print_fn=_quiet)
    assert not (tmp_path / "d" / ".staging").exists()
    bad = write_tree(tmp_path / "bad", rows=((*ROWS[0][:2], 7, *ROWS[0][3:]),))
    with pytest.raises(RecordingError, match="row 2"):
        download_esc50(tmp_path / "d", bad, print_fn=_quiet)
