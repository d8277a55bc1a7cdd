"""Hypnogram figures: the reference scoring above one or more predicted scorings of a night."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["DISPLAY_ORDER", "plot_hypnograms"]

#: Stages from top to bottom, the clinical hypnogram layout (REM drawn just below wake).
DISPLAY_ORDER: tuple[str, ...] = ("W", "REM", "N1", "N2", "N3")


def _levels(labels: np.ndarray, class_names: Sequence[str], ignore: int) -> np.ndarray:
    """Integer labels -> display heights (0 at the bottom), NaN where ignored."""
    height = {name: len(DISPLAY_ORDER) - 1 - i for i, name in enumerate(DISPLAY_ORDER)}
    table = np.array([height[name] for name in class_names], dtype=float)
    out = np.full(labels.shape, np.nan)
    ok = (labels >= 0) & (labels < len(class_names)) & (labels != ignore)
    out[ok] = table[labels[ok]]
    return out


def plot_hypnograms(
    reference: np.ndarray,
    predicted: Mapping[str, np.ndarray],
    class_names: Sequence[str],
    ignore: int,
    epoch_s: float = 30.0,
    start_epoch: int = 0,
    title: str = "",
) -> Figure:
    """One panel per scoring of a night, sharing the time axis (hours from recording start).

    Args:
        reference: ``[n_epochs]`` integer labels of the human scorer.
        predicted: scorer name -> ``[n_epochs]`` predicted labels (same epochs).
        class_names: name of each integer label (``("W", "REM", "N1", "N2", "N3")``); every
            name must be in :data:`DISPLAY_ORDER`.
        ignore: label of unscored epochs, drawn as gaps (and left out of the agreement shown).
        epoch_s: epoch length in seconds.
        start_epoch: index of the first epoch in the original recording (for the time axis).
        title: figure title (e.g. the record id).

    Returns:
        A matplotlib :class:`~matplotlib.figure.Figure` (no pyplot state involved); each
        predicted panel's title gives its epoch-wise agreement with the reference.
    """
    reference = np.asarray(reference, dtype=np.int64)
    panels = {"reference": reference} | {k: np.asarray(v, np.int64) for k, v in predicted.items()}
    for name, labels in panels.items():
        if labels.shape != reference.shape:
            raise ValueError(f"{name}: {labels.shape} labels, reference has {reference.shape}")
    hours = (start_epoch + np.arange(reference.size + 1)) * epoch_s / 3600.0
    fig = Figure(figsize=(11, 1.6 * len(panels) + 0.6), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    scored = reference != ignore
    for ax, (name, labels) in zip(axes, panels.items()):
        level = _levels(labels, class_names, ignore)
        # stairs: one flat step per epoch, gaps where the epoch is unscored
        ax.stairs(level, hours, baseline=None, color="black" if name == "reference" else "C0", lw=1)
        rem = level == len(DISPLAY_ORDER) - 2
        ax.stairs(np.where(rem, level, np.nan), hours, baseline=None, color="C3", lw=2.5)
        ax.set_yticks(range(len(DISPLAY_ORDER)), DISPLAY_ORDER[::-1])
        ax.set_ylim(-0.5, len(DISPLAY_ORDER) - 0.5)
        label = name
        if name != "reference" and scored.any():
            agree = float((labels[scored] == reference[scored]).mean())
            label = f"{name} (agreement {100 * agree:.1f} %)"
        ax.set_title(label, loc="left", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("time from recording start (h)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
