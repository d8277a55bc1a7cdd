"""The per-night figure: envelope, event panels, hypnogram and scored band on one time axis."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import StepPatch

from sleepbench.tasks.psg_audio_osa.plots import plot_night


def _night(n: int = 4500) -> tuple[np.ndarray, np.ndarray, dict]:
    energy = np.random.default_rng(0).normal(-40.0, 3.0, n)
    mask = np.ones(n, dtype=np.uint8)
    mask[:375] = 0  # lights on for the first 30 s
    events = {"reference": [(60.0, 80.0, 2)], "CRNN": [(61.0, 79.0, 2), (200.0, 215.0, 1)]}
    return energy, mask, events


def test_the_hypnogram_panel_shows_the_staging() -> None:
    energy, mask, events = _night()
    stages = np.array([0, 1, 2, 2, 3, 3, 4, -1, 4, 0], dtype=np.int8)  # 10 epochs = 6 min
    fig = plot_night(energy, mask, events, title="n1", stages=stages)
    axes = fig.get_axes()
    assert len(axes) == 1 + len(events) + 1 + 1  # envelope, events, hypnogram, scored band
    hyp = axes[1 + len(events)]
    assert [t.get_text() for t in hyp.get_yticklabels()] == ["W", "REM", "N1", "N2", "N3"]
    (steps,) = [p for p in hyp.patches if isinstance(p, StepPatch)]
    heights = steps.get_data().values
    assert heights[0] == 4 and heights[4] == 0 and np.isnan(heights[7])  # W top, N3 bottom, gap


def test_without_staging_the_panel_is_left_out() -> None:
    energy, mask, events = _night()
    assert len(plot_night(energy, mask, events).get_axes()) == 1 + len(events) + 1
