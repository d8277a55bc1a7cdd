"""Per-recording index agreement: ICC, Bland-Altman, cut-offs, IndexAgreement grouping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sleepbench.metrics import (
    IndexAgreement,
    agreement_from_indices,
    ahi_to_severity,
    bland_altman,
    class_accuracy,
    icc,
)
from sleepbench.metrics.agreement import wilson_low

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; published ICC(2,1) = .29,
# ICC(3,1) = .71.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def icc_by_loops(x: np.ndarray) -> tuple[float, float]:
    """Two-way ANOVA mean squares written out element by element (independent of icc())."""
    n, k = x.shape
    grand = sum(sum(row) for row in x) / (n * k)
    rows = [sum(x[i]) / k for i in range(n)]
    cols = [sum(x[i][j] for i in range(n)) / n for j in range(k)]
    ss_r = sum(k * (r - grand) ** 2 for r in rows)
    ss_c = sum(n * (c - grand) ** 2 for c in cols)
    ss_t = sum((x[i][j] - grand) ** 2 for i in range(n) for j in range(k))
    ss_e = ss_t - ss_r - ss_c
    msr, msc, mse = ss_r / (n - 1), ss_c / (k - 1), ss_e / ((n - 1) * (k - 1))
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    return icc2, icc3


def test_icc_shrout_fleiss_table() -> None:
    x = torch.from_numpy(SHROUT_FLEISS)
    assert round(float(icc(x, "2,1")), 2) == 0.29
    assert round(float(icc(x, "3,1")), 2) == 0.71
    with pytest.raises(ValueError):
        icc(x, "1,1")


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 40),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_agreement_matches_references(seed: int, n: int, dtype) -> None:
    rng = np.random.default_rng(seed)
    ref = rng.gamma(1.0, 15.0, n)
    pred = np.clip(ref * rng.uniform(0.6, 1.4) + rng.normal(0, 6, n), 0, None)
    ref_t, pred_t = torch.from_numpy(ref).to(dtype), torch.from_numpy(pred).to(dtype)
    ref, pred = ref_t.double().numpy(), pred_t.double().numpy()
    out = agreement_from_indices(pred_t, ref_t, cutoffs=(5, 15, 30))

    assert int(out["n_records"]) == n
    if np.std(ref) > 0 and np.std(pred) > 0:
        assert float(out["pearson_r"]) == pytest.approx(stats.pearsonr(pred, ref)[0], abs=1e-9)
    assert float(out["mae"]) == pytest.approx(np.mean(np.abs(pred - ref)))
    icc2, icc3 = icc_by_loops(np.stack([pred, ref], axis=1))
    assert float(out["icc"]) == pytest.approx(icc2, abs=1e-9)
    assert float(out["icc_consistency"]) == pytest.approx(icc3, abs=1e-9)
    d = pred - ref
    assert float(out["ba_bias"]) == pytest.approx(d.mean())
    assert float(out["ba_loa_high"]) == pytest.approx(d.mean() + 1.96 * np.std(d, ddof=1))
    assert float(out["ba_loa_low"]) == pytest.approx(d.mean() - 1.96 * np.std(d, ddof=1))
    for c in (5, 15, 30):
        pp, rp = pred >= c, ref >= c
        se = (pp & rp).sum() / rp.sum() if rp.sum() else math.nan
        sp = (~pp & ~rp).sum() / (~rp).sum() if (~rp).sum() else math.nan
        for key, expected in ((f"se@{c}", se), (f"sp@{c}", sp), (f"acc@{c}", (pp == rp).mean())):
            got = float(out[key])
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)
        assert float(out[f"n_pos@{c}"]) == rp.sum() and float(out[f"n_neg@{c}"]) == (~rp).sum()
        for key, k, m in (
            (f"se_low@{c}", (pp & rp).sum(), rp.sum()),
            (f"sp_low@{c}", (~pp & ~rp).sum(), (~rp).sum()),
        ):
            got = float(out[key])
            if m == 0:
                assert math.isnan(got)
            else:
                low = stats.binomtest(int(k), int(m)).proportion_ci(method="wilson").low
                assert got == pytest.approx(low, abs=1e-9)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (4, 4), (3, 7), (0, 9), (50, 100), (99, 100)])
def test_wilson_low_matches_scipy(k: int, n: int) -> None:
    expected = stats.binomtest(k, n).proportion_ci(method="wilson").low
    assert float(wilson_low(torch.tensor(k), torch.tensor(n))) == pytest.approx(expected, abs=1e-9)
    assert math.isnan(float(wilson_low(torch.tensor(0), torch.tensor(0))))


def test_undefined_values_are_nan() -> None:
    out = agreement_from_indices([3.0], [4.0], cutoffs=(5,))
    for key in ("pearson_r", "icc", "icc_consistency", "ba_loa_low", "se@5"):
        assert math.isnan(float(out[key])), key
    assert float(out["sp@5"]) == 1.0
    assert float(out["mae"]) == 1.0
    bias, lo, hi = bland_altman(torch.zeros(0), torch.zeros(0))
    assert math.isnan(float(bias)) and math.isnan(float(lo)) and math.isnan(float(hi))
    with pytest.raises(ValueError):
        agreement_from_indices([1.0, math.inf], [1.0, 2.0])


def test_classify_hook() -> None:
    pred = torch.tensor([1.0, 7.0, 20.0, 40.0])
    ref = torch.tensor([2.0, 16.0, 25.0, 31.0])
    out = agreement_from_indices(pred, ref, cutoffs=(), classify=ahi_to_severity)
    assert float(out["class_acc"]) == pytest.approx(3 / 4)
    assert float(class_accuracy(torch.tensor([0, 1]), torch.tensor([0, 0]))) == 0.5
    assert not any(k.startswith("se@") for k in out)


def reference_indices(rec, pred, target, units_per_hour):
    """Per-record positive units / hours with a plain dict (sorted by record id)."""
    ids = sorted(set(rec.tolist()))
    p_idx, r_idx = [], []
    for r in ids:
        m = rec == r
        hours = m.sum() / units_per_hour
        p_idx.append(pred[m].sum() / hours)
        r_idx.append(target[m].sum() / hours)
    return np.array(ids), np.array(p_idx), np.array(r_idx)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_records=st.integers(1, 8),
    n_batches=st.integers(1, 4),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_index_agreement_groups_by_record(seed, n_records, n_batches, dtype) -> None:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(30, 200, n_records)
    rec = np.repeat(rng.choice(1000, n_records, replace=False), lengths)
    prob = rng.random(rec.size)
    target = (rng.random(rec.size) < rng.uniform(0.05, 0.6)).astype(np.int64)
    order = rng.permutation(rec.size)  # records interleaved across batches
    rec, prob, target = rec[order], prob[order], target[order]
    prob_t = torch.from_numpy(prob).to(dtype)
    pred = (prob_t > 0.5).long().numpy()

    metric = IndexAgreement(units_per_hour=60, cutoffs=(5, 15))
    for r, p, t in zip(
        torch.from_numpy(rec).tensor_split(n_batches),
        prob_t.tensor_split(n_batches),
        torch.from_numpy(target).tensor_split(n_batches),
    ):
        metric.update(r, p, t)
    ids, p_idx, r_idx = reference_indices(rec, pred, target, 60)
    got = metric.compute_indices()
    np.testing.assert_array_equal(got["record_id"].numpy(), ids)
    np.testing.assert_allclose(got["pred_index"].numpy(), p_idx, rtol=1e-12)
    np.testing.assert_allclose(got["ref_index"].numpy(), r_idx, rtol=1e-12)
    out = metric.compute()
    expected = agreement_from_indices(p_idx, r_idx, cutoffs=(5, 15))
    assert out.keys() == expected.keys()
    for k in out:
        torch.testing.assert_close(out[k], expected[k], equal_nan=True)


def test_index_agreement_position_dedupes_padding() -> None:
    rec = torch.tensor([7] * 6 + [9] * 4)
    pos = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    pred = torch.tensor([1, 0, 1, 0, 0, 0, 1, 1, 0, 0])
    target = torch.tensor([1, 1, 0, 0, 0, 0, 1, 0, 0, 0])
    clean = IndexAgreement()
    clean.update(rec, pred, target, position=pos)
    padded = IndexAgreement()
    padded.update(rec, pred, target, position=pos)
    padded.update(rec[:3], pred[:3], target[:3], position=pos[:3])  # sampler padding
    a, b = clean.compute_indices(), padded.compute_indices()
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    # record 7: 2 predicted minutes of 6 -> 20 per hour; record 9: 2 of 4 -> 30 per hour
    torch.testing.assert_close(a["pred_index"], torch.tensor([20.0, 30.0], dtype=torch.float64))

    mixed = IndexAgreement()
    mixed.update(rec, pred, target, position=pos)
    mixed.update(rec, pred, target)
    with pytest.raises(ValueError, match="position"):
        mixed.compute()


def test_index_agreement_validates_inputs() -> None:
    metric = IndexAgreement()
    with pytest.raises(ValueError):
        metric.update(torch.tensor(1.5), torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        metric.update(3, torch.tensor([0, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        metric.update(3, torch.tensor([0, 1]), torch.tensor([0, 1, 1]))
    metric.update(3, torch.tensor([0.9, 0.2]), torch.tensor([1, 0]))  # scalar id: one recording
    assert metric.compute_indices()["record_id"].tolist() == [3]


def _per_record_index_bincount(record_id, pred, target, units_per_hour):
    """The former implementation (bincount with weights: raises on CUDA in deterministic mode)."""
    ids, inverse = torch.unique(record_id, return_inverse=True)
    n_units = torch.bincount(inverse, minlength=ids.numel()).to(torch.float64)
    pred_pos = torch.bincount(inverse, weights=pred.to(torch.float64), minlength=ids.numel())
    ref_pos = torch.bincount(inverse, weights=target.to(torch.float64), minlength=ids.numel())
    hours = n_units / units_per_hour
    return ids, pred_pos / hours, ref_pos / hours, hours


@pytest.mark.parametrize("seed", range(5))
def test_per_record_index_is_cuda_deterministic_and_equals_the_bincount_version(seed) -> None:
    from sleepbench.metrics import per_record_index
    from sleepbench.nn.determinism import CudaNondeterminismGuard, CudaNondeterministicOpError

    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 3000, (1,), generator=g))
    record = torch.randint(0, 40, (n,), generator=g) * 7
    pred = torch.randint(0, 2, (n,), generator=g, dtype=torch.uint8)
    target = torch.randint(0, 2, (n,), generator=g, dtype=torch.uint8)
    with CudaNondeterminismGuard():
        got = per_record_index(record, pred, target, 45000.0)
    expected = _per_record_index_bincount(record, pred, target, 45000.0)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0)  # bit-identical
    with pytest.raises(CudaNondeterministicOpError), CudaNondeterminismGuard():
        _per_record_index_bincount(record, pred, target, 45000.0)
