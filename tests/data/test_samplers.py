"""ClassBalancedSampler: classes drawn uniformly (or by count ** power), ignored ones never.
RandomSubsetSampler: RandomSampler's draws, kept (split across ranks) under Lightning's DDP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.connectors.data_connector import _get_distributed_sampler
from torch.utils.data import DataLoader, RandomSampler

from sleepbench.data.samplers import ClassBalancedSampler, RandomSubsetSampler


def skewed_labels() -> np.ndarray:
    """900 windows of class 0, 90 of class 1, 9 of class 2, 1 of class 3 (shuffled)."""
    labels = np.repeat([0, 1, 2, 3], [900, 90, 9, 1])
    return np.random.default_rng(0).permutation(labels)


def test_class_frequencies_are_about_uniform_on_skewed_labels() -> None:
    labels = skewed_labels()
    sampler = ClassBalancedSampler(labels.tolist(), num_samples=8000)
    torch.manual_seed(0)
    drawn = np.fromiter(sampler, dtype=np.int64)
    assert len(drawn) == len(sampler) == 8000
    freq = np.bincount(labels[drawn], minlength=4) / len(drawn)
    # 2,000 expected per class; binomial sd ~ 39 draws, so ±0.025 is more than 5 sd
    np.testing.assert_allclose(freq, 0.25, atol=0.025)
    # within a class, windows are drawn uniformly too: class 1 has 90 members, ~22 draws each
    members = np.flatnonzero(labels == 1)
    counts = np.bincount(drawn[labels[drawn] == 1], minlength=len(labels))[members]
    assert (counts > 0).all()


def test_ignored_classes_are_never_drawn() -> None:
    labels = skewed_labels()
    sampler = ClassBalancedSampler(labels, ignore=(0, 3))
    assert sampler.classes == [1, 2]
    torch.manual_seed(1)
    drawn = np.array(list(sampler))
    assert len(drawn) == len(labels)  # one epoch = number of windows by default
    assert set(labels[drawn]) == {1, 2}
    assert abs(np.mean(labels[drawn] == 1) - 0.5) < 0.05


def test_multi_label_windows_are_drawn_for_each_class_they_carry() -> None:
    # window 0 carries only class 0; window 1 carries 0 and 1; window 2 only the ignored 9
    sampler = ClassBalancedSampler([[0, 0, 0], [0, 1, 1], [9, 9, 9]], num_samples=4000, ignore=(9,))
    torch.manual_seed(2)
    drawn = np.array(list(sampler))
    assert 2 not in drawn
    # class 1 (p = 1/2) always gives window 1; class 0 (p = 1/2) gives windows 0 or 1 equally
    np.testing.assert_allclose(np.mean(drawn == 1), 0.75, atol=0.03)


def test_draws_follow_the_torch_seed() -> None:
    sampler = ClassBalancedSampler(skewed_labels(), num_samples=200)
    torch.manual_seed(5)
    a = list(sampler)
    torch.manual_seed(5)
    b = list(sampler)
    c = list(sampler)
    assert a == b and a != c


def test_no_usable_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="no window"):
        ClassBalancedSampler([4, 4, 4], ignore=(4,))


@pytest.mark.parametrize("power", [0.5, 1.0])
def test_power_draws_classes_by_count_to_that_power(power: float) -> None:
    labels = skewed_labels()
    sampler = ClassBalancedSampler(labels, num_samples=20000, power=power)
    torch.manual_seed(3)
    drawn = np.fromiter(sampler, dtype=np.int64)
    expected = np.array([900.0, 90.0, 9.0, 1.0]) ** power
    expected /= expected.sum()
    freq = np.bincount(labels[drawn], minlength=4) / len(drawn)
    # binomial sd <= 0.0035 at 20,000 draws: 0.015 is more than 4 sd
    np.testing.assert_allclose(freq, expected, atol=0.015)


def test_power_outside_zero_to_one_is_an_error() -> None:
    with pytest.raises(ValueError, match="power"):
        ClassBalancedSampler([0, 1], power=1.5)


def test_random_subset_draws_as_random_sampler_does() -> None:
    sampler = RandomSubsetSampler(40, 12)
    torch.manual_seed(3)
    ours = [list(sampler) for _ in range(3)]
    torch.manual_seed(3)
    reference = RandomSampler(range(40), num_samples=12)
    assert ours == [list(reference) for _ in range(3)]  # same windows, epoch after epoch
    assert len(sampler) == 12 and all(len(set(e)) == 12 for e in ours)
    assert len({tuple(e) for e in ours}) == 3  # a fresh subset each epoch
    with pytest.raises(ValueError, match="num_samples"):
        RandomSubsetSampler(5, 6)


def test_lightning_ddp_keeps_the_subset_and_splits_it_across_ranks() -> None:
    loader = DataLoader(list(range(40)), batch_size=4, sampler=RandomSubsetSampler(40, 12))
    ranks = [
        _get_distributed_sampler(loader, shuffle=True, overfit_batches=0, num_replicas=2, rank=r)
        for r in (0, 1)
    ]
    assert [len(s) for s in ranks] == [6, 6]  # a plain RandomSampler would give 20 each
    torch.manual_seed(0)
    first = list(ranks[0])
    torch.manual_seed(0)
    second = list(ranks[1])
    assert not set(first) & set(second)  # the ranks train disjoint windows of one subset
