"""HTS-AT's warm-up learning-rate multiplier (SPECS §4.4), as its code evaluates it.

HTS-AT's ``lr_foo(epoch)`` with the defaults ``lr_rate = [0.02, 0.05, 0.1]`` and
``lr_scheduler_epoch = [10, 20, 30]``:

- epochs 0, 1, 2: ``lr_rate[epoch]`` (warm-up 0.02 -> 0.05 -> 0.1);
- later: ``pos = -1 - bisect_left(milestones, epoch)``; when ``pos >= -len(lr_rate)`` the
  multiplier is ``lr_rate[pos]`` (0.1 up to epoch 10, 0.05 up to 20, 0.02 up to 30), otherwise
  ``max(lr_rate[0] * 0.98 ** epoch, 0.03)``, which is always the 0.03 floor because
  ``0.02 * 0.98 ** epoch < 0.03``. The effective peak learning rate is ``0.1 * lr``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

__all__ = ["DEFAULT_LR_RATE", "DEFAULT_MILESTONES", "htsat_lr_scale"]

DEFAULT_LR_RATE: tuple[float, ...] = (0.02, 0.05, 0.1)
DEFAULT_MILESTONES: tuple[int, ...] = (10, 20, 30)


def htsat_lr_scale(
    epoch: int,
    lr_rate: Sequence[float] = DEFAULT_LR_RATE,
    milestones: Sequence[int] = DEFAULT_MILESTONES,
) -> float:
    """Multiplier of the base learning rate at ``epoch`` (0-based), for ``LambdaLR``.

    Args:
        epoch: epoch index (``LambdaLR`` steps once per epoch).
        lr_rate: warm-up multipliers; after warm-up they are read from the end (the last is the
            plateau after warm-up).
        milestones: epochs at which the multiplier steps down, ascending.

    Returns:
        The multiplier (``0.02 .. 0.1`` with the defaults).
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    rates = [float(r) for r in lr_rate]
    if not rates:
        raise ValueError("lr_rate is empty")
    if epoch < len(rates):
        return rates[epoch]
    pos = -1 - bisect.bisect_left(list(milestones), epoch)
    if pos < -len(rates):
        return max(rates[0] * 0.98**epoch, 0.03)
    return rates[pos]
