"""sleep_edf module: the ignored class stays out of loss and metrics, scores match sklearn,
channel averaging, latency accounting, hypnogram figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score
from torch import nn

from sleepbench.config import load_config
from sleepbench.tasks.sleep_edf.data import CLASS_NAMES, IGNORE
from sleepbench.tasks.sleep_edf.module import (
    SleepStagingModule,
    build_module,
    data_protocol_tags,
    staging_scores,
)
from sleepbench.tasks.sleep_edf.plots import plot_hypnograms


def _cfg(*overrides: str):
    return load_config("sleep_edf", ["data.seq_epochs=3", "preprocess.fs_hz=64", *overrides])


def _module(*overrides: str) -> SleepStagingModule:
    return build_module(_cfg("model.init_filters=2", *overrides), None)


def test_ignored_epochs_never_enter_the_loss() -> None:
    module = _module()
    torch.manual_seed(0)
    logits = torch.randn(4, 5, 3, requires_grad=True)
    target = torch.randint(0, 5, (4, 3))
    target[0, 1] = target[2, 0] = target[3, 2] = IGNORE
    loss = module.loss_fn(logits, target)
    loss.backward()
    ignored = target == IGNORE
    assert torch.all(logits.grad.permute(0, 2, 1)[ignored] == 0)
    assert torch.any(logits.grad.permute(0, 2, 1)[~ignored] != 0)
    changed = logits.detach().clone()
    changed.permute(0, 2, 1)[ignored] = 50.0 * torch.randn(int(ignored.sum()), 5)
    assert torch.isclose(module.loss_fn(changed, target), loss.detach())
    # the class weights are the paper's, in W, REM, N1, N2, N3 order
    assert module.loss_fn.focal.weight.tolist() == pytest.approx([0.2, 0.2, 0.3, 0.2, 0.2])


def _random_epochs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 5, (n,), generator=g)
    logits = torch.randn(n, 5, generator=g) + 2.0 * nn.functional.one_hot(target, 5)
    subjects = [f"S{int(i) % 4}" for i in torch.randint(0, 4, (n,), generator=g)]
    return logits.softmax(1), target, subjects


def test_scores_match_sklearn_pooled_and_per_subject() -> None:
    probs, target, subjects = _random_epochs(600, 0)
    scores, confmat, per_subject = staging_scores(probs, target, subjects, "test/")
    pred = probs.argmax(1).numpy()
    y = target.numpy()
    labels = list(range(5))
    assert scores["test/acc"] == pytest.approx(accuracy_score(y, pred), abs=1e-6)
    assert scores["test/kappa"] == pytest.approx(cohen_kappa_score(y, pred), abs=1e-5)
    assert scores["test/f1_macro"] == pytest.approx(
        f1_score(y, pred, labels=labels, average="macro", zero_division=0), abs=1e-5
    )
    per_class = f1_score(y, pred, labels=labels, average=None, zero_division=0)
    for name, value in zip(CLASS_NAMES, per_class):
        assert scores[f"test/f1_{name}"] == pytest.approx(value, abs=1e-5)
    np.testing.assert_array_equal(confmat, confusion_matrix(y, pred, labels=labels))
    subj = np.array(subjects)
    kappas = [cohen_kappa_score(y[subj == s], pred[subj == s]) for s in sorted(set(subjects))]
    assert scores["test/subj_kappa"] == pytest.approx(np.mean(kappas), abs=1e-5)
    assert scores["test/subj_kappa_std"] == pytest.approx(np.std(kappas, ddof=1), abs=1e-5)
    assert [r["subject"] for r in per_subject] == sorted(set(subjects))
    assert scores["test/n_epochs_scored"] == 600 and scores["test/n_subjects"] == 4


def test_ignored_epochs_never_enter_the_metrics() -> None:
    probs, target, subjects = _random_epochs(400, 1)
    base, confmat, _ = staging_scores(probs, target, subjects)
    extra_probs, _, _ = _random_epochs(150, 2)
    more = staging_scores(
        torch.cat([probs, extra_probs]),
        torch.cat([target, torch.full((150,), IGNORE)]),
        subjects + ["S9"] * 100 + ["S0"] * 50,  # S9 has only ignored epochs: not a subject
    )
    assert more[0] == pytest.approx(base, nan_ok=True)
    np.testing.assert_array_equal(more[1], confmat)
    assert base["test/n_epochs_scored"] == 400


def test_scores_reject_misshaped_input() -> None:
    with pytest.raises(ValueError):
        staging_scores(torch.rand(5, 4), torch.zeros(5, dtype=torch.long), ["a"] * 5)


class _Probe(nn.Module):
    """Logits that depend on the first input channel only, so views are distinguishable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape
        n = t // 1920
        base = x[:, 0].reshape(b, n, 1920).mean(-1)  # [B, n]
        return torch.stack([base * k for k in range(5)], dim=1)


def test_probabilities_average_the_eeg_views_and_latency_counts_windows() -> None:
    cfg = _cfg()
    module = SleepStagingModule(_Probe(), cfg)
    x = torch.randn(2, 3, 3 * 1920)
    probs = module.predict_probs(x, timed=True)
    expected = (
        torch.softmax(_Probe()(x[:, [0, 2]]), 1) + torch.softmax(_Probe()(x[:, [1, 2]]), 1)
    ) / 2
    torch.testing.assert_close(probs, expected)
    assert module._infer_windows == 2  # two windows of signal, not four forward passes
    single = SleepStagingModule(_Probe(), _cfg("model.test_channel_averaging=false"))
    torch.testing.assert_close(single.predict_probs(x), torch.softmax(_Probe()(x[:, [0, 2]]), 1))
    assert module.eeg_views(3) == [[0, 2], [1, 2]]


def test_build_module_shapes_and_tags() -> None:
    module = _module("protocol=sedf78_10fold", "preprocess.trim_wake_min=null")
    x = torch.randn(2, 2, 3 * 1920)
    assert module(x).shape == (2, 5, 3)
    tags = module.protocol_tags()
    assert tags["wake_trim"] == "none" and tags["night_list"] == "sedf78"
    assert tags["folds"] == "10-fold subject-wise" and tags["fs_hz"] == 64.0
    assert "softmax mean" in tags["test_channels"]
    # SPECS §5.1: no wake trimming by default; trimming is an option the row names
    assert data_protocol_tags(_cfg())["wake_trim"] == "none"
    trimmed = _cfg("preprocess.trim_wake_min=30")
    assert data_protocol_tags(trimmed)["wake_trim"] == "±30 min around sleep"
    assert module.monitor == "val/f1_macro" and module.monitor_mode == "max"


def test_hypnogram_figure_has_one_panel_per_scoring() -> None:
    ref = np.array([0, 0, 2, 3, 3, 4, 4, 3, 1, 1, IGNORE, 0])
    pred = np.array([0, 2, 2, 3, 3, 4, 3, 3, 1, 0, 0, 0])
    fig = plot_hypnograms(ref, {"model": pred, "YASA": ref}, CLASS_NAMES, IGNORE, start_epoch=10)
    axes = fig.get_axes()
    assert len(axes) == 3
    assert "agreement 72.7 %" in axes[1].get_title(loc="left")  # 8 of 11 scored epochs
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["N3", "N2", "N1", "REM", "W"]
    with pytest.raises(ValueError, match="labels"):
        plot_hypnograms(ref, {"short": pred[:5]}, CLASS_NAMES, IGNORE)
