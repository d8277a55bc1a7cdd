"""The shared LightningDataModule: raw files -> cache -> split -> window datasets -> loaders.

A task subclasses :class:`CachedDataModule` and fills in only what is its own: which source files
make a recording (:meth:`list_sources`), how one is preprocessed (:attr:`preprocess_fn`), the
protocol's split (:meth:`make_split`), its windows (:meth:`window_index`) and augmentations.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
import numpy as np
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Sampler

from sleepbench.cache.build import PreprocessFn, SourceRecord, build_cache
from sleepbench.cache.lock import file_lock
from sleepbench.cache.store import CacheStore
from sleepbench.config import default_cache_dir, to_plain
from sleepbench.data.samplers import RandomSubsetSampler
from sleepbench.data.splits import Split, split_file, stored_split
from sleepbench.data.windows import WindowDataset, WindowIndex
from sleepbench.progress import progress_bar_wanted

log = logging.getLogger(__name__)

Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


class CachedDataModule(pl.LightningDataModule):
    """Base DataModule of every task.

    Args:
        cfg: the run config (``data.*``, ``preprocess.*``, ``protocol``, ``fold``, ``seed``...).

    After :meth:`setup`: :attr:`store` (the cache), :attr:`split`, :attr:`train_set`,
    :attr:`val_set`, :attr:`test_set` and :attr:`provenance` (facts for the result row).
    """

    task_name: ClassVar[str]
    reader_version: ClassVar[str] = "1"
    preprocess_fn: ClassVar[PreprocessFn]
    extra_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.root = Path(cfg.data.root)
        self.cache_dir = Path(cfg.data.cache_dir) if cfg.data.cache_dir else default_cache_dir()
        self.store: CacheStore | None = None
        self.cache_file: Path | None = None
        self.split: Split | None = None
        self.provenance: dict[str, Any] = {}

    # ---- what a task fills in -------------------------------------------------------------
    @classmethod
    def list_sources(cls, root: Path, cfg: DictConfig) -> list[SourceRecord]:
        """Recordings found under ``root`` (empty when there is no data)."""
        raise NotImplementedError

    def make_split(self, subject_of: Mapping[str, str]) -> Split:
        """The split of ``cfg.protocol`` / ``cfg.fold`` over the cached records."""
        raise NotImplementedError

    def window_index(self, record_ids: list[str], stage: str) -> WindowIndex:
        """Windows of ``record_ids`` for ``stage`` (``"fit"``, ``"validate"``, ``"test"``)."""
        raise NotImplementedError

    def transform(self, stage: str) -> Transform | None:
        """Per-item transform (augmentation only when ``stage == "fit"``)."""
        return None

    def train_sampler(self, dataset: WindowDataset) -> Sampler | None:
        """Sampler of the training loader (None: shuffle)."""
        return None

    def preprocess_config(self) -> dict[str, Any]:
        """The preprocessing config that keys the cache (``cfg.preprocess``)."""
        return to_plain(self.cfg.preprocess) if "preprocess" in self.cfg else {}

    def deploy_state(self) -> dict[str, Any]:
        """Values fitted on the training data that inference needs besides the config (e.g.
        normalisation statistics), JSON-able; empty by default. Saved into every checkpoint
        (:data:`~sleepbench.module.INPUT_STATE_KEY`) and every ONNX export, so ``predict`` and
        ``serve`` scale a new night exactly as the test windows were scaled."""
        return {}

    # ---- shared machinery ----------------------------------------------------------------
    def prepare_data(self) -> None:
        """Build (or find) the cache; called once per node before :meth:`setup`."""
        if self.cache_file is not None:
            return
        sources = self.list_sources(self.root, self.cfg)
        if not sources:
            raise FileNotFoundError(f"no {self.task_name} recordings found under {self.root}")
        lock = self.cache_dir / f".{self.task_name}.lock"
        timeout = self.cfg.data.get("lock_timeout_s")  # None: wait, logging who holds it
        with file_lock(lock, timeout_s=None if timeout is None else float(timeout)):
            self.cache_file = build_cache(
                self.task_name,
                sources,
                type(self).preprocess_fn,
                self.preprocess_config(),
                self.cache_dir,
                self.reader_version,
                workers=int(self.cfg.data.build_workers),
                progress=progress_bar_wanted(self.cfg.trainer.get("enable_progress_bar", "auto")),
            )
        self._n_sources = len(sources)

    def setup(self, stage: str | None = None) -> None:
        """Open the cache, make or load the split, and build the three window datasets."""
        if self.store is not None:
            return
        self.prepare_data()
        self.store = CacheStore(
            self.cache_file, in_memory=bool(self.cfg.data.get("in_memory", False))
        )
        if self.store.skipped:  # one line: the build logged the whole table when it ran
            log.warning(
                "%s: %d recordings were skipped when %s was built: %s",
                self.task_name,
                len(self.store.skipped),
                self.cache_file.name,
                ", ".join(rid for rid, _ in self.store.skipped),
            )
        subject_of = {r.record_id: r.subject_id for r in self.store.records}
        # the split is keyed by the records it was drawn from: a split drawn on a synthetic set
        # (or on a subset of the real data) is never reused for other data
        records_digest = hashlib.sha256("\n".join(sorted(subject_of)).encode()).hexdigest()[:8]
        path = split_file(
            Path(self.cfg.output.splits_dir),
            self.task_name,
            protocol=str(self.cfg.protocol),
            fold=int(self.cfg.fold),
            seed=int(self.cfg.seed),
        ).with_suffix(f".{records_digest}.json")
        self.split = stored_split(path, lambda: self.make_split(subject_of), subject_of)
        self.train_set = WindowDataset(
            self.store,
            self.window_index(self.split.train, "fit"),
            self.transform("fit"),
            self.extra_keys,
        )
        self.val_set = WindowDataset(
            self.store,
            self.window_index(self.split.val, "validate"),
            self.transform("validate"),
            self.extra_keys,
        )
        self.test_set = WindowDataset(
            self.store,
            self.window_index(self.split.test, "test"),
            self.transform("test"),
            self.extra_keys,
        )
        subjects = {subject_of[r] for r in self.split.train + self.split.val + self.split.test}
        self.provenance = {
            "synthetic": bool(self.cfg.data.get("is_synthetic", False)),
            "root": str(self.root),
            "cache": self.cache_file.name,
            "n_records": len(self.store.records),
            "n_subjects": len(subjects),
            "n_train_records": len(self.split.train),
            "n_val_records": len(self.split.val),
            "n_test_records": len(self.split.test),
            "n_windows": {
                "train": len(self.train_set),
                "val": len(self.val_set),
                "test": len(self.test_set),
            },
            "skipped": [
                {
                    "record": r.record_id,
                    "reason": r.reason,
                    "files": list(r.files),
                    "error_type": r.error_type,
                }
                for r in self.store.skipped_records
            ],
            "split_file": str(path),
            "leaky": self.split.leaky,
            "split_notes": self.split.notes,
        }

    def _loader(self, dataset: WindowDataset, train: bool) -> DataLoader:
        sampler = self.train_sampler(dataset) if train else None
        per_epoch = self.cfg.data.get("train_windows_per_epoch")
        if train and sampler is None and per_epoch is not None and int(per_epoch) < len(dataset):
            # a fresh random subset each epoch: shorter epochs, so validation and the plateau
            # schedule act more often on a CPU budget
            sampler = RandomSubsetSampler(len(dataset), int(per_epoch))
        if (
            not train
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        ):
            # no padding duplicates: distributed evaluation sees each window exactly once
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        workers = int(self.cfg.data.num_workers)
        return DataLoader(
            dataset,
            batch_size=int(self.cfg.data.batch_size),
            shuffle=train and sampler is None,
            sampler=sampler,
            num_workers=workers,
            persistent_workers=workers > 0,
            drop_last=train
            and bool(self.cfg.data.get("drop_last", False))
            and len(dataset) > int(self.cfg.data.batch_size),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled (or task-sampled) training windows with augmentation."""
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        """Validation windows in order."""
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        """Test windows in order."""
        return self._loader(self.test_set, train=False)
