"""Fingerprinted, atomic, resumable HDF5 caches shared by all tasks."""

from sleepbench.cache.build import ProcessedRecord, SourceRecord, build_cache, cache_path
from sleepbench.cache.fingerprint import fingerprint
from sleepbench.cache.store import CachedRecord, CacheStore

__all__ = [
    "CacheStore",
    "CachedRecord",
    "ProcessedRecord",
    "SourceRecord",
    "build_cache",
    "cache_path",
    "fingerprint",
]
