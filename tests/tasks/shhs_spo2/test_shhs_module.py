"""shhs_spo2 module: metric routing (SHHS1 / SHHS2), collapsed and retrained binary metrics against
sklearn, the paper's optimiser, and the ablation variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, roc_auc_score
from torch import nn

from sleepbench.ablation import ablation_table, ablation_variants
from sleepbench.config import load_config
from sleepbench.tasks.shhs_spo2.module import ShhsSpO2Module, build_network
from sleepbench.tasks.shhs_spo2.network import VARIANTS


class _Logits(nn.Module):
    """Returns the first ``n`` input samples as logits: tests choose the network output."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, : self.n] + self.w


def _module(variant: str = "severity4", n_records: int = 40) -> ShhsSpO2Module:
    cfg = load_config("shhs_spo2", [f"task_variant={variant}", "preprocess.n_samples=8"])
    visits = np.array([1] * (n_records // 2) + [2] * (n_records - n_records // 2))
    info = [(f"r{i}", float(i)) for i in range(n_records)]
    n_out = 4 if variant == "severity4" else 2
    return ShhsSpO2Module(_Logits(n_out), cfg, visits, (1, 2), info)


def _batches(rng: np.random.Generator, n_records: int, n_out: int, n_classes: int = 4):
    logits = rng.normal(size=(n_records, n_out)).astype(np.float32)
    y = rng.integers(0, n_classes, n_records)
    y[:4] = np.arange(4) % n_classes  # every class present in both sets
    y[n_records // 2 : n_records // 2 + 4] = np.arange(4) % n_classes
    x = np.zeros((n_records, 1, 8), dtype=np.float32)
    x[:, 0, :n_out] = logits
    order = rng.permutation(n_records)  # SHHS1 and SHHS2 nights mixed within batches
    batches = [
        {
            "x": torch.as_tensor(x[idx]),
            "y": torch.as_tensor(y[idx]),
            "record": torch.as_tensor(idx),
        }
        for idx in np.array_split(order, 5)
    ]
    probs = torch.softmax(torch.as_tensor(logits), dim=1).numpy()
    return batches, probs, y


def _compute(module: ShhsSpO2Module, visit: int) -> dict[str, float]:
    out = {}
    for metric in module.test_metrics[str(visit)].values():
        out.update({k: v for k, v in metric.compute().items()})
    return out


def test_severity_metrics_per_test_set_match_sklearn() -> None:
    module = _module()
    batches, probs, y = _batches(np.random.default_rng(0), 40, 4)
    module.on_test_epoch_start()
    for i, batch in enumerate(batches):
        module.test_step(batch, i)
    for visit, sel, prefix in ((1, slice(0, 20), "test/"), (2, slice(20, 40), "test/shhs2_")):
        got = _compute(module, visit)
        p, t = probs[sel], y[sel]
        pred = p.argmax(1)
        assert float(got[f"{prefix}acc"]) == pytest.approx(accuracy_score(t, pred), abs=1e-6)
        assert float(got[f"{prefix}kappa"]) == pytest.approx(cohen_kappa_score(t, pred), abs=1e-5)
        assert float(got[f"{prefix}f1_macro"]) == pytest.approx(
            f1_score(t, pred, average="macro", labels=range(4), zero_division=0), abs=1e-6
        )
        assert float(got[f"{prefix}auroc_severe"]) == pytest.approx(
            roc_auc_score(t == 3, p[:, 3]), abs=1e-5
        )
        # binary views collapsed from the 4-class probabilities
        for ahi, cls in ((5, 1), (15, 2)):
            pos = t >= cls
            score = p[:, cls:].sum(1)
            assert float(got[f"{prefix}ahi{ahi}_auroc"]) == pytest.approx(
                roc_auc_score(pos, score), abs=1e-5
            )
            assert float(got[f"{prefix}ahi{ahi}_acc"]) == pytest.approx(
                accuracy_score(pos, score > 0.5), abs=1e-6
            )
            tp = np.sum(pos & (score > 0.5))
            assert float(got[f"{prefix}ahi{ahi}_sens"]) == pytest.approx(tp / pos.sum(), abs=1e-6)
        assert got[f"{prefix}confmat"].sum() == 20
    rows = module._per_record()
    assert len(rows) == 40 and {r["visit"] for r in rows} == {1, 2}
    first = next(r for r in rows if r["record"] == "r3")
    assert first["target"] == int(y[3]) and first["pred"] == int(probs[3].argmax())
    assert first["probs"] == pytest.approx(probs[3].tolist(), abs=1e-4) and first["ahi"] == 3.0


def test_retrained_binary_variant_scores_only_its_cutoff() -> None:
    module = _module("binary5")
    batches, probs, y = _batches(np.random.default_rng(1), 40, 2, n_classes=2)
    module.on_test_epoch_start()
    for i, batch in enumerate(batches):
        module.test_step(batch, i)
    got = _compute(module, 2)
    assert not any("kappa" in k or "ahi15" in k for k in got)
    p, t = probs[20:, 1], y[20:]
    assert float(got["test/shhs2_ahi5_auroc"]) == pytest.approx(roc_auc_score(t, p), abs=1e-5)
    assert float(got["test/shhs2_ahi5_f1"]) == pytest.approx(f1_score(t, p > 0.5), abs=1e-6)
    assert module.protocol_tags()["binary"] == "retrained"
    assert _module().protocol_tags()["binary"] == "collapsed from 4-class"


def test_paper_optimiser_and_plateau_schedule() -> None:
    module = _module()
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["lr"] == 0.01
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert sched.factor == 0.5 and sched.patience == 5 and sched.min_lrs == [1e-4]
    assert conf["lr_scheduler"]["monitor"] == "val/loss" == module.monitor


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_network_from_config(variant: str) -> None:
    cfg = load_config(
        "shhs_spo2",
        [
            f"model.variant={variant}",
            "preprocess.n_samples=1024",
            "model.channels=[4,8]",
            "model.lstm_hidden=8",
            "task_variant=binary15",
        ],
    )
    net = build_network(cfg)
    assert net.variant == variant
    assert net(torch.rand(2, 1, 1024)).shape == (2, 2)


# ---- ablations (run by the shared sleepbench.ablation runner) ------------------------------


def test_ablations_cover_the_papers_tables() -> None:
    smoothing = ablation_variants("shhs_spo2", "smoothing")
    assert smoothing == {
        "median": ["preprocess.smoothing=median"],
        "butterworth": ["preprocess.smoothing=butterworth"],
        "adaptive": ["preprocess.smoothing=adaptive"],
    }
    modules = ablation_variants("shhs_spo2", "modules")
    assert set(modules) == set(VARIANTS)
    assert all(o == [f"model.variant={v}"] for v, o in modules.items())
    rows = [
        {
            "config": {"ablation_variant": v},
            "data": {"synthetic": True},
            "metrics": {"test/acc": a, "test/shhs2_acc": a - 0.1},
        }
        for v, a in (("median", 0.5), ("adaptive", 0.75))
    ]
    table = ablation_table("shhs_spo2", "smoothing", rows)
    assert "| median | SYNTHETIC | 0.500 / 0.788 |" in table
    assert "| adaptive | SYNTHETIC | 0.750 / 0.805 |" in table
    assert "0.650 / 0.766" in table  # shhs2_acc of adaptive, ours / paper
