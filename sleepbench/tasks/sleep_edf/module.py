"""LightningModule of the sleep_edf task: focal + Dice training, channel-averaged evaluation,
pooled and per-subject staging metrics, hypnogram figures.

Evaluation scores every epoch of a test night exactly once: the data module tiles each night
with covering windows (:func:`~sleepbench.data.covering.covering_windows`) and positions of a
window that an earlier window already covered are masked (first prediction wins, see
:func:`~sleepbench.data.covering.first_new_label`). Softmax outputs are averaged over the EEG
derivations (each paired with the EOG), U-Sleep's test-time convention.

:func:`staging_scores` computes every reported number from per-epoch probabilities; the YASA
baseline row goes through the same function, so both rows are scored identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.aggregation import CatMetric

from sleepbench.data.covering import first_new_label
from sleepbench.metrics import flatten_metric_dict, make_multiclass_metrics
from sleepbench.module import BenchModule
from sleepbench.nn.losses import FocalDiceLoss, FocalLoss, SoftDiceLoss
from sleepbench.tasks.sleep_edf.data import CLASS_NAMES, EPOCH_S, IGNORE, parse_protocol
from sleepbench.tasks.sleep_edf.network import TinyUStaging

N_CLASSES = len(CLASS_NAMES)
#: metrics reported as mean (and std) over subjects as well as pooled
SUBJECT_KEYS: tuple[str, ...] = ("acc", "f1_macro", "kappa")


# ---- scoring -----------------------------------------------------------------------------------
def _local(collection: MetricCollection) -> MetricCollection:
    """Switch off cross-process synchronisation: the inputs are already gathered on every rank
    (or only rank 0 scores, as for the YASA baseline), so syncing would double count or hang."""
    for m in collection.modules():
        if isinstance(m, Metric):
            m.sync_on_compute = False
            m._to_sync = False
    return collection


def staging_scores(
    probs: torch.Tensor,
    target: torch.Tensor,
    subjects: Sequence[str],
    prefix: str = "test/",
) -> tuple[dict[str, float], np.ndarray, list[dict[str, Any]]]:
    """Every staging metric of a set of scored epochs.

    Args:
        probs: ``[N, 5]`` class probabilities per epoch (columns in :data:`CLASS_NAMES` order).
        target: ``[N]`` reference labels; :data:`IGNORE` entries enter no metric.
        subjects: ``N`` subject ids (per-subject scores pool a subject's nights).
        prefix: key prefix.

    Returns:
        ``(scores, confmat, per_subject)``: pooled metrics of
        :func:`~sleepbench.metrics.make_multiclass_metrics` (``acc``, ``f1_macro``, ``kappa``,
        per-class ``f1_W``..., one-vs-rest means, per-class AUROC) plus ``subj_<k>`` /
        ``subj_<k>_std`` = mean / std over subjects of ``acc``, ``f1_macro`` and ``kappa``
        (subjects where a value is undefined are left out of its mean) and ``n_epochs_scored``;
        the ``5 x 5`` pooled confusion matrix (rows = reference); one dict per subject.
    """
    probs = probs.detach().float().cpu()
    target = target.detach().long().cpu()
    subjects_arr = np.asarray(list(subjects), dtype=object)
    if probs.shape != (target.numel(), N_CLASSES) or subjects_arr.size != target.numel():
        raise ValueError(
            f"need probs [N, {N_CLASSES}], target [N] and N subjects; got {tuple(probs.shape)}, "
            f"{tuple(target.shape)}, {subjects_arr.size}"
        )
    pooled = _local(make_multiclass_metrics(N_CLASSES, prefix, IGNORE, CLASS_NAMES, auroc=True))
    pooled.update(probs, target)
    out = pooled.compute()
    confmat = out.pop(f"{prefix}confmat").cpu().numpy().astype(np.int64)
    scores = flatten_metric_dict(out)
    scores[f"{prefix}n_epochs_scored"] = float((target != IGNORE).sum())

    per_subject: list[dict[str, Any]] = []
    for subject in sorted(set(subjects_arr.tolist())):
        sel = torch.from_numpy(subjects_arr == subject)
        if not bool((target[sel] != IGNORE).any()):
            continue
        one = _local(make_multiclass_metrics(N_CLASSES, "", IGNORE, auroc=False, per_class=False))
        one.update(probs[sel], target[sel])
        values = flatten_metric_dict(one.compute())
        row = {"subject": subject, "n_epochs": int((target[sel] != IGNORE).sum())}
        row |= {k: values[k] for k in SUBJECT_KEYS}
        per_subject.append(row)
    for key in SUBJECT_KEYS:
        vals = np.array([r[key] for r in per_subject], dtype=float)
        vals = vals[np.isfinite(vals)]
        scores[f"{prefix}subj_{key}"] = float(vals.mean()) if vals.size else float("nan")
        scores[f"{prefix}subj_{key}_std"] = (
            float(vals.std(ddof=1)) if vals.size > 1 else float("nan")
        )
    scores[f"{prefix}n_subjects"] = float(len(per_subject))
    return scores, confmat, per_subject


def per_night_labels(
    records: np.ndarray, epochs: np.ndarray, values: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Group scored epochs by record: record -> (epoch indices sorted, values in that order)."""
    out = {}
    for rec in np.unique(records):
        sel = np.flatnonzero(records == rec)
        order = sel[np.argsort(epochs[sel], kind="stable")]
        out[int(rec)] = (epochs[order], values[order])
    return out


# ---- the module --------------------------------------------------------------------------------
class SleepStagingModule(BenchModule):
    """TinyUStaging training and evaluation (method 004).

    Args:
        net: :class:`TinyUStaging` with two input channels (one EEG + the EOG).
        cfg: run config; reads ``loss.*``, ``optim.*``, ``model.test_channel_averaging``,
            ``data.seq_epochs``, ``preprocess.*``, ``plots.hypnograms``.

    Batches: ``x`` ``[B, 2, T]`` for training (one EEG drawn per sequence by the data module),
    ``[B, n_eeg + 1, T]`` for validation and test; ``y`` ``[B, n]`` with :data:`IGNORE` for
    unscored epochs.
    """

    monitor = "val/f1_macro"  # upstream: validation "dice" = macro F1
    monitor_mode = "max"

    def __init__(self, net: TinyUStaging, cfg: DictConfig) -> None:
        super().__init__(net, cfg, window_s=int(cfg.data.seq_epochs) * EPOCH_S)
        weights = [float(w) for w in cfg.loss.class_weights]
        self.loss_fn = FocalDiceLoss(
            FocalLoss(gamma=float(cfg.loss.gamma), weight=weights, ignore_index=IGNORE),
            SoftDiceLoss(N_CLASSES, weight=weights, ignore_index=IGNORE),
            dice_weight=float(cfg.loss.dice_weight),
        )
        self.val_metrics = make_multiclass_metrics(
            N_CLASSES, "val/", IGNORE, CLASS_NAMES, auroc=False, per_class=False
        )
        self.test_units = nn.ModuleDict(
            {k: CatMetric(nan_strategy="disable") for k in ("record", "epoch", "probs", "target")}
        )
        self._first_new: dict[str, np.ndarray] = {}

    # ---- forward over channel combinations -----------------------------------------------------
    def eeg_views(self, n_chans: int) -> list[list[int]]:
        """Channel pairs fed to the network: each EEG with the EOG (last), or the first EEG only."""
        n_eeg = n_chans - 1
        picks = range(n_eeg) if bool(self.cfg.model.test_channel_averaging) else range(1)
        return [[e, n_chans - 1] for e in picks]

    def predict_probs(self, x: torch.Tensor, timed: bool = False) -> torch.Tensor:
        """Softmax ``[B, 5, n]`` averaged over :meth:`eeg_views` of ``x`` ``[B, n_eeg + 1, T]``."""
        views = self.eeg_views(x.shape[1])
        total = None
        for i, pick in enumerate(views):
            xi = x[:, pick]
            # latency is per window of signal: extra views of the same windows add time only
            logits = self.timed_forward(xi, windows=0 if i else None) if timed else self(xi)
            p = F.softmax(logits.float(), dim=1)
            total = p if total is None else total + p
        return total / len(views)

    def _new_mask(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        """``[B, n]`` True where this window is the first to score the epoch."""
        if stage not in self._first_new:
            dataset = (
                self.trainer.datamodule.val_set
                if stage == "val"
                else self.trainer.datamodule.test_set
            )
            self._first_new[stage] = first_new_label(dataset.index)
        first = torch.as_tensor(
            self._first_new[stage][batch["window"].cpu().numpy()], device=batch["y"].device
        )
        pos = torch.arange(batch["y"].shape[1], device=batch["y"].device)
        return pos[None, :] >= first[:, None]

    # ---- steps -------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._first_new.pop("val", None)  # the val index may change between fits

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        probs = self.predict_probs(batch["x"])
        y = torch.where(self._new_mask(batch, "val"), batch["y"].long(), IGNORE)
        loss = self.loss_fn(torch.log(probs.clamp_min(1e-8)), y)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(y))
        self.val_metrics.update(probs.permute(0, 2, 1).reshape(-1, N_CLASSES), y.reshape(-1))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(flatten_metric_dict(self.val_metrics.compute()), prog_bar=False)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._first_new.pop("test", None)
        for m in self.test_units.values():
            m.reset()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        probs = self.predict_probs(batch["x"], timed=True)
        new = self._new_mask(batch, "test")
        index = self.trainer.datamodule.test_set.index
        y_start = torch.as_tensor(index.y_start[batch["window"].cpu().numpy()], device=new.device)
        epoch = y_start[:, None] + torch.arange(new.shape[1], device=new.device)[None, :]
        record = batch["record"][:, None].expand_as(new)
        self.test_units["record"].update(record[new].float())
        self.test_units["epoch"].update(epoch[new].float())
        self.test_units["probs"].update(probs.permute(0, 2, 1)[new])
        self.test_units["target"].update(batch["y"].long()[new].float())

    def on_test_epoch_end(self) -> None:
        units = {k: m.compute() for k, m in self.test_units.items()}
        if not isinstance(units["target"], torch.Tensor) or units["target"].numel() == 0:
            raise RuntimeError("sleep_edf: the test set produced no scored epoch")
        records = units["record"].long().cpu().numpy()
        epochs = units["epoch"].long().cpu().numpy()
        probs = units["probs"].reshape(-1, N_CLASSES)
        target = units["target"].long()
        store = self.trainer.datamodule.store
        subjects = [store.records[r].subject_id for r in records]
        scores, confmat, per_subject = staging_scores(probs, target, subjects, "test/")
        self.log_dict(scores)
        self.test_artifacts.update(
            night_artifacts(
                store,
                records,
                epochs,
                probs.argmax(1).cpu().numpy(),
                target.cpu().numpy(),
                model_name="TinyUStaging",
                plots=bool(self.cfg.plots.hypnograms),
            )
        )
        self.test_artifacts["confusion_matrix"] = {
            "rows=reference,cols=predicted": confmat.tolist(),
            "classes": list(CLASS_NAMES),
        }
        self.test_artifacts["per_subject"] = per_subject
        for m in self.test_units.values():
            m.reset()

    # ---- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        o = self.cfg.optim
        opt = torch.optim.Adam(
            self.net.parameters(), lr=float(o.lr), betas=tuple(o.betas), eps=float(o.eps)
        )
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="max",
            factor=float(o.plateau.factor),
            patience=int(o.plateau.patience),
            cooldown=int(o.plateau.cooldown),
            min_lr=float(o.plateau.min_lr),
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": self.monitor, "interval": "epoch"},
        }

    # ---- result-row facts --------------------------------------------------------------------
    def protocol_tags(self) -> dict[str, Any]:
        """Facts that move published Sleep-EDF numbers (data card: pitfalls)."""
        tags = data_protocol_tags(self.cfg)
        eeg = [str(c) for c in self.cfg.preprocess.eeg_channels]
        eog = str(self.cfg.preprocess.eog_channel)
        tags["channels"] = f"{' or '.join(eeg)} (random at training) + {eog}"
        tags["test_channels"] = (
            f"softmax mean over {', '.join(eeg)}"
            if bool(self.cfg.model.test_channel_averaging)
            else f"{eeg[0]} only"
        )
        tags["seq_epochs"] = int(self.cfg.data.seq_epochs)
        tags["fs_hz"] = float(self.cfg.preprocess.fs_hz)
        tags["width"] = (
            f"complexity factor {float(self.cfg.model.complexity_factor):g}, "
            f"{int(self.cfg.model.init_filters)} base filters"
        )
        return tags


