"""Night stitching, the validation macro-F1 and the three-level night evaluation, each against an
independent computation (numpy by hand, scipy, sklearn)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch
from sklearn.metrics import cohen_kappa_score, f1_score, precision_score, recall_score

from sleepbench.tasks.psg_audio_osa.evaluation import (
    CLASS_NAMES,
    NightInfo,
    PostProcessing,
    Segment,
    evaluate_segments,
    validation_scores,
)
from sleepbench.tasks.psg_audio_osa.stitching import NightStitcher, WindowPredictions

FRAME_S = 0.08


def upstream_events(labels, frame_s=FRAME_S, merge_gap_s=3.0, min_duration_s=10.0, kernel=5):
    """CRNN_OSA ``apply_post_processing`` re-stated: medfilt, RLE, merge, drop short events."""
    x = scipy.signal.medfilt(np.asarray(labels, float), kernel).astype(int)
    events, start, cur = [], 0, x[0]
    for i in range(1, len(x)):
        if x[i] != cur:
            if cur != 0:
                events.append([start * frame_s, i * frame_s, int(cur)])
            start, cur = i, x[i]
    if cur != 0:
        events.append([start * frame_s, len(x) * frame_s, int(cur)])
    merged = []
    for ev in events:
        if merged and merged[-1][2] == ev[2] and ev[0] - merged[-1][1] < merge_gap_s:
            merged[-1][1] = ev[1]
        else:
            merged.append(ev)
    return [e for e in merged if e[1] - e[0] >= min_duration_s - 1e-9]


# ---- stitching ---------------------------------------------------------------------------------
def test_night_stitcher_averages_overlapping_windows() -> None:
    rng = np.random.default_rng(0)
    stitcher = NightStitcher(3)
    stitcher.configure({0: 10, 3: 7})
    windows = [(0, 0), (0, 3), (3, 0), (3, 3)]  # (record, start), 6 frames each
    probs = rng.dirichlet(np.ones(3), size=(4, 6)).astype(np.float32)
    stitcher.update(
        torch.tensor([w[0] for w in windows]),
        torch.tensor([w[1] for w in windows]),
        torch.from_numpy(probs),
    )
    out = stitcher.compute()
    for rec, n in ((0, 10), (3, 7)):
        total, count = np.zeros((n, 3)), np.zeros(n)
        for (r, s), p in zip(windows, probs):
            if r == rec:
                k = min(6, n - s)  # the padding past the night's end is dropped
                total[s : s + k] += p[:k]
                count[s : s + k] += 1
        with np.errstate(invalid="ignore"):
            expected = total / count[:, None]
        np.testing.assert_allclose(out[rec].numpy(), expected, rtol=1e-6)
    assert np.isnan(out[0][9].numpy()).all()  # frame 9 of record 0: no window covers it
    with pytest.raises(KeyError):
        stitcher.update(torch.tensor([1]), torch.tensor([0]), torch.from_numpy(probs[:1]))


def test_night_stitcher_states_add_up_across_processes() -> None:
    """Two ranks each see half of the windows; summing their states (the DDP reduction) gives
    the one-process result."""
    rng = np.random.default_rng(1)
    records = torch.tensor([0, 0, 0, 0, 1, 1])
    starts = torch.tensor([0, 2, 4, 6, 0, 2])
    probs = torch.from_numpy(rng.dirichlet(np.ones(3), size=(6, 4)).astype(np.float32))
    one, ranks = NightStitcher(3), [NightStitcher(3), NightStitcher(3)]
    for m in (one, *ranks):
        m.configure({0: 10, 1: 6})
    one.update(records, starts, probs)
    for r, m in enumerate(ranks):
        sel = slice(r, None, 2)  # interleaved, as UnrepeatedDistributedSampler does
        m.update(records[sel], starts[sel], probs[sel])
    ranks[0].prob_sum += ranks[1].prob_sum
    ranks[0].count += ranks[1].count
    for rec, mean in one.compute().items():
        torch.testing.assert_close(ranks[0].compute()[rec], mean, equal_nan=True)


def test_window_predictions_sorts_by_window_and_marks_unscored_frames() -> None:
    m = WindowPredictions()
    m.update(
        torch.tensor([2, 0]),
        torch.tensor([[1, 2], [0, 1]]),
        torch.tensor([[2, 2], [0, 0]]),
        torch.tensor([[1, 0], [1, 1]]),
    )
    m.update(
        torch.tensor([1]), torch.tensor([[2, 2]]), torch.tensor([[1, 1]]), torch.tensor([[0, 1]])
    )
    window, pred, target = m.compute()
    assert window.tolist() == [0, 1, 2]
    assert pred.tolist() == [[0, 1], [2, 2], [1, 2]]
    assert target.tolist() == [[0, 0], [-1, 1], [2, -1]]


# ---- validation metric -------------------------------------------------------------------------
def test_validation_scores_match_the_seed_with_sklearn() -> None:
    rng = np.random.default_rng(2)
    n, length = 7, 50
    target = np.repeat(rng.integers(0, 3, (n, 10)), 5, axis=1)
    pred = np.where(rng.random((n, length)) < 0.7, target, rng.integers(0, 3, (n, length)))
    mask = rng.random((n, length)) < 0.8
    masked_target = np.where(mask, target, -1)
    got = validation_scores(torch.from_numpy(pred), torch.from_numpy(masked_target), 5)
    # the seed: valid frames of all windows concatenated, medfilt(5) on the concatenation
    smoothed = scipy.signal.medfilt(pred[mask].astype(float), 5).astype(int)
    per_class = f1_score(target[mask], smoothed, labels=[0, 1, 2], average=None, zero_division=0)
    assert got["val/f1_macro"] == pytest.approx(per_class.mean())
    for name, value in zip(CLASS_NAMES, per_class):
        assert got[f"val/f1_{name}"] == pytest.approx(value)
    assert math.isnan(validation_scores(torch.zeros(1, 3), torch.full((1, 3), -1))["val/f1_macro"])


# ---- night evaluation --------------------------------------------------------------------------
def frames(n: int, spans: list[tuple[float, float, int]]) -> np.ndarray:
    out = np.zeros(n, np.int64)
    for on, off, c in spans:
        out[round(on / FRAME_S) : round(off / FRAME_S)] = c
    return out


def test_evaluate_one_night_by_hand() -> None:
    n = round(600 / FRAME_S)  # 10 minutes
    target = frames(n, [(100, 120, 2), (300, 330, 1)])
    pred = frames(n, [(102, 120, 2), (200, 205, 2), (400, 416, 1), (550, 580, 2)])
    mask = np.ones(n, bool)
    mask[round(540 / FRAME_S) :] = False  # the apnea at 550-580 s is outside the ROI
    night = NightInfo("a", "s", ahi_hours=0.5, ahi_ref=4.0)
    out = evaluate_segments([Segment("a", pred, target, mask)], {"a": night}, PostProcessing())
    s = out.scores
    # kept events: 102-120 s apnea (matches 100-120, IoU 0.9) and 400-416 s hypopnea (false alarm);
    # the 5-s apnea is too short, the one outside the ROI is gone; the 300-330 s hypopnea is missed
    assert s["test/event_iou"] == pytest.approx(0.9)
    assert s["test/onset_err_s"] == pytest.approx(2.0)
    assert s["test/offset_err_s"] == pytest.approx(0.0, abs=1e-9)
    assert s["test/event_precision"] == pytest.approx(1 / 2)
    assert s["test/event_recall"] == pytest.approx(1 / 2)
    assert s["test/collar_f1"] == pytest.approx(2 * 1 / 4)
    assert s["test/n_pred_events"] == 2 and s["test/n_ref_events"] == 2
    assert out.per_night[0]["ahi_pred"] == pytest.approx(2 / 0.5)
    assert out.events["a"]["predicted"] == [
        [pytest.approx(102.0), pytest.approx(120.0), 2],
        [pytest.approx(400.0), pytest.approx(416.0), 1],
    ]
    # frames: median-filtered predictions on ROI frames against sklearn
    smoothed = scipy.signal.medfilt(np.where(mask, pred, 0).astype(float), 5).astype(int)
    for fn, key in ((f1_score, "f1"), (precision_score, "prec"), (recall_score, "sens")):
        per_class = fn(
            target[mask], smoothed[mask], labels=[0, 1, 2], average=None, zero_division=0
        )
        for name, value in zip(CLASS_NAMES, per_class):
            assert s[f"test/{key}_{name}"] == pytest.approx(value, abs=1e-6)
    assert s["test/f1_macro"] == pytest.approx(
        f1_score(target[mask], smoothed[mask], labels=[0, 1, 2], average="macro", zero_division=0)
    )
    assert s["test/n_frames_scored"] == mask.sum()


def random_night(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    target = np.repeat(rng.choice(3, 60, p=[0.6, 0.2, 0.2]), rng.integers(100, 400, 60))[:n]
    noise = np.repeat(rng.integers(0, 3, n // 50 + 1), 50)[:n]
    pred = np.where(rng.random(n) < 0.8, target, noise)
    mask = np.ones(n, bool)
    mask[: rng.integers(0, 500)] = False
    return pred, target, mask


def test_evaluate_many_nights_against_independent_computations() -> None:
    rng = np.random.default_rng(3)
    n = 9000  # 12 minutes
    segments, nights = [], {}
    ref_ahi = [2.0, 8.0, 20.0, 40.0, 12.0, 35.0]
    for i, ahi in enumerate(ref_ahi):
        pred, target, mask = random_night(rng, n)
        segments.append(Segment(f"r{i}", pred, target, mask))
        nights[f"r{i}"] = NightInfo(f"r{i}", f"s{i}", float(rng.uniform(0.1, 0.2)), ahi)
    out = evaluate_segments(segments, nights, PostProcessing(), prefix="")
    s = out.scores

    all_t, all_p, pred_ahi = [], [], []
    for seg in segments:
        masked = np.where(seg.mask, seg.pred, 0)
        smoothed = scipy.signal.medfilt(masked.astype(float), 5).astype(int)
        all_t.append(seg.target[seg.mask])
        all_p.append(smoothed[seg.mask])
        pred_ahi.append(len(upstream_events(masked)) / nights[seg.record_id].ahi_hours)
    t, p = np.concatenate(all_t), np.concatenate(all_p)
    assert s["f1_macro"] == pytest.approx(f1_score(t, p, labels=[0, 1, 2], average="macro"))
    assert s["kappa"] == pytest.approx(cohen_kappa_score(t, p), abs=1e-6)
    assert s["acc"] == pytest.approx((t == p).mean())

    np.testing.assert_allclose([r["ahi_pred"] for r in out.per_night], pred_ahi)
    pred_ahi, ref = np.array(pred_ahi), np.array(ref_ahi)
    assert s["ahi_pearson_r"] == pytest.approx(scipy.stats.pearsonr(pred_ahi, ref)[0])
    assert s["ahi_mae"] == pytest.approx(np.abs(pred_ahi - ref).mean())
    assert s["ahi_ba_bias"] == pytest.approx((pred_ahi - ref).mean())
    for c in (5, 15, 30):
        pos = ref >= c
        assert s[f"ahi_se@{c}"] == pytest.approx((pred_ahi[pos] >= c).mean())
        if (~pos).any():
            assert s[f"ahi_sp@{c}"] == pytest.approx((pred_ahi[~pos] < c).mean())
    sev_p, sev_r = np.digitize(pred_ahi, [5, 15, 30]), np.digitize(ref, [5, 15, 30])
    assert s["ahi_class_acc"] == pytest.approx((sev_p == sev_r).mean())
    expected_kappa = cohen_kappa_score(sev_r, sev_p, labels=[0, 1, 2, 3])
    if math.isnan(expected_kappa):
        assert math.isnan(s["ahi_severity_kappa"])
    else:
        assert s["ahi_severity_kappa"] == pytest.approx(expected_kappa, abs=1e-6)


def test_parity_scores_raw_frames_and_sums_windows_per_night() -> None:
    rng = np.random.default_rng(4)
    pred, target, _ = random_night(rng, 3 * 750)
    windows = [slice(0, 750), slice(750, 1500), slice(1500, 2250)]
    segments = [
        Segment("a", pred[w], target[w], np.ones(750, bool), offset_s=w.start * FRAME_S)
        for w in windows
    ]
    hours = 3 * 750 * FRAME_S / 3600
    out = evaluate_segments(
        segments, {"a": NightInfo("a", "s", hours, 10.0)}, PostProcessing(), median_frames=False
    )
    assert out.scores["test/f1_macro"] == pytest.approx(
        f1_score(target, pred, labels=[0, 1, 2], average="macro")
    )
    n_events = sum(len(upstream_events(pred[w])) for w in windows)
    assert out.per_night[0]["ahi_pred"] == pytest.approx(n_events / hours)
