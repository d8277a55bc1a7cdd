"""Initialise LSRM's time branch from an AudioSet HTS-AT checkpoint (SPECS §4.4, optional).

HTS-AT's released checkpoints (``HTSAT_AudioSet_Saved_*.ckpt``) are PyTorch Lightning files
whose ``state_dict`` holds the ``SEDWrapper``'s ``sed_model`` (``HTSAT_Swin_Transformer``):

- ``sed_model.patch_embed.{proj,norm}.*``;
- ``sed_model.layers.{i}.blocks.{j}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*`` and
  ``...attn.relative_position_bias_table``, plus the buffers ``...attn.relative_position_index``
  and (shifted blocks) ``...attn_mask``;
- ``sed_model.layers.{i}.downsample.{norm,reduction}.*`` (PatchMerging at the *end* of stage i);
- ``sed_model.norm.*`` (final LayerNorm), ``sed_model.bn0.*`` (BatchNorm over the 64 mel bins);
- ``sed_model.tscam_conv.*``, ``sed_model.head.*`` (AudioSet's 527-class token-semantic head)
  and the frozen torchlibrosa front end ``sed_model.spectrogram_extractor.stft.conv_{real,imag}``,
  ``sed_model.logmel_extractor.melW``.

``load_htsat_checkpoint`` maps the Swin trunk into ``net.time_branch.swin`` (timm naming: the
PatchMerging of HTS-AT's stage ``i`` is the ``downsample`` of timm's stage ``i + 1``) and, by
default, ``bn0`` into ``net.bn0`` (HTS-AT's own fine-tuning keeps it); the head, the front end
and the buffers (recomputed by timm) are skipped. LSRM's feature-align convolution has no
counterpart and stays as initialised.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from sleepbench.methods.lsrm.network import LSRMNet

__all__ = ["HTSAT_PREFIX", "htsat_key_to_lsrm", "load_htsat_checkpoint"]

#: Prefix of the model keys in HTS-AT's Lightning checkpoints (``SEDWrapper.sed_model``).
HTSAT_PREFIX = "sed_model."
_BLOCK = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)")
_MERGE = re.compile(r"layers\.(\d+)\.downsample\.(.+)")
#: Buffers HTS-AT saves and timm rebuilds from the geometry (not loaded).
_DERIVED_BUFFERS = ("attn_mask", "attn.relative_position_index")


def htsat_key_to_lsrm(key: str, load_bn0: bool = True) -> str | None:
    """Name in ``LSRMNet.state_dict()`` of an HTS-AT checkpoint key, or ``None`` if not loaded.

    ``key`` may carry the ``sed_model.`` prefix or not. Examples:
    ``sed_model.layers.0.blocks.1.attn.qkv.weight`` -> ``time_branch.swin.layers.0.blocks.1.attn.qkv.weight``;
    ``sed_model.layers.2.downsample.reduction.weight`` -> ``time_branch.swin.layers.3.downsample.reduction.weight``;
    ``sed_model.tscam_conv.weight`` -> ``None``.
    """
    key = key.removeprefix(HTSAT_PREFIX)
    if key.startswith("bn0."):
        return key if load_bn0 else None
    if key.startswith(("patch_embed.", "norm.")):
        return "time_branch.swin." + key
    if block := _BLOCK.fullmatch(key):
        stage, index, rest = block.groups()
        if rest in _DERIVED_BUFFERS:
            return None
        return f"time_branch.swin.layers.{stage}.blocks.{index}.{rest}"
    if merge := _MERGE.fullmatch(key):
        stage, rest = merge.groups()
        return f"time_branch.swin.layers.{int(stage) + 1}.downsample.{rest}"
    return None  # head, tscam_conv, front end, absolute_pos_embed (unused by HTS-AT)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    expected = "an HTS-AT Lightning checkpoint (a 'state_dict' of 'sed_model.*' tensors) or such a state dict"
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ValueError(
            f"{path}: cannot be read as a PyTorch checkpoint with weights_only=True "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); expected {expected}. "
            "If the file is trusted but holds other pickled objects, save only its state_dict: "
            "torch.save({'state_dict': torch.load(p, weights_only=False)['state_dict']}, out)"
        ) from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(
            f"{path}: holds {type(obj).__name__}, not a state dict; expected {expected}"
        )
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path}: its state dict holds no tensors; expected {expected}")
    return tensors


def load_htsat_checkpoint(net: LSRMNet, path: str | Path, load_bn0: bool = True) -> dict[str, Any]:
    """Load AudioSet HTS-AT weights into ``net.time_branch`` (and ``net.bn0`` unless ``load_bn0=False``).

    Args:
        net: an ``LSRMNet`` with a time branch (``branches`` ``"both"`` or ``"time"``), built with
            the Swin geometry of the checkpoint (``"paper"``/``"paper67m"``: embed 96, depths
            [2, 2, 6, 2], heads [4, 8, 16, 32], window 8).
        path: the ``.ckpt`` (read with ``torch.load(weights_only=True)``), or a file holding its
            ``state_dict`` (with or without the ``sed_model.`` prefix).
        load_bn0: also load HTS-AT's mel-bin BatchNorm (its statistics are those of AudioSet's
            32-kHz, 50-14000 Hz mel bins; pass False for a different front end).

    Returns ``{"loaded": int, "skipped": [file keys not used], "missing": [network keys of the
    time branch (and bn0) not in the file], "source": str(path)}``; ``missing`` normally lists
    only ``time_branch.align.*`` (LSRM's own layer).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it
    is not such a checkpoint, holds no Swin weights, or a tensor's shape differs (another embed
    width, depth or window size: relative position bias tables are ``(2*window - 1)**2 x heads``).
    """
    path = Path(path)
    if net.time_branch is None:
        raise ValueError(f"{path}: the network has no time branch (branches={net.branches!r})")
    if not path.is_file():
        raise FileNotFoundError(f"HTS-AT checkpoint not found: {path}")
    state = _read_state_dict(path)
    own = net.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for key, value in state.items():
        target = htsat_key_to_lsrm(key, load_bn0)
        if target is None or target not in own:
            skipped.append(key)
        else:
            mapped[target] = value
    if not any(k.startswith("time_branch.") for k in mapped):
        raise ValueError(
            f"{path}: no HTS-AT Swin weights found (expected keys such as "
            f"'{HTSAT_PREFIX}layers.0.blocks.0.attn.qkv.weight'); first keys: {list(state)[:5]}"
        )
    wrong = [
        f"{k}: file {tuple(v.shape)} vs network {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if v.shape != own[k].shape
    ]
    if wrong:
        raise ValueError(
            f"{path}: {len(wrong)} tensors do not fit the network (Swin width, depth, "
            f"window size or mel bins differ), e.g. {wrong[:3]}"
        )
    net.load_state_dict(mapped, strict=False)
    scope = ("time_branch.", "bn0.") if load_bn0 else ("time_branch.",)
    missing = sorted(k for k in own if k.startswith(scope) and k not in mapped)
    return {
        "loaded": len(mapped),
        "skipped": sorted(skipped),
        "missing": missing,
        "source": str(path),
    }
