"""Tests of ``load_htsat_checkpoint``: HTS-AT (``RetroCirce/HTS-Audio-Transformer``) names -> LSRM."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
import torch

from sleepbench.methods.lsrm.checkpoint import (
    HTSAT_PREFIX,
    htsat_key_to_lsrm,
    load_htsat_checkpoint,
)
from sleepbench.methods.lsrm.network import LSRMNet

#: Keys of one shifted Swin block and the surrounding modules as ``HTSAT_Swin_Transformer`` names
#: them (model/htsat.py, SEDWrapper.sed_model), with their shapes in the AudioSet model
#: (embed 96, heads [4, 8, 16, 32], window 8, 527 classes, 64 mel bins, n_fft 1024).
UPSTREAM_KEYS: dict[str, tuple[int, ...] | None] = {
    "sed_model.bn0.weight": (64,),
    "sed_model.bn0.running_var": (64,),
    "sed_model.patch_embed.proj.weight": (96, 1, 4, 4),
    "sed_model.patch_embed.norm.bias": (96,),
    "sed_model.layers.0.blocks.1.norm1.weight": (96,),
    "sed_model.layers.0.blocks.1.attn.relative_position_bias_table": (225, 4),
    "sed_model.layers.0.blocks.1.attn.qkv.weight": (288, 96),
    "sed_model.layers.0.blocks.1.attn.qkv.bias": (288,),
    "sed_model.layers.0.blocks.1.attn.proj.weight": (96, 96),
    "sed_model.layers.0.blocks.1.norm2.bias": (96,),
    "sed_model.layers.0.blocks.1.mlp.fc1.weight": (384, 96),
    "sed_model.layers.0.blocks.1.mlp.fc2.bias": (96,),
    "sed_model.layers.0.downsample.reduction.weight": (192, 384),
    "sed_model.layers.0.downsample.norm.weight": (384,),
    "sed_model.layers.2.blocks.5.attn.relative_position_bias_table": (225, 16),
    "sed_model.layers.2.downsample.reduction.weight": (768, 1536),
    "sed_model.layers.3.blocks.1.mlp.fc1.weight": (3072, 768),
    "sed_model.norm.weight": (768,),
}
#: Upstream keys that must not be loaded (buffers rebuilt by timm, AudioSet head, front end).
UPSTREAM_DROPPED = [
    "sed_model.layers.0.blocks.1.attn_mask",
    "sed_model.layers.0.blocks.1.attn.relative_position_index",
    "sed_model.tscam_conv.weight",
    "sed_model.tscam_conv.bias",
    "sed_model.head.weight",
    "sed_model.head.bias",
    "sed_model.spectrogram_extractor.stft.conv_real.weight",
    "sed_model.spectrogram_extractor.stft.conv_imag.weight",
    "sed_model.logmel_extractor.melW",
]


def _upstream_swin_keys(depths=(2, 2, 6, 2)) -> list[str]:
    """Every parameter key of HTS-AT's Swin trunk, from the upstream module structure."""
    block = [
        "norm1.weight",
        "norm1.bias",
        "attn.relative_position_bias_table",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
        "norm2.weight",
        "norm2.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
    ]
    keys = [f"patch_embed.{m}.{p}" for m in ("proj", "norm") for p in ("weight", "bias")]
    for i, depth in enumerate(depths):
        keys += [f"layers.{i}.blocks.{j}.{k}" for j in range(depth) for k in block]
        if i < len(depths) - 1:  # BasicLayer(downsample=PatchMerging) for all but the last
            keys += [
                f"layers.{i}.downsample.reduction.weight",
                f"layers.{i}.downsample.norm.weight",
                f"layers.{i}.downsample.norm.bias",
            ]
    return [HTSAT_PREFIX + k for k in keys + ["norm.weight", "norm.bias"]]


def _to_upstream(key: str) -> str:
    """Inverse of the mapping, for building a checkpoint from our own network."""
    key = key.removeprefix("time_branch.swin.")
    if merge := re.fullmatch(r"layers\.(\d+)\.downsample\.(.+)", key):
        key = f"layers.{int(merge.group(1)) - 1}.downsample.{merge.group(2)}"
    return HTSAT_PREFIX + key


@pytest.fixture(scope="module")
def paper_state() -> dict[str, torch.Tensor]:
    """State dict of the paper-geometry time branch, on the meta device (names and shapes only)."""
    with torch.device("meta"):
        return LSRMNet(4, "paper", "time").state_dict()


def _small_checkpoint(folder: Path, seed: int = 0, **extra) -> tuple[Path, LSRMNet]:
    torch.manual_seed(seed)
    source = LSRMNet(4, "small", "time", **extra)
    state = {
        _to_upstream(k): v.clone()
        for k, v in source.state_dict().items()
        if k.startswith(("time_branch.swin.", "bn0."))
    }
    state.update({k: torch.zeros(3) for k in UPSTREAM_DROPPED})
    ckpt = {
        "epoch": 12,
        "global_step": 345,
        "pytorch-lightning_version": "1.5.9",
        "state_dict": state,
        "optimizer_states": [],
        "lr_schedulers": [],
    }
    path = folder / "HTSAT_AudioSet_Saved_1.ckpt"
    torch.save(ckpt, path)
    return path, source


