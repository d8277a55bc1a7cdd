"""ESC-50 data: ``audio/*.wav`` + ``meta/esc50.csv`` -> cached 32-kHz clips -> official folds or a
grouped hold-out -> one window per clip (SPECS §4.1, §4.2, §4.7).

Per clip, into the cache (:func:`preprocess_clip`): the wav at its own rate and sample type,
resampled to 32 kHz (HTS-AT's rate). Cache record: ``x`` float32 ``[n]``, ``y`` int8 ``[1]``;
attrs ``fold``, ``target``, ``category``, ``src_file``, ``take``, ``source_fs_hz``, ``subtype``.
Items (:class:`ClipTransform`): the clip repeated end to end to ``preprocess.clip_s`` = 10 s
(or cut), as HTS-AT's ``ESC_Dataset`` does: it joins each 5-s clip to itself rather than padding
it with silence.

The subject of a clip is its **source recording** (``src_file``): clips cut from one freesound
recording are never split across train / validation / test.

Protocols:

* ``esc50_5fold`` (default): the five official folds; fold ``fold`` (0-based: official fold
  ``fold + 1``) tests; validation = ``split.val_fraction`` of the training folds' source
  recordings, stratified by class (HTS-AT selects on the test fold; we never do). Refuses a copy
  that lacks one of the five folds.
* ``esc50_grouped_holdout``: for partial copies: ``split.holdout`` (train / val / test shares)
  of the source recordings, stratified by class and grouped by source; tagged non-official.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.config import to_plain
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.splits import Split, SplitError, holdout_subjects
from sleepbench.data.windows import WindowIndex
from sleepbench.io.audio import WavInfo, read_wav
from sleepbench.io.esc50 import discover_esc50, read_esc50_meta
from sleepbench.signal.fix_length import fix_length
from sleepbench.signal.resample import resample_to

__all__ = [
    "CLIP_FS_HZ",
    "N_CLASSES",
    "PROTOCOLS",
    "ClipTransform",
    "Esc50DataModule",
    "preprocess_clip",
    "read_clip",
]

CLIP_FS_HZ = 32_000
N_CLASSES = 50
N_FOLDS = 5
PROTOCOLS = ("esc50_5fold", "esc50_grouped_holdout")


def read_clip(wav: str | Path, fs_hz: int = CLIP_FS_HZ) -> tuple[np.ndarray, WavInfo]:
    """A clip as the cache stores it: read and resampled to ``fs_hz``.

    The cache build (:func:`preprocess_clip`) and ``sleepbench predict`` both read a clip here.

    Args:
        wav: the clip's ``.wav``.
        fs_hz: the rate of the result (Hz; 32 kHz).

    Returns:
        ``(x, info)``: float32 ``[n]`` at ``fs_hz`` and the file's
        :class:`~sleepbench.io.audio.WavInfo` (its own rate and length).

    Raises:
        RecordingError: the wav cannot be read (empty, NaN, bad header...).
    """
    audio, info = read_wav(Path(wav))
    return resample_to(audio, info.fs_hz, fs_hz).astype(np.float32), info


def preprocess_clip(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """One ESC-50 clip resampled to ``cfg["fs_hz"]`` (32 kHz); the cache build's function.

    Args:
        source: ``meta`` has ``wav`` and the clip's csv row (``fold``, ``target``, ``category``,
            ``src_file``, ``take``).
        cfg: ``{"fs_hz": 32000}``.

    Returns:
        ``x`` float32 ``[n]``, ``y`` int8 ``[1]`` and the attrs of the module docstring.

    Raises:
        RecordingError: the wav cannot be read (empty, NaN, bad header...).
    """
    fs = int(cfg.get("fs_hz", CLIP_FS_HZ))
    meta = source.meta
    x, info = read_clip(meta["wav"], fs)
    return ProcessedRecord(
        arrays={"x": x, "y": np.array([int(meta["target"])], dtype=np.int8)},
        attrs={
            "fold": int(meta["fold"]),
            "target": int(meta["target"]),
            "category": str(meta["category"]),
            "src_file": str(meta["src_file"]),
            "take": str(meta["take"]),
            "source_fs_hz": float(info.fs_hz),
            "subtype": info.subtype,
            "duration_s": info.n_samples / info.fs_hz,
        },
    )


class ClipTransform:
    """Clip samples -> float32 ``[n_samples]``: repeated end to end (no fade) or cut (HTS-AT)."""

    def __init__(self, n_samples: int) -> None:
        self.n_samples = int(n_samples)

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return fix_length(x, self.n_samples, 0), np.asarray(y, dtype=np.int64)


class Esc50DataModule(CachedDataModule):
    """ESC-50 environmental sound clips -> 50 classes (method 003's second benchmark)."""

    task_name = "esc50"
    reader_version = "esc50-1"
    preprocess_fn = staticmethod(preprocess_clip)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig | None) -> list[SourceRecord]:
        """Every clip listed in ``meta/esc50.csv``; a listed clip whose wav is absent is listed
        with ``missing`` set (reported as skipped). Without the csv there is no data."""
        root = Path(root)
        if not root.is_dir():
            return []
        meta_csv, audio_dir = discover_esc50(root)
        if meta_csv is None:
            return []
        if audio_dir is None:  # no clip on disk: every listed clip is reported missing
            audio_dir = meta_csv.parent.parent / "audio"
        sources = []
        for clip in read_esc50_meta(meta_csv):
            wav = audio_dir / clip.filename
            missing = (
                None
                if wav.is_file()
                else f"{clip.filename} is listed in {meta_csv} but not in {audio_dir}"
            )
            meta = {
                "wav": str(wav),
                "fold": clip.fold,
                "target": clip.target,
                "category": clip.category,
                "src_file": clip.src_file,
                "take": clip.take,
            }
            record_id = Path(clip.filename).stem
            paths = (wav,) if missing is None else (meta_csv,)
            sources.append(SourceRecord(record_id, clip.src_file, paths, meta, missing))
        return sources

    def preprocess_config(self) -> dict[str, Any]:
        """What changes the cache: the resampling rate (padding is an item transform)."""
        pre = to_plain(self.cfg.preprocess) if "preprocess" in self.cfg else {}
        return {"fs_hz": int(pre.get("fs_hz", CLIP_FS_HZ))}

    # ---- split -----------------------------------------------------------------------------
    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """``esc50_5fold`` or ``esc50_grouped_holdout`` over source recordings."""
        protocol = str(self.cfg.protocol)
        fold, seed = int(self.cfg.fold), int(self.cfg.seed)
        split_cfg = self.cfg.get("split") or {}
        val_fraction = float(split_cfg.get("val_fraction", 0.1))
        attrs = {
            r.record_id: r.attrs for r in self.store.records if r.record_id in subject_of_record
        }
        by_source: dict[str, list[str]] = {}
        strata: dict[str, int] = {}
        for rid, a in attrs.items():
            by_source.setdefault(subject_of_record[rid], []).append(rid)
            strata[subject_of_record[rid]] = int(a["target"])
        notes: dict[str, str] = {"sources": str(len(by_source))}
        if protocol == "esc50_5fold":
            if not 0 <= fold < N_FOLDS:
                raise SplitError(f"fold={fold} is outside 0..{N_FOLDS - 1} for esc50_5fold")
            present = sorted({int(a["fold"]) for a in attrs.values()})
            if present != list(range(1, N_FOLDS + 1)):
                raise SplitError(
                    f"esc50_5fold needs clips of all five official folds; the data under "
                    f"{self.root} has folds {present}. Use protocol=esc50_grouped_holdout for a "
                    "partial copy"
                )
            official = fold + 1
            test = sorted(r for r, a in attrs.items() if int(a["fold"]) == official)
            rest = {s: rs for s, rs in by_source.items() if int(attrs[rs[0]]["fold"]) != official}
            train, val = holdout_subjects(rest, val_fraction, seed + fold, strata)
            notes["official_fold"] = str(official)
            split = Split(protocol, fold, seed, train, val, test, notes=notes)
        elif protocol == "esc50_grouped_holdout":
            f_train, f_val, f_test = (float(f) for f in split_cfg.get("holdout", (0.7, 0.1, 0.2)))
            rest_ids, test = holdout_subjects(
                by_source, f_test / (f_train + f_val + f_test), seed + fold, strata
            )
            kept = set(rest_ids)
            rest = {s: rs for s, rs in by_source.items() if rs[0] in kept}
            train, val = holdout_subjects(rest, f_val / (f_train + f_val), seed + fold + 1, strata)
            notes["non_official"] = "stratified by class, grouped by source recording"
            split = Split(protocol, fold, seed, train, val, test, notes=notes)
        else:
            raise SplitError(f"unknown protocol {protocol!r} for esc50; known: {PROTOCOLS}")
        return split.require_parts(f"the {len(attrs)} clips under {self.root}")

    # ---- windows ---------------------------------------------------------------------------
    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """One window per clip: all its samples, its one label."""
        idx = np.array([self.store.index_of(r) for r in record_ids], dtype=np.int64)
        n = np.array([self.store.records[i].shapes["x"][-1] for i in idx], dtype=np.int64)
        zeros = np.zeros(len(idx), dtype=np.int64)
        return WindowIndex(idx, zeros, n, zeros, zeros + 1)

    def transform(self, stage: str) -> ClipTransform:
        """Clips repeated to ``preprocess.clip_s`` seconds in every stage."""
        pre = self.cfg.get("preprocess") or {}
        fs = int(pre.get("fs_hz", CLIP_FS_HZ))
        return ClipTransform(round(float(pre.get("clip_s", 10.0)) * fs))

    def setup(self, stage: str | None = None) -> None:
        """Shared setup plus clips per class in each part."""
        if self.store is not None:
            return
        super().setup(stage)
        self.provenance["classes_per_part"] = {
            part: int(len(np.unique(ds.labels())))
            for part, ds in (
                ("train", self.train_set),
                ("val", self.val_set),
                ("test", self.test_set),
            )
        }
