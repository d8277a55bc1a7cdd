"""Per-subject constants of the synthetic Sleep-EDF nights (shared by all nights of a subject)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SubjectTraits"]


@dataclass(frozen=True)
class SubjectTraits:
    """Per-subject constants shared by all nights of one subject.

    Args:
        alpha_hz: peak frequency of the eyes-closed alpha rhythm (Hz).
        spindle_hz: mean sleep-spindle frequency (Hz).
        amplitude: overall EEG amplitude scale (skull thickness, age).
        slow_wave: scale of slow-wave amplitude and of the amount of stage 3/4 sleep (age).
        temp_c: rectal temperature at lights-off (°C).
        resp_hz: resting breathing rate (Hz).
        alpha_power: scale of the alpha rhythm's amplitude (some people have little alpha).
        spindle_density: scale of the spindle rate (it falls with age and differs between
            people).
        eye_amplitude: scale of the eye-movement amplitudes on the EOG (electrode placement).
    """

    alpha_hz: float = 10.0
    spindle_hz: float = 13.0
    amplitude: float = 1.0
    slow_wave: float = 1.0
    temp_c: float = 37.0
    resp_hz: float = 0.25
    alpha_power: float = 1.0
    spindle_density: float = 1.0
    eye_amplitude: float = 1.0

    @classmethod
    def sample(cls, rng: np.random.Generator) -> SubjectTraits:
        """Draw plausible adult traits."""
        return cls(
            alpha_hz=float(rng.uniform(8.8, 11.2)),
            spindle_hz=float(rng.uniform(12.0, 14.5)),
            amplitude=float(rng.uniform(0.8, 1.25)),
            slow_wave=float(rng.uniform(0.8, 1.2)),
            temp_c=float(rng.uniform(36.8, 37.3)),
            resp_hz=float(rng.uniform(0.22, 0.29)),
            alpha_power=float(np.clip(rng.lognormal(0.0, 0.35), 0.35, 2.0)),
            spindle_density=float(rng.uniform(0.6, 1.4)),
            eye_amplitude=float(rng.uniform(0.7, 1.3)),
        )
