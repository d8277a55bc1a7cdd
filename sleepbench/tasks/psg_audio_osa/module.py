"""LightningModule of the psg_audio_osa task: ROI-masked focal + Dice training, the seed's
validation macro-F1, and whole-night test evaluation.

Training (SPECS §1.4): focal loss with class weights [1, 4, 2] and ``p_t`` from the *weighted*
cross-entropy, plus 0.5 x soft Dice over the foreground classes, both on ROI-valid frames only;
AdamW, ReduceLROnPlateau and early stopping on the validation macro-F1, computed as the seed
does (:func:`~sleepbench.tasks.psg_audio_osa.evaluation.validation_scores`).

Test (``eval.mode``):

* ``night`` (default, SPECS §1.5 recommendation): the softmax of the overlapping windows is
  averaged per 80-ms frame over each whole night, then post-processed and scored by
  :func:`~sleepbench.tasks.psg_audio_osa.evaluation.evaluate_segments`; AHI per hour of total
  sleep time (cache attr ``tst_s``).
* ``parity``: the seed's ``evaluate.py``: every window post-processed on its own (its scored
  frames only), raw frame predictions scored, AHI = events of all windows / their scored hours
  (overlapping windows double count). Tagged in the result row.

The acoustic baseline row goes through the same evaluation function.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from sleepbench.module import BenchModule
from sleepbench.nn.losses import FocalDiceLoss, FocalLoss, SoftDiceLoss
from sleepbench.tasks.psg_audio_osa.evaluation import (
    N_CLASSES,
    Evaluation,
    PostProcessing,
    evaluate_segments,
    evaluation_tags,
    night_segments,
    parity_segments,
    validation_scores,
)
from sleepbench.tasks.psg_audio_osa.network import DualStreamCRNN
from sleepbench.tasks.psg_audio_osa.stitching import NightStitcher, WindowPredictions

__all__ = ["EVAL_MODES", "MODEL_NAME", "FrameLoss", "PsgAudioOsaModule", "build_module"]

MODEL_NAME = "DualStreamCRNN"
EVAL_MODES = ("night", "parity")
#: loss target of frames outside the ROI / recorded audio
IGNORE = -100


class FrameLoss(nn.Module):
    """A class-dim-1 loss applied to time-major logits ``[B, L, C]`` and targets ``[B, L]``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``inner(logits [B, C, L], target)``."""
        return self.inner(logits.transpose(1, 2), target)


def crnn_loss(cfg: DictConfig) -> FrameLoss:
    """Focal (``p_t`` from the weighted CE) + ``dice_weight`` x foreground Dice (``cfg.loss``)."""
    weights = [float(w) for w in cfg.loss.class_weights]
    return FrameLoss(
        FocalDiceLoss(
            FocalLoss(
                gamma=float(cfg.loss.gamma),
                weight=weights,
                ignore_index=IGNORE,
                pt_from_weighted_ce=True,
            ),
            SoftDiceLoss(N_CLASSES, ignore_index=IGNORE, foreground_only=(1, 2)),
            dice_weight=float(cfg.loss.dice_weight),
        )
    )


class PsgAudioOsaModule(BenchModule):
    """Dual-stream CRNN training and night-level evaluation (method 000).

    Args:
        net: :class:`~sleepbench.tasks.psg_audio_osa.network.DualStreamCRNN`.
        cfg: run config; reads ``loss.*``, ``optim.*``, ``eval.*``, ``plots.nights``,
            ``plots.max_nights``, ``data.stride_s``.

    Batches (contract): ``x`` ``[B, 129, 6000]``, ``y`` ``[B, 750]``, ``mask`` ``[B, 750]``,
    ``record`` and ``window`` ``[B]``. The test set's window index (``dm.test_set.index``)
    places every window in its night.

    ``inference_ms_per_hour`` counts each window as ``data.stride_s`` (30 s) of signal, i.e. it is
    the forward time per hour of *night* at the test stride, overlap included.
    """

    monitor = "val/f1_macro"
    monitor_mode = "max"

    def __init__(self, net: nn.Module, cfg: DictConfig) -> None:
        super().__init__(net, cfg, window_s=float(cfg.data.get("stride_s", 30.0)))
        self.eval_mode = str(cfg.get("eval", {}).get("mode", "night"))
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval.mode must be one of {EVAL_MODES}, got {self.eval_mode!r}")
        self.post = PostProcessing.from_cfg(cfg)
        self.loss_fn = crnn_loss(cfg)
        self.val_frames = WindowPredictions()
        self.test_frames = WindowPredictions()
        self.stitcher = NightStitcher(N_CLASSES)

    # ---- steps ---------------------------------------------------------------------------------
    def loss_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Frame labels with :data:`IGNORE` outside the ROI / recorded audio."""
        return torch.where(batch["mask"].bool(), batch["y"].long(), IGNORE)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["x"])
        loss = self.loss_fn(logits, self.loss_target(batch))
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(logits))
        self.val_frames.update(batch["window"], logits.argmax(-1), batch["y"], batch["mask"])

    def on_validation_epoch_end(self) -> None:
        _, pred, target = self.val_frames.compute()  # gathered from every process
        self.log_dict(validation_scores(pred, target, self.post.median_kernel, "val/"))
        self.val_frames.reset()

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self.test_frames.reset()
        dm = self.trainer.datamodule
        records = np.unique(dm.test_set.index.record)
        self.stitcher.configure({int(r): int(dm.store.records[r].shapes["y"][0]) for r in records})

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        probs = F.softmax(self.timed_forward(batch["x"]).float(), dim=-1)  # [B, L, C]
        if self.eval_mode == "parity":
            self.test_frames.update(batch["window"], probs.argmax(-1), batch["y"], batch["mask"])
            return
        index = self.trainer.datamodule.test_set.index
        y_start = torch.as_tensor(index.y_start[batch["window"].cpu().numpy()])
        self.stitcher.update(batch["record"].cpu(), y_start, probs)

    def on_test_epoch_end(self) -> None:
        dm = self.trainer.datamodule
        if self.eval_mode == "parity":
            window, pred, target = (t.numpy() for t in self.test_frames.compute())
            segments, nights = parity_segments(dm.store, dm.test_set.index, window, pred, target)
        else:
            segments, nights = night_segments(dm.store, self.stitcher.compute())
        result = evaluate_segments(
            segments, nights, self.post, "test/", median_frames=self.eval_mode == "night"
        )
        self.log_dict(result.scores)
        plots = self.cfg.get("plots", {})
        self.test_artifacts.update(
            night_artifacts(
                dm.store,
                result,
                self.post,
                MODEL_NAME,
                figures=self.eval_mode == "night"
                and bool(plots.get("nights", True))
                and self.trainer.is_global_zero,  # only rank 0's artifacts are saved
                max_figures=plots.get("max_nights"),
            )
        )
        self.test_frames.reset()
        self.stitcher.configure({})  # free the night buffers

    # ---- optimisation ------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW + ReduceLROnPlateau on the validation macro-F1 (``cfg.optim``)."""
        o = self.cfg.optim
        opt = torch.optim.AdamW(
            self.net.parameters(), lr=float(o.lr), weight_decay=float(o.weight_decay)
        )
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=float(o.plateau.factor), patience=int(o.plateau.patience)
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": self.monitor, "interval": "epoch"},
        }

    # ---- result-row facts --------------------------------------------------------------------
    def protocol_tags(self) -> dict[str, Any]:
        """Evaluation facts that move the numbers."""
        return {"model_size": str(self.cfg.model.size)} | evaluation_tags(self.eval_mode, self.post)


