"""Time branch ("TFE") of method 003: the HTS-AT Swin Transformer (SPECS §4.3).

HTS-AT (Chen et al., ICASSP 2022, code ``RetroCirce/HTS-Audio-Transformer`` ``model/htsat.py``)
reads a 1024-frame x 64-bin log-mel as a 256 x 256 image ("wav2img": the time axis is cut into
four chunks of 256 frames that are stacked along frequency), runs a 4-stage Swin Transformer with
shifted windows on it, and regroups the final 8 x 8 tokens back into a (frequency, time) map
("token-semantic" layout, ``[B, C, 2, 32]``). LSRM then aligns the channel count to the frequency
branch with a 3 x 3 convolution ("feature align", ``time_to_frequency`` upstream).

The Swin trunk is timm's ``SwinTransformer`` used as a feature extractor (``forward_features``:
patch embedding with LayerNorm, the four stages, final LayerNorm; no absolute position
embedding, no classifier). It reproduces HTS-AT's trunk: same block (pre-norm window attention
with a relative position bias, GELU MLP), same attention mask for shifted windows, same
PatchMerging channel order, same per-block linear stochastic-depth rule, and the same rule that
a stage whose grid is not larger than the window uses one unshifted window (the last stage,
8 x 8). Differences that do not change the function: timm places each PatchMerging at the start
of the next stage (HTS-AT at the end of the previous one) and keeps ``relative_position_index``
and ``attn_mask`` as non-persistent buffers; ``checkpoint.load_htsat_checkpoint`` maps the names.
With the same weights, the trunk's tokens were checked equal, bit for bit, to those of
HTS-AT's own ``PatchEmbed`` + ``BasicLayer`` stack (upstream code run once during development).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from timm.models.swin_transformer import SwinTransformer
from torch import nn

from sleepbench.errors import ConfigError

__all__ = [
    "FREQ_RATIO",
    "MEL_BINS",
    "SPEC_SIZE",
    "HTSATBranch",
    "token_semantic_regroup",
    "wav2img",
]

#: HTS-AT's square input image side (``htsat_spec_size``).
SPEC_SIZE = 256
#: Mel bins HTS-AT's geometry is built for (``mel_bins``).
MEL_BINS = 64
#: Time chunks stacked along frequency by wav2img: ``SPEC_SIZE // MEL_BINS``.
FREQ_RATIO = SPEC_SIZE // MEL_BINS
#: Patch side of the patch embedding (``htsat_patch_size``, stride equal).
PATCH_SIZE = 4


def wav2img(x: torch.Tensor, freq_ratio: int = FREQ_RATIO) -> torch.Tensor:
    """HTS-AT's ``reshape_wav2img`` without its interpolation: ``[B, C, T, F]`` -> ``[B, C, R*F, T/R]``.

    The time axis is split into ``R = freq_ratio`` consecutive chunks of ``T/R`` frames; chunk
    ``k`` fills image rows ``k*F .. (k+1)*F - 1`` (mel bin ``f`` of chunk ``k`` at row ``k*F + f``)
    and its frames run along the columns. ``[B, 1, 1024, 64]`` -> ``[B, 1, 256, 256]``.
    """
    b, c, t, f = x.shape
    if t % freq_ratio:
        raise ValueError(f"wav2img: {t} frames are not a multiple of {freq_ratio} chunks")
    x = x.transpose(2, 3).reshape(b, c, f, freq_ratio, t // freq_ratio)  # [B, C, F, R, T/R]
    return x.transpose(2, 3).reshape(b, c, freq_ratio * f, t // freq_ratio)


def token_semantic_regroup(x: torch.Tensor, freq_ratio: int = FREQ_RATIO) -> torch.Tensor:
    """Undo wav2img on a token map: ``[B, C, H, W]`` -> ``[B, C, H/R, R*W]`` (HTS-AT token semantics).

    Rows ``k*H/R .. (k+1)*H/R - 1`` of the token map come from time chunk ``k``; they are put
    side by side along time so that the output is (frequency, time) with time in order.
    ``[B, 768, 8, 8]`` -> ``[B, 768, 2, 32]``.
    """
    b, c, h, w = x.shape
    if h % freq_ratio:
        raise ValueError(f"token map height {h} is not a multiple of {freq_ratio} chunks")
    bins = h // freq_ratio
    x = x.reshape(b, c, freq_ratio, bins, w).transpose(2, 3)  # [B, C, bins, R, W]
    return x.reshape(b, c, bins, freq_ratio * w)


class HTSATBranch(nn.Module):
    """HTS-AT Swin trunk + token-semantic regrouping + LSRM's feature-align convolution.

    Args:
        out_channels: width of the fused features (the frequency branch's output width, 512 in
            the released configuration); ``None`` keeps the Swin width and skips the align conv.
        embed_dim: patch-embedding width; stage ``i`` has ``embed_dim * 2**i`` channels (96).
        depths: Swin blocks per stage (4 stages; ``[2, 2, 6, 2]``).
        num_heads: attention heads per stage (``[4, 8, 16, 32]``).
        window_size: attention window side in tokens (8).
        mlp_ratio: MLP hidden width over the block width (4).
        drop_path_rate: stochastic depth of the last block, linear from 0 over all blocks (0.1).
        attn_drop_rate, proj_drop_rate: dropout of attention weights / block outputs (0, as HTS-AT).

    ``forward`` takes a batch-normalised log-mel ``[B, 1, 1024, 64]`` (the caller interpolates
    to that size) and returns ``[B, out_channels, 2, 32]`` (frequency 2 x time 32).
    """

    def __init__(
        self,
        out_channels: int | None = 512,
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 8,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            # The token-semantic layout needs an 8 x 8 final grid: 64 x 64 patches halved 3 times.
            raise ConfigError(
                f"HTS-AT needs 4 Swin stages, got depths={list(depths)}, heads={list(num_heads)}"
            )
        for i, heads in enumerate(num_heads):
            if (embed_dim * 2**i) % heads:
                raise ConfigError(
                    f"stage {i} width {embed_dim * 2**i} is not divisible by {heads} heads"
                )
        self.swin = SwinTransformer(
            img_size=SPEC_SIZE,
            patch_size=PATCH_SIZE,
            in_chans=1,
            num_classes=0,
            global_pool="",
            embed_dim=embed_dim,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            qkv_bias=True,
            attn_drop_rate=attn_drop_rate,
            proj_drop_rate=proj_drop_rate,
            drop_path_rate=drop_path_rate,
        )
        self.swin_channels = self.swin.num_features
        self.out_channels = out_channels or self.swin_channels
        self.align: nn.Module = (
            nn.Conv2d(self.swin_channels, out_channels, kernel_size=3, padding=1)
            if out_channels
            else nn.Identity()
        )

    def forward_tokens(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 1024, 64]`` -> normalised final tokens ``[B, 64, C_swin]`` (HTS-AT's ``[B, N, C]``)."""
        tokens = self.swin.forward_features(wav2img(mel))  # NHWC [B, 8, 8, C]
        return tokens.flatten(1, 2)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 1024, 64]`` -> ``[B, out_channels, 2, 32]``."""
        tokens = self.swin.forward_features(wav2img(mel))  # NHWC [B, 8, 8, C]
        semantic = token_semantic_regroup(tokens.permute(0, 3, 1, 2))
        return self.align(semantic)
