"""Fingerprinted, atomic, resumable HDF5 caches shared by all tasks."""

from sleepbench.cache.build import (
    NoUsableRecordingError,
    ProcessedRecord,
    SourceRecord,
    build_cache,
    cache_path,
)
from sleepbench.cache.fingerprint import fingerprint
from sleepbench.cache.lock import LockOwner, LockTimeout, file_lock
from sleepbench.cache.skipped import SkippedRecord
from sleepbench.cache.store import CachedRecord, CacheStore

__all__ = [
    "CacheStore",
    "CachedRecord",
    "LockOwner",
    "LockTimeout",
    "NoUsableRecordingError",
    "ProcessedRecord",
    "SkippedRecord",
    "SourceRecord",
    "build_cache",
    "cache_path",
    "file_lock",
    "fingerprint",
]
