"""Verified downloads without a network: checksum logic with a fake fetch, and offline copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sleepbench.download import parse_sha256sums, physionet_download, sha256_of, sync_verified

FILES = {"a01.dat": b"signal a01" * 50, "a01.apn": b"NNAA", "sub/x.hea": b"x 1 100 6000\n"}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CHECKSUMS = {rel: digest(data) for rel, data in FILES.items()}


class FakeFetch:
    """Writes the good bytes (or ``bad`` bytes for paths in ``corrupt``) and logs each call."""

    def __init__(self, corrupt: tuple[str, ...] = (), missing: tuple[str, ...] = ()) -> None:
        self.corrupt, self.missing = corrupt, missing
        self.calls: list[str] = []

    def __call__(self, rel: str, target: Path) -> None:
        self.calls.append(rel)
        if rel in self.missing:
            raise FileNotFoundError(f"404: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"garbage" if rel in self.corrupt else FILES[rel])


def test_sha256_and_sums_parsing(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"\x00" * 3_000_000)  # several read chunks
    assert sha256_of(p) == digest(b"\x00" * 3_000_000)
    text = f"{'A' * 64}  a01.dat\n{'b' * 64} *sub/x y.hea\n\nmalformed\n"
    assert parse_sha256sums(text) == {"a01.dat": "a" * 64, "sub/x y.hea": "b" * 64}


def test_fetches_missing_files_and_keeps_good_ones(tmp_path: Path) -> None:
    (tmp_path / "a01.dat").write_bytes(FILES["a01.dat"])  # already there and right
    (tmp_path / "a01.apn").write_bytes(b"NN")  # a broken earlier download
    fetch = FakeFetch()
    report = sync_verified(tmp_path, CHECKSUMS, fetch)
    assert report == {"kept": ["a01.dat"], "fetched": ["a01.apn", "sub/x.hea"], "failed": []}
    assert sorted(fetch.calls) == ["a01.apn", "sub/x.hea"]
    for rel, data in FILES.items():
        assert (tmp_path / rel).read_bytes() == data
    # a second run fetches nothing
    again = FakeFetch()
    assert sync_verified(tmp_path, CHECKSUMS, again)["kept"] == sorted(FILES)
    assert again.calls == []


def test_wanted_limits_the_files(tmp_path: Path) -> None:
    fetch = FakeFetch()
    report = sync_verified(tmp_path, CHECKSUMS, fetch, wanted=["a01.apn"])
    assert report["fetched"] == ["a01.apn"] and fetch.calls == ["a01.apn"]
    assert not (tmp_path / "a01.dat").exists()


def test_files_still_wrong_after_fetching_are_listed_and_removed(tmp_path: Path) -> None:
    fetch = FakeFetch(corrupt=("a01.dat",), missing=("sub/x.hea",))
    with pytest.raises(RuntimeError, match=r"2 files failed.*a01\.dat.*sub/x\.hea"):
        sync_verified(tmp_path, CHECKSUMS, fetch)
    assert not (tmp_path / "a01.dat").exists()  # a wrong file is never left to look done
    assert (tmp_path / "a01.apn").read_bytes() == FILES["a01.apn"]


def write_offline(folder: Path, with_sums: bool = True) -> Path:
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    if with_sums:
        lines = [f"{CHECKSUMS[rel]}  {rel}" for rel in FILES]
        (folder / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_offline_copy_is_verified(tmp_path: Path) -> None:
    src = write_offline(tmp_path / "usb")
    dest = tmp_path / "data"
    report = physionet_download("apnea-ecg", "1.0.0", dest, offline_from=src)
    assert report["fetched"] == sorted(FILES) and report["failed"] == []
    for rel, data in FILES.items():
        assert (dest / rel).read_bytes() == data
    assert (dest / "SHA256SUMS.txt").read_text() == (src / "SHA256SUMS.txt").read_text()
    again = physionet_download("apnea-ecg", "1.0.0", dest, offline_from=src)
    assert again["kept"] == sorted(FILES) and again["fetched"] == []


def test_offline_copy_with_a_predicate(tmp_path: Path) -> None:
    src = write_offline(tmp_path / "usb")
    dest = tmp_path / "data"
    report = physionet_download(
        "apnea-ecg", "1.0.0", dest, wanted=lambda rel: rel.endswith(".apn"), offline_from=src
    )
    assert report["fetched"] == ["a01.apn"]
    assert not (dest / "a01.dat").exists()


def test_offline_copy_of_a_corrupt_or_missing_file_fails(tmp_path: Path) -> None:
    src = write_offline(tmp_path / "usb")
    (src / "a01.apn").write_bytes(b"AAAA")
    (src / "sub" / "x.hea").unlink()
    with pytest.raises(RuntimeError, match=r"a01\.apn.*sub/x\.hea"):
        physionet_download("apnea-ecg", "1.0.0", tmp_path / "data", offline_from=src)


def test_offline_folder_without_sums_fails_clearly(tmp_path: Path) -> None:
    src = write_offline(tmp_path / "usb", with_sums=False)
    with pytest.raises(FileNotFoundError, match=r"SHA256SUMS\.txt.*checksums"):
        physionet_download("apnea-ecg", "1.0.0", tmp_path / "data", offline_from=src)
