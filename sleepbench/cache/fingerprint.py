"""Cache fingerprints: a digest of everything that decides a cache file's content."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Bump when the on-disk layout written by sleepbench.cache.build changes.
# 2: the skipped table has four columns (record_id, files, error_type, message).
CACHE_FORMAT_VERSION = 2


def source_stamp(paths: Sequence[Path]) -> list[tuple[str, int, int]]:
    """``(file name, size in bytes, mtime in ns)`` of each existing source file, sorted by name.

    Size and mtime (not a content hash) keep fingerprinting a 2,000-night dataset cheap; any
    rewrite of a file changes its mtime.
    """
    stamps = []
    for p in paths:
        p = Path(p)
        if p.exists():
            st = p.stat()
            stamps.append((p.name, st.st_size, st.st_mtime_ns))
    return sorted(stamps)


def fingerprint(
    task: str,
    reader_version: str,
    preprocess: Mapping[str, Any],
    sources: Mapping[str, Sequence[Path]],
) -> str:
    """Digest of (task, reader version, preprocessing config, cache format, source files).

    Args:
        task: task name.
        reader_version: version string of the task's reader + preprocessing code.
        preprocess: the task's preprocessing config (plain dict).
        sources: record id -> its source files.

    Returns:
        16 hex characters; changes whenever any input changes.
    """
    payload = {
        "task": task,
        "reader_version": reader_version,
        "format": CACHE_FORMAT_VERSION,
        "preprocess": preprocess,
        "sources": {rid: source_stamp(paths) for rid, paths in sorted(sources.items())},
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