def data_protocol_tags(cfg: DictConfig) -> dict[str, Any]:
    """Tags every sleep_edf row carries (TinyUStaging and YASA alike)."""
    name, folds = parse_protocol(str(cfg.protocol))
    trim = cfg.preprocess.get("trim_wake_min")
    return {
        "night_list": "synthetic" if cfg.data.get("is_synthetic", False) else name,
        "folds": f"{folds}-fold subject-wise",
        "wake_trim": f"±{trim:g} min around sleep" if trim is not None else "none",
    }


def night_artifacts(
    store: Any,
    records: np.ndarray,
    epochs: np.ndarray,
    pred: np.ndarray,
    target: np.ndarray,
    model_name: str,
    plots: bool,
) -> dict[str, Any]:
    """Per-night predictions (JSON) and hypnogram figures (reference vs ``model_name``).

    Args:
        store: the cache store (record ids and ``epoch_offset`` attrs).
        records, epochs, pred, target: one entry per scored epoch (cache record position,
            epoch index within the cached night, predicted and reference labels).
        model_name: panel title of the prediction.
        plots: make one :func:`~sleepbench.tasks.sleep_edf.plots.plot_hypnograms` per night.

    Returns:
        ``{"predictions": {record_id: {...}}, "hypnogram_<record_id>": Figure, ...}``.
    """
    from sleepbench.tasks.sleep_edf.plots import plot_hypnograms

    out: dict[str, Any] = {}
    preds: dict[str, Any] = {}
    grouped_pred = per_night_labels(records, epochs, pred)
    grouped_ref = per_night_labels(records, epochs, target)
    for rec, (ep, p) in grouped_pred.items():
        ref = grouped_ref[rec][1]
        rid = store.records[rec].record_id
        offset = int(store.records[rec].attrs.get("epoch_offset", 0))
        preds[rid] = {
            "epoch_offset": offset,
            "epochs": ep.tolist(),
            "predicted": p.tolist(),
            "reference": ref.tolist(),
        }
        if plots:
            out[f"hypnogram_{rid}"] = plot_hypnograms(
                ref, {model_name: p}, CLASS_NAMES, IGNORE, EPOCH_S, offset + int(ep[0]), title=rid
            )
    out["predictions"] = {"classes": list(CLASS_NAMES), "ignored_label": IGNORE, "nights": preds}
    return out


def build_network(cfg: DictConfig) -> TinyUStaging:
    """TinyUStaging from ``cfg.model`` (two input channels: one EEG + EOG), ``data.seq_epochs``
    epochs at ``preprocess.fs_hz``."""
    m = cfg.model
    pools = [int(p) for p in m.pools]
    return TinyUStaging(
        n_chans=2,
        n_outputs=N_CLASSES,
        n_epochs=int(cfg.data.seq_epochs),
        sfreq=float(cfg.preprocess.fs_hz),
        epoch_s=EPOCH_S,
        depth=len(pools),
        pools=pools,
        kernel_size=int(m.kernel_size),
        dilation=int(m.dilation),
        complexity_factor=float(m.complexity_factor),
        init_filters=int(m.init_filters),
        attention=m.attention,
        dense_se_reduction=m.dense_se_reduction,
        bottom_se_reduction=m.bottom_se_reduction,
        csja_reduction=int(m.csja_reduction),
        csja_kernel_size=int(m.csja_kernel_size),
    )


def build_module(cfg: DictConfig, datamodule: Any) -> SleepStagingModule:
    """The sleep_edf module around :func:`build_network`."""
    return SleepStagingModule(build_network(cfg), cfg)