def test_real_upstream_names_map_onto_the_paper_network(
    paper_state: dict[str, torch.Tensor],
) -> None:
    for key, shape in UPSTREAM_KEYS.items():
        target = htsat_key_to_lsrm(key)
        assert target in paper_state, (key, target)
        assert tuple(paper_state[target].shape) == shape, key
    assert htsat_key_to_lsrm("sed_model.layers.0.downsample.norm.weight") == (
        "time_branch.swin.layers.1.downsample.norm.weight"
    )
    for key in UPSTREAM_DROPPED:
        assert htsat_key_to_lsrm(key) is None, key
    assert htsat_key_to_lsrm("sed_model.bn0.weight", load_bn0=False) is None


def test_mapping_covers_the_whole_swin_trunk(paper_state: dict[str, torch.Tensor]) -> None:
    mapped = {htsat_key_to_lsrm(k) for k in _upstream_swin_keys()}
    ours = {
        k
        for k in paper_state
        if k.startswith("time_branch.") and not k.startswith("time_branch.align.")
    }
    assert mapped == ours


def test_load_round_trip(tmp_path: Path) -> None:
    path, source = _small_checkpoint(tmp_path)
    torch.manual_seed(1)
    net = LSRMNet(4, "small", "both")
    align_before = net.time_branch.align.weight.clone()
    report = load_htsat_checkpoint(net, path)
    assert report["source"] == str(path)
    assert report["missing"] == ["time_branch.align.bias", "time_branch.align.weight"]
    assert report["skipped"] == sorted(UPSTREAM_DROPPED)
    assert report["loaded"] == sum(
        1 for k in source.state_dict() if k.startswith(("time_branch.swin.", "bn0."))
    )
    torch.testing.assert_close(net.time_branch.align.weight, align_before)
    for key, value in source.state_dict().items():
        if key.startswith(("time_branch.swin.", "bn0.")):
            torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0, msg=key)
    mel = torch.randn(1, 1, 1024, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            net.time_branch.eval().forward_tokens(mel),
            source.time_branch.eval().forward_tokens(mel),
        )


def test_plain_state_dict_without_prefix_and_bn0_kept(tmp_path: Path) -> None:
    path, source = _small_checkpoint(tmp_path)
    plain = {
        k.removeprefix(HTSAT_PREFIX): v
        for k, v in torch.load(path, weights_only=True)["state_dict"].items()
    }
    torch.save(plain, tmp_path / "plain.pt")
    net = LSRMNet(4, "small", "time")
    bn0_before = net.bn0.weight.clone()
    report = load_htsat_checkpoint(net, tmp_path / "plain.pt", load_bn0=False)
    assert "bn0.weight" in report["skipped"] and not any(
        k.startswith("bn0") for k in report["missing"]
    )
    torch.testing.assert_close(net.bn0.weight, bn0_before)
    torch.testing.assert_close(
        net.time_branch.swin.norm.weight, source.time_branch.swin.norm.weight
    )


def test_shape_mismatch_is_refused(tmp_path: Path) -> None:
    path, _ = _small_checkpoint(tmp_path, window_size=4)
    with pytest.raises(
        ValueError, match=r"HTSAT_AudioSet_Saved_1\.ckpt: .*relative_position_bias_table"
    ):
        load_htsat_checkpoint(LSRMNet(4, "small", "time"), path)


def test_wrong_files_are_refused(tmp_path: Path) -> None:
    net = LSRMNet(4, "small", "time")
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.ckpt: cannot be read .*expected an HTS-AT"):
        load_htsat_checkpoint(net, text)
    listing = tmp_path / "list.ckpt"
    torch.save([torch.zeros(1)], listing)
    with pytest.raises(ValueError, match=r"list\.ckpt: holds list, not a state dict"):
        load_htsat_checkpoint(net, listing)
    other = tmp_path / "resnet.ckpt"
    torch.save({"state_dict": {"model.conv1.weight": torch.zeros(2)}}, other)
    with pytest.raises(ValueError, match=r"resnet\.ckpt: no HTS-AT Swin weights found"):
        load_htsat_checkpoint(net, other)
    with pytest.raises(FileNotFoundError):
        load_htsat_checkpoint(net, tmp_path / "absent.ckpt")
    with pytest.raises(ValueError, match="no time branch"):
        load_htsat_checkpoint(LSRMNet(4, "small", "freq"), other)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, crafted, pickle_module=pickle)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_htsat_checkpoint(LSRMNet(4, "small", "time"), crafted)
    assert not marker.exists()
