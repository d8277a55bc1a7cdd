"""``sleepbench download shhs``: how to get NSRR access, and a token-based download of what we read.

SHHS is distributed by the National Sleep Research Resource (NSRR, sleepdata.org) under a data-use
agreement: there is no anonymous download. With the user's personal download token in the
environment variable ``NSRR_TOKEN`` the files this task reads are fetched through NSRR's public API
(the scheme the ``nsrr`` Ruby gem and SleepECG use):

- ``GET /api/v1/account/profile.json?auth_token=<token>`` checks the token;
- ``GET /api/v1/datasets/shhs/files.json?path=<folder>&auth_token=<token>`` lists a folder
  (``file_name``, ``full_path``, ``is_file``, ``file_size``, ``file_checksum_md5``);
- ``GET /datasets/shhs/files/a/<token>/m/sleepbench/<full_path>`` downloads one file.

Each file is written to ``<name>.part`` and renamed after its MD5 matches the listing, so an
interrupted download resumes and a finished file is never fetched twice.

The token is read from the environment only (never from the command line, where it would enter
shell history), lives only in memory, and is replaced by ``<NSRR_TOKEN>`` in every message,
log line and exception this module produces; nothing it writes contains it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = [
    "ACCESS_TEXT",
    "NsrrClient",
    "NsrrFile",
    "download_shhs",
    "shhs_folders",
]

log = logging.getLogger(__name__)

NSRR_URL = "https://sleepdata.org"
DATASET = "shhs"
TOKEN_ENV = "NSRR_TOKEN"
_MASK = "<NSRR_TOKEN>"

ACCESS_TEXT = """\
SHHS (Sleep Heart Health Study) is distributed by the National Sleep Research Resource (NSRR).
Access requires an NSRR account and an approved data access request under NSRR's
data-use agreement (no redistribution, no re-identification, cite the SHHS and NSRR grants):

  1. create an account:           https://sleepdata.org/join
  2. request SHHS access:         https://sleepdata.org/data/requests/shhs/start
  3. once approved, copy your personal download token from https://sleepdata.org/token
  4. put it in the environment (not on the command line) and run the download again:
        read -s NSRR_TOKEN && export NSRR_TOKEN
        sleepbench download shhs [--dest DIR]

