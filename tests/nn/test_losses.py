"""Focal, soft-Dice and focal+Dice losses against cross-entropy and hand (NumPy) computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sleepbench.nn.losses import FocalDiceLoss, FocalLoss, SoftDiceLoss

SLEEP_WEIGHTS = [0.2, 0.2, 0.3, 0.2, 0.2]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _np_softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_focal(logits, target, gamma, weight=None, ignore=None, weighted_pt=False) -> float:
    """Mean focal loss over non-ignored rows, ``logits`` [N, C], ``target`` [N]."""
    probs = _np_softmax(logits.astype(np.float64))
    weight = np.ones(logits.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    terms = []
    for p, y in zip(probs, target):
        if ignore is not None and y == ignore:
            continue
        ce = -np.log(p[y])
        if weighted_pt:
            ce_w = weight[y] * ce
            terms.append((1 - np.exp(-ce_w)) ** gamma * ce_w)
        else:
            terms.append(weight[y] * (1 - p[y]) ** gamma * ce)
    return float(np.mean(terms))


def _np_dice_loss(logits, target, n_classes, weight=None, ignore=None, classes=None) -> float:
    """1 - weighted mean over ``classes`` of the pooled soft Dice (eps 1e-6)."""
    keep = np.ones(len(target), bool) if ignore is None else target != ignore
    probs = _np_softmax(logits.astype(np.float64))[keep]
    one_hot = np.eye(n_classes)[target[keep]]
    dice = (2 * (probs * one_hot).sum(0) + 1e-6) / (probs.sum(0) + one_hot.sum(0) + 1e-6)
    classes = list(range(n_classes)) if classes is None else list(classes)
    w = np.ones(n_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    return float(1 - (w[classes] * dice[classes]).sum() / w[classes].sum())


def _sequence_batch(n_classes: int = 5, ignore: int | None = 5, dtype=torch.float64):
    """Logits ``[B, C, T]`` and targets ``[B, T]`` with some ignored positions."""
    logits = torch.randn(3, n_classes, 11, dtype=dtype) * 2
    target = torch.randint(0, n_classes, (3, 11))
    if ignore is not None:
        target[0, :3] = ignore
        target[2, -2:] = ignore
    return logits, target


def _as_rows(logits: torch.Tensor, target: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """``[B, C, T]``/``[B, T]`` -> NumPy ``[B*T, C]``/``[B*T]``."""
    return (
        logits.movedim(1, -1).reshape(-1, logits.shape[1]).detach().numpy(),
        target.reshape(-1).numpy(),
    )


# --------------------------------------------------------------------------- focal


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_focal_gamma0_equals_cross_entropy_with_ignore(dtype: torch.dtype) -> None:
    logits, target = _sequence_batch(dtype=dtype)
    loss = FocalLoss(gamma=0.0, ignore_index=5)(logits, target)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, ignore_index=5))
    rows, labels = logits.movedim(1, -1).reshape(-1, 5), target.reshape(-1)
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, ignore_index=5)(rows, labels),
        F.cross_entropy(rows, labels, ignore_index=5),
    )


def test_focal_gamma0_weighted_sum_and_none_equal_cross_entropy() -> None:
    logits, target = _sequence_batch()
    weight = torch.tensor(SLEEP_WEIGHTS, dtype=torch.float64)
    for reduction in ("sum", "none"):
        ours = FocalLoss(0.0, weight, ignore_index=5, reduction=reduction)(logits, target)
        ref = F.cross_entropy(logits, target, weight=weight, ignore_index=5, reduction=reduction)
        torch.testing.assert_close(ours, ref.to(ours.dtype))
    none = FocalLoss(0.0, weight, ignore_index=5, reduction="none")(logits, target)
    assert none.shape == target.shape
    assert (none[target == 5] == 0).all()


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("weighted_pt", [False, True])
def test_focal_matches_hand_computation(gamma: float, weighted_pt: bool) -> None:
    logits, target = _sequence_batch()
    loss = FocalLoss(gamma, [1.0, 4.0, 2.0, 0.5, 1.0], 5, pt_from_weighted_ce=weighted_pt)
    expected = _np_focal(
        *_as_rows(logits, target), gamma, [1.0, 4.0, 2.0, 0.5, 1.0], 5, weighted_pt
    )
    # Class weights are stored in float32, hence the relative tolerance.
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-7)


def test_weighted_pt_differs_only_with_weights() -> None:
    logits, target = _sequence_batch(n_classes=3, ignore=None)
    plain = FocalLoss(2.0)(logits, target)
    torch.testing.assert_close(FocalLoss(2.0, pt_from_weighted_ce=True)(logits, target), plain)
    standard = FocalLoss(2.0, [1.0, 4.0, 2.0])(logits, target)
    crnn = FocalLoss(2.0, [1.0, 4.0, 2.0], pt_from_weighted_ce=True)(logits, target)
    assert not torch.allclose(standard, crnn)


def test_focal_down_weights_easy_examples() -> None:
    logits = torch.tensor([[4.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    target = torch.tensor([0, 0])
    per_row = FocalLoss(2.0, reduction="none")(logits, target)
    ce = F.cross_entropy(logits, target, reduction="none")
    # The confident row loses far more of its CE than the uncertain one.
    assert (per_row / ce)[0] < 0.01 < 0.3 < (per_row / ce)[1]


def test_focal_all_ignored_gives_zero_and_finite_gradient() -> None:
    logits = torch.randn(2, 5, 4, requires_grad=True)
    target = torch.full((2, 4), 5)
    loss = FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5)(logits, target)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_focal_promotes_half_precision_logits() -> None:
    logits, target = _sequence_batch(dtype=torch.bfloat16)
    loss = FocalLoss(2.0, ignore_index=5)(logits, target)
    assert loss.dtype == torch.float32
    expected = FocalLoss(2.0, ignore_index=5)(logits.float(), target)
    torch.testing.assert_close(loss, expected)


def test_focal_input_validation() -> None:
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(-1.0)
    with pytest.raises(ValueError, match="reduction"):
        FocalLoss(reduction="batchmean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="target shape"):
        FocalLoss()(torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        FocalLoss()(torch.randn(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="class weights"):
        FocalLoss(weight=[1.0, 2.0])(torch.randn(2, 3), torch.zeros(2, dtype=torch.long))


# --------------------------------------------------------------------------- dice


@pytest.mark.parametrize(
    ("weight", "classes"),
    [(None, None), (SLEEP_WEIGHTS, None), (None, (1, 2)), ([1.0, 4.0, 2.0, 1.0, 3.0], (1, 2, 4))],
)
def test_dice_matches_hand_computation(weight, classes) -> None:
    logits, target = _sequence_batch()
    loss = SoftDiceLoss(5, weight=weight, ignore_index=5, foreground_only=classes)
    expected = _np_dice_loss(*_as_rows(logits, target), 5, weight, 5, classes)
    # Class weights are stored in float32, hence the relative tolerance.
    assert loss(logits, target).item() == pytest.approx(expected, rel=1e-7)


def test_dice_is_pooled_over_the_batch_not_averaged_per_sample() -> None:
    logits, target = _sequence_batch(ignore=None)
    dice = SoftDiceLoss(5)
    pooled = dice(logits, target)
    per_sample = torch.stack([dice(logits[i : i + 1], target[i : i + 1]) for i in range(3)])
    rows = logits.movedim(1, -1).reshape(-1, 5)
    torch.testing.assert_close(pooled, dice(rows, target.reshape(-1)))
    assert not torch.allclose(pooled, per_sample.mean())


def test_dice_perfect_and_bounds() -> None:
    target = torch.randint(0, 4, (2, 30))
    perfect = F.one_hot(target, 4).movedim(-1, 1).double() * 50.0
    assert SoftDiceLoss(4)(perfect, target).item() == pytest.approx(0.0, abs=1e-9)
    logits, target = _sequence_batch(n_classes=4, ignore=None)
    value = SoftDiceLoss(4)(logits, target).item()
    assert 0.0 < value < 1.0


def test_dice_input_validation() -> None:
    with pytest.raises(ValueError, match="foreground_only"):
        SoftDiceLoss(3, foreground_only=(1, 3))
    with pytest.raises(ValueError, match="class weights"):
        SoftDiceLoss(3, weight=[1.0, 1.0])
    with pytest.raises(ValueError, match="expected 3"):
        SoftDiceLoss(3)(torch.randn(2, 4), torch.zeros(2, dtype=torch.long))


# --------------------------------------------------------------------------- combined


def _sleep_loss() -> FocalDiceLoss:
    """The TinyUStaging loss: weighted focal (gamma 2) + weighted Dice, class 5 ignored."""
    return FocalDiceLoss(
        FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5),
        SoftDiceLoss(5, weight=SLEEP_WEIGHTS, ignore_index=5),
        dice_weight=1.0,
    )


def _audio_loss() -> FocalDiceLoss:
    """The audio CRNN loss: focal with weighted pt + 0.5 Dice over foreground classes 1 and 2."""
    return FocalDiceLoss(
        FocalLoss(2.0, [1.0, 4.0, 2.0], ignore_index=-1, pt_from_weighted_ce=True),
        SoftDiceLoss(3, ignore_index=-1, foreground_only=(1, 2)),
        dice_weight=0.5,
    )


def test_focal_dice_is_weighted_sum_of_parts() -> None:
    logits, target = _sequence_batch(n_classes=3, ignore=None)
    target[1, :4] = -1
    loss = _audio_loss()
    expected = loss.focal(logits, target) + 0.5 * loss.dice(logits, target)
    torch.testing.assert_close(loss(logits, target), expected)
    with pytest.raises(ValueError, match="scalar reduction"):
        FocalDiceLoss(FocalLoss(reduction="none"), SoftDiceLoss(3))


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5),
        lambda: FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5, pt_from_weighted_ce=True),
        lambda: SoftDiceLoss(5, weight=SLEEP_WEIGHTS, ignore_index=5),
        _sleep_loss,
    ],
    ids=["focal", "focal-weighted-pt", "dice", "focal+dice"],
)
def test_ignored_positions_never_contribute(make_loss) -> None:
    loss_fn = make_loss()
    logits, target = _sequence_batch()
    ignored = (target == 5)[:, None, :].expand_as(logits)
    changed = logits.clone()
    changed[ignored] = torch.randn(int(ignored.sum()), dtype=logits.dtype) * 100
    a = logits.clone().requires_grad_(True)
    b = changed.clone().requires_grad_(True)
    loss_a, loss_b = loss_fn(a, target), loss_fn(b, target)
    torch.testing.assert_close(loss_a, loss_b)
    loss_a.backward()
    loss_b.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()
    assert (a.grad[ignored] == 0).all() and (b.grad[ignored] == 0).all()
    torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize(
    "make_loss",
    [
        lambda: FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5),
        lambda: FocalLoss(2.0, SLEEP_WEIGHTS, ignore_index=5, pt_from_weighted_ce=True),
        lambda: SoftDiceLoss(5, weight=SLEEP_WEIGHTS, ignore_index=5),
    ],
    ids=["focal", "focal-weighted-pt", "dice"],
)
def test_gradients_match_finite_differences(make_loss) -> None:
    logits, target = _sequence_batch()
    logits = logits[:, :, :4].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: make_loss()(x, target[:, :4]), (logits,))


def test_weights_follow_module_device_and_dtype() -> None:
    loss = _sleep_loss().to(torch.float64)
    assert loss.focal.weight.dtype == torch.float64
    assert {"focal.weight", "dice.weight"} <= set(loss.state_dict())
    logits, target = _sequence_batch()
    assert loss(logits, target).dtype == torch.float64
