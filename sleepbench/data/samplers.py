"""Samplers shared by tasks with skewed classes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler


class ClassBalancedSampler(Sampler[int]):
    """Draw a class uniformly, then a window carrying that class (U-Time's balanced sampling).

    Args:
        window_classes: for each window, the classes it contains (one int, or a sequence for
            multi-label windows such as 31-epoch sleep sequences).
        num_samples: draws per epoch (default: number of windows).
        ignore: class values never drawn (e.g. an "unknown" label).

    Draws use torch's global generator, so ``seed_everything`` makes them reproducible.
    Lightning wraps this sampler for DDP so ranks draw disjoint positions.
    """

    def __init__(
        self,
        window_classes: Sequence[int] | Sequence[Sequence[int]],
        num_samples: int | None = None,
        ignore: Sequence[int] = (),
    ) -> None:
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

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        cls = torch.randint(len(self.classes), (self.num_samples,)).numpy()
        pick = torch.rand(self.num_samples).numpy()
        for c, u in zip(cls, pick):
            members = self.members[c]
            yield int(members[min(int(u * len(members)), len(members) - 1)])