The task reads polysomnography/edfs/shhs{1,2}/*.edf (about 350 GB for both visits),
polysomnography/annotations-events-nsrr/shhs{1,2}/*-nsrr.xml and datasets/shhs{1,2}-dataset-*.csv.
A local copy in the same layout can be imported with --offline-from DIR. See data_cards/shhs.md.
"""


@dataclass(frozen=True)
class NsrrFile:
    """One file of an NSRR dataset listing: path relative to the dataset root, size, MD5."""

    path: str
    size: int | None
    md5: str | None


Opener = Callable[[str], IO[bytes]]


def _urlopen(url: str) -> IO[bytes]:
    return urllib.request.urlopen(url, timeout=120)  # noqa: S310 (https URL built here)


class NsrrClient:
    """Minimal sleepdata.org API client for one token.

    Args:
        token: the user's NSRR download token (kept in memory only).
        base_url: NSRR site.
        opener: ``url -> readable binary response`` (``urllib.request.urlopen`` by default;
            tests pass a fake).
    """

    def __init__(self, token: str, base_url: str = NSRR_URL, opener: Opener | None = None) -> None:
        if not token or not token.strip():
            raise ValueError(f"empty {TOKEN_ENV}")
        self._token = token.strip()
        self.base_url = base_url.rstrip("/")
        self._open = opener or _urlopen

    def redact(self, text: str) -> str:
        """``text`` with the token (plain or URL-quoted) replaced by ``<NSRR_TOKEN>``."""
        for form in {self._token, urllib.parse.quote(self._token, safe="")}:
            text = text.replace(form, _MASK)
        return text

    def _read(self, url: str) -> bytes:
        try:
            with self._open(url) as resp:
                return resp.read()
        except Exception as err:  # noqa: BLE001 - any transport error, re-raised redacted
            raise RuntimeError(self.redact(f"NSRR request {url} failed: {err}")) from None

    def _api(self, endpoint: str, **params: str) -> Any:
        query = urllib.parse.urlencode({**params, "auth_token": self._token})
        url = f"{self.base_url}/api/v1/{endpoint}?{query}"
        body = self._read(url)
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            raise RuntimeError(self.redact(f"NSRR answered {url} with non-JSON")) from None

    def authenticate(self) -> str:
        """Check the token; returns the NSRR user name.

        Raises:
            RuntimeError: the token is not accepted.
        """
        profile = self._api("account/profile.json")
        if not isinstance(profile, dict) or not profile.get("authenticated"):
            raise RuntimeError(f"sleepdata.org did not accept the token in ${TOKEN_ENV}")
        return str(profile.get("username", "?"))

    def list_files(self, dataset: str, folder: str, recursive: bool = True) -> list[NsrrFile]:
        """Files under ``folder`` of ``dataset`` (recursively), as :class:`NsrrFile`."""
        items = self._api(f"datasets/{dataset}/files.json", path=folder)
        if not isinstance(items, list):
            raise RuntimeError(f"unexpected listing of {dataset}/{folder}: {type(items).__name__}")
        out = []
        for item in items:
            if item.get("is_file"):
                size = item.get("file_size")
                out.append(
                    NsrrFile(
                        str(item["full_path"]),
                        int(size) if size is not None else None,
                        item.get("file_checksum_md5"),
                    )
                )
            elif recursive:
                out.extend(self.list_files(dataset, str(item["full_path"]), recursive))
        return out

    def download(self, dataset: str, file: NsrrFile, target: Path) -> None:
        """Fetch ``file`` to ``target`` via ``<name>.part``, verified by its MD5.

        Raises:
            RuntimeError: transport error or checksum mismatch (the partial file is removed).
        """
        url = (
            f"{self.base_url}/datasets/{dataset}/files/a/{urllib.parse.quote(self._token)}"
            f"/m/sleepbench/{urllib.parse.quote(file.path)}"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with self._open(url) as resp, open(part, "wb") as fh:
                while block := resp.read(1 << 20):
                    digest.update(block)
                    fh.write(block)
        except Exception as err:  # noqa: BLE001 - any transport error, re-raised redacted
            part.unlink(missing_ok=True)
            raise RuntimeError(self.redact(f"download of {file.path} failed: {err}")) from None
        if file.md5 and digest.hexdigest() != file.md5.lower():
            part.unlink(missing_ok=True)
            raise RuntimeError(
                f"{file.path}: MD5 {digest.hexdigest()} differs from NSRR's {file.md5} "
                "(access not granted for this file, or a broken transfer)"
            )
        part.replace(target)


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file (NSRR publishes MD5 checksums)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def shhs_folders(visits: Sequence[str]) -> list[tuple[str, str]]:
    """``(folder, file pattern)`` pairs the task reads for ``visits``."""
    out = [("datasets", f"{v}-dataset-*.csv") for v in visits]
    for v in visits:
        out.append((f"polysomnography/edfs/{v}", "*.edf"))
        out.append((f"polysomnography/annotations-events-nsrr/{v}", "*-nsrr.xml"))
    return out


def _wanted(
    listing: Iterable[NsrrFile], folder: str, pattern: str, max_nights: int | None
) -> list[NsrrFile]:
    """Files of ``listing`` matching ``pattern``, sorted; nights limited to ``max_nights``."""
    files = sorted(
        (f for f in listing if fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], pattern)),
        key=lambda f: f.path,
    )
    if max_nights is None or folder == "datasets":
        return files
    return files[:max_nights]


def _copy_offline(src: Path, dest: Path, visits: Sequence[str]) -> dict[str, list[str]]:
    """Copy the task's files from a local NSRR-layout folder (missing or size-changed ones)."""
    report: dict[str, list[str]] = {"kept": [], "fetched": [], "failed": []}
    for folder, pattern in shhs_folders(visits):
        for path in sorted((src / folder).glob(pattern)):
            rel = path.relative_to(src).as_posix()
            target = dest / rel
            if target.exists() and target.stat().st_size == path.stat().st_size:
                report["kept"].append(rel)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target.with_name(target.name + ".part"))
            target.with_name(target.name + ".part").replace(target)
            report["fetched"].append(rel)
    return report


def download_shhs(
    dest: Path | None,
    offline_from: Path | None = None,
    visits: Sequence[str] = ("shhs1", "shhs2"),
    max_nights: int | None = None,
    opener: Opener | None = None,
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Explain NSRR access; copy from ``offline_from`` or, with ``$NSRR_TOKEN``, download.

    Args:
        dest: target folder (default ``$SLEEPBENCH_DATA/shhs``).
        offline_from: a local folder in NSRR's layout to copy from instead of downloading.
        visits: SHHS visits to fetch.
        max_nights: fetch only the first N EDFs/XMLs per folder (a trial download).
        opener: HTTP opener (tests).
        print_fn: where user-facing text goes.

    Returns:
        ``{"status": "no-token" | "copied" | "downloaded", "kept": [...], "fetched": [...],
        "failed": [...]}`` (relative paths).
    """
    from sleepbench.config import default_data_root

    dest = Path(dest) if dest is not None else default_data_root(DATASET)
    print_fn(ACCESS_TEXT)
    if offline_from is not None:
        report = _copy_offline(Path(offline_from), dest, visits)
        print_fn(f"copied {len(report['fetched'])} files to {dest} ({len(report['kept'])} kept)")
        return {"status": "copied", **report}
    token = os.environ.get(TOKEN_ENV, "")
    if not token.strip():
        print_fn(f"${TOKEN_ENV} is not set: nothing downloaded.")
        return {"status": "no-token", "kept": [], "fetched": [], "failed": []}
    client = NsrrClient(token, opener=opener)
    user = client.authenticate()
    print_fn(f"NSRR token accepted (user {user}); target {dest}")
    report: dict[str, list[str]] = {"kept": [], "fetched": [], "failed": []}
    for folder, pattern in shhs_folders(visits):
        files = _wanted(client.list_files(DATASET, folder), folder, pattern, max_nights)
        total = sum(f.size or 0 for f in files)
        print_fn(f"{folder}/{pattern}: {len(files)} files, {total / 1e9:.2f} GB")
        for file in files:
            target = dest / file.path
            if target.exists() and (file.md5 is None or md5_of(target) == file.md5.lower()):
                report["kept"].append(file.path)
                continue
            try:
                client.download(DATASET, file, target)
            except RuntimeError as err:
                log.error("%s", client.redact(str(err)))
                report["failed"].append(file.path)
                continue
            report["fetched"].append(file.path)
    print_fn(
        f"downloaded {len(report['fetched'])}, kept {len(report['kept'])}, "
        f"failed {len(report['failed'])} files under {dest}"
    )
    if report["failed"]:
        print_fn("failed: " + ", ".join(report["failed"][:10]))
    return {"status": "downloaded", **report}
