"""Cache fingerprints: every input that decides a cache's content changes it, nothing else does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleepbench.cache.fingerprint import fingerprint, source_stamp

CFG = {"fs_hz": 100, "filter": {"low_hz": 0.5, "high_hz": 35.0}, "channels": ["ECG"]}


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, tuple[Path, ...]]:
    """Two records with two source files each, fixed mtimes."""
    out = {}
    for rid in ("a01", "a02"):
        paths = (tmp_path / f"{rid}.dat", tmp_path / f"{rid}.hea")
        for i, p in enumerate(paths):
            p.write_bytes(b"x" * (100 + i))
            os.utime(p, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000 + i))
        out[rid] = paths
    return out


def fp(sources, cfg=CFG, task: str = "apnea_ecg", reader: str = "1") -> str:
    return fingerprint(task, reader, cfg, sources)


def test_fingerprint_is_16_hex_and_stable(sources) -> None:
    a = fp(sources)
    assert len(a) == 16 and int(a, 16) >= 0
    assert fp(sources) == a
    # key order of the config and of the sources mapping does not matter
    reordered = {"channels": ["ECG"], "filter": {"high_hz": 35.0, "low_hz": 0.5}, "fs_hz": 100}
    assert fp(dict(reversed(list(sources.items()))), reordered) == a
    # nor the order of a record's files
    assert fp({k: tuple(reversed(v)) for k, v in sources.items()}) == a


@pytest.mark.parametrize(
    "cfg",
    [
        {**CFG, "fs_hz": 128},
        {**CFG, "filter": {"low_hz": 0.3, "high_hz": 35.0}},
        {**CFG, "channels": ["ECG", "Resp"]},
        {**CFG, "new_key": 1},
        {k: v for k, v in CFG.items() if k != "channels"},
        {**CFG, "fs_hz": "100"},
    ],
    ids=["value", "nested", "list", "added", "removed", "type"],
)
def test_changing_one_preprocessing_key_changes_it(sources, cfg) -> None:
    assert fp(sources, cfg) != fp(sources)


def test_task_and_reader_version_enter_it(sources) -> None:
    base = fp(sources)
    assert fp(sources, task="sleep_edf") != base
    assert fp(sources, reader="2") != base


def test_source_size_and_mtime_enter_it(sources) -> None:
    base = fp(sources)
    path = sources["a02"][0]
    st = path.stat()

    path.write_bytes(b"x" * 101)  # one byte longer; restore the old mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    grown = fp(sources)
    assert grown != base

    path.write_bytes(b"y" * 100)  # same size, new mtime
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    touched = fp(sources)
    assert touched not in (base, grown)

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime as at first
    assert fp(sources) == base


def test_record_set_enters_it(sources) -> None:
    base = fp(sources)
    assert fp({"a01": sources["a01"]}) != base
    assert fp({"a01": sources["a01"], "a03": sources["a02"]}) != base
    assert fp({"a01": sources["a01"], "a02": sources["a02"][:1]}) != base


def test_source_stamp_sorted_and_skips_missing_files(tmp_path: Path) -> None:
    b, a = tmp_path / "b.edf", tmp_path / "a.xml"
    b.write_bytes(b"12345")
    a.write_bytes(b"1")
    stamps = source_stamp([b, tmp_path / "missing.edf", a])
    assert stamps == [
        ("a.xml", 1, a.stat().st_mtime_ns),
        ("b.edf", 5, b.stat().st_mtime_ns),
    ]
