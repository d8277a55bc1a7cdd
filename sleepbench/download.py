"""Dataset downloads: resumable, checked against the database's own checksums, or offline.

PhysioNet databases publish ``SHA256SUMS.txt``; a file whose digest matches is never fetched
again (that is what makes a broken download resumable), a mismatching one is fetched anew, and
the run ends with every file verified. ``offline_from`` takes the files from a local folder
instead (a copy made elsewhere, a USB disk) and verifies them the same way.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from sleepbench.errors import UserError

log = logging.getLogger(__name__)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def parse_sha256sums(text: str) -> dict[str, str]:
    """``SHA256SUMS.txt`` content -> {relative path: hex digest}."""
    out = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2:
            out[parts[1].lstrip("*").strip()] = parts[0].lower()
    return out


def fetch_url(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as fh:  # noqa: S310
        shutil.copyfileobj(resp, fh)
    tmp.replace(dest)


def sync_verified(
    dest: Path,
    checksums: dict[str, str],
    fetch: Callable[[str, Path], None],
    wanted: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Make ``dest`` hold every wanted file with the right digest.

    Args:
        dest: target folder.
        checksums: relative path -> SHA-256.
        fetch: ``(relative path, target path) -> None`` getting one file.
        wanted: subset of relative paths (default: all in ``checksums``).

    Returns:
        ``{"kept": [...], "fetched": [...], "failed": [...]}``.

    Raises:
        RuntimeError: some file still mismatches after fetching (listed in the message).
    """
    report: dict[str, list[str]] = {"kept": [], "fetched": [], "failed": []}
    for rel in sorted(wanted if wanted is not None else checksums):
        target = dest / rel
        if target.exists() and sha256_of(target) == checksums[rel]:
            report["kept"].append(rel)
            continue
        try:
            fetch(rel, target)
        except OSError as err:
            log.error("could not get %s: %s", rel, err)
            report["failed"].append(rel)
            continue
        if sha256_of(target) != checksums[rel]:
            target.unlink()
            report["failed"].append(rel)
        else:
            report["fetched"].append(rel)
    if report["failed"]:
        raise RuntimeError(
            f"{len(report['failed'])} files failed verification: {report['failed'][:10]}"
        )
    return report


def physionet_download(
    db: str,
    version: str,
    dest: Path,
    wanted: Callable[[str], bool] | None = None,
    offline_from: Path | None = None,
) -> dict[str, list[str]]:
    """Download (or copy from ``offline_from``) a PhysioNet database, verified by SHA256SUMS.txt.

    Args:
        db: PhysioNet slug (``"apnea-ecg"``, ``"sleep-edfx"``).
        version: database version (``"1.0.0"``).
        dest: target folder.
        wanted: predicate on relative paths (default: all files).
        offline_from: local folder holding the files and their ``SHA256SUMS.txt``.

    Returns:
        The :func:`sync_verified` report.
    """
    dest.mkdir(parents=True, exist_ok=True)
    sums_path = dest / "SHA256SUMS.txt"
    import wfdb.io.download as wfdb_download

    # wfdb's configured PhysioNet index (users behind a mirror set it once for wfdb and us)
    base = f"{wfdb_download.config.db_index_url.rstrip('/')}/{db}/{version}/"
    if offline_from is not None:
        src_sums = Path(offline_from) / "SHA256SUMS.txt"
        if not src_sums.exists():
            raise FileNotFoundError(
                f"{src_sums} missing: offline mode needs the database's checksums"
            )
        if src_sums.resolve() != sums_path.resolve():  # same folder: only verify what is there
            shutil.copyfile(src_sums, sums_path)

        def fetch(rel: str, target: Path) -> None:
            src = Path(offline_from) / rel
            if not src.exists():
                raise FileNotFoundError(f"{src} missing")
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.resolve() != target.resolve():
                shutil.copyfile(src, target)
    else:
        fetch_url(base + "SHA256SUMS.txt", sums_path)

        def fetch(rel: str, target: Path) -> None:
            fetch_url(base + rel, target)

    checksums = parse_sha256sums(sums_path.read_text())
    selected = [r for r in checksums if wanted is None or wanted(r)]
    return sync_verified(dest, checksums, fetch, selected)


# ---- local copies (a folder or a zip archive given with --offline-from) ---------------------


def require_source(path: Path) -> Path:
    """``path`` if it is a folder or a ``.zip`` file; a :class:`UserError` otherwise."""
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".zip"):
        return path
    what = "does not exist" if not path.exists() else "is neither a folder nor a .zip archive"
    raise UserError(f"--offline-from {path} {what}")


def unpack_zip(archive: Path, into: Path) -> Path:
    """Unpack a zip archive into a fresh folder ``into`` and return it.

    ``zipfile`` drops absolute paths and ``..`` components, so nothing lands outside ``into``.

    Raises:
        UserError: the archive is not a readable zip (a truncated download, another format).
    """
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as err:
        shutil.rmtree(into, ignore_errors=True)
        raise UserError(
            f"{archive} is not a readable zip archive ({err}): download it again"
        ) from None
    return into


def copy_file(src: Path, target: Path, move: bool = False) -> bool:
    """Put ``src`` at ``target`` unless a file of the same size is there already.

    Written as ``<target>.part`` then renamed, so an interrupted copy never leaves a short file
    under the final name. ``move`` renames instead of copying (for files unpacked into a staging
    folder). Returns whether the file was copied.
    """
    if target.exists() and target.stat().st_size == src.stat().st_size:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    if move:
        shutil.move(str(src), str(part))
    else:
        shutil.copy2(src, part)
    part.replace(target)
    return True
