"""MSC-Mamba-LSTM and its five ablation variants (SPECS §3.3), at CPU-test sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sleepbench.nn.attention import ChannelAttention1d
from sleepbench.nn.mamba import MambaBlock
from sleepbench.tasks.shhs_spo2.network import VARIANTS, MSCMambaLSTM, MultiScaleConv1d

SMALL = {"n_times": 3600, "channels": (8, 16, 32), "lstm_hidden": 16, "d_state": 4}


def _count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.fixture(scope="module")
def models() -> dict[str, MSCMambaLSTM]:
    torch.manual_seed(0)
    return {v: MSCMambaLSTM(variant=v, **SMALL) for v in VARIANTS}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_forward_and_backward(models: dict[str, MSCMambaLSTM], variant: str) -> None:
    model = models[variant].train()
    x = torch.rand(3, 1, 3600)
    logits = model(x)
    assert logits.shape == (3, 4) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"


def test_variants_differ_structurally(models: dict[str, MSCMambaLSTM]) -> None:
    expected = {
        # variant: (multi-scale modules, Mamba blocks, channel attention, LSTM)
        "full": (3, 2, 1, 1),
        "model1_cnn_lstm": (0, 0, 0, 1),
        "model2_single_scale": (0, 2, 1, 1),
        "model3_no_mamba": (3, 0, 1, 1),
        "model4_no_mca": (3, 2, 0, 1),
        "model5_no_lstm": (3, 2, 1, 0),
    }
    for variant, counts in expected.items():
        model = models[variant]
        got = tuple(
            _count(model, kind)
            for kind in (MultiScaleConv1d, MambaBlock, ChannelAttention1d, nn.LSTM)
        )
        assert got == counts, variant
    assert models["model5_no_lstm"].lstm_branch is None
    assert not any("lstm" in name for name, _ in models["model5_no_lstm"].named_parameters())
    assert models["model5_no_lstm"].head[0].in_features == 32
    assert models["full"].head[0].in_features == 32 + 16
    # the Mamba replacements are conv layers working at the deep branch's width
    convs = [m for m in models["model3_no_mamba"].temporal.modules() if isinstance(m, nn.Conv1d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(32, 32), (32, 32)]


def test_multiscale_stage_has_one_branch_per_kernel() -> None:
    stage = MultiScaleConv1d(1, 8, (3, 7, 15))
    kernel_sizes = [branch[0].kernel_size[0] for branch in stage.branches]
    assert kernel_sizes == [3, 7, 15]
    assert stage(torch.randn(2, 1, 100)).shape == (2, 8, 100)


def test_default_sizes_follow_the_spec() -> None:
    model = MSCMambaLSTM()
    mambas = [m for m in model.modules() if isinstance(m, MambaBlock)]
    assert len(mambas) == 2
    assert all((m.d_model, m.d_state, m.d_conv, m.d_inner) == (128, 16, 4, 256) for m in mambas)
    lstm = model.lstm_branch.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers) == (32, 64, 2)
    assert model.head[0].in_features == 192 and model.head[0].out_features == 128
    assert model.head[2].p == 0.5
    with torch.no_grad():
        steps = model.stages(torch.zeros(1, 1, 28_800)).shape
        lstm_steps = model.lstm_branch.features(torch.zeros(1, 1, 28_800)).shape
    assert steps == (1, 128, 450) and lstm_steps == (1, 32, 450)


def test_eval_mode_is_deterministic_and_batch_independent(models: dict) -> None:
    model = models["full"].eval()
    x = torch.rand(4, 1, 3600)
    with torch.no_grad():
        together = model(x)
        alone = model(x[1:2])
    torch.testing.assert_close(together[1:2], alone, rtol=1e-4, atol=1e-5)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="variant"):
        MSCMambaLSTM(variant="model6")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pooling"):
        MSCMambaLSTM(n_times=32)
    with pytest.raises(ValueError, match=r"\[B, 1, L\]"):
        MSCMambaLSTM(**SMALL)(torch.rand(2, 3600))