def night_artifacts(
    store: Any,
    result: Evaluation,
    post: PostProcessing,
    model_name: str,
    figures: bool,
    max_figures: int | None = None,
    energy: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Run artifacts: the per-night table, the events of every night and per-night figures.

    Args:
        store: the cache (for the envelope and mask of each night).
        result: the evaluation.
        post: settings (written beside the events).
        model_name: panel name of the predicted events.
        figures: draw :func:`~sleepbench.tasks.psg_audio_osa.plots.plot_night` per night.
        max_figures: draw at most this many (None: all).
        energy: record id -> envelope already read (others are read from the cache).

    Returns:
        ``{"per_night": [...], "events": {...}, "night_<record>": Figure, ...}``.
    """
    out: dict[str, Any] = {
        "per_night": result.per_night,
        "events": {
            "classes": ["normal", "hypopnea", "apnea"],
            "post_processing": asdict(post),
            "nights": result.events,
        },
    }
    if not figures:
        return out
    from sleepbench.tasks.psg_audio_osa.baseline import frame_energy_db
    from sleepbench.tasks.psg_audio_osa.plots import plot_night

    rows = {r["record"]: r for r in result.per_night}
    for k, (rid, ev) in enumerate(sorted(result.events.items())):
        if max_figures is not None and k >= int(max_figures):
            break
        rec = store.index_of(rid)
        row = rows[rid]
        env = energy[rid] if energy and rid in energy else frame_energy_db(store, rec)
        out[f"night_{rid}"] = plot_night(
            env,
            store.read(rec, "mask"),
            {"reference": ev["reference"], model_name: ev["predicted"]},
            post.frame_s,
            title=f"{rid}: AHI reference {row['ahi_ref']:.1f}, {model_name} {row['ahi_pred']:.1f} /h",
            stages=store.read(rec, "stages") if "stages" in store.records[rec].shapes else None,
        )
    return out


def build_network(cfg: DictConfig) -> DualStreamCRNN:
    """The CRNN at ``cfg.model.size`` (``paper`` | ``small``)."""
    return DualStreamCRNN(n_outputs=N_CLASSES, size=str(cfg.model.size))


def build_module(cfg: DictConfig, datamodule: Any = None) -> PsgAudioOsaModule:
    """:func:`build_network` in its module."""
    return PsgAudioOsaModule(build_network(cfg), cfg)
