"""Tests of the method-003 network (MRINet + HTS-AT Swin, FEBA, FSC; SPECS §4.3)."""

from __future__ import annotations

import pytest
import torch

from sleepbench.errors import ConfigError
from sleepbench.methods.lsrm.htsat import HTSATBranch, token_semantic_regroup, wav2img
from sleepbench.methods.lsrm.mrinet import MRIBlock, MRINet
from sleepbench.methods.lsrm.network import (
    BRANCHES,
    SIZES,
    BranchAttention,
    LSRMNet,
    SemanticClassifier,
    count_parameters,
)

ICBHI_FRAMES = 801  # 8 s at 16 kHz, hop 160


def _mel(batch: int = 2, frames: int = ICBHI_FRAMES, bins: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 1, frames, bins, generator=g) * 10 - 40  # dB-like


@pytest.fixture(scope="module")
def small_nets() -> dict[str, LSRMNet]:
    torch.manual_seed(0)
    return {b: LSRMNet(4, "small", b) for b in BRANCHES}


# --- geometry of SPECS §4.3 (paper layout; narrow widths where the width does not matter) -----


def test_mrinet_paper_geometry() -> None:
    net = MRINet([1, 1, 1, 1], base_channels=64, ratio=2).eval()
    x = torch.randn(1, 1, 1024, 64)
    with torch.no_grad():
        assert net.forward_stem(x).shape == (1, 64, 257, 16)
        assert net(x).shape == (1, 512, 32, 2)
    assert net.out_channels == 512


def test_mri_block_parameters_by_hand() -> None:
    """Three 1x1 2C->C convs + two 3x3 C->C convs (24 C^2 weights, 5 C biases) + BN (16 C)."""
    for c in (4, 64):
        assert sum(p.numel() for p in MRIBlock(c).parameters()) == 24 * c * c + 21 * c


def test_mri_block_interlaces_streams() -> None:
    """The dilated stream sees the new plain stream (a'), the plain stream never sees b'."""
    torch.manual_seed(0)
    block = MRIBlock(3).eval()
    a, b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        a1, b1 = block((a, b))
        # a' depends on b (through concat(a, b)), and b' = dilated(concat(b, a')) + residual(u)
        expected_b = block.dilated(torch.cat((b, a1), 1)) + block.residual(torch.cat((a, b), 1))
    torch.testing.assert_close(b1, expected_b)


def test_wav2img_matches_htsat_reshape() -> None:
    x = torch.arange(2 * 1024 * 64, dtype=torch.float32).reshape(2, 1, 1024, 64)
    # HTS-AT reshape_wav2img, written out as upstream does it
    ref = (
        x.permute(0, 1, 3, 2)
        .reshape(2, 1, 64, 4, 256)
        .permute(0, 1, 3, 2, 4)
        .reshape(2, 1, 256, 256)
    )
    img = wav2img(x)
    torch.testing.assert_close(img, ref)
    # chunk k of 256 frames fills rows k*64 .. k*64+63 (row = mel bin), columns = its frames
    assert img[1, 0, 2 * 64 + 5, 7] == x[1, 0, 2 * 256 + 7, 5]


def test_token_semantic_regroup_matches_htsat() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    ref = x.reshape(2, 3, 4, 2, 8).permute(0, 1, 3, 2, 4).reshape(2, 3, 2, 32)
    torch.testing.assert_close(token_semantic_regroup(x), ref)
    # regrouping the wav2img of a per-frame ramp restores time order along the last axis
    frames = torch.arange(1024, dtype=torch.float32).view(1, 1, 1024, 1).expand(1, 1, 1024, 64)
    pooled = torch.nn.functional.avg_pool2d(wav2img(frames), 32)  # 8 x 8 "tokens"
    regrouped = token_semantic_regroup(pooled)[0, 0, 0]
    assert torch.all(regrouped.diff() > 0)


