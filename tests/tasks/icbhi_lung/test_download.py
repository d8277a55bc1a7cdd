"""``sleepbench download icbhi``: the explanation (no network), and the check and copy of a local
copy: the real sample tree (10 recordings, 920 annotations), small written trees with the faults
a user meets (a .wav without its .txt, annotations past the end, foreign files), zips, and the
one-line errors."""

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
from sleepbench.tasks.icbhi_lung import download as icbhi_download
from sleepbench.tasks.icbhi_lung.download import download_icbhi, verify_icbhi

STEMS = ("101_1b1_Al_sc_Meditron", "101_1b1_Pr_sc_Meditron", "104_1b1_Al_sc_Litt3200")


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


def write_recording(folder: Path, stem: str, seconds: float = 3.0, fs: int = 4000) -> None:
    """A short quiet .wav and two cycles that fit in it."""
    folder.mkdir(parents=True, exist_ok=True)
    x = 0.01 * np.sin(2 * np.pi * 200 * np.arange(int(seconds * fs)) / fs)
    sf.write(folder / f"{stem}.wav", x, fs, subtype="PCM_16")
    (folder / f"{stem}.txt").write_text("0.1\t1.2\t0\t0\n1.2\t2.5\t1\t1\n")


def write_tree(root: Path) -> Path:
    """Three recordings in a flat folder (the challenge zip's layout) plus a split list."""
    db = root / "ICBHI_final_database"
    for stem in STEMS:
        write_recording(db, stem)
    (root / "ICBHI_challenge_train_test.txt").write_text(
        "".join(f"{s}\t{side}\n" for s, side in zip(STEMS, ("train", "test", "test")))
    )
    return root


def test_explain_mode_prints_where_to_get_it_and_touches_nothing(
    tmp_path: Path, no_network: None
) -> None:
    lines: list[str] = []
    report = download_icbhi(tmp_path / "d", None, print_fn=lines.append)
    assert report["status"] == "manual"
    text = report["text"]
    assert text == lines[0]
    for needle in (
        "https://bhichallenge.med.auth.gr/",
        "ICBHI_final_database.zip",
        "ICBHI_challenge_train_test.txt",
        "vbookshelf/respiratory-sound-database",
        "--offline-from",
    ):
        assert needle in text
    assert "nothing copied" in lines[-1]
    assert not (tmp_path / "d").exists()


@pytest.mark.samples
def test_real_sample_copy_is_reported_partial_with_its_counts(
    samples_dir: Path, tmp_path: Path, no_network: None
) -> None:
    src = tmp_path / "usb" / "icbhi"
    shutil.copytree(samples_dir / "icbhi", src)
    dest = tmp_path / "data" / "icbhi"
    lines: list[str] = []
    report = download_icbhi(dest, src, print_fn=lines.append)
    assert report["status"] == "partial"
    assert (report["wavs"], report["txts"], report["pairs"], report["txt_only"]) == (
        10,
        920,
        10,
        910,
    )
    assert report["recordings"] == 920 and report["patients"] == 126
    assert report["patients_with_audio"] == 4  # 101, 102, 103, 104
    assert report["cycles"] == 6898
    assert report["classes"] == {"normal": 3642, "crackle": 1864, "wheeze": 886, "both": 506}
    assert report["devices"] == {"AKGC417L": 646, "Litt3200": 60, "LittC2SE": 87, "Meditron": 127}
    assert report["rates_hz"] == {4000.0: 6, 44100.0: 4}
    assert report["subtypes"] == {"PCM_16": 7, "PCM_24": 2, "PCM_32": 1}
    assert report["problems"] == 0 and not report["wav_without_txt"]
    meta = report["metadata"]
    assert (meta["official_split"]["train"], meta["official_split"]["test"]) == (539, 381)
    assert meta["official_split"]["found"] == 920 and meta["official_split"]["with_audio"] == 10
    assert (meta["patient_folds"]["patients"], meta["patient_folds"]["folds"]) == (126, 5)
    assert meta["diagnoses"]["patients"] == meta["demographics"]["patients"] == 126
    assert meta["filename_differences"]["names"] == 91
    assert report["full"] == {"recordings": 920, "patients": 126, "cycles": 6898}
    assert lines[1].startswith("partial copy") and "10 of 920 recordings" in lines[1]
    # normalised layout: recordings in one folder, metadata (own names) in another
    assert len(list((dest / "audio_and_txt_files").glob("*.wav"))) == 10
    assert len(list((dest / "audio_and_txt_files").glob("*.txt"))) == 920
    assert (dest / "metadata" / "official_split.txt").is_file()
    assert report["copied"] == 935 and report["kept"] == 0
    assert not (dest / ".staging").exists()
    # a second run copies nothing; the copy in place verifies the same
    again = download_icbhi(dest, src, print_fn=_quiet)
    assert (again["copied"], again["kept"]) == (0, 935)
    in_place = download_icbhi(dest, dest, print_fn=_quiet)
    assert in_place["copied"] == 0 and in_place["cycles"] == 6898 and in_place["pairs"] == 10


