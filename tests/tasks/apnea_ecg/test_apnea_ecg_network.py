"""Tests of the method-001 network (lead projection + ESI ConvNeXt-V2 + multi-temporal head)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from timm.layers import DropPath

from sleepbench.tasks.apnea_ecg.network import (
    ESI_PREFIX,
    SIZES,
    ApneaECGNet,
    ConvNeXtV21d,
    GlobalResponseNorm1d,
    LeadProjection,
    MultiTemporalHead,
    TimeAxisNorm,
    load_esi_checkpoint,
)

N_SAMPLES = 6000  # 60 s at 100 Hz


def _block_params(dim: int) -> int:
    """Parameters of one ConvNeXt-V2 block, counted by hand from the layer list."""
    dwconv = 7 * dim + dim
    norm = 2 * dim
    pwconv1 = dim * 4 * dim + 4 * dim
    grn = 2 * 4 * dim
    pwconv2 = 4 * dim * dim + dim
    return dwconv + norm + pwconv1 + grn + pwconv2


def _n_trainable(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def base_net() -> ApneaECGNet:
    """Upstream-size network on the meta device: real shapes and names, no memory, no init cost."""
    with torch.device("meta"):
        return ApneaECGNet("base")


@pytest.fixture()
def tiny_net() -> ApneaECGNet:
    torch.manual_seed(0)
    return ApneaECGNet("tiny")


def test_base_parameter_count_matches_upstream(base_net: ApneaECGNet) -> None:
    assert sum(p.numel() for p in base_net.parameters()) == 90_570_551
    base_net.requires_grad_(True)
    base_net.freeze_backbone()
    assert _n_trainable(base_net) == 5_006_898
    assert all(not p.requires_grad for p in base_net.backbone.parameters())


def test_base_state_dict_uses_esi_names_and_shapes(base_net: ApneaECGNet) -> None:
    shapes = {k: tuple(v.shape) for k, v in base_net.backbone.state_dict().items()}
    assert shapes["downsample_layers.0.0.weight"] == (128, 12, 4)
    assert shapes["downsample_layers.0.1.weight"] == (1, 128, 1)
    assert shapes["downsample_layers.3.0.bias"] == (1, 512, 1)
    assert shapes["downsample_layers.3.1.weight"] == (1024, 512, 2)
    assert shapes["stages.2.26.dwconv.weight"] == (512, 1, 7)
    assert shapes["stages.2.26.norm.weight"] == (512,)
    assert shapes["stages.2.26.pwconv1.weight"] == (2048, 512)
    assert shapes["stages.2.26.grn.gamma"] == (1, 1, 2048)
    assert shapes["stages.2.26.grn.beta"] == (1, 1, 2048)
    assert shapes["stages.3.2.pwconv2.weight"] == (1024, 4096)
    assert shapes["norm.weight"] == (1024,)
    assert shapes["head.weight"] == (5, 1024)
    assert "stages.2.27.dwconv.weight" not in shapes and "stages.4.0.norm.weight" not in shapes


def test_unfreeze_rule_follows_upstream_names(base_net: ApneaECGNet) -> None:
    base_net.requires_grad_(True)
    base_net.freeze_backbone()
    names = base_net.unfreeze_stages([3])
    assert names and all(n.startswith("stages.3.") for n in names)
    assert _n_trainable(base_net) == 5_006_898 + 3 * _block_params(1024)
    base_net.unfreeze_stages([2, 3])
    assert _n_trainable(base_net) == 5_006_898 + 3 * _block_params(1024) + 27 * _block_params(512)
    trainable = {n for n, p in base_net.backbone.named_parameters() if p.requires_grad}
    expected = {
        n
        for n, _ in base_net.backbone.named_parameters()
        if n.startswith(("stages.2.", "stages.3."))
    }
    # the downsample layers feeding the stages, the final norm and ESI's head stay frozen
    assert trainable == expected
    ids = {id(p) for p in base_net.trainable_parameters()}
    assert ids == {id(p) for p in base_net.parameters() if p.requires_grad}
    with pytest.raises(ValueError, match="out of range"):
        base_net.unfreeze_stages([4])


def test_tiny_forward_shapes_and_gradients(tiny_net: ApneaECGNet) -> None:
    tiny_net.freeze_backbone()
    x = torch.randn(2, 1, N_SAMPLES)
    logits = tiny_net(x)
    assert logits.shape == (2,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert tiny_net.lead_projection.conv.weight.grad is not None
    assert tiny_net.head.classifier[0].weight.grad is not None
    assert all(p.grad is None for p in tiny_net.backbone.parameters())
    embedding = tiny_net.backbone(tiny_net.lead_projection(x))
    assert embedding.shape == (2, SIZES["tiny"].dims[-1])
    feature_map = tiny_net.backbone.forward_feature_map(tiny_net.lead_projection(x))
    assert feature_map.shape == (2, SIZES["tiny"].dims[-1], N_SAMPLES // 32)


def test_forward_rejects_wrong_input(tiny_net: ApneaECGNet) -> None:
    with pytest.raises(ValueError, match=r"\[B, 1, n_samples\]"):
        tiny_net(torch.randn(2, 12, 640))
    with pytest.raises(ValueError, match="unknown size"):
        ApneaECGNet("huge")


def test_lead_projection_clamps_and_inits() -> None:
    proj = LeadProjection(12)
    bound = 0.5 * math.sqrt(6.0 / (1 + 12))
    assert proj.conv.weight.abs().max() <= bound
    assert torch.count_nonzero(proj.conv.bias) == 0
    proj.eval()  # fresh running stats (mean 0, var 1): BatchNorm passes the huge values through
    x = torch.randn(4, 1, 200) * 1e4
    out = proj(x)
    assert out.shape == (4, 12, 200)
    assert out.abs().max() <= 10.0
    assert torch.isclose(out.abs().max(), torch.tensor(10.0))


def test_head_clamps_concatenated_features() -> None:
    torch.manual_seed(1)
    head = MultiTemporalHead(in_dim=16, lstm_hidden=8, attention_hidden=8, mlp_hidden=(8, 4))
    seen: list[torch.Tensor] = []
    head.classifier[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    head(torch.full((3, 16), 1e3))
    features = seen[0]
    assert features.shape == (3, 2 * 8 + 2 * 16)
    assert features.abs().max() == 10.0


def test_head_on_length_one_sequence_pools_to_the_embedding() -> None:
    torch.manual_seed(2)
    head = MultiTemporalHead(in_dim=16, lstm_hidden=8, attention_hidden=8, mlp_hidden=(8, 4)).eval()
    seen: list[torch.Tensor] = []
    head.classifier[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    embedding = torch.randn(3, 16)
    out_2d = head(embedding)
    out_3d = head(embedding.unsqueeze(1))
    torch.testing.assert_close(out_2d, out_3d)
    # avg and max pooling of a singleton axis both return the embedding itself
    torch.testing.assert_close(seen[0][:, 16:32], embedding)
    torch.testing.assert_close(seen[0][:, 32:], embedding)
    assert head(torch.randn(3, 7, 16)).shape == (3,)  # longer sequences (extension) also work
    with pytest.raises(ValueError, match="expected"):
        head(torch.randn(3, 15))


def test_base_head_widths(base_net: ApneaECGNet) -> None:
    head = base_net.head
    assert head.classifier[0].in_features == 2560
    widths = [m.out_features for m in head.classifier if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 64, 1]
    assert head.lstm.input_size == 1024 and head.lstm.hidden_size == 256
    assert head.lstm.num_layers == 2 and head.lstm.bidirectional and head.lstm.dropout == 0.3
    dropouts = [m.p for m in head.classifier if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.3, 0.15]


def test_head_init() -> None:
    head = MultiTemporalHead(in_dim=48, lstm_hidden=16, attention_hidden=8, mlp_hidden=(16, 8))
    for name, p in head.lstm.named_parameters():
        if name.startswith(
            "weight"
        ):  # orthogonal: the H columns of the [4H, H'] matrix are orthonormal
            gram = p.T @ p if p.shape[0] >= p.shape[1] else p @ p.T
            torch.testing.assert_close(gram, torch.eye(gram.shape[0]), atol=1e-4, rtol=0)
        else:
            assert torch.count_nonzero(p) == 0
    for m in head.modules():
        if isinstance(m, torch.nn.Linear):
            bound = 0.5 * math.sqrt(6.0 / (m.in_features + m.out_features))
            assert m.weight.abs().max() <= bound and torch.count_nonzero(m.bias) == 0


def test_time_axis_norm_matches_esi_formula() -> None:
    torch.manual_seed(3)
    norm = TimeAxisNorm(5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(1, 5, 1))
        norm.bias.copy_(torch.randn(1, 5, 1))
    x = torch.randn(2, 5, 33, dtype=torch.float64)
    norm = norm.double()
    xn = x.numpy()
    mean = xn.mean(-1, keepdims=True)
    std = xn.std(-1, ddof=1, keepdims=True)  # unbiased, eps on the std, over time
    expected = (xn - mean) / (
        std + 1e-6
    ) * norm.weight.detach().numpy() + norm.bias.detach().numpy()
    np.testing.assert_allclose(norm(x).detach().numpy(), expected, rtol=1e-10, atol=1e-12)


def test_grn_matches_convnextv2_formula() -> None:
    torch.manual_seed(4)
    grn = GlobalResponseNorm1d(6).double()
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    torch.testing.assert_close(grn(x), x)  # zero-initialised gamma/beta: identity
    with torch.no_grad():
        grn.gamma.normal_()
        grn.beta.normal_()
    xn = x.numpy()
    g = np.sqrt((xn**2).sum(axis=1, keepdims=True))  # L2 over time, per channel
    n = g / (g.mean(axis=-1, keepdims=True) + 1e-6)
    expected = grn.gamma.detach().numpy() * (xn * n) + grn.beta.detach().numpy() + xn
    np.testing.assert_allclose(grn(x).detach().numpy(), expected, rtol=1e-10)


def test_drop_path_schedule() -> None:
    backbone = ConvNeXtV21d(12, (1, 1, 2, 1), (8, 16, 32, 64), drop_path_rate=0.2)
    rates = [
        b.drop_path.drop_prob if isinstance(b.drop_path, DropPath) else 0.0
        for stage in backbone.stages
        for b in stage
    ]
    np.testing.assert_allclose(rates, np.linspace(0, 0.2, 5), atol=1e-7)
    assert backbone.head is None
    backbone.eval()
    x = torch.randn(1, 12, 256)
    torch.testing.assert_close(backbone(x), backbone(x))


def test_load_esi_checkpoint_round_trip(tmp_path, tiny_net: ApneaECGNet) -> None:
    torch.manual_seed(5)
    source = ApneaECGNet("tiny")
    tensors = {ESI_PREFIX + k: v.contiguous() for k, v in source.backbone.state_dict().items()}
    tensors["img_token_head.weight"] = torch.randn(4, 4)  # rest of ESI: ignored
    path = tmp_path / "esi.safetensors"
    save_file(tensors, str(path))

    x = torch.randn(2, 12, 640)
    tiny_net.eval()
    source.eval()
    assert not torch.allclose(tiny_net.backbone(x), source.backbone(x))
    report = load_esi_checkpoint(tiny_net, path)
    assert report == {"loaded": len(source.backbone.state_dict()), "missing": [], "unexpected": []}
    torch.testing.assert_close(tiny_net.backbone(x), source.backbone(x), rtol=0, atol=0)


def test_load_esi_checkpoint_partial_and_errors(tmp_path, tiny_net: ApneaECGNet) -> None:
    state = ConvNeXtV21d(12, SIZES["tiny"].depths, SIZES["tiny"].dims).state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("stages.3.")}
    partial["head.weight"] = torch.zeros(7, 128)  # ESI head of another class count: skipped
    partial["extra.weight"] = torch.zeros(2)
    path = tmp_path / "stripped.safetensors"
    save_file(partial, str(path))  # no img_encoder. prefix: read as a stripped encoder
    report = load_esi_checkpoint(tiny_net.backbone, path)
    assert report["loaded"] == len(partial) - 2
    own = tiny_net.backbone.state_dict()
    assert set(report["missing"]) == {k for k in own if k.startswith(("stages.3.", "head."))}
    assert report["unexpected"] == ["extra.weight", "head.weight"]

    with pytest.raises(FileNotFoundError, match="not found"):
        load_esi_checkpoint(tiny_net, tmp_path / "absent.safetensors")
    unrelated = tmp_path / "unrelated.safetensors"
    save_file({"text.weight": torch.zeros(3)}, str(unrelated))
    with pytest.raises(ValueError, match="none of its 1 tensors"):
        load_esi_checkpoint(tiny_net, unrelated)
    too_small = tmp_path / "small.safetensors"
    save_file(
        {ESI_PREFIX + k: v for k, v in ApneaECGNet("small").backbone.state_dict().items()},
        str(too_small),
    )
    with pytest.raises(ValueError, match="shape mismatch"):
        load_esi_checkpoint(tiny_net, too_small)