def test_swin_paper_geometry() -> None:
    """Stage grids 64/32/16/8, widths 96..768, tokens [B, 64, 768], window 8, last stage unshifted."""
    branch = HTSATBranch(out_channels=512, depths=(2, 1, 1, 1)).eval()
    x = wav2img(torch.randn(1, 1, 1024, 64))
    assert x.shape == (1, 1, 256, 256)
    shapes = []
    with torch.no_grad():
        h = branch.swin.patch_embed(x)
        shapes.append(tuple(h.shape))
        for layer in branch.swin.layers:
            h = layer(h)
            shapes.append(tuple(h.shape))
        tokens = branch.forward_tokens(torch.randn(1, 1, 1024, 64))
        out = branch(torch.randn(1, 1, 1024, 64))
    assert shapes == [
        (1, 64, 64, 96),
        (1, 64, 64, 96),
        (1, 32, 32, 192),
        (1, 16, 16, 384),
        (1, 8, 8, 768),
    ]
    assert tokens.shape == (1, 64, 768)
    assert out.shape == (1, 512, 2, 32)
    stage0 = branch.swin.layers[0].blocks
    assert [blk.shift_size for blk in stage0] == [(0, 0), (4, 4)]
    assert all(blk.window_size == (8, 8) for layer in branch.swin.layers for blk in layer.blocks)
    assert branch.swin.layers[3].blocks[0].shift_size == (0, 0)
    assert not any(n.startswith("swin.absolute_pos_embed") for n, _ in branch.named_parameters())


def test_paper_config_values() -> None:
    assert SIZES["paper"]["nblocks"] == (6, 8, 12, 10)
    assert SIZES["paper"]["depths"] == (2, 2, 6, 2) and SIZES["paper"]["num_heads"] == (
        4,
        8,
        16,
        32,
    )
    assert SIZES["paper"]["window_size"] == 8 and SIZES["paper"]["drop_path_rate"] == 0.1
    assert SIZES["paper"]["base_channels"] == 64 and SIZES["paper"]["embed_dim"] == 96


def test_parameter_counts() -> None:
    """SPECS: released config ~120 M; paper table 67.15 M (ours + upstream's 1.08 M frozen front end)."""
    paper = count_parameters("paper", 4)
    assert abs(paper - 120e6) / 120e6 < 0.01
    frozen_front_end = 2 * 513 * 1024 + 513 * 64  # torchlibrosa STFT kernels + mel matrix upstream
    assert abs(count_parameters("paper67m", 4) + frozen_front_end - 67.15e6) / 67.15e6 < 0.01
    assert count_parameters("small", 50) - count_parameters("small", 4) == 46 * (32 * 3 + 1)
    assert count_parameters("small", 4, "freq") < count_parameters("small", 4, "both")


# --- the whole network, size "small" ------------------------------------------------------------


@pytest.mark.parametrize("branches", BRANCHES)
def test_small_output_shapes(small_nets: dict[str, LSRMNet], branches: str) -> None:
    net = small_nets[branches].eval()
    with torch.no_grad():
        logits = net(_mel())
        frames = net.framewise(_mel())
    assert logits.shape == (2, 4)
    assert frames.shape == (2, 4, 1024)
    assert torch.all((frames >= 0) & (frames <= 1))
    assert (net.feba is not None) == (branches == "both")
    assert (net.time_branch is not None) == (branches != "freq")


def test_fifty_classes_and_full_length_input() -> None:
    net = LSRMNet(50, "small", "both").eval()
    with torch.no_grad():
        assert net(_mel(frames=1024)).shape == (2, 50)
        assert net(_mel(frames=1001)).shape == (2, 50)


def test_input_checks(small_nets: dict[str, LSRMNet]) -> None:
    net = small_nets["both"]
    with pytest.raises(ValueError, match="1025 frames exceed target_frames=1024"):
        net(_mel(frames=1025))
    with pytest.raises(ValueError, match=r"expected log-mel \[B, 1, T, 64\]"):
        net(_mel(bins=128))
    with pytest.raises(ValueError, match="expected log-mel"):
        net(torch.zeros(2, 801, 64))


