"""Multiclass metric collection against sklearn, ignore_index, and flatten_metric_dict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from sleepbench.metrics import MacroF1Score, flatten_metric_dict, make_multiclass_metrics


def sklearn_reference(prob: np.ndarray, target: np.ndarray, num_classes: int) -> dict[str, float]:
    labels = list(range(num_classes))
    pred = prob.argmax(axis=1)
    cm = skm.confusion_matrix(target, pred, labels=labels)
    n = cm.sum()
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    tn = n - tp - fp - fn
    spec = np.divide(tn, tn + fp, out=np.zeros(num_classes), where=(tn + fp) > 0)
    kw = {"labels": labels, "zero_division": 0}
    ref = {
        "acc": skm.accuracy_score(target, pred),
        "f1_macro": skm.f1_score(target, pred, average="macro", **kw),
        "kappa": skm.cohen_kappa_score(target, pred, labels=labels),
        "sens_macro": skm.recall_score(target, pred, average="macro", **kw),
        "prec_macro": skm.precision_score(target, pred, average="macro", **kw),
        "spec_macro": spec.mean(),
        "ovr_acc_macro": ((tp + tn) / n).mean(),
    }
    f1 = skm.f1_score(target, pred, average=None, **kw)
    rec = skm.recall_score(target, pred, average=None, **kw)
    prec = skm.precision_score(target, pred, average=None, **kw)
    for c in labels:
        ref[f"f1_{c}"], ref[f"sens_{c}"], ref[f"prec_{c}"] = f1[c], rec[c], prec[c]
        ref[f"spec_{c}"] = spec[c]
        pos = target == c
        ref[f"auroc_{c}"] = (
            skm.roc_auc_score(pos, prob[:, c]) if 0 < pos.sum() < len(pos) else math.nan
        )
    return ref, cm


def assert_close(got: dict[str, float], ref: dict[str, float], prefix: str = "") -> None:
    for key, expected in ref.items():
        value = got[prefix + key]
        if math.isnan(expected):
            assert math.isnan(value), key
        else:
            assert value == pytest.approx(expected, abs=1e-5), key


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 150),
    num_classes=st.integers(2, 5),
    ignore=st.sampled_from([None, -1, "C"]),
    n_batches=st.integers(1, 3),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_matches_sklearn(seed, n, num_classes, ignore, n_batches, dtype) -> None:
    rng = np.random.default_rng(seed)
    ignore_index = num_classes if ignore == "C" else ignore
    prob = torch.from_numpy(rng.normal(size=(n, num_classes))).to(dtype).softmax(-1)
    target = torch.from_numpy(rng.integers(0, num_classes, n))
    keep = torch.ones(n, dtype=torch.bool)
    if ignore_index is not None:
        keep = torch.from_numpy(rng.random(n) > 0.25)
        keep[0] = True  # at least one scored entry
    target_in = target.masked_fill(~keep, ignore_index) if ignore_index is not None else target
    ref, cm = sklearn_reference(prob[keep].double().numpy(), target[keep].numpy(), num_classes)

    metrics = make_multiclass_metrics(num_classes, prefix="test/", ignore_index=ignore_index)
    for p, t in zip(
        prob.tensor_split(min(n_batches, n)), target_in.tensor_split(min(n_batches, n))
    ):
        metrics.update(p, t)
    out = metrics.compute()
    np.testing.assert_array_equal(out["test/confmat"].numpy(), cm)
    flat = flatten_metric_dict(out)
    assert "test/confmat" not in flat
    assert_close(flat, ref, prefix="test/")


def test_batch_with_only_ignored_targets() -> None:
    prob = torch.rand(6, 3).softmax(-1)
    target = torch.tensor([0, 1, 2, -1, -1, -1])
    split = make_multiclass_metrics(3, ignore_index=-1)
    split.update(prob[:3], target[:3])
    split.update(prob[3:], target[3:])  # nothing scored in this batch
    whole = make_multiclass_metrics(3)
    whole.update(prob[:3], target[:3])
    a, b = flatten_metric_dict(split.compute()), flatten_metric_dict(whole.compute())
    assert a == pytest.approx(b, nan_ok=True)


def test_class_names_and_options() -> None:
    names = ["W", "REM", "N1", "N2", "N3"]
    prob = torch.rand(40, 5)
    target = torch.randint(0, 5, (40,))
    metrics = make_multiclass_metrics(5, class_names=names)
    metrics.update(prob, target)
    flat = flatten_metric_dict(metrics.compute())
    assert {f"f1_{n}" for n in names} <= set(flat)
    assert {f"auroc_{n}" for n in names} <= set(flat)

    lean = make_multiclass_metrics(5, auroc=False, per_class=False)
    lean.update(prob.argmax(1), target)  # hard labels are fine without AUROC
    keys = set(flatten_metric_dict(lean.compute()))
    assert keys == {
        "acc",
        "f1_macro",
        "kappa",
        "sens_macro",
        "spec_macro",
        "prec_macro",
        "ovr_acc_macro",
    }
    with pytest.raises(ValueError, match="class names"):
        make_multiclass_metrics(3, class_names=["a", "b"])


def test_macro_counts_absent_class_as_zero() -> None:
    # class 2 never occurs in targets or predictions: sklearn with labels=range(3) averages a 0
    target = torch.tensor([0, 0, 1, 1])
    pred = torch.tensor([0, 0, 1, 1])
    metric = MacroF1Score(num_classes=3)
    metric.update(pred, target)
    expected = skm.f1_score(target, pred, labels=[0, 1, 2], average="macro", zero_division=0)
    assert float(metric.compute()) == pytest.approx(expected) == pytest.approx(2 / 3)


def test_flatten_metric_dict() -> None:
    d = {
        "a": torch.tensor(0.5),
        "per": torch.tensor([0.1, 0.2]),
        "cm": torch.eye(2),
        "n": 3,
        "nested": {"x": torch.tensor(1.0)},
    }
    assert flatten_metric_dict(d) == pytest.approx(
        {"a": 0.5, "per_0": 0.1, "per_1": 0.2, "n": 3.0, "x": 1.0}
    )
    assert set(flatten_metric_dict(d, class_names=["lo", "hi"])) == {
        "a",
        "per_lo",
        "per_hi",
        "n",
        "x",
    }
    with pytest.raises(ValueError):
        flatten_metric_dict(d, class_names=["only_one"])
    with pytest.raises(TypeError):
        flatten_metric_dict({"s": "text"})
