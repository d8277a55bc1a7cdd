"""Training samplers shared by tasks: class-balanced draws, and a random subset per epoch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class ClassBalancedSampler(Sampler[int]):
    """Draw a class, then a window carrying that class (U-Time's balanced sampling).

    Args:
        window_classes: for each window, the classes it contains (one int, or a sequence for
            multi-label windows such as 31-epoch sleep sequences).
        num_samples: draws per epoch (default: number of windows).
        ignore: class values never drawn (e.g. an "unknown" label).
        power: a class is drawn with probability proportional to (its window count) ** power:
            0 (default) draws classes uniformly, 1 as often as they occur, 0.5 in between.

    Draws use torch's global generator, so ``seed_everything`` makes them reproducible.
    Lightning wraps this sampler for DDP so ranks draw disjoint positions.
    """

    def __init__(
        self,
        window_classes: Sequence[int] | Sequence[Sequence[int]],
        num_samples: int | None = None,
        ignore: Sequence[int] = (),
        power: float = 0.0,
    ) -> None:
        if not 0.0 <= power <= 1.0:
            raise ValueError(f"ClassBalancedSampler: power must lie in [0, 1], got {power}")
        by_class: dict[int, list[int]] = {}
        for i, classes in enumerate(window_classes):
            for c in set(np.atleast_1d(classes).tolist()):
                if c not in ignore:
                    by_class.setdefault(int(c), []).append(i)
        if not by_class:
            raise ValueError("ClassBalancedSampler: no window carries a usable class")
        self.classes = sorted(by_class)
        self.members = [np.asarray(by_class[c]) for c in self.classes]
        self.num_samples = int(num_samples or len(window_classes))
        self.power = float(power)
        sizes = np.array([len(m) for m in self.members], dtype=np.float64) ** self.power
        self.class_p = torch.as_tensor(sizes / sizes.sum())

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        if self.power == 0.0:  # the uniform draw as before, so seeded runs keep their stream
            cls = torch.randint(len(self.classes), (self.num_samples,)).numpy()
        else:
            cls = torch.multinomial(self.class_p, self.num_samples, replacement=True).numpy()
        pick = torch.rand(self.num_samples).numpy()
        for c, u in zip(cls, pick):
            members = self.members[c]
            yield int(members[min(int(u * len(members)), len(members) - 1)])


class RandomSubsetSampler(Sampler[int]):
    """A fresh random ``num_samples`` of the ``n`` windows each epoch, without repeats.

    Draws exactly as ``RandomSampler(..., num_samples=num_samples)`` (torch's global generator
    seeds each epoch's permutation, so ``seed_everything`` makes them reproducible), but is not
    one: Lightning swaps a plain ``RandomSampler`` for a ``DistributedSampler`` over the whole
    dataset under DDP, which would silently train whole epochs; any other sampler it wraps, so
    the ranks split this epoch's subset.

    Args:
        n: windows in the dataset.
        num_samples: windows per epoch, ``1 <= num_samples <= n``.
    """

    def __init__(self, n: int, num_samples: int) -> None:
        if not 1 <= num_samples <= n:
            raise ValueError(
                f"RandomSubsetSampler: num_samples must lie in [1, {n}], got {num_samples}"
            )
        self._draw = torch.utils.data.RandomSampler(range(n), num_samples=num_samples)
        self.num_samples = num_samples

    def __iter__(self) -> Iterator[int]:
        return iter(self._draw)

    def __len__(self) -> int:
        return self.num_samples