def test_config_checks() -> None:
    with pytest.raises(ConfigError, match="unknown LSRM network options"):
        LSRMNet(4, "small", nblock=(1, 1, 1, 1))
    with pytest.raises(ConfigError, match="unknown LSRM size"):
        LSRMNet(4, "huge")
    with pytest.raises(ConfigError, match="branches"):
        LSRMNet(4, "small", "fusion")
    with pytest.raises(ConfigError, match="target_frames"):
        LSRMNet(4, "small", "both", target_frames=512)
    with pytest.raises(ConfigError, match="n_mels"):
        LSRMNet(4, "small", n_mels=128)
    with pytest.raises(ConfigError, match="nblocks must be 4"):
        LSRMNet(4, "small", nblocks=(1, 1, 1))
    with pytest.raises(ConfigError, match="4 Swin stages"):
        LSRMNet(4, "small", depths=(1, 1, 1))
    with pytest.raises(ConfigError, match="not divisible by 5 heads"):
        LSRMNet(4, "small", num_heads=(5, 2, 4, 8))


def test_overrides_and_other_geometries() -> None:
    net = LSRMNet(4, "small", "freq", target_frames=512, nblocks=(1, 2, 1, 1)).eval()
    assert len(net.freq_branch.stages[1]) == 2
    with torch.no_grad():
        assert net(_mel(frames=300)).shape == (2, 4)
        assert net.framewise(_mel(frames=300)).shape == (2, 4, 512)
    fewer_bins = LSRMNet(4, "small", "both", n_mels=32).eval()
    with torch.no_grad():
        assert fewer_bins(_mel(bins=32)).shape == (2, 4)


def test_augment_runs_after_bn0(small_nets: dict[str, LSRMNet]) -> None:
    net = small_nets["freq"].eval()
    seen: list[torch.Tensor] = []

    def augment(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return torch.zeros_like(x)

    mel = _mel()
    with torch.no_grad():
        out = net(mel, augment)
        expected_input = net.bn0(mel.transpose(1, 3)).transpose(1, 3)
        zeros = torch.zeros(2, 1, 1024, 64)
        expected_out = net.fsc(net.freq_norm(net.freq_branch(zeros).transpose(2, 3))).mean(2)
    torch.testing.assert_close(seen[0], expected_input)
    torch.testing.assert_close(out, expected_out)


def test_gradients_reach_both_branches() -> None:
    torch.manual_seed(1)
    net = LSRMNet(4, "small", "both").train()
    net(_mel(batch=3)).logsumexp(1).sum().backward()
    for name in (
        "freq_branch.stem.0.weight",
        "time_branch.swin.patch_embed.proj.weight",
        "time_branch.swin.layers.2.blocks.1.attn.relative_position_bias_table",
        "feba.heads.1.weight",
        "fsc.conv2.weight",
        "bn0.weight",
    ):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_feba_weights_sum_to_one() -> None:
    torch.manual_seed(2)
    feba = BranchAttention(8).train()
    freq, time = torch.randn(3, 8, 2, 32), torch.randn(3, 8, 2, 32)
    w = feba.weights(freq, time)
    assert w.shape == (3, 2, 8)
    torch.testing.assert_close(w.sum(1), torch.ones(3, 8))
    assert torch.all((w > 0) & (w < 1))
    fused = feba(freq, time)
    torch.testing.assert_close(fused, w[:, 0, :, None, None] * freq + w[:, 1, :, None, None] * time)


def test_semantic_classifier_shapes() -> None:
    head = SemanticClassifier(16, 5, hidden=8)
    assert head(torch.randn(2, 16, 2, 32)).shape == (2, 5, 16)
    assert head.conv1.kernel_size == (2, 3) and head.conv2.stride == (2, 2)


def test_eval_is_deterministic(small_nets: dict[str, LSRMNet]) -> None:
    net = small_nets["both"].eval()
    with torch.no_grad():
        torch.testing.assert_close(net(_mel()), net(_mel()), rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(2, 1, 801, 64), (1, 1, 300, 40)])
def test_bicubic_resize_equals_interpolate_and_is_deterministic_on_cuda(shape) -> None:
    """The matrix form equals F.interpolate's bicubic (align_corners) and its backward has no op
    that CUDA refuses under deterministic algorithms."""
    import torch.nn.functional as F

    from sleepbench.methods.lsrm.network import bicubic_resize
    from sleepbench.nn.determinism import CudaNondeterminismGuard

    x = torch.randn(*shape, requires_grad=True)
    ref = F.interpolate(x, (1024, 64), mode="bicubic", align_corners=True)
    with CudaNondeterminismGuard():
        out = bicubic_resize(x, 1024, 64)
        out.sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert x.grad is not None and torch.isfinite(x.grad).all()
