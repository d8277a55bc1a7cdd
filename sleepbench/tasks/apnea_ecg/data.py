"""Apnea-ECG data: records -> cached minute-labelled ECG -> protocol splits -> minute windows.

Protocols:

* ``official`` (default): train/validate on the 35 released records (a01-a20, b01-b05, c01-c10)
  with a subject-wise validation hold-out stratified by A/B/C class; test per minute on the 35
  withheld records x01-x35 (labels from their ``.apn`` files or the challenge's
  ``event-2-answers``). The ``r``/``er`` duplicates are left out. Label ``i`` is paired with
  samples ``[6000 i, 6000 (i + 1))`` (the corrected alignment, SPECS §2.1).
* ``parity``: the upstream notebook's protocol, kept for comparison only and flagged leaky: all
  a/b/c records including the eight ``r`` duplicates, windows every 3000 samples with the i-th
  minute label attached to the window starting at sample 3000 i (the upstream misalignment), and
  a random stratified 70/10/20 split of windows (minutes of one subject in train and test).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from sleepbench.cache.build import ProcessedRecord, SourceRecord
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.splits import Split, holdout_subjects
from sleepbench.data.windows import WindowIndex, regular_windows
from sleepbench.errors import RecordingError
from sleepbench.io.apnea_ecg_labels import (
    DUPLICATES,
    RELEASED,
    WITHHELD,
    apnea_class,
    label_to_int,
    read_apnea_ecg_record,
    read_event2_answers,
    subject_of,
)
from sleepbench.io.wfdb import read_wfdb_record, record_stem
from sleepbench.recording import Recording, Signal
from sleepbench.signal.augment import amplitude_scale, baseline_wander, gaussian_noise
from sleepbench.signal.scaling import robust_mean_std

FS_HZ = 100.0
MINUTE_SAMPLES = 6000
ANSWERS_FILE = "event-2-answers"
CLASS_CODE = {"A": 0, "B": 1, "C": 2}


def ecg_channel(rec: Recording, source: Path) -> Signal:
    """The record's ECG: its first channel (for the ``r``/``er`` duplicates the ECG is first too,
    as upstream reads it), checked to be at :data:`FS_HZ` (100 Hz).

    Args:
        rec: the record as :func:`~sleepbench.io.wfdb.read_wfdb_record` read it (all channels).
        source: the record (stem) named in the error message.

    Raises:
        RecordingError: the first channel is not sampled at 100 Hz.
    """
    signal = next(iter(rec.signals.values()))
    if abs(signal.fs_hz - FS_HZ) > 1e-6:
        raise RecordingError(source, f"sampling rate {signal.fs_hz} Hz, expected {FS_HZ} Hz")
    return signal


def minute_samples(data: np.ndarray, n_minutes: int) -> np.ndarray:
    """The first ``n_minutes`` whole minutes of an ECG at 100 Hz, as the network reads them.

    Args:
        data: 1-D samples (mV) at 100 Hz.
        n_minutes: minutes wanted; a last minute that the signal covers only in part is
            edge-padded (its last sample repeated) to 6000 samples.

    Returns:
        float32 ``[n_minutes * 6000]``: minute ``i`` is samples ``[6000 i, 6000 (i + 1))``.
    """
    x = data[: n_minutes * MINUTE_SAMPLES]
    if x.shape[0] < n_minutes * MINUTE_SAMPLES:
        x = np.pad(x, (0, n_minutes * MINUTE_SAMPLES - x.shape[0]), mode="edge")
    return x.astype(np.float32)


def read_ecg_record(stem: str | Path, max_nan_run_s: float) -> Signal:
    """The ECG of a WFDB record of any name, read as :func:`preprocess_record` reads it but
    without labels (``sleepbench predict``: a new recording has no ``.apn`` to require).

    Args:
        stem: record path without extension (or with that of one of its files).
        max_nan_run_s: longest gap in seconds that is interpolated (``preprocess.max_nan_run_s``).

    Returns:
        The first channel at 100 Hz (see :func:`ecg_channel`).

    Raises:
        RecordingError: unreadable, truncated or missing header or signal file, a flat or
            gapped channel, or another rate than 100 Hz.
    """
    stem = record_stem(stem)
    # the arguments of read_apnea_ecg_record's own read: every channel, the record name as id
    rec = read_wfdb_record(stem, None, stem.name, stem.name, max_nan_run_s=max_nan_run_s)
    return ecg_channel(rec, stem)


def preprocess_record(source: SourceRecord, cfg: Mapping[str, Any]) -> ProcessedRecord:
    """Read one record and return its ECG and per-minute labels for the cache.

    Returns ``x`` float32 ``[1, n_minutes * 6000]`` (raw mV, no filtering or resampling, as
    upstream; a last partial minute is edge-padded) and ``y`` int8 ``[n_minutes]`` (1 = apnea).

    Raises:
        RecordingError: unreadable signal, wrong rate, missing or unknown labels, NaN runs.
    """
    stem = Path(source.paths[0]).with_suffix("")
    answers_path = source.meta.get("answers")
    answers = read_event2_answers(answers_path) if answers_path else None
    rec = read_apnea_ecg_record(
        stem, channels=None, answers=answers, max_nan_run_s=float(cfg["max_nan_run_s"])
    )
    if rec.epoch_labels is None:
        raise RecordingError(stem, "no per-minute labels (.apn missing and not in event-2-answers)")
    signal = ecg_channel(rec, stem)
    n_min = len(rec.epoch_labels)
    x = minute_samples(signal.data, n_min)
    y = np.array([label_to_int[s] for s in rec.epoch_labels], dtype=np.int8)
    return ProcessedRecord(
        arrays={"x": x[None, :], "y": y},
        attrs={
            "fs_hz": FS_HZ,
            "n_minutes": n_min,
            "n_signal_samples": int(signal.data.shape[0]),
            "split": rec.meta.get("split", ""),
            "apnea_class": apnea_class(rec.epoch_labels),
        },
    )


class ECGTransform:
    """Per-window augmentation (training only) then global robust normalisation.

    Args:
        mean, std: normalisation statistics (mV) from the training windows.
        augment: apply the upstream augmentations, each with probability ``p``.
        p: probability of each augmentation.
        noise_sigma: Gaussian noise std (mV).
        wander_amplitude: baseline wander amplitude (mV), two periods per window.
    """

    def __init__(
        self,
        mean: float,
        std: float,
        augment: bool,
        p: float = 0.5,
        noise_sigma: float = 0.01,
        wander_amplitude: float = 0.05,
    ) -> None:
        self.mean, self.std = mean, std
        self.augment, self.p = augment, p
        self.noise_sigma, self.wander_amplitude = noise_sigma, wander_amplitude

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if self.augment:
            if rng.random() < self.p:
                x = amplitude_scale(x, rng, 0.8, 1.2)
            if rng.random() < self.p:
                x = gaussian_noise(x, rng, self.noise_sigma)
            if rng.random() < self.p:
                x = baseline_wander(x, rng, self.wander_amplitude, periods=2.0)
        return ((x - self.mean) / self.std).astype(np.float32), y


class ApneaECGDataModule(CachedDataModule):
    """PhysioNet Apnea-ECG per-minute apnea detection from single-lead ECG (100 Hz)."""

    task_name = "apnea_ecg"
    reader_version = "apnea-ecg-wfdb-1"
    preprocess_fn = staticmethod(preprocess_record)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig) -> list[SourceRecord]:
        """Records under ``root``: released + withheld (+ ``r`` duplicates for ``parity``).

        A record with any of its files present is listed; one lacking its header, signal or
        labels (``.apn``; for withheld records the ``event-2-answers`` file) is flagged
        ``missing``, naming the absent file, and the cache build lists it as skipped.
        """
        root = Path(root)
        if not root.is_dir():
            return []
        answers = root / ANSWERS_FILE
        names = list(RELEASED) + list(WITHHELD)
        if cfg.get("protocol") == "parity":
            names = [n for n in RELEASED] + list(DUPLICATES)
        sources = []
        for name in names:
            hea, dat, apn = (root / f"{name}{ext}" for ext in (".hea", ".dat", ".apn"))
            if not (hea.exists() or dat.exists() or apn.exists()):
                continue
            paths = [hea, dat, apn]
            meta: dict[str, Any] = {}
            labels = apn
            if name in WITHHELD:  # labelled by the challenge's answers, not by an .apn
                labels = answers
                if answers.exists():
                    paths.append(answers)
                    meta["answers"] = str(answers)
            absent = [p for p in (hea, dat, labels) if not p.exists()]
            missing = None
            if absent:
                missing = f"record {name} lacks {', '.join(str(p) for p in absent)}"
            sources.append(SourceRecord(name, subject_of(name), tuple(paths), meta, missing))
        return sources

    def preprocess_config(self) -> dict[str, Any]:
        """Preprocessing keys that change the cache (``cfg.preprocess``)."""
        return {"max_nan_run_s": float(self.cfg.preprocess.max_nan_run_s)}

    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """The protocol's split; see the module docstring."""
        records = sorted(subject_of_record)
        seed = int(self.cfg.seed) + int(self.cfg.fold)
        if self.cfg.protocol == "parity":
            return Split(
                "parity",
                int(self.cfg.fold),
                seed,
                records,
                records,
                records,
                leaky=True,
                notes={"leak": "segment-level random split; r-duplicates included"},
            )
        released = [r for r in records if r in RELEASED]
        withheld = [r for r in records if r in WITHHELD]
        if not withheld:
            raise RecordingError(
                self.root, "official protocol needs the withheld x-records (none usable)"
            )
        by_subject = {subject_of_record[r]: [r] for r in released}
        classes = {
            r: self.store.records[self.store.index_of(r)].attrs["apnea_class"] for r in released
        }
        strata = {subject_of_record[r]: CLASS_CODE[c] for r, c in classes.items()}
        frac = float(self.cfg.split.val_records) / max(len(released), 1)
        train, val = holdout_subjects(by_subject, frac, seed, strata)
        return Split("official", int(self.cfg.fold), seed, train, val, withheld)

    def _record_windows(self, record_ids: list[str]) -> WindowIndex:
        parts = []
        for rid in record_ids:
            i = self.store.index_of(rid)
            n_min = int(self.store.records[i].attrs["n_minutes"])
            parts.append(regular_windows(i, n_min, MINUTE_SAMPLES))
        return WindowIndex.concat(parts)

    def _parity_windows(self, stage: str) -> WindowIndex:
        """Upstream windows (stride 3000, label i at sample 3000 i) and its 70/10/20 window split."""
        from sklearn.model_selection import train_test_split

        parts = []
        for i, rec in enumerate(self.store.records):
            n_min = int(rec.attrs["n_minutes"])
            n_samples = n_min * MINUTE_SAMPLES
            starts = np.arange(n_min) * (MINUTE_SAMPLES // 2)
            ok = starts + MINUTE_SAMPLES <= n_samples
            minutes = np.arange(n_min)[ok]
            parts.append(
                WindowIndex(
                    np.full(ok.sum(), i),
                    starts[ok],
                    starts[ok] + MINUTE_SAMPLES,
                    minutes,
                    minutes + 1,
                )
            )
        index = WindowIndex.concat(parts)
        labels = np.empty(len(index), dtype=np.int64)
        for i in range(len(self.store.records)):
            sel = index.record == i
            labels[sel] = self.store.read(i, "y")[index.y_start[sel]]
        pos = np.arange(len(index))
        seed = int(self.split.seed)
        train, rest = train_test_split(pos, test_size=0.3, stratify=labels, random_state=seed)
        val, test = train_test_split(
            rest, test_size=2 / 3, stratify=labels[rest], random_state=seed
        )
        chosen = {"fit": train, "validate": val, "test": test}[stage]
        return index.subset(np.sort(chosen))

    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """One window per labelled minute (official), or the upstream parity windows."""
        if self.cfg.protocol == "parity":
            return self._parity_windows(stage)
        return self._record_windows(record_ids)

    def normalisation(self) -> tuple[float, float]:
        """IQR-robust mean/std (k = 3) of ``n`` random training windows (upstream: 500)."""
        index = self.window_index(self.split.train, "fit")
        rng = np.random.default_rng(int(self.cfg.seed))
        pick = rng.choice(
            len(index), size=min(int(self.cfg.preprocess.norm_windows), len(index)), replace=False
        )
        samples = [
            self.store.read(
                int(index.record[j]), "x", (0, slice(int(index.x_start[j]), int(index.x_stop[j])))
            )
            for j in np.sort(pick)
        ]
        return robust_mean_std(np.concatenate(samples), k=float(self.cfg.preprocess.iqr_k))

    def deploy_state(self) -> dict[str, Any]:
        """The training set's robust ECG mean and std (mV), which every window is scaled by."""
        if not hasattr(self, "_norm"):
            self._norm = self.normalisation()
        return {"ecg_mean_mv": float(self._norm[0]), "ecg_std_mv": float(self._norm[1])}

    def transform(self, stage: str) -> ECGTransform:
        """Augment + normalise for training, normalise only otherwise."""
        if not hasattr(self, "_norm"):
            self._norm = self.normalisation()
        aug = self.cfg.augment
        return ECGTransform(
            *self._norm,
            augment=(stage == "fit" and bool(aug.enabled)),
            p=float(aug.p),
            noise_sigma=float(aug.noise_sigma),
            wander_amplitude=float(aug.wander_amplitude),
        )

    def record_classes(self) -> dict[int, str]:
        """Cache position -> A/B/C class of each record (from its reference labels)."""
        return {i: r.attrs["apnea_class"] for i, r in enumerate(self.store.records)}
