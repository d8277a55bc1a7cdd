"""SE, CBAM channel/spatial attention and CSJA: hand-computed gates, shapes, equivariances."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sleepbench.nn.attention import (
    ChannelAttention1d,
    CSJA1d,
    SpatialAttention1d,
    SqueezeExcitation,
    SqueezeExcitation1d,
    SqueezeExcitation2d,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _mlp(module: nn.Module, v: torch.Tensor, act=F.relu) -> torch.Tensor:
    """Apply a ``Linear -> act -> Linear`` bottleneck by hand from its parameters."""
    first, _, second = module.mlp
    hidden = act(F.linear(v, first.weight, first.bias))
    return F.linear(hidden, second.weight, second.bias)


@pytest.mark.parametrize("bias", [True, False])
def test_se1d_matches_hand_computation(bias: bool) -> None:
    se = SqueezeExcitation1d(12, reduction=4, bias=bias)
    x = torch.randn(3, 12, 50)
    gate = torch.sigmoid(_mlp(se, x.mean(dim=2)))[:, :, None]
    torch.testing.assert_close(se.gate(x), gate)
    torch.testing.assert_close(se(x), x * gate)
    assert ((gate > 0) & (gate < 1)).all()


def test_se_bias_free_audio_variant_parameter_count() -> None:
    # The audio CRNN's SE: two bias-free linears 256 -> 16 -> 256 = 2 * 256 * 16 weights.
    se = SqueezeExcitation2d(256, reduction=16, bias=False)
    assert sum(p.numel() for p in se.parameters()) == 2 * 256 * 16
    assert se.mlp[0].bias is None and se.mlp[2].bias is None


def test_se2d_pools_over_both_spatial_dims() -> None:
    se = SqueezeExcitation2d(8, reduction=2)
    x = torch.randn(2, 8, 5, 7)
    gate = torch.sigmoid(_mlp(se, x.mean(dim=(2, 3))))[:, :, None, None]
    assert se.gate(x).shape == (2, 8, 1, 1)
    torch.testing.assert_close(se(x), x * gate)


def test_se_rank_and_channel_checks() -> None:
    with pytest.raises(ValueError, match="3-D"):
        SqueezeExcitation1d(4)(torch.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="4-D"):
        SqueezeExcitation2d(4)(torch.randn(2, 4, 3))
    with pytest.raises(ValueError, match="channels"):
        SqueezeExcitation(4)(torch.randn(2, 5, 3))
    # The generic class accepts any rank >= 3.
    assert SqueezeExcitation(4, reduction=2)(torch.randn(2, 4, 3, 2, 2)).shape == (2, 4, 3, 2, 2)


def test_se_hidden_width_never_zero() -> None:
    se = SqueezeExcitation1d(7, reduction=16)
    assert se.mlp[0].out_features == 1


def test_se_is_equivariant_to_time_permutation() -> None:
    se = SqueezeExcitation1d(6, reduction=2)
    x = torch.randn(2, 6, 40)
    perm = torch.randperm(40)
    torch.testing.assert_close(se(x[..., perm]), se(x)[..., perm])


def test_channel_attention_shared_mlp_over_avg_and_max() -> None:
    ca = ChannelAttention1d(16, reduction=8)
    # One shared MLP: 16*2 + 2 + 2*16 + 16 parameters, not two of them.
    assert sum(p.numel() for p in ca.parameters()) == 16 * 2 + 2 + 2 * 16 + 16
    x = torch.randn(4, 16, 30)
    gate = torch.sigmoid(_mlp(ca, x.mean(dim=2)) + _mlp(ca, x.amax(dim=2)))[:, :, None]
    torch.testing.assert_close(ca.gate(x), gate)
    torch.testing.assert_close(ca(x), x * gate)
    assert ((gate > 0) & (gate < 1)).all()


def test_channel_attention_custom_activation() -> None:
    ca = ChannelAttention1d(10, reduction=2, activation=nn.ELU)
    x = torch.randn(2, 10, 9)
    gate = torch.sigmoid(_mlp(ca, x.mean(2), F.elu) + _mlp(ca, x.amax(2), F.elu))[:, :, None]
    torch.testing.assert_close(ca(x), x * gate)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_spatial_attention_matches_hand_computation(batch_norm: bool) -> None:
    sa = SpatialAttention1d(kernel_size=7, batch_norm=batch_norm).eval()
    if batch_norm:
        with torch.no_grad():
            sa.norm.running_mean.fill_(0.3)
            sa.norm.running_var.fill_(2.0)
    x = torch.randn(3, 9, 25)
    maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
    conv = F.conv1d(maps, sa.conv.weight, sa.conv.bias, padding=3)
    if batch_norm:
        assert sa.conv.bias is None
        conv = (conv - 0.3) / torch.sqrt(torch.tensor(2.0) + sa.norm.eps)
    gate = torch.sigmoid(conv)
    assert sa.gate(x).shape == (3, 1, 25)
    torch.testing.assert_close(sa.gate(x), gate)
    torch.testing.assert_close(sa(x), x * gate)


def test_spatial_attention_is_equivariant_to_channel_permutation() -> None:
    sa = SpatialAttention1d(5).eval()
    x = torch.randn(2, 8, 20)
    perm = torch.randperm(8)
    torch.testing.assert_close(sa(x[:, perm]), sa(x)[:, perm])


def test_spatial_attention_rejects_even_kernel() -> None:
    with pytest.raises(ValueError, match="odd"):
        SpatialAttention1d(4)


def test_csja_multiply_chains_channel_then_spatial() -> None:
    csja = CSJA1d(22, reduction=5, kernel_size=7).eval()
    assert csja.channel.mlp[0].out_features == 22 // 5
    x = torch.randn(2, 22, 64)
    expected = csja.spatial(csja.channel(x))
    torch.testing.assert_close(csja(x), expected)
    # The result is the input times a gate in (0, 1): |y| < |x| wherever x != 0.
    assert (csja(x).abs() < x.abs()).all()


def test_csja_add_sums_parallel_branches() -> None:
    csja = CSJA1d(22, combine="add").eval()
    x = torch.randn(2, 22, 64)
    torch.testing.assert_close(csja(x), csja.channel(x) + csja.spatial(x))


@pytest.mark.parametrize("combine", ["multiply", "add"])
def test_csja_without_channel_branch_is_spatial_only(combine: str) -> None:
    csja = CSJA1d(22, combine=combine, channel_attention=False).eval()
    assert csja.channel is None
    x = torch.randn(2, 22, 32)
    torch.testing.assert_close(csja(x), csja.spatial(x))


def test_csja_rejects_unknown_combine_and_wrong_channels() -> None:
    with pytest.raises(ValueError, match="combine"):
        CSJA1d(8, combine="concat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="channels"):
        CSJA1d(8)(torch.randn(2, 9, 10))


@pytest.mark.parametrize(
    "block",
    [
        SqueezeExcitation1d(12, 4),
        ChannelAttention1d(12, 4),
        SpatialAttention1d(7),
        CSJA1d(12, 5),
        CSJA1d(12, 5, combine="add"),
    ],
    ids=["se", "ca", "sa", "csja-mul", "csja-add"],
)
def test_blocks_preserve_shape_and_have_finite_gradients(block: nn.Module) -> None:
    x = torch.randn(3, 12, 40, requires_grad=True)
    y = block.train()(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for p in block.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()
