"""SHHS SpO2 data: NSRR layout -> one cached 8-h SpO2 night + AHI severity class per record.

Layout (as downloaded from sleepdata.org; ``<v>`` is ``shhs1`` or ``shhs2``)::

    polysomnography/edfs/<v>/<v>-<nsrrid>.edf
    polysomnography/annotations-events-nsrr/<v>/<v>-<nsrrid>-nsrr.xml
    datasets/<v>-dataset-<version>.csv            nsrrid, ahi_a0h3a, ahi_a0h4, ...

Each night becomes ``x`` float32 ``[1, n_samples]`` (SpO2 by channel alias at its own rate,
artefacts interpolated, resampled to 1 Hz, first 8 h, smoothed, min-max scaled, zero-padded: see
:func:`sleepbench.signal.spo2.preprocess_spo2`) and ``y`` int8 ``[1]``, the severity class of its
AHI (0 normal < 5 <= 1 mild < 15 <= 2 moderate < 30 <= 3 severe).

Labels: the AHI variable ``labels.ahi_variable`` (default ``ahi_a0h3a``) from the dataset CSV when
it holds a value for the participant; otherwise the AHI computed from the NSRR XML events with
the matching rule (:func:`sleepbench.io.nsrr_xml.ahi_from_events`, ``ahi_a0h3a`` -> ``"3a"``...).
Both values are kept on the record (``ahi_csv``, ``ahi_xml``) and their agreement is reported in
the result row; ``labels.max_disagreement`` optionally skips nights where they differ.

Protocol ``shhs1_holdout`` (SPECS §3.1): a subject-level split of SHHS1 stratified by severity,
``split.test_fraction`` (10 %) test and ``split.val_fraction`` (10 %) of the rest validation.
SHHS2 is a *second test set on the same trained model*: its nights are appended to the test
windows and scored separately (``test/shhs2_*`` metrics in the same result row). SHHS2 is the
follow-up visit of SHHS1 participants, so most of its people had their SHHS1 night in training;
the overlap is counted in ``Split.notes`` and the row's ``protocol_tags``. ``split.shhs2: unseen``
keeps only SHHS2 nights of participants outside SHHS1 train/validation; ``none`` drops SHHS2.

Bad input (missing SpO2 channel, all-artefact night, an XML whose EDF is missing, no AHI) raises
:class:`~sleepbench.errors.RecordingError` and lands in the cache's ``skipped`` table.

Finding the nights lives in :mod:`~sleepbench.tasks.shhs_spo2.nsrr_layout`, turning one night into
its cache record in :mod:`~sleepbench.tasks.shhs_spo2.night_record`; this module holds the
labels' task variants, the split and the datamodule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch.utils.data import Sampler

from sleepbench.cache.build import SourceRecord
from sleepbench.config import to_plain
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.samplers import ClassBalancedSampler
from sleepbench.data.splits import Split, holdout_subjects
from sleepbench.data.windows import WindowDataset, WindowIndex
from sleepbench.errors import RecordingError
from sleepbench.metrics.severity import SEVERITY_CUTOFFS, ahi_to_severity
from sleepbench.tasks.shhs_spo2.night_record import preprocess_record, read_spo2_night
from sleepbench.tasks.shhs_spo2.nsrr_layout import (
    AHI_RULES,
    VISITS,
    discover_sources,
    find_dataset_csv,
    read_ahi_table,
)

__all__ = [
    "AHI_RULES",
    "TASK_VARIANTS",
    "VISITS",
    "SeverityTarget",
    "ShhsSpO2DataModule",
    "discover_sources",
    "find_dataset_csv",
    "preprocess_record",
    "read_spo2_night",
    "read_ahi_table",
]

#: task variant -> (number of outputs, first severity class counted positive or None)
TASK_VARIANTS: dict[str, tuple[int, int | None]] = {
    "severity4": (4, None),
    "binary5": (2, 1),  # AHI >= 5: mild, moderate, severe
    "binary15": (2, 2),  # AHI >= 15: moderate, severe
}


# --------------------------------------------------------------------------------------------
# datamodule


class SeverityTarget:
    """Per-item transform: clean ``x`` and map the cached severity class to the task's label.

    Args:
        cutoff_class: ``None`` keeps the 4-class label; ``k`` gives ``class >= k`` (1: AHI >= 5,
            2: AHI >= 15).
    """

    def __init__(self, cutoff_class: int | None) -> None:
        self.cutoff_class = cutoff_class

    def label(self, severity: np.ndarray) -> np.ndarray:
        """Task labels (int64) of severity classes."""
        severity = np.asarray(severity, dtype=np.int64)
        if self.cutoff_class is None:
            return severity
        return (severity >= self.cutoff_class).astype(np.int64)

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        return np.nan_to_num(x.astype(np.float32)), self.label(y)


class ShhsSpO2DataModule(CachedDataModule):
    """SHHS overnight SpO2 -> OSA severity (method 002); see the module docstring."""

    task_name = "shhs_spo2"
    reader_version = "shhs-spo2-1"
    preprocess_fn = staticmethod(preprocess_record)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig) -> list[SourceRecord]:
        """Nights of ``data.visits`` under ``root`` (see :func:`discover_sources`)."""
        root = Path(root)
        if not root.is_dir():
            return []
        visits = list(cfg.data.get("visits") or VISITS)
        use_csv = str(cfg.labels.source) != "xml"  # labels from XML events only: CSV not read
        return discover_sources(root, visits, str(cfg.labels.ahi_variable), use_csv)

    # ---- config ----------------------------------------------------------------------------
    @property
    def variant(self) -> tuple[int, int | None]:
        """(number of outputs, cut-off class) of ``task_variant``."""
        name = str(self.cfg.task_variant)
        if name not in TASK_VARIANTS:
            raise ValueError(f"task_variant {name!r} unknown; choose from {sorted(TASK_VARIANTS)}")
        return TASK_VARIANTS[name]

    def preprocess_config(self) -> dict[str, Any]:
        """Keys that change the cache: preprocessing (only the chosen smoother's parameters) and
        labelling."""
        pre = to_plain(self.cfg.preprocess)
        params = pre.pop("smoothing_params", {}) or {}
        pre["smoothing_params"] = params.get(pre["smoothing"], {}) or {}
        return {"preprocess": pre, "labels": to_plain(self.cfg.labels)}

    # ---- split -----------------------------------------------------------------------------
    def _visit_records(self, visit: str) -> list[str]:
        return sorted(r.record_id for r in self.store.records if r.attrs["visit"] == visit)

    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """Subject-level severity-stratified SHHS1 test / validation hold-outs (SHHS2 aside)."""
        shhs1 = [r for r in self._visit_records("shhs1") if r in subject_of_record]
        if not shhs1:
            raise RecordingError(
                self.root, "protocol shhs1_holdout needs SHHS1 nights (none usable)"
            )
        seed = int(self.cfg.seed) + int(self.cfg.fold)
        severity = {
            r.record_id: int(r.attrs["severity"])
            for r in self.store.records
            if r.record_id in shhs1
        }

        def by_subject(records: Sequence[str]) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for rid in records:
                out.setdefault(subject_of_record[rid], []).append(rid)
            return out

        def strata(records: Sequence[str]) -> dict[str, int]:
            # one SHHS1 night per participant; the max keeps it defined if there were more
            out: dict[str, int] = {}
            for rid in records:
                s = subject_of_record[rid]
                out[s] = max(out.get(s, 0), severity[rid])
            return out

        rest, test = holdout_subjects(
            by_subject(shhs1), float(self.cfg.split.test_fraction), seed, strata(shhs1)
        )
        train, val = holdout_subjects(
            by_subject(rest), float(self.cfg.split.val_fraction), seed + 1, strata(rest)
        )
        split = Split(str(self.cfg.protocol), int(self.cfg.fold), seed, train, val, test)
        split.notes = self._shhs2_notes(split, subject_of_record)
        return split

    def shhs2_records(self) -> list[str]:
        """SHHS2 nights scored as the second test set under ``split.shhs2`` (all/unseen/none)."""
        mode = str(self.cfg.split.get("shhs2", "all"))
        if mode not in ("all", "unseen", "none"):
            raise ValueError(f"split.shhs2 must be all, unseen or none, got {mode!r}")
        if mode == "none":
            return []
        records = self._visit_records("shhs2")
        if mode == "unseen":
            subject = {r.record_id: r.subject_id for r in self.store.records}
            seen = {subject[r] for r in self.split.train + self.split.val}
            records = [r for r in records if subject[r] not in seen]
        return records

    def _shhs2_notes(self, split: Split, subject_of_record: Mapping[str, str]) -> dict[str, str]:
        """Participant overlap of SHHS2 with each part of the SHHS1 split, in words and counts."""
        shhs2 = {
            subject_of_record[r] for r in self._visit_records("shhs2") if r in subject_of_record
        }
        parts = {
            name: {subject_of_record[r] for r in ids}
            for name, ids in (("train", split.train), ("val", split.val), ("test", split.test))
        }
        n = len(shhs2)
        k_train = len(shhs2 & parts["train"])
        k_val = len(shhs2 & parts["val"])
        k_test = len(shhs2 & parts["test"])
        pct = 100.0 * k_train / n if n else 0.0
        return {
            "second_test_set": f"shhs2 ({n} participants), scored on the same model as test/shhs2_*",
            "shhs2_participants": str(n),
            "shhs2_overlap_train": str(k_train),
            "shhs2_overlap_val": str(k_val),
            "shhs2_overlap_test": str(k_test),
            "shhs2_overlap": (
                f"{k_train} of {n} SHHS2 participants ({pct:.1f} %) had their SHHS1 night in "
                f"training, {k_val} in validation, {k_test} in the SHHS1 test set: SHHS2 is a "
                "follow-up visit of the same cohort, not an external set of unseen people"
            ),
        }

    # ---- windows ---------------------------------------------------------------------------
    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """One window per night (the whole ``n_samples``); ``test`` also gets the SHHS2 nights."""
        ids = list(record_ids)
        if stage == "test":
            ids += [r for r in self.shhs2_records() if r not in set(ids)]
        rec = np.array([self.store.index_of(r) for r in ids], dtype=np.int64)
        n = int(self.cfg.preprocess.n_samples)
        zeros = np.zeros(len(rec), dtype=np.int64)
        return WindowIndex(rec, zeros, zeros + n, zeros, zeros + 1)

    def transform(self, stage: str) -> SeverityTarget:
        """Label mapping of ``task_variant`` (no augmentation: the paper describes none)."""
        return SeverityTarget(self.variant[1])

    def train_sampler(self, dataset: WindowDataset) -> Sampler | None:
        """:class:`ClassBalancedSampler` over the task labels when ``balance.method: sampler``."""
        if str(self.cfg.balance.method) != "sampler":
            return None
        return ClassBalancedSampler(self._task_labels(dataset).tolist())

    def _task_labels(self, dataset: Any) -> np.ndarray:
        if isinstance(dataset, WindowDataset):
            return SeverityTarget(self.variant[1]).label(dataset.labels())
        return dataset.labels()

    def record_visit(self) -> np.ndarray:
        """Visit number (1 or 2) of every cached record, by cache position (int64)."""
        return np.array([int(r.attrs["visit"][-1]) for r in self.store.records], dtype=np.int64)

    # ---- setup -----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Shared setup, then optional SMOTE of the training set and label provenance."""
        if self.store is not None:
            return
        super().setup(stage)
        method = str(self.cfg.balance.method)
        if method not in ("smote", "sampler", "none"):
            raise ValueError(f"balance.method must be smote, sampler or none, got {method!r}")
        counts_before = np.bincount(self._task_labels(self.train_set), minlength=self.variant[0])
        balance: dict[str, Any] = {"method": method, "train_counts": counts_before.tolist()}
        if method == "smote":
            from sleepbench.data.oversample import smote_dataset

            self.train_set, report = smote_dataset(
                self.train_set, int(self.cfg.balance.k_neighbors), int(self.cfg.seed)
            )
            balance.update(
                k_neighbors=report.k_neighbors,
                sampler=report.method,
                train_counts_after=[report.counts_after.get(c, 0) for c in range(self.variant[0])],
            )
        shhs2 = self.shhs2_records()
        self.provenance.update(
            {
                "n_test_shhs2_records": len(shhs2),
                "n_windows": {**self.provenance["n_windows"], "train": len(self.train_set)},
                "balance": balance,
                "labels": self.label_summary(),
                "class_counts": {
                    part: np.bincount(
                        [self._severity(r) for r in ids], minlength=len(SEVERITY_CUTOFFS) + 1
                    ).tolist()
                    for part, ids in (
                        ("train", self.split.train),
                        ("val", self.split.val),
                        ("test", self.split.test),
                        ("test_shhs2", shhs2),
                    )
                },
            }
        )

    def _severity(self, record_id: str) -> int:
        return int(self.store.records[self.store.index_of(record_id)].attrs["severity"])

    def label_summary(self) -> dict[str, Any]:
        """Where labels came from and how the CSV and XML-event AHI agree (nights with both)."""
        attrs = [r.attrs for r in self.store.records]
        csv_v = np.array([a["ahi_csv"] for a in attrs], dtype=float)
        xml_v = np.array([a["ahi_xml"] for a in attrs], dtype=float)
        both = np.isfinite(csv_v) & np.isfinite(xml_v)
        summary: dict[str, Any] = {
            "ahi_variable": str(self.cfg.labels.ahi_variable),
            "from_csv": sum(a["ahi_source"] == "csv" for a in attrs),
            "from_xml": sum(a["ahi_source"] == "xml" for a in attrs),
            "n_both": int(both.sum()),
        }
        if both.any():
            diff = np.abs(csv_v[both] - xml_v[both])
            summary.update(
                mae=float(diff.mean()),
                max_abs_diff=float(diff.max()),
                class_agreement=float(
                    np.mean(ahi_to_severity(csv_v[both]) == ahi_to_severity(xml_v[both]))
                ),
            )
        return summary