def test_a_wav_without_its_txt_is_reported_not_refused(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    (src / "ICBHI_final_database" / f"{STEMS[0]}.txt").unlink()
    lines: list[str] = []
    report = download_icbhi(tmp_path / "d", src, print_fn=lines.append)
    assert report["status"] == "partial"
    assert report["wav_without_txt"] == [STEMS[0]] and report["problems"] == 1
    assert (report["wavs"], report["txts"], report["pairs"]) == (3, 2, 2)
    assert any(".wav files without their .txt" in line and STEMS[0] in line for line in lines)
    # the challenge zip has no fold list: said so, with where to find one
    assert report["metadata"]["patient_folds"] is None
    assert any("patient_list_foldwise.txt" in line for line in lines)
    assert report["metadata"]["official_split"]["train"] == 1


def test_bad_annotations_wavs_and_foreign_files_are_listed(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    db = src / "ICBHI_final_database"
    (db / f"{STEMS[1]}.txt").write_text("0.1\t9.0\t0\t0\n")  # past the 3-s recording
    (db / f"{STEMS[2]}.txt").write_text("0.1\tabc\t0\t0\n")
    (db / f"{STEMS[2]}.wav").write_bytes(b"RIFF not really")
    sf.write(db / "notes_from_the_clinic.wav", np.zeros(400), 4000)
    (src / "filename_differences.txt").write_text("'not a name'\n")
    report = verify_icbhi(src)
    assert set(report["bad_annotations"]) == {f"{STEMS[1]}.txt", f"{STEMS[2]}.txt"}
    assert "beyond" in report["bad_annotations"][f"{STEMS[1]}.txt"]
    assert set(report["bad_wavs"]) == {f"{STEMS[2]}.wav"}
    assert set(report["bad_metadata"]) == {"filename_differences.txt"}
    assert report["unrecognised_wavs"] == ["ICBHI_final_database/notes_from_the_clinic.wav"]
    assert report["problems"] == 4 and report["status"] == "partial"
    copied = download_icbhi(tmp_path / "d", src, print_fn=_quiet)
    assert not (tmp_path / "d" / "audio_and_txt_files" / "notes_from_the_clinic.wav").exists()
    assert copied["copied"] == 6 + 2  # three pairs + split list + name-change list


def test_a_full_copy_is_reported_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the counts of a full database, scaled down to the written tree
    monkeypatch.setattr(
        icbhi_download, "FULL_DATABASE", {"recordings": 3, "patients": 2, "cycles": 6}
    )
    report = verify_icbhi(write_tree(tmp_path / "usb"))
    assert report["status"] == "complete" and report["problems"] == 0
    assert report["classes"] == {"normal": 3, "crackle": 0, "wheeze": 0, "both": 3}


def test_a_zip_is_unpacked_checked_and_copied(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    archive = tmp_path / "ICBHI_final_database.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(src.rglob("*")):
            zf.write(path, path.relative_to(src))
    dest = tmp_path / "d"
    report = download_icbhi(dest, archive, print_fn=_quiet)
    assert report["pairs"] == 3 and report["copied"] == 7
    assert len(list((dest / "audio_and_txt_files").iterdir())) == 6
    assert not (dest / ".staging").exists()


def test_unusable_sources_are_one_line_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        download_icbhi(tmp_path / "d", tmp_path / "nowhere", print_fn=_quiet)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="neither a folder nor a .zip"):
        download_icbhi(tmp_path / "d", tmp_path / "notes.txt", print_fn=_quiet)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no ICBHI recordings"):
        download_icbhi(tmp_path / "d", tmp_path / "empty", print_fn=_quiet)
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable zip"):
        download_icbhi(tmp_path / "d", tmp_path / "broken.zip", print_fn=_quiet)
    assert not (tmp_path / "d" / ".staging").exists()


def test_two_wavs_of_one_recording_are_refused(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "usb")
    write_recording(src / "second_copy", STEMS[0])
    with pytest.raises(RecordingError, match="second wav"):
        verify_icbhi(src)
