"""ICBHI score per recording device, against hand-computed confusion matrices."""

from __future__ import annotations

import pytest
import torch

from sleepbench.metrics import GroupedICBHIScore, icbhi_score


def test_grouped_score_equals_the_score_of_each_group_alone() -> None:
    # device 0: 2 normal (1 right), 2 crackle (both right) -> Sp 0.5, Se 1.0, score 0.75
    # device 1: 1 normal (right), 3 abnormal: wheeze->wheeze, both->crackle, crackle->normal
    #           -> Sp 1.0, Se 1/3, score 2/3
    preds = torch.tensor([0, 2, 1, 1, 0, 2, 1, 0])
    target = torch.tensor([0, 0, 1, 1, 0, 2, 3, 1])
    group = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    metric = GroupedICBHIScore(4, ["Meditron", "Litt3200", "LittC2SE"])
    metric.update(preds[:5], target[:5], group[:5])  # two updates accumulate
    metric.update(preds[5:], target[5:], group[5:])
    out = metric.compute()
    assert out["icbhi_sp_Meditron"].item() == pytest.approx(0.5)
    assert out["icbhi_se_Meditron"].item() == pytest.approx(1.0)
    assert out["icbhi_score_Meditron"].item() == pytest.approx(0.75)
    assert out["icbhi_sp_Litt3200"].item() == pytest.approx(1.0)
    assert out["icbhi_se_Litt3200"].item() == pytest.approx(1 / 3)
    assert out["n_Litt3200"].item() == 4
    assert "icbhi_score_LittC2SE" not in out  # no entries: not reported
    for g in (0, 1):
        sel = group == g
        ref = icbhi_score(preds[sel], target[sel], num_classes=4)
        name = ["Meditron", "Litt3200"][g]
        assert out[f"icbhi_score_{name}"].item() == pytest.approx(ref["icbhi_score"].item())


def test_grouped_score_accepts_class_scores_and_checks_lengths() -> None:
    metric = GroupedICBHIScore(4, ["a"])
    scores = torch.tensor([[0.9, 0.1, 0.0, 0.0], [0.1, 0.2, 0.7, 0.0]])
    metric.update(scores, torch.tensor([0, 2]), torch.tensor([0, 0]))
    assert metric.compute()["icbhi_score_a"].item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in length"):
        metric.update(scores, torch.tensor([0]), torch.tensor([0, 0]))
