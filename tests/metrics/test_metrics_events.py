"""Frame -> event conversion, IoU matching, the EventIoU metric and collar-based event F1."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.signal
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sleepbench.metrics import EventIoU, event_iou, frames_to_events, match_events
from sleepbench.metrics.event_collar import EventCollarF1, collar_match_count
from sleepbench.metrics.events import median_filter_labels


def upstream_postprocess(labels, frame_s, merge_gap_s, min_duration_s, kernel):
    """Independent re-statement of the CRNN_OSA post-processing loop (SPECS §1.5)."""
    x = (
        scipy.signal.medfilt(np.asarray(labels, float), kernel).astype(int)
        if kernel > 1
        else labels
    )
    events, start, cur = [], 0, x[0]
    for i in range(1, len(x)):
        if x[i] != cur:
            if cur != 0:
                events.append([start, i, int(cur)])
            start, cur = i, x[i]
    if cur != 0:
        events.append([start, len(x), int(cur)])
    merged = []
    for ev in events:
        if merged and merged[-1][2] == ev[2] and (ev[0] - merged[-1][1]) * frame_s < merge_gap_s:
            merged[-1][1] = ev[1]
        else:
            merged.append(ev)
    return [
        (s * frame_s, e * frame_s, c) for s, e, c in merged if (e - s) * frame_s >= min_duration_s
    ]


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 400),
    kernel=st.sampled_from([1, 3, 5]),
    merge_gap_s=st.sampled_from([0.0, 0.5, 3.0]),
    min_duration_s=st.sampled_from([0.0, 1.0, 10.0]),
)
def test_frames_to_events_matches_upstream_loop(seed, n, kernel, merge_gap_s, min_duration_s):
    rng = np.random.default_rng(seed)
    # runs of random length so that merging and duration filtering both happen
    labels = np.repeat(rng.integers(0, 3, n), rng.integers(1, 40, n))[:n]
    got = frames_to_events(labels, 0.08, min_duration_s, merge_gap_s, kernel)
    expected = upstream_postprocess(labels, 0.08, merge_gap_s, min_duration_s, kernel)
    assert [e.label for e in got] == [e[2] for e in expected]
    np.testing.assert_allclose([e[:2] for e in got], [e[:2] for e in expected], atol=1e-9)


def test_frames_to_events_hand_cases() -> None:
    x = [0, 1, 1, 1, 0, 0, 2, 2, 0, 1, 1]
    assert frames_to_events(x, 1.0) == [(1.0, 4.0, 1), (6.0, 8.0, 2), (9.0, 11.0, 1)]
    # merge only adjacent same-class events: the 2 between the 1s blocks merging
    assert frames_to_events(x, 1.0, merge_gap_s=10.0) == [
        (1.0, 4.0, 1),
        (6.0, 8.0, 2),
        (9.0, 11.0, 1),
    ]
    y = [1, 1, 0, 0, 1, 1, 1]
    assert frames_to_events(y, 1.0, merge_gap_s=2.0) == [(0.0, 2.0, 1), (4.0, 7.0, 1)]  # gap == 2
    assert frames_to_events(y, 1.0, merge_gap_s=2.5) == [(0.0, 7.0, 1)]
    assert frames_to_events(y, 1.0, min_duration_s=3.0) == [(4.0, 7.0, 1)]  # 3 s kept, 2 s dropped
    # median filter removes a one-frame spike and fills a one-frame hole
    z = [0, 0, 0, 2, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 0]
    assert frames_to_events(z, 1.0, median_kernel=3) == [(7.0, 12.0, 1)]
    # a non-zero background label
    assert frames_to_events([3, 3, 0, 0, 3], 0.5, background=3) == [(1.0, 2.0, 0)]
    assert frames_to_events([], 1.0) == []
    assert frames_to_events(torch.tensor([0, 2, 2]), 0.08)[0].label == 2
    with pytest.raises(ValueError):
        frames_to_events([0, 1], 1.0, median_kernel=4)
    with pytest.raises(ValueError):
        frames_to_events([[0, 1]], 1.0)


def test_match_events_hand_cases() -> None:
    ref = [(0.0, 10.0, 1), (20.0, 30.0, 2)]
    # overlap: IoU = 5 / 15
    assert match_events(ref[:1], [(5.0, 15.0, 1)]) == [(0, 0, pytest.approx(1 / 3))]
    # no overlap, and touching intervals (IoU = 0) are not matched
    assert match_events(ref, [(10.0, 20.0, 1), (40.0, 50.0, 2)]) == []
    # many-to-one: two predictions inside one reference, only the better one is matched
    pairs = match_events(ref[:1], [(0.0, 3.0, 1), (4.0, 10.0, 1)])
    assert pairs == [(0, 1, pytest.approx(0.6))]
    # class mismatch only matches when class-agnostic
    assert match_events(ref[1:], [(20.0, 30.0, 1)]) == []
    assert match_events(ref[1:], [(20.0, 30.0, 1)], class_agnostic=True) == [(0, 0, 1.0)]
    # greedy by highest IoU overall, not by reference order: ref B takes P first
    refs = [(0.0, 10.0, 1), (6.0, 12.0, 1)]
    pairs = match_events(refs, [(6.0, 13.0, 1)])
    assert pairs == [(1, 0, pytest.approx(6 / 7))]
    assert match_events([], [(0.0, 1.0, 1)]) == []
    with pytest.raises(ValueError):
        match_events([(5.0, 1.0, 1)], [])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), agnostic=st.booleans())
def test_match_events_is_one_to_one_and_greedy(seed: int, agnostic: bool) -> None:
    rng = np.random.default_rng(seed)

    def random_events(k):
        on = np.sort(rng.uniform(0, 100, k))
        return [
            (o, o + d, int(c)) for o, d, c in zip(on, rng.uniform(1, 15, k), rng.integers(1, 3, k))
        ]

    ref, pred = random_events(rng.integers(0, 10)), random_events(rng.integers(0, 10))
    pairs = match_events(ref, pred, class_agnostic=agnostic)
    assert len({a for a, _, _ in pairs}) == len(pairs) == len({b for _, b, _ in pairs})
    for a, b, iou in pairs:
        (r0, r1, rc), (p0, p1, pc) = ref[a], pred[b]
        inter = min(r1, p1) - max(r0, p0)
        assert iou == pytest.approx(inter / ((r1 - r0) + (p1 - p0) - inter))
        assert iou > 0 and (agnostic or rc == pc)
    # greedy: no unmatched pair has an IoU above that of the pairs its events lost to
    matched_r, matched_p = {a for a, _, _ in pairs}, {b for _, b, _ in pairs}
    for i, r in enumerate(ref):
        for j, p in enumerate(pred):
            if i in matched_r or j in matched_p or not (agnostic or r[2] == p[2]):
                continue
            assert min(r[1], p[1]) <= max(r[0], p[0])  # both free: they must not overlap


def test_event_iou_hand_example() -> None:
    ref = [(0.0, 10.0, 1), (20.0, 30.0, 2), (50.0, 60.0, 1)]
    pred = [(2.0, 10.0, 1), (21.0, 33.0, 2), (52.0, 54.0, 1), (80.0, 90.0, 2)]
    out = event_iou(ref, pred)
    ious = [0.8, 9 / 13, 0.2]
    assert float(out["event_iou"]) == pytest.approx(np.mean(ious))
    assert float(out["onset_err_s"]) == pytest.approx((2 + 1 + 2) / 3)
    assert float(out["offset_err_s"]) == pytest.approx((0 + 3 + 6) / 3)
    assert float(out["event_precision"]) == pytest.approx(2 / 4)
    assert float(out["event_recall"]) == pytest.approx(2 / 3)
    assert float(out["event_f1"]) == pytest.approx(2 * 2 / 7)

    empty = event_iou(ref, [])
    assert math.isnan(float(empty["event_iou"])) and float(empty["event_f1"]) == 0.0


def test_event_iou_metric_frames_equal_events() -> None:
    rng = np.random.default_rng(0)
    frame_s = 0.5
    seqs_p = [np.repeat(rng.integers(0, 3, 80), rng.integers(8, 30, 80))[:600] for _ in range(3)]
    seqs_t = [np.repeat(rng.integers(0, 3, 80), rng.integers(8, 30, 80))[:600] for _ in range(3)]
    post = {"median_kernel": 5, "merge_gap_s": 3.0, "min_duration_s": 5.0}

    by_frames = EventIoU(frame_s=frame_s, **post)
    by_frames.update(torch.from_numpy(np.stack(seqs_p)), torch.from_numpy(np.stack(seqs_t)))
    by_events = EventIoU()
    totals = {"iou": 0.0, "n": 0}
    for p, t in zip(seqs_p, seqs_t):
        pe, te = frames_to_events(p, frame_s, **post), frames_to_events(t, frame_s)
        by_events.update_events(pe, te)
        pairs = match_events(te, pe)
        totals["iou"] += sum(x[2] for x in pairs)
        totals["n"] += len(pairs)
    a, b = by_frames.compute(), by_events.compute()
    for k in a:
        torch.testing.assert_close(a[k], b[k], equal_nan=True)
    assert float(a["event_iou"]) == pytest.approx(totals["iou"] / totals["n"])


def test_event_iou_ignore_index() -> None:
    target = torch.tensor([0, 1, 1, 1, -1, -1, 2, 2, 0])
    preds = torch.tensor([0, 1, 1, 1, 2, 2, 0, 0, 0])
    metric = EventIoU(frame_s=1.0, ignore_index=-1)
    metric.update(preds, target)
    out = metric.compute()
    # the prediction inside the ignored stretch is gone; ref (1-4, 1) matched exactly; ref 2 missed
    assert float(out["event_precision"]) == 1.0
    assert float(out["event_recall"]) == 0.5
    assert float(out["event_iou"]) == 1.0
    with pytest.raises(ValueError):
        metric.update(preds, target[:-1])


@pytest.mark.filterwarnings("ignore:kernel_size exceeds volume extent")
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), kernel=st.sampled_from([1, 3, 5]))
def test_median_filter_labels_is_scipy_medfilt(seed: int, n: int, kernel: int) -> None:
    labels = np.random.default_rng(seed).integers(0, 3, n)
    expected = scipy.signal.medfilt(labels.astype(float), kernel) if n and kernel > 1 else labels
    np.testing.assert_array_equal(median_filter_labels(labels, kernel), expected)


def test_median_filter_labels_pads_with_the_background() -> None:
    # the ends are padded with the background class, not with 0
    assert median_filter_labels([3, 3, 1, 1, 1], 3, background=3).tolist() == [3, 3, 1, 1, 1]
    assert median_filter_labels([1, 3, 3], 3, background=3).tolist() == [3, 3, 3]
    with pytest.raises(ValueError):
        median_filter_labels([0, 1], 2)


def test_collar_match_hand_cases() -> None:
    ref = [(100.0, 120.0, 2)]
    # onset 2.9 s late, offset 3 s early: inside a 3-s collar
    assert collar_match_count(ref, [(102.9, 117.0, 2)], collar_s=3.0) == 1
    # onset 3.1 s off: outside
    assert collar_match_count(ref, [(103.1, 120.0, 2)], collar_s=3.0) == 0
    # the offset tolerance grows with the reference length: 50 % of 20 s = 10 s
    assert collar_match_count(ref, [(100.0, 129.0, 2)], collar_s=3.0) == 1
    assert collar_match_count(ref, [(100.0, 131.0, 2)], collar_s=3.0) == 0
    assert collar_match_count(ref, [(100.0, 131.0, 2)], collar_s=3.0, offset_fraction=0.6) == 1
    # the class must agree unless class-agnostic
    assert collar_match_count(ref, [(100.0, 120.0, 1)]) == 0
    assert collar_match_count(ref, [(100.0, 120.0, 1)], class_agnostic=True) == 1
    # one-to-one: two predictions for one reference count once
    assert collar_match_count(ref, [(100.0, 120.0, 2), (101.0, 121.0, 2)]) == 1
    assert collar_match_count([], ref) == 0


def test_collar_matching_is_optimal_not_greedy() -> None:
    # P0 fits both references, P1 only R0: a greedy R0 -> P0 would leave R1 unmatched
    ref = [(0.0, 10.0, 1), (4.0, 14.0, 1)]
    pred = [(2.0, 12.0, 1), (0.5, 10.0, 1)]
    assert collar_match_count(ref, pred, collar_s=2.0, offset_fraction=0.0) == 2


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), agnostic=st.booleans())
def test_collar_match_count_is_the_maximum_matching(seed: int, agnostic: bool) -> None:
    rng = np.random.default_rng(seed)

    def random_events(k):
        on = rng.uniform(0, 40, k)
        return [
            (o, o + d, int(c)) for o, d, c in zip(on, rng.uniform(2, 20, k), rng.integers(1, 3, k))
        ]

    ref, pred = random_events(rng.integers(0, 6)), random_events(rng.integers(0, 6))
    collar, frac = 3.0, 0.5

    def ok(r, p):
        return (
            (agnostic or r[2] == p[2])
            and abs(r[0] - p[0]) <= collar
            and abs(r[1] - p[1]) <= max(collar, frac * (r[1] - r[0]))
        )

    best = 0  # brute force over every injective assignment of references to predictions
    for k in range(min(len(ref), len(pred)), 0, -1):
        for rs in itertools.combinations(range(len(ref)), k):
            for ps in itertools.permutations(range(len(pred)), k):
                if all(ok(ref[a], pred[b]) for a, b in zip(rs, ps)):
                    best = k
                    break
            if best:
                break
        if best:
            break
    assert collar_match_count(ref, pred, collar, frac, agnostic) == best


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_event_collar_f1_sums_over_recordings() -> None:
    metric = EventCollarF1(collar_s=3.0)
    # recording 1: 1 of 2 references found, 1 false alarm; recording 2: no reference, 1 prediction
    metric.update([(10.0, 30.0, 2), (100.0, 120.0, 1)], [(11.0, 29.0, 2), (60.0, 80.0, 1)])
    metric.update([(5.0, 20.0, 1)], [])
    out = metric.compute()
    assert float(out["collar_precision"]) == pytest.approx(1 / 3)
    assert float(out["collar_recall"]) == pytest.approx(1 / 2)
    assert float(out["collar_f1"]) == pytest.approx(2 * 1 / (3 + 2))
    empty = EventCollarF1().compute()
    assert float(empty["collar_f1"]) == 0.0
