"""HTS-AT's warm-up LambdaLR multiplier, as SPECS §4.4 evaluates it with the defaults."""

from __future__ import annotations

import pytest
import torch

from sleepbench.methods.lsrm.schedule import htsat_lr_scale


@pytest.mark.parametrize(
    ("epoch", "scale"),
    [(0, 0.02), (1, 0.05), (2, 0.1), (3, 0.1), (10, 0.1), (11, 0.05), (20, 0.05), (21, 0.02),
     (30, 0.02), (31, 0.03), (99, 0.03)],
)  # fmt: skip
def test_multiplier_per_epoch(epoch: int, scale: float) -> None:
    assert htsat_lr_scale(epoch) == pytest.approx(scale)


def test_lambda_lr_follows_it_and_negative_epochs_are_refused() -> None:
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, htsat_lr_scale)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2e-5, 5e-5, 1e-4, 1e-4])
    with pytest.raises(ValueError, match="epoch"):
        htsat_lr_scale(-1)
