"""ICBHI score and the AHI severity helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sleepbench.metrics import (
    BinaryScreeningMetrics,
    ICBHIScore,
    ahi_to_severity,
    collapse_probs_at_cutoff,
    collapse_target_at_cutoff,
    icbhi_from_confmat,
    icbhi_score,
)


def test_icbhi_hand_confusion_matrix() -> None:
    cm = torch.tensor([[40, 5, 3, 2], [4, 20, 4, 2], [3, 2, 15, 0], [1, 1, 1, 7]])
    out = icbhi_from_confmat(cm)
    assert float(out["icbhi_sp"]) == pytest.approx(40 / 50)
    # abnormal rows 1..3: exact-class hits 20 + 15 + 7 of 30 + 20 + 10
    assert float(out["icbhi_se"]) == pytest.approx(42 / 60)
    assert float(out["icbhi_score"]) == pytest.approx((0.8 + 0.7) / 2)
    # normal class elsewhere (LSRM order: asthma, COPD, normal, pneumonia)
    out2 = icbhi_from_confmat(cm, normal_class=2)
    assert float(out2["icbhi_sp"]) == pytest.approx(15 / 20)
    assert float(out2["icbhi_se"]) == pytest.approx((40 + 20 + 7) / (50 + 30 + 10))
    with pytest.raises(ValueError):
        icbhi_from_confmat(cm, normal_class=4)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 200),
    normal_class=st.integers(0, 3),
    n_batches=st.integers(1, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_icbhi_matches_sklearn_confusion_matrix(seed, n, normal_class, n_batches, dtype) -> None:
    rng = np.random.default_rng(seed)
    prob = torch.from_numpy(rng.random((n, 4))).to(dtype)
    target = torch.from_numpy(rng.integers(0, 4, n))
    pred = prob.argmax(1).numpy()
    cm = skm.confusion_matrix(target.numpy(), pred, labels=[0, 1, 2, 3])
    abn = [c for c in range(4) if c != normal_class]
    n_norm, n_abn = cm[normal_class].sum(), cm[abn].sum()
    sp = cm[normal_class, normal_class] / n_norm if n_norm else 0.0
    se = sum(cm[c, c] for c in abn) / n_abn if n_abn else 0.0

    metric = ICBHIScore(num_classes=4, normal_class=normal_class)
    for p, t in zip(prob.tensor_split(min(n_batches, n)), target.tensor_split(min(n_batches, n))):
        metric.update(p, t)
    for out in (metric.compute(), icbhi_score(prob, target, normal_class=normal_class)):
        assert float(out["icbhi_sp"]) == pytest.approx(sp)
        assert float(out["icbhi_se"]) == pytest.approx(se)
        assert float(out["icbhi_score"]) == pytest.approx((se + sp) / 2)


def test_icbhi_ignore_index_and_labels() -> None:
    pred = torch.tensor([0, 1, 2, 0, 3])
    target = torch.tensor([0, 1, -1, 1, 3])
    out = icbhi_score(pred, target, num_classes=4, ignore_index=-1)
    assert float(out["icbhi_sp"]) == 1.0 and float(out["icbhi_se"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="num_classes"):
        icbhi_score(pred, target)


def test_ahi_to_severity_boundaries() -> None:
    ahi = [0.0, 4.99, 5.0, 14.9, 15.0, 29.99, 30.0, 120.0]
    expected = [0, 0, 1, 1, 2, 2, 3, 3]
    assert [ahi_to_severity(a) for a in ahi] == expected
    assert isinstance(ahi_to_severity(5.0), int)
    np.testing.assert_array_equal(ahi_to_severity(np.array(ahi)), expected)
    for dtype in (torch.float32, torch.float64):
        assert ahi_to_severity(torch.tensor(ahi, dtype=dtype)).tolist() == expected
    assert ahi_to_severity(10.0, cutoffs=(10.0,)) == 1
    with pytest.raises(ValueError):
        ahi_to_severity(3.0, cutoffs=(15.0, 5.0))
    with pytest.raises(ValueError):
        ahi_to_severity(float("nan"))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 150),
    cutoff_class=st.integers(1, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_collapse_at_cutoff_matches_sklearn(seed, n, cutoff_class, dtype) -> None:
    rng = np.random.default_rng(seed)
    probs = torch.from_numpy(rng.normal(size=(n, 4))).to(dtype).softmax(-1)
    target = torch.from_numpy(rng.integers(0, 4, n))
    p_bin = collapse_probs_at_cutoff(probs, cutoff_class)
    t_bin = collapse_target_at_cutoff(target, cutoff_class)
    np.testing.assert_allclose(
        p_bin.numpy(), probs.numpy()[:, cutoff_class:].sum(1), rtol=1e-6, atol=1e-7
    )
    assert t_bin.tolist() == (target >= cutoff_class).long().tolist()
    metric = BinaryScreeningMetrics()
    metric.update(p_bin, t_bin)
    auroc = float(metric.compute()["auroc"])
    if 0 < t_bin.sum() < n:
        assert auroc == pytest.approx(skm.roc_auc_score(t_bin.numpy(), p_bin.double().numpy()))
    with pytest.raises(ValueError):
        collapse_probs_at_cutoff(probs, 0)
