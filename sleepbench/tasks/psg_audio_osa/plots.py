"""Per-night figure of the psg_audio_osa task: audio envelope, reference and predicted events,
the hypnogram (RML user staging) and the scored region, on one time axis.

Stretches outside the scored region (ROI and recorded audio, the cache's ``mask``) are shaded in
every panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

__all__ = ["plot_night"]

#: event colours by class (1 hypopnea, 2 apnea)
_COLOURS = {1: "C1", 2: "C3"}
_NAMES = {1: "hypopnea", 2: "apnea"}


def _shade_excluded(ax, mask: np.ndarray, hours: np.ndarray) -> None:
    """Grey spans where ``mask`` is 0 (outside the ROI or the recorded audio)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[1], mask.astype(np.int8), [1]])))
    for lo, hi in zip(edges[::2], edges[1::2]):
        ax.axvspan(hours[lo], hours[hi], color="0.85", lw=0, zorder=0)


def plot_night(
    energy_db: np.ndarray,
    mask: np.ndarray,
    events: Mapping[str, Sequence[Sequence[float]]],
    frame_s: float = 0.08,
    title: str = "",
    smooth_s: float = 2.0,
    stages: np.ndarray | None = None,
    stage_epoch_s: float = 30.0,
) -> Figure:
    """One night on one time axis (hours from the recording start).

    Args:
        energy_db: ``[n]`` energy envelope per frame (dB, :func:`~.baseline.frame_energy_db`);
            drawn smoothed over ``smooth_s``.
        mask: ``[n]`` scored frames (1) vs excluded (0).
        events: panel name -> events ``(onset_s, offset_s, label)`` in night time, drawn in
            order (``{"reference": ..., "CRNN": ...}``).
        frame_s: seconds per frame.
        title: figure title (the record id, AHIs).
        smooth_s: moving-average length of the drawn envelope (s).
        stages: the hypnogram, one code per ``stage_epoch_s`` epoch (0 W, 1 N1, 2 N2, 3 N3,
            4 REM, -1 not scored), drawn as a step plot; ``None`` leaves the panel out.
        stage_epoch_s: staging epoch length (s).

    Returns:
        A matplotlib :class:`~matplotlib.figure.Figure` (no pyplot state).
    """
    energy = np.asarray(energy_db, dtype=float)
    mask = np.asarray(mask).astype(bool)
    if energy.shape != mask.shape:
        raise ValueError(f"energy {energy.shape} and mask {mask.shape} differ")
    hours = np.arange(energy.size + 1) * frame_s / 3600.0
    k = max(1, round(smooth_s / frame_s))
    shown = np.convolve(
        np.nan_to_num(energy, nan=np.nanmin(energy, initial=0.0)), np.ones(k) / k, "same"
    )
    n_hyp = 0 if stages is None else 1
    fig = Figure(figsize=(12, 1.2 * (len(events) + 2 + n_hyp) + 0.6), layout="constrained")
    heights = [2.0] + [0.6] * len(events) + [1.0] * n_hyp + [0.35]
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    for ax in axes:
        _shade_excluded(ax, mask, hours)
    axes[0].plot(hours[:-1], shown, color="0.2", lw=0.4)
    axes[0].set_ylabel("energy (dB)")
    if stages is not None:
        _hypnogram(axes[1 + len(events)], np.asarray(stages), stage_epoch_s)
    for ax, (name, evs) in zip(axes[1 : 1 + len(events)], events.items()):
        for onset, offset, label in evs:
            ax.axvspan(onset / 3600.0, offset / 3600.0, color=_COLOURS.get(int(label), "C0"), lw=0)
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    axes[-1].stairs(mask.astype(float), hours, fill=True, color="C2", alpha=0.6)
    axes[-1].set_yticks([])
    axes[-1].set_ylabel("scored", rotation=0, ha="right", va="center", fontsize=8)
    axes[-1].set_xlabel("time from recording start (h)")
    axes[-1].set_xlim(hours[0], hours[-1])
    fig.legend(
        handles=[Patch(color=_COLOURS[c], label=_NAMES[c]) for c in (1, 2)]
        + [Patch(color="0.85", label="not scored")],
        loc="outside upper right",
        ncols=3,
        fontsize=8,
    )
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


#: plotting height of each stage code (wake on top, N3 at the bottom, as clinicians draw it)
_STAGE_LEVEL = {0: 4, 4: 3, 1: 2, 2: 1, 3: 0}


def _hypnogram(ax, stages: np.ndarray, epoch_s: float) -> None:
    """Step plot of the staging; unscored epochs (-1) are gaps."""
    level = np.array([_STAGE_LEVEL.get(int(c), np.nan) for c in stages], dtype=float)
    edges = np.arange(level.size + 1) * epoch_s / 3600.0
    ax.stairs(level, edges, color="C0", lw=0.8, baseline=None)
    ax.set_yticks([4, 3, 2, 1, 0], ["W", "REM", "N1", "N2", "N3"], fontsize=7)
    ax.set_ylim(-0.5, 4.5)
    ax.set_ylabel("stage", rotation=0, ha="right", va="center", fontsize=8)
