"""Covering windows score every label exactly once."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sleepbench.data.covering import covering_windows, first_new_label
from sleepbench.data.windows import WindowIndex, regular_windows


@given(n=st.integers(0, 200), length=st.integers(1, 40))
def test_every_label_scored_exactly_once(n: int, length: int) -> None:
    index = covering_windows(3, n, 10, length)
    if n < length:
        assert len(index) == 0
        return
    assert (index.y_stop - index.y_start == length).all() and (index.y_stop <= n).all()
    assert (index.x_start == 10 * index.y_start).all() and (index.record == 3).all()
    first = first_new_label(index)
    counts = np.zeros(n, dtype=int)
    for start, offset in zip(index.y_start, first):
        counts[start + offset : start + length] += 1
    assert (counts == 1).all()


def test_last_window_is_aligned_to_the_end() -> None:
    index = covering_windows(0, 70, 1, 31)
    assert index.y_start.tolist() == [0, 31, 39]
    assert first_new_label(index).tolist() == [0, 0, 23]
    assert covering_windows(0, 62, 1, 31).y_start.tolist() == [0, 31]


def test_first_new_label_handles_stride_one_and_several_records() -> None:
    index = WindowIndex.concat([regular_windows(1, 6, 1, 3, 1), covering_windows(0, 5, 1, 2)])
    # record 1 windows start 0..3 with stride 1: each adds one new label after the first
    assert first_new_label(index).tolist() == [0, 2, 2, 2, 0, 0, 1]
    shuffled = index.subset(np.array([3, 1, 0, 2, 6, 4, 5]))
    assert first_new_label(shuffled).tolist() == [2, 2, 0, 2, 1, 0, 0]


def test_bad_window_length() -> None:
    with pytest.raises(ValueError):
        covering_windows(0, 10, 1, 0)
