"""The psg_audio_osa LightningModule on a tiny fake cache: loss, validation macro-F1, night and
parity test evaluation, each checked against an independent computation."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from sklearn.metrics import f1_score

from sleepbench.tasks.psg_audio_osa.module import build_module

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*does not have many workers",
    "ignore:The ``compute`` method",
    "ignore:.*LightningDataModule.*",
)


def make_cfg(mode: str = "night", **extra) -> OmegaConf:
    return OmegaConf.create(
        {
            "model": {"size": "small"},
            "loss": {"class_weights": [1.0, 4.0, 2.0], "gamma": 2.0, "dice_weight": 0.5},
            "optim": {
                "lr": 5e-4,
                "weight_decay": 5e-2,
                "plateau": {"factor": 0.5, "patience": 2},
                "early_stopping_patience": 5,
            },
            "data": {"stride_s": 30.0},
            "eval": {"mode": mode, "median_kernel": 5, "merge_gap_s": 3.0, "min_duration_s": 10.0},
            "plots": {"nights": True, "max_nights": 1},
            **extra,
        }
    )


def upstream_events(labels, frame_s=0.08):
    """CRNN_OSA ``apply_post_processing`` re-stated (medfilt 5, merge < 3 s, drop < 10 s)."""
    x = scipy.signal.medfilt(np.asarray(labels, float), 5).astype(int) if len(labels) else []
    events, start = [], 0
    for i in range(1, len(x) + 1):
        if i == len(x) or x[i] != x[start]:
            if x[start] != 0:
                events.append([start * frame_s, i * frame_s, int(x[start])])
            start = i
    merged = []
    for ev in events:
        if merged and merged[-1][2] == ev[2] and ev[0] - merged[-1][1] < 3.0:
            merged[-1][1] = ev[1]
        else:
            merged.append(ev)
    return [e for e in merged if e[1] - e[0] >= 10.0 - 1e-9]


def trainer(**kw) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def window_probs(module, dataset) -> list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """(record, y_start, softmax [L, 3], y, mask) of every window, by a plain forward pass."""
    module.eval()
    out = []
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            p = F.softmax(module.net(item["x"][None]), dim=-1)[0].numpy()
            out.append(
                (
                    int(item["record"]),
                    int(dataset.index.y_start[i]),
                    p,
                    item["y"].numpy(),
                    item["mask"].numpy().astype(bool),
                )
            )
    return out


def test_loss_is_the_seeds_masked_hybrid_loss() -> None:
    torch.manual_seed(0)
    module = build_module(make_cfg())
    logits = torch.randn(3, 40, 3)
    y = torch.randint(0, 3, (3, 40))
    mask = torch.rand(3, 40) > 0.3
    batch = {"y": y, "mask": mask.to(torch.uint8)}
    got = module.loss_fn(logits, module.loss_target(batch))
    # CRNN_OSA HybridEventLoss: valid frames selected, CE with class weights, pt = exp(-wCE)
    lf, tf = logits.reshape(-1, 3)[mask.reshape(-1)], y.reshape(-1)[mask.reshape(-1)]
    ce = F.cross_entropy(lf, tf, weight=torch.tensor([1.0, 4.0, 2.0]), reduction="none")
    focal = ((1 - torch.exp(-ce)) ** 2 * ce).mean()
    probs, onehot = F.softmax(lf, -1), F.one_hot(tf, 3).float()
    dice = (2 * (probs * onehot).sum(0) + 1e-6) / (probs.sum(0) + onehot.sum(0) + 1e-6)
    torch.testing.assert_close(got, focal + 0.5 * (1 - dice[1:].mean()))
    # labels outside the mask do not matter
    batch2 = {"y": torch.where(mask, y, (y + 1) % 3), "mask": batch["mask"]}
    torch.testing.assert_close(module.loss_fn(logits, module.loss_target(batch2)), got)


def test_fit_then_night_test_against_independent_stitching(osa_dm) -> None:
    pl.seed_everything(0)
    module = build_module(make_cfg())
    t = trainer(max_epochs=1, limit_train_batches=2)
    t.fit(module, datamodule=osa_dm)
    # validation macro-F1: valid frames of all windows concatenated, medfilt 5, sklearn
    rows = window_probs(module, osa_dm.val_set)
    pred = np.concatenate([p.argmax(1)[m] for _, _, p, _, m in rows])
    ref = np.concatenate([y[m] for _, _, _, y, m in rows])
    smoothed = scipy.signal.medfilt(pred.astype(float), 5).astype(int)
    expected = f1_score(ref, smoothed, labels=[0, 1, 2], average="macro", zero_division=0)
    assert float(t.callback_metrics["val/f1_macro"]) == pytest.approx(expected, abs=1e-6)

    logged = t.test(module, datamodule=osa_dm, verbose=False)[0]
    rows = window_probs(module, osa_dm.test_set)
    store = osa_dm.store
    all_ref, all_pred, ahi = [], [], {}
    for rec in sorted({r for r, *_ in rows}):
        n = int(store.records[rec].shapes["y"][0])
        total, count = np.zeros((n, 3)), np.zeros(n)
        for r, s, p, _, _ in rows:
            if r == rec:
                total[s : s + len(p)] += p
                count[s : s + len(p)] += 1
        night = (total / count[:, None]).argmax(1)
        mask = store.read(rec, "mask").astype(bool)
        y = store.read(rec, "y")
        masked = np.where(mask, night, 0)
        all_pred.append(scipy.signal.medfilt(masked.astype(float), 5).astype(int)[mask])
        all_ref.append(y[mask])
        tst_h = store.records[rec].attrs["tst_s"] / 3600
        ahi[store.records[rec].record_id] = len(upstream_events(masked)) / tst_h
    ref, pred = np.concatenate(all_ref), np.concatenate(all_pred)
    assert logged["test/f1_macro"] == pytest.approx(
        f1_score(ref, pred, labels=[0, 1, 2], average="macro", zero_division=0), abs=1e-6
    )
    assert logged["test/n_frames_scored"] == ref.size
    per_night = {r["record"]: r for r in module.test_artifacts["per_night"]}
    assert set(per_night) == {"n4", "n5"}
    for rid, value in ahi.items():
        assert per_night[rid]["ahi_pred"] == pytest.approx(value)
        assert per_night[rid]["ahi_ref"] == store.records[store.index_of(rid)].attrs["ahi_ref"]
    assert {"per_night", "events", "night_n4"} <= set(module.test_artifacts)
    assert hasattr(module.test_artifacts["night_n4"], "savefig")
    assert "night_n5" not in module.test_artifacts  # plots.max_nights = 1
    ms = module.inference_ms_per_hour()
    assert math.isfinite(ms) and ms > 0
    assert module.protocol_tags()["eval"].startswith("night")


def test_parity_mode_is_the_seeds_window_by_window_evaluation(osa_dm) -> None:
    pl.seed_everything(1)
    module = build_module(make_cfg("parity"))
    logged = trainer().test(module, datamodule=osa_dm, verbose=False)[0]
    rows = window_probs(module, osa_dm.test_set)
    pred = np.concatenate([p.argmax(1)[m] for _, _, p, _, m in rows])
    ref = np.concatenate([y[m] for _, _, _, y, m in rows])
    # raw frame predictions (evaluate.py prints the report before any filtering)
    assert logged["test/f1_macro"] == pytest.approx(
        f1_score(ref, pred, labels=[0, 1, 2], average="macro", zero_division=0), abs=1e-6
    )
    events, hours = {}, {}
    for r, _, p, _, m in rows:
        events[r] = events.get(r, 0) + len(upstream_events(p.argmax(1)[m]))
        hours[r] = hours.get(r, 0.0) + m.sum() * 0.08 / 3600
    per_night = {r["record"]: r for r in module.test_artifacts["per_night"]}
    for rec in events:
        rid = osa_dm.store.records[rec].record_id
        assert per_night[rid]["ahi_pred"] == pytest.approx(events[rec] / hours[rec])
    assert not any(k.startswith("night_") for k in module.test_artifacts)
    assert module.protocol_tags()["eval"].startswith("parity")


def test_unknown_eval_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval.mode"):
        build_module(make_cfg("windows"))
