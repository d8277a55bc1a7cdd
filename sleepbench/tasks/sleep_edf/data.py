"""Sleep-EDF data: PSG + hypnogram nights -> cached 128-Hz EEG/EOG with per-epoch stages ->
subject-wise folds over a protocol's night list -> 31-epoch sequences.

Preprocessing (SPECS §5.1), per night, into the cache:

1. pair ``*-PSG.edf`` with its ``*-Hypnogram.edf`` by the record naming rule
   (:func:`~sleepbench.io.sleep_edf_labels.pair_psg_hypnogram`);
2. read both EEG derivations (Fpz-Cz, Pz-Oz) and the horizontal EOG at their native rate
   (Sleep-EDF: 100 Hz; another rate is reported and the night skipped when
   ``preprocess.expected_fs_hz`` is set);
3. expand the hypnogram to 30-s epochs and trim PSG and hypnogram to equal length. The real
   hypnograms end with a ``Sleep stage ?`` run past the signal, which is dropped; a hypnogram
   that *scores* more than ``preprocess.max_overhang_epochs`` epochs past the signal means a
   truncated PSG and the night is skipped;
4. optional wake trimming (``preprocess.trim_wake_min``, 30 for the field's Sleep-EDF protocol):
   keep from 30 min before the first to 30 min after the last sleep epoch;
5. resample to 128 Hz (:func:`~sleepbench.signal.resample.resample_to`, polyphase), clip each
   channel at median ± 20 IQR, then robust-scale it, ``(x - median) / IQR``, over the night;
6. labels in the upstream integer order W = 0, REM = 1, N1 = 2, N2 = 3, N3 = 4 (R&K 3 and 4 ->
   N3); ``?``, movement time and unscored epochs -> 5 (:data:`IGNORE`), which no loss or metric
   sees.

The cache holds ``x`` float32 ``[3, n_epochs * 3840]`` (Fpz-Cz, Pz-Oz, EOG) and ``y`` int8
``[n_epochs]``; ``epoch_offset`` (attr) is the first kept epoch of the original PSG, so the raw
signal of any cached epoch can be found again (the YASA baseline reads it from there).

Protocols are ``<list>_<k>fold``: ``list`` names a night list under ``splits/`` (``sedf20``: the
2013 release, 20 subjects / 39 nights; ``sedf78``: every sleep-cassette night of the 2018
release, 78 subjects / 153 nights; ``sedfst``: the telemetry study), ``k`` the number of
subject-wise folds (both nights of a subject are always in the same fold). On synthetic data the
list is whatever nights exist (the synthetic subjects are not the real ones).

Windows: training draws 31-epoch sequences at every ``data.train_stride_epochs`` epoch start,
class-balanced (U-Time: draw a stage uniformly, then a sequence containing it). Validation and
test tile each night with non-overlapping sequences plus one aligned to the night's end
(:func:`~sleepbench.data.covering.covering_windows`); the module scores each epoch once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from torch.utils.data import Sampler

from sleepbench.cache.build import SourceRecord
from sleepbench.data.covering import covering_windows
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.data.samplers import ClassBalancedSampler
from sleepbench.data.splits import Split, group_kfold, holdout_subjects
from sleepbench.data.windows import WindowDataset, WindowIndex, regular_windows
from sleepbench.errors import RecordingError
from sleepbench.io.sleep_edf_labels import (  # private name patterns: see _orphans
    _HYP_NAME,
    _PSG_NAME,
    SleepEdfPair,
    pair_psg_hypnogram,
)
from sleepbench.signal.augment import gaussian_noise
from sleepbench.signal.augment_sequence import (
    channel_dropout,
    elastic_deformation,
    regional_erase,
    regional_gaussian_noise,
)
from sleepbench.tasks.sleep_edf.night_record import (
    CLASS_NAMES,
    EPOCH_S,
    IGNORE,
    LABEL_OF,
    SLEEP,
    match_hypnogram,
    model_input,
    preprocess_night,
    read_psg,
    sleep_span,
    stage_labels,
    staging_channels,
)

log = logging.getLogger(__name__)

#: re-exported: the stage constants and the night's preprocessing live in night_record
__all__ = [
    "CLASS_NAMES",
    "EPOCH_S",
    "IGNORE",
    "LABEL_OF",
    "SLEEP",
    "SPLITS_DIR",
    "SleepEDFDataModule",
    "StagingTransform",
    "match_hypnogram",
    "model_input",
    "parse_protocol",
    "preprocess_night",
    "protocol_records",
    "read_psg",
    "sleep_span",
    "stage_labels",
    "staging_channels",
]

SPLITS_DIR = Path(__file__).with_name("splits")


# ---- protocols ---------------------------------------------------------------------------------
def parse_protocol(protocol: str) -> tuple[str, int]:
    """``"sedf20_5fold"`` -> ``("sedf20", 5)``.

    Raises:
        ValueError: not of the form ``<list>_<k>fold`` or no such list under ``splits/``.
    """
    name, _, folds = protocol.rpartition("_")
    if not name or not folds.endswith("fold") or not folds[:-4].isdigit():
        raise ValueError(f"protocol {protocol!r} is not of the form <list>_<k>fold")
    if not (SPLITS_DIR / f"{name}.txt").exists():
        raise ValueError(f"protocol {protocol!r}: no night list {name}.txt in {SPLITS_DIR}")
    return name, int(folds[:-4])


@cache
def protocol_records(list_name: str) -> tuple[str, ...]:
    """PSG record ids of a night list (``splits/<list_name>.txt``, ``#`` starts a comment)."""
    lines = (SPLITS_DIR / f"{list_name}.txt").read_text().splitlines()
    return tuple(s for line in lines if (s := line.split("#", 1)[0].strip()))


# ---- training-time transform -------------------------------------------------------------------
class StagingTransform:
    """Per-sequence transform: EEG channel choice and the §5.3 augmentations (training only).

    Cached sequences are ``[n_eeg + 1, T]`` (EEG derivations, then EOG). For training one EEG
    channel is drawn at random per sequence (U-Sleep's load-time channel sampling) and the
    result ``[2, T]`` is augmented, each augmentation with its own probability. Evaluation
    sequences pass through unchanged; the module averages over the EEG channels.

    Args:
        train: draw a channel and augment.
        augment: ``augment`` config (``enabled`` and one block per augmentation).
    """

    def __init__(self, train: bool, augment: Mapping[str, Any] | None = None) -> None:
        self.train = train
        self.augment = dict(augment or {})

    def __call__(
        self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(y, dtype=np.int64)
        if not self.train:
            return x.astype(np.float32, copy=False), y
        eeg = int(rng.integers(x.shape[0] - 1))
        x = x[[eeg, x.shape[0] - 1]].astype(np.float32)
        a = self.augment
        if not a.get("enabled", False):
            return x, y
        if rng.random() < a["global_noise"]["p"]:
            x = gaussian_noise(x, rng, float(a["global_noise"]["sigma"]))
        if rng.random() < a["regional_noise"]["p"]:
            r = a["regional_noise"]
            x = regional_gaussian_noise(x, rng, float(r["sigma"]), *map(float, r["fraction"]))
        if rng.random() < a["elastic"]["p"]:
            e = a["elastic"]
            x = elastic_deformation(x, rng, tuple(e["alpha"]), tuple(e["sigma"]))
        if rng.random() < a["regional_erase"]["p"]:
            x = regional_erase(x, rng, *map(float, a["regional_erase"]["fraction"]))
        if rng.random() < a["channel_dropout"]["p"]:
            x = channel_dropout(x, rng, float(a["channel_dropout"]["fraction"]))
        return x.astype(np.float32, copy=False), y


# ---- the data module ---------------------------------------------------------------------------
def _orphans(root: Path, pairs: Sequence[SleepEdfPair]) -> list[SourceRecord]:
    """PSGs without hypnogram and hypnograms without PSG under ``root``, as ``missing`` records.

    Names are matched with the pairing's own patterns, so exactly the files that
    :func:`pair_psg_hypnogram` left unpaired are found.
    """
    paired = {p.psg_path for p in pairs} | {p.hyp_path for p in pairs}
    psgs: dict[str, Path] = {}
    hyps: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path in paired:
            continue
        if _PSG_NAME.fullmatch(path.name):
            psgs[path.name[: -len("-PSG.edf")]] = path
        elif _HYP_NAME.fullmatch(path.name):  # record id: the PSG's, "SC4001E" + "0"
            hyps.setdefault(path.name[:7] + "0", []).append(path)
    out = []
    for rid, psg in psgs.items():
        expected = psg.with_name(f"{rid[:7]}?-Hypnogram.edf")
        out.append(
            SourceRecord(
                rid,
                rid[:5].upper(),
                (psg,),
                {"night": int(rid[5])},
                missing=f"{psg} has no hypnogram: no {expected.name} beside it",
            )
        )
    for rid, files in hyps.items():
        expected = files[0].with_name(f"{rid}-PSG.edf")
        out.append(
            SourceRecord(
                rid,
                rid[:5].upper(),
                tuple(files),
                {"night": int(rid[5])},
                missing=f"{files[0]} has no PSG: {expected} does not exist",
            )
        )
    return out


class SleepEDFDataModule(CachedDataModule):
    """Sleep-EDF (Expanded) sleep staging from one EEG + the horizontal EOG, 30-s epochs."""

    task_name = "sleep_edf"
    reader_version = "sleep-edf-edfio-1"
    preprocess_fn = staticmethod(preprocess_night)

    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig) -> list[SourceRecord]:
        """Every PSG/hypnogram pair under ``root`` (searched recursively), plus one record per
        PSG without hypnogram and per hypnogram without PSG, flagged ``missing`` so that the
        cache build lists them as skipped."""
        root = Path(root)
        if not root.is_dir():
            return []
        pairs = pair_psg_hypnogram(root, strict=False)
        sources = [
            SourceRecord(p.record_id, p.subject_id, (p.psg_path, p.hyp_path), {"night": p.night})
            for p in pairs
        ]
        return sorted(sources + _orphans(root, pairs), key=lambda s: s.record_id)

    @property
    def seq_epochs(self) -> int:
        """Epochs per sequence (31 upstream)."""
        return int(self.cfg.data.seq_epochs)

    @property
    def epoch_samples(self) -> int:
        """Samples per 30-s epoch in the cache (3840 at 128 Hz)."""
        return round(EPOCH_S * float(self.cfg.preprocess.fs_hz))

    def protocol_nights(self, record_ids: Sequence[str]) -> list[str]:
        """The cached nights the protocol's list selects (all of them on synthetic data)."""
        name, _ = parse_protocol(str(self.cfg.protocol))
        if self.cfg.data.get("is_synthetic", False):
            return sorted(record_ids)
        listed = set(protocol_records(name))
        chosen = sorted(r for r in record_ids if r in listed)
        missing = sorted(listed - set(record_ids))
        if missing:
            log.warning(
                "%s: %d of %d listed nights are not usable here (absent or skipped): %s",
                self.cfg.protocol,
                len(missing),
                len(listed),
                missing[:10],
            )
        if not chosen:
            raise RecordingError(self.root, f"no night of the {name} list is in the cache")
        return chosen

    def make_split(self, subject_of_record: Mapping[str, str]) -> Split:
        """Subject-wise ``k``-fold over the protocol's nights; validation subjects held out of
        the training folds (``split.val_fraction`` of them)."""
        _, n_folds = parse_protocol(str(self.cfg.protocol))
        fold = int(self.cfg.fold)
        if not 0 <= fold < n_folds:
            raise ValueError(f"fold {fold} outside 0..{n_folds - 1} for {self.cfg.protocol}")
        nights = self.protocol_nights(list(subject_of_record))
        by_subject: dict[str, list[str]] = {}
        for rid in nights:
            by_subject.setdefault(subject_of_record[rid], []).append(rid)
        # one assignment of subjects to folds per seed: the k folds partition the subjects
        folds = group_kfold(list(by_subject), n_folds, int(self.cfg.seed))
        test_subjects = set(folds[fold])
        rest = {s: r for s, r in by_subject.items() if s not in test_subjects}
        train, val = holdout_subjects(
            rest, float(self.cfg.split.val_fraction), int(self.cfg.seed) + fold
        )
        test = sorted(r for s in test_subjects for r in by_subject[s])
        notes = {"nights": str(len(nights)), "subjects": str(len(by_subject))}
        if self.cfg.data.get("is_synthetic", False):
            notes["list"] = "synthetic: every generated night (the real night list does not apply)"
        return Split(
            str(self.cfg.protocol), fold, int(self.cfg.seed), train, val, test, notes=notes
        )

    def _n_epochs(self, record_id: str) -> tuple[int, int]:
        i = self.store.index_of(record_id)
        return i, int(self.store.records[i].attrs["n_epochs"])

    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """Training: every ``train_stride_epochs`` start; otherwise covering windows."""
        parts, short = [], []
        for rid in record_ids:
            i, n = self._n_epochs(rid)
            if n < self.seq_epochs:
                short.append(rid)
                continue
            if stage == "fit":
                stride = int(self.cfg.data.train_stride_epochs)
                parts.append(regular_windows(i, n, self.epoch_samples, self.seq_epochs, stride))
            else:
                parts.append(covering_windows(i, n, self.epoch_samples, self.seq_epochs))
        if short:
            log.warning(
                "%s: %d nights shorter than %d epochs left out of %s: %s",
                self.task_name,
                len(short),
                self.seq_epochs,
                stage,
                short,
            )
            self._short_nights = sorted(set(getattr(self, "_short_nights", [])) | set(short))
        return WindowIndex.concat(parts)

    def setup(self, stage: str | None = None) -> None:
        """Shared setup, plus the nights too short for one sequence in the provenance."""
        super().setup(stage)
        self.provenance["short_nights_left_out"] = getattr(self, "_short_nights", [])
        self.provenance["protocol_list"] = parse_protocol(str(self.cfg.protocol))[0]

    def transform(self, stage: str) -> StagingTransform:
        """Channel sampling + augmentation for training; identity otherwise."""
        from sleepbench.config import to_plain

        return StagingTransform(stage == "fit", to_plain(self.cfg.augment))

    def window_classes(self, dataset: WindowDataset) -> list[np.ndarray]:
        """For each window of ``dataset``, the stages (ignored label excluded) it contains."""
        index = dataset.index
        classes: list[np.ndarray] = [np.zeros(0, np.int64)] * len(index)
        for rec in np.unique(index.record):
            y = self.store.read(int(rec), "y").astype(np.int64)
            # presence of each class in [a, b) from cumulative counts, one pass per record
            cum = np.zeros((len(CLASS_NAMES), y.size + 1), dtype=np.int64)
            for c in range(len(CLASS_NAMES)):
                cum[c, 1:] = np.cumsum(y == c)
            sel = np.flatnonzero(index.record == rec)
            present = cum[:, index.y_stop[sel]] - cum[:, index.y_start[sel]] > 0
            for j, p in zip(sel, present.T):
                classes[j] = np.flatnonzero(p)
        return classes

    def train_sampler(self, dataset: WindowDataset) -> Sampler | None:
        """U-Time class-balanced sequence sampling (``data.balanced_sampling``)."""
        if not bool(self.cfg.data.balanced_sampling):
            return None
        n = self.cfg.data.get("train_sequences_per_epoch")
        if n is None:  # about one pass over the training epochs
            n = max(1, sum(self._n_epochs(r)[1] for r in self.split.train) // self.seq_epochs)
        return ClassBalancedSampler(self.window_classes(dataset), int(n), ignore=(IGNORE,))
