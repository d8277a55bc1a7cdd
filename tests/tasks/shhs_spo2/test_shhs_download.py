"""shhs_spo2 download: NSRR token from the environment only, verified files, a token never shown,
transport errors reported, and an offline copy of just the task's files (a fake sleepdata.org)."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from sleepbench.tasks.shhs_spo2 import download as dl

N_SAMPLES = 1800  # 30 min at 1 Hz: the synthetic nights below last 22-34 min


TOKEN = "tok-SECRET-1234567890"


class _FakeNsrr:
    """sleepdata.org stand-in: answers the API and file URLs from memory."""

    def __init__(self, files: dict[str, bytes], fail: str | None = None) -> None:
        self.files, self.fail, self.urls = files, fail, []

    def __call__(self, url: str):
        self.urls.append(url)
        if self.fail and self.fail in url:
            raise OSError(f"connection reset while fetching {url}")
        if "/api/v1/account/profile.json" in url:
            ok = f"auth_token={TOKEN}" in url
            return io.BytesIO(json.dumps({"authenticated": ok, "username": "ada"}).encode())
        if "/api/v1/datasets/shhs/files.json" in url:
            folder = url.split("path=")[1].split("&")[0].replace("%2F", "/")
            items = [
                {
                    "is_file": True,
                    "file_name": p.rsplit("/", 1)[-1],
                    "full_path": p,
                    "file_size": len(b),
                    "file_checksum_md5": __import__("hashlib").md5(b).hexdigest(),
                }
                for p, b in self.files.items()
                if p.rsplit("/", 1)[0] == folder
            ]
            return io.BytesIO(json.dumps(items).encode())
        path = url.split("/m/sleepbench/")[1]
        return io.BytesIO(self.files[path])


def _fake_files() -> dict[str, bytes]:
    return {
        "datasets/shhs1-dataset-0.21.0.csv": b"nsrrid,ahi_a0h3a\n200001,3.2\n",
        "datasets/shhs-cvd-summary-dataset-0.21.0.csv": b"not wanted",
        "polysomnography/edfs/shhs1/shhs1-200001.edf": b"0" * 300,
        "polysomnography/edfs/shhs1/shhs1-200002.edf": b"1" * 300,
        "polysomnography/annotations-events-nsrr/shhs1/shhs1-200001-nsrr.xml": b"<x/>",
    }


def _all_output(capsys, caplog, dest: Path) -> str:
    out = capsys.readouterr()
    text = out.out + out.err + caplog.text
    for path in dest.rglob("*"):
        if path.is_file():
            text += path.read_bytes().decode("latin-1")
    return text


def test_download_without_token_explains_access(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("NSRR_TOKEN", raising=False)
    report = dl.download_shhs(tmp_path / "shhs", opener=_FakeNsrr({}))
    text = capsys.readouterr().out
    assert report["status"] == "no-token"
    assert "data-use agreement" in text and "https://sleepdata.org/token" in text
    assert "NSRR_TOKEN is not set" in text


def test_download_fetches_verifies_and_never_shows_the_token(
    tmp_path, monkeypatch, capsys, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NSRR_TOKEN", TOKEN)
    files = _fake_files()
    fake = _FakeNsrr(files)
    dest = tmp_path / "shhs"
    report = dl.download_shhs(dest, visits=("shhs1",), opener=fake)
    assert report["status"] == "downloaded" and not report["failed"]
    wanted = sorted(p for p in files if "cvd" not in p)
    assert sorted(report["fetched"]) == wanted
    for p in wanted:
        assert (dest / p).read_bytes() == files[p]
    assert any(TOKEN in u for u in fake.urls)  # it was used...
    assert TOKEN not in _all_output(capsys, caplog, dest)  # ...but never shown or written
    # a second run keeps the verified files
    again = dl.download_shhs(dest, visits=("shhs1",), opener=_FakeNsrr(files))
    assert sorted(again["kept"]) == wanted and not again["fetched"]


def test_transport_errors_are_reported_without_the_token(
    tmp_path, monkeypatch, capsys, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NSRR_TOKEN", TOKEN)
    dest = tmp_path / "shhs"
    report = dl.download_shhs(
        dest, visits=("shhs1",), opener=_FakeNsrr(_fake_files(), fail="shhs1-200002.edf")
    )
    assert report["failed"] == ["polysomnography/edfs/shhs1/shhs1-200002.edf"]
    text = _all_output(capsys, caplog, dest)
    assert "connection reset" in text and "<NSRR_TOKEN>" in text and TOKEN not in text
    assert not list(dest.rglob("*.part"))
    # a rejected token stops before any download, again without echoing it
    monkeypatch.setenv("NSRR_TOKEN", "wrong-" + TOKEN)
    with pytest.raises(RuntimeError) as err:
        dl.download_shhs(tmp_path / "other", opener=_FakeNsrr({}))
    assert TOKEN not in str(err.value)
    with pytest.raises(RuntimeError) as err:
        dl.NsrrClient(TOKEN, opener=_FakeNsrr({}, fail="profile")).authenticate()
    assert TOKEN not in str(err.value) and "<NSRR_TOKEN>" in str(err.value)


def test_offline_copy_takes_only_the_task_files(tmp_path, capsys) -> None:
    src = tmp_path / "src"
    for rel, body in _fake_files().items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(body)
    report = dl.download_shhs(tmp_path / "dest", offline_from=src, visits=("shhs1",))
    assert report["status"] == "copied"
    assert sorted(report["fetched"]) == sorted(p for p in _fake_files() if "cvd" not in p)
