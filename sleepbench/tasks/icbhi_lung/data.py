"""ICBHI 2017 data: recordings + cycle files -> cached 16-kHz recordings with their cycles ->
official or patient-wise splits -> one window per respiratory cycle (SPECS §4.1, §4.7).

Per recording, into the cache (:func:`preprocess_recording`): the wav read at its own rate and
sample type (:func:`sleepbench.io.audio.read_wav`), resampled to 16 kHz (polyphase, anti-aliased);
its cycles (:func:`sleepbench.io.icbhi.read_cycles`) as sample ranges at 16 kHz and their class
(normal 0 / crackle 1 / wheeze 2 / both 3). Cache record: ``x`` float32 ``[n]``, ``y`` int8
``[n_cycles]``, ``cycle_start`` / ``cycle_stop`` int64 ``[n_cycles]``; attrs ``patient``,
``device``, ``location``, ``mode``, ``source_fs_hz``, ``subtype``, ``duration_s``, ``n_cycles``,
``diagnosis``.

The 16-kHz recording is faded in and out over ``fs / 16`` samples before its cycles are cut, as
the Patch-Mix code does (:func:`sleepbench.signal.fix_length.fade_in_out`).

Items (:class:`CycleTransform`): the cycle's samples fixed to ``preprocess.cycle_s`` (8 s) by
repeating the cycle end to end and fading the window's last ``fs / 16`` samples out, longer cycles
cut (:func:`sleepbench.signal.fix_length.fix_length`, the Patch-Mix convention SPECS §4.7 words
as "a short fade at the joins"); SpecAugment runs inside the network.

Protocols (split files like every task):

* ``icbhi_official`` (default): the official 60/40 recording list; validation =
  ``split.val_fraction`` of the training side's patients, drawn patient-wise (stratified by
  diagnosis) among the patients that have no test recording. The list is recording-level: the
  patients found on both sides (156 and 218 on the full database) are named in the split's notes
  and the result rows are tagged not patient-disjoint.
* ``icbhi_patient_folds``: the database's patient fold list (5 folds); fold ``fold`` tests, a
  patient-wise ``split.val_fraction`` of the others validates. Patient-disjoint.

Either protocol refuses (:class:`~sleepbench.data.splits.SplitError`) when its list is not on
disk, when a cached recording is not on it, or when a part of the split would be empty.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.config import to_plain
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.samplers import ClassBalancedSampler
from sleepbench.data.splits import Split, SplitError, holdout_subjects
from sleepbench.data.windows import WindowDataset, WindowIndex
from sleepbench.errors import RecordingError
from sleepbench.io.audio import WavInfo, read_wav
from sleepbench.io.icbhi import (
    CLASSES,
    cycle_samples,
    parse_icbhi_name,
    read_cycles,
    read_diagnoses,
    read_patient_folds,
)
from sleepbench.io.icbhi_layout import IcbhiLayout, discover_icbhi, read_official_split
from sleepbench.signal.fix_length import fade_in_out, fix_length
from sleepbench.signal.resample import resample_to

__all__ = [
    "CYCLE_FS_HZ",
    "PROTOCOLS",
    "CycleTransform",
    "IcbhiDataModule",
    "preprocess_recording",
    "read_recording",
]

log = logging.getLogger(__name__)

CYCLE_FS_HZ = 16_000
PROTOCOLS = ("icbhi_official", "icbhi_patient_folds")
#: full-database size, to tag partial copies
FULL_RECORDINGS = 920


def read_recording(wav: str | Path, fs_hz: int = CYCLE_FS_HZ) -> tuple[np.ndarray, WavInfo]:
    """A recording as the cache stores it: read, resampled to ``fs_hz``, faded in and out.

    The cache build (:func:`preprocess_recording`) and ``sleepbench predict`` both read a
    recording here; the cycles are cut from its result.

    Args:
        wav: the recording's ``.wav``.
        fs_hz: the rate of the result (Hz; 16 kHz).

    Returns:
        ``(x, info)``: float32 ``[n]`` at ``fs_hz``, its first and last ``fs_hz / 16`` samples
        faded (:func:`~sleepbench.signal.fix_length.fade_in_out`), and the file's
        :class:`~sleepbench.io.audio.WavInfo` (its own rate and length).

    Raises:
        RecordingError: the wav cannot be read (empty, NaN, bad header...).
    """
    audio, info = read_wav(wav)
    x = fade_in_out(resample_to(audio, info.fs_hz, fs_hz).astype(np.float32), fs_hz // 16)
    return x, info


def preprocess_recording(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """One ICBHI recording resampled to 16 kHz with its cycles; the cache build's function.

    Args:
        source: ``meta`` has ``wav``, ``txt`` and ``diagnosis``.
        cfg: ``preprocess`` config (only ``fs_hz`` is read here; default 16000).

    Returns:
        ``x``, ``y``, ``cycle_start``, ``cycle_stop`` and the attrs of the module docstring.

    Raises:
        RecordingError: unreadable wav or cycle file, a cycle outside the recording, no cycles.
    """
    fs = int(cfg.get("fs_hz", CYCLE_FS_HZ))
    wav, txt = Path(source.meta["wav"]), Path(source.meta["txt"])
    name = parse_icbhi_name(wav.stem, wav)
    x, info = read_recording(wav, fs)
    cycles = read_cycles(txt)  # refuses a file without cycles
    duration_s = info.n_samples / info.fs_hz
    # cycles checked against the recording's own length, then placed at the new rate
    start, stop = cycle_samples(txt, cycles, fs, len(x))
    return ProcessedRecord(
        arrays={
            "x": x,
            "y": np.array([c.label for c in cycles], dtype=np.int8),
            "cycle_start": start,
            "cycle_stop": stop,
        },
        attrs={
            "patient": name.patient,
            "device": name.device,
            "location": name.location,
            "mode": name.mode,
            "source_fs_hz": float(info.fs_hz),
            "subtype": info.subtype,
            "duration_s": float(duration_s),
            "n_cycles": len(cycles),
            "diagnosis": str(source.meta.get("diagnosis") or "unknown"),
        },
    )


class CycleTransform:
    """Cycle samples -> float32 ``[n]`` of ``cycle_s`` seconds (repeat-padded and faded out / cut).

    Args:
        n_samples: output length (8 s x 16 kHz = 128,000).
        fade_samples: linear fade-out over the window's last samples (``fs / 16``).
    """

    def __init__(self, n_samples: int, fade_samples: int) -> None:
        self.n_samples = int(n_samples)
        self.fade_samples = int(fade_samples)

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return fix_length(x, self.n_samples, self.fade_samples), np.asarray(y, dtype=np.int64)


class IcbhiDataModule(CachedDataModule):
    """ICBHI 2017 respiratory cycles -> normal / crackle / wheeze / both (method 003)."""

    task_name = "icbhi_lung"
    reader_version = "icbhi-1"
    preprocess_fn = staticmethod(preprocess_recording)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig | None) -> list[SourceRecord]:
        """Every recording under ``root``; a wav without its cycle file (or the reverse), or a
        file name that is not an ICBHI name, is listed with ``missing`` set (reported as skipped)."""
        root = Path(root)
        if not root.is_dir():
            return []
        layout = discover_icbhi(root)
        diagnoses = read_diagnoses(layout.diagnoses) if layout.diagnoses else {}
        sources = []
        for stem, (wav, txt) in sorted(layout.recordings.items()):
            missing = None
            try:
                patient = parse_icbhi_name(stem, wav or txt).patient
            except RecordingError as err:
                patient, missing = stem.split("_", 1)[0], err.reason
            if missing is None and wav is None:
                missing = f"{txt} has no recording: {stem}.wav not found under {root}"
            elif missing is None and txt is None:
                missing = f"{wav} has no cycle annotations: {stem}.txt not found under {root}"
            paths = tuple(p for p in (wav, txt) if p is not None)
            meta = {
                "wav": str(wav) if wav else None,
                "txt": str(txt) if txt else None,
                "diagnosis": diagnoses.get(patient),
            }
            sources.append(SourceRecord(stem, patient, paths, meta, missing))
        return sources

    def layout(self) -> IcbhiLayout:
        """The dataset's files under ``data.root``."""
        return discover_icbhi(self.root)

    def preprocess_config(self) -> dict[str, Any]:
        """What changes the cache: the resampling rate (the cycle length is an item transform)."""
        pre = to_plain(self.cfg.preprocess) if "preprocess" in self.cfg else {}
        return {"fs_hz": int(pre.get("fs_hz", CYCLE_FS_HZ))}

    # ---- split -----------------------------------------------------------------------------
    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """``icbhi_official`` or ``icbhi_patient_folds`` over the cached recordings."""
        protocol = str(self.cfg.protocol)
        fold, seed = int(self.cfg.fold), int(self.cfg.seed)
        val_fraction = float((self.cfg.get("split") or {}).get("val_fraction", 0.1))
        layout = self.layout()
        records = sorted(subject_of_record)
        diagnosis = {
            r.subject_id: str(r.attrs.get("diagnosis", "unknown")) for r in self.store.records
        }
        codes = {d: i for i, d in enumerate(sorted(set(diagnosis.values())))}
        strata = {p: codes[d] for p, d in diagnosis.items()}
        notes: dict[str, str] = {}
        if len(records) < FULL_RECORDINGS:
            notes["partial"] = f"{len(records)} of {FULL_RECORDINGS} recordings"
        if protocol == "icbhi_official":
            if fold != 0:
                raise SplitError(f"icbhi_official has one fold (fold=0), got fold={fold}")
            if layout.official_split is None:
                raise SplitError(
                    f"icbhi_official needs the official train/test list (official_split.txt or "
                    f"ICBHI_challenge_train_test.txt) under {self.root}; use "
                    "protocol=icbhi_patient_folds or add the list"
                )
            side = read_official_split(layout.official_split, known_stems=set(records))
            _refuse_unlisted(records, side, layout.official_split, protocol)
            train_side = [r for r in records if side[r] == "train"]
            test = [r for r in records if side[r] == "test"]
            test_patients = {subject_of_record[r] for r in test}
            both = sorted({subject_of_record[r] for r in train_side} & test_patients)
            # validation patients come only from patients with no test recording
            by_patient: dict[str, list[str]] = {}
            for r in train_side:
                by_patient.setdefault(subject_of_record[r], []).append(r)
            candidates = {p: rs for p, rs in by_patient.items() if p not in test_patients}
            _, val = holdout_subjects(candidates, val_fraction, seed, strata)
            train = sorted(set(train_side) - set(val))
            notes["patients_on_both_sides"] = ", ".join(both) or "none"
            notes["official_list"] = layout.official_split.name
            split = Split(
                protocol, fold, seed, train, sorted(val), test, leaky=bool(both), notes=notes
            )
        elif protocol == "icbhi_patient_folds":
            if layout.patient_folds is None:
                raise SplitError(
                    f"icbhi_patient_folds needs the patient fold list (patient_list_foldwise.txt) "
                    f"under {self.root}"
                )
            folds = read_patient_folds(layout.patient_folds)
            n_folds = max(folds.values()) + 1 if folds else 0
            if not 0 <= fold < n_folds:
                raise SplitError(f"fold={fold} is outside 0..{n_folds - 1} for {protocol}")
            unlisted = sorted({subject_of_record[r] for r in records} - set(folds))
            if unlisted:
                raise SplitError(
                    f"{protocol}: patients {', '.join(unlisted[:10])} are not in "
                    f"{layout.patient_folds}"
                )
            test = [r for r in records if folds[subject_of_record[r]] == fold]
            rest: dict[str, list[str]] = {}
            for r in records:
                if folds[subject_of_record[r]] != fold:
                    rest.setdefault(subject_of_record[r], []).append(r)
            train, val = holdout_subjects(rest, val_fraction, seed + fold, strata)
            split = Split(protocol, fold, seed, train, val, test, notes=notes)
        else:
            raise SplitError(f"unknown protocol {protocol!r} for icbhi_lung; known: {PROTOCOLS}")
        return split.require_parts(f"the {len(records)} recordings under {self.root}")

    # ---- windows ---------------------------------------------------------------------------
    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """One window per cycle: ``x`` = the cycle's samples, ``y`` = its class."""
        parts = []
        for rid in record_ids:
            i = self.store.index_of(rid)
            start = self.store.read(i, "cycle_start")
            stop = self.store.read(i, "cycle_stop")
            k = np.arange(len(start), dtype=np.int64)
            parts.append(WindowIndex(np.full(len(k), i), start, stop, k, k + 1))
        return WindowIndex.concat(parts)

    def transform(self, stage: str) -> CycleTransform:
        """Cycles fixed to ``preprocess.cycle_s`` seconds in every stage."""
        pre = self.cfg.get("preprocess") or {}
        fs = int(pre.get("fs_hz", CYCLE_FS_HZ))
        return CycleTransform(round(float(pre.get("cycle_s", 8.0)) * fs), fs // 16)

    def train_sampler(self, dataset: WindowDataset) -> ClassBalancedSampler | None:
        """``data.class_power`` null: plain shuffling (the recipe); a number p in [0, 1]: draw a
        class with probability proportional to (its training cycles) ** p, then one of its
        cycles (:class:`~sleepbench.data.samplers.ClassBalancedSampler`; 0 = class-uniform)."""
        power = self.cfg.data.get("class_power")
        if power is None:
            return None
        return ClassBalancedSampler(dataset.labels().tolist(), power=float(power))

    def setup(self, stage: str | None = None) -> None:
        """Shared setup plus cycle counts per class, part and device in the provenance."""
        if self.store is not None:
            return
        super().setup(stage)
        counts: dict[str, dict[str, int]] = {}
        for part, ds in (("train", self.train_set), ("val", self.val_set), ("test", self.test_set)):
            labels = ds.labels()
            counts[part] = {c: int((labels == k).sum()) for k, c in enumerate(CLASSES)}
        self.provenance["cycles"] = counts
        devices: dict[str, dict[str, int]] = {}
        for part in ("train", "val", "test"):
            for rid in getattr(self.split, part):
                rec = self.store.records[self.store.index_of(rid)]
                dev = str(rec.attrs["device"])
                devices.setdefault(part, {}).setdefault(dev, 0)
                devices[part][dev] += int(rec.attrs["n_cycles"])
        self.provenance["cycles_per_device"] = devices

    def device_of_record(self) -> list[str]:
        """Recording device of every cached record, by store position."""
        return [str(r.attrs["device"]) for r in self.store.records]


def _refuse_unlisted(
    records: list[str], side: Mapping[str, str], path: Path, protocol: str
) -> None:
    unlisted = [r for r in records if r not in side]
    if unlisted:
        raise SplitError(
            f"{protocol}: {len(unlisted)} recordings are not in {path} "
            f"({', '.join(unlisted[:5])}{'...' if len(unlisted) > 5 else ''})"
        )
