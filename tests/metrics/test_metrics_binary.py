"""Binary screening metrics against sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sleepbench.metrics import (
    BINARY_SCALAR_KEYS,
    BinaryScreeningMetrics,
    NanBinaryAUROC,
    binary_screening_metrics,
)

DTYPES = st.sampled_from([torch.float32, torch.float64])


def sklearn_reference(prob: np.ndarray, target: np.ndarray, threshold: float) -> dict[str, float]:
    pred = (prob > threshold).astype(int)
    both = len(np.unique(target)) == 2
    mcc_defined = len(np.unique(target)) == 2 and len(np.unique(pred)) == 2
    return {
        "acc": skm.accuracy_score(target, pred),
        "sens": skm.recall_score(target, pred, zero_division=0),
        "spec": skm.recall_score(target, pred, pos_label=0, zero_division=0),
        "ppv": skm.precision_score(target, pred, zero_division=0),
        "npv": skm.precision_score(target, pred, pos_label=0, zero_division=0),
        "f1": skm.f1_score(target, pred, zero_division=0),
        # sklearn says 0 and torchmetrics 1 for a perfect single-class prediction; MCC is
        # undefined there, so it is compared only where it is defined
        "mcc": skm.matthews_corrcoef(target, pred) if mcc_defined else None,
        "auroc": skm.roc_auc_score(target, prob) if both else math.nan,
    }


def assert_matches(out: dict[str, torch.Tensor], ref: dict[str, float], prefix: str = "") -> None:
    for key, expected in ref.items():
        if expected is None:
            continue
        got = float(out[prefix + key])
        if math.isnan(expected):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(expected, abs=1e-5), key


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 200),
    n_batches=st.integers(1, 3),
    threshold=st.sampled_from([0.3, 0.5, 0.7]),
    dtype=DTYPES,
)
def test_matches_sklearn(seed: int, n: int, n_batches: int, threshold: float, dtype) -> None:
    rng = np.random.default_rng(seed)
    prob = torch.from_numpy(rng.random(n)).to(dtype)
    target = torch.from_numpy(rng.random(n) < rng.uniform(0.1, 0.9)).long()
    ref = sklearn_reference(prob.double().numpy(), target.numpy(), threshold)

    metric = BinaryScreeningMetrics(threshold=threshold, prefix="val/")
    for p, t in zip(prob.tensor_split(min(n_batches, n)), target.tensor_split(min(n_batches, n))):
        metric.update(p, t)
    out = metric.compute()
    assert_matches(out, ref, prefix="val/")
    assert set(out) == {f"val/{k}" for k in (*BINARY_SCALAR_KEYS, "confmat")}
    cm = skm.confusion_matrix(target.numpy(), (prob.double().numpy() > threshold), labels=[0, 1])
    np.testing.assert_array_equal(out["val/confmat"].numpy(), cm)

    assert_matches(binary_screening_metrics(prob, target, threshold=threshold), ref)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(4, 120), dtype=DTYPES)
def test_ignore_index_equals_dropping(seed: int, n: int, dtype) -> None:
    rng = np.random.default_rng(seed)
    prob = torch.from_numpy(rng.random(n)).to(dtype)
    target = torch.from_numpy(rng.integers(0, 2, n)).long()
    ignored = torch.from_numpy(rng.random(n) < 0.3)
    target_ign = target.masked_fill(ignored, -1)
    keep = ~ignored
    if keep.sum() < 1:
        return
    ref = sklearn_reference(prob[keep].double().numpy(), target[keep].numpy(), 0.5)

    metric = BinaryScreeningMetrics(ignore_index=-1)
    metric.update(prob, target_ign)
    assert_matches(metric.compute(), ref)
    assert_matches(binary_screening_metrics(prob, target_ign, ignore_index=-1), ref)


def test_auroc_nan_when_single_class() -> None:
    metric = NanBinaryAUROC()
    metric.update(torch.tensor([0.2, 0.9, 0.4]), torch.tensor([1, 1, 1]))
    assert math.isnan(float(metric.compute()))
    out = binary_screening_metrics(torch.tensor([0.2, 0.9]), torch.tensor([0, 0]))
    assert math.isnan(float(out["auroc"]))
    assert float(out["sens"]) == 0.0  # empty denominator -> 0 (sklearn zero_division=0)
    assert float(out["spec"]) == 0.5


def test_hand_example() -> None:
    # TP=2 FN=1 FP=1 TN=4
    prob = torch.tensor([0.9, 0.8, 0.1, 0.7, 0.2, 0.3, 0.4, 0.0])
    target = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0])
    out = binary_screening_metrics(prob, target)
    assert float(out["sens"]) == pytest.approx(2 / 3)
    assert float(out["spec"]) == pytest.approx(4 / 5)
    assert float(out["ppv"]) == pytest.approx(2 / 3)
    assert float(out["npv"]) == pytest.approx(4 / 5)
    assert float(out["acc"]) == pytest.approx(6 / 8)
