"""The 1-Hz channels of a synthetic Sleep-EDF night: submental EMG envelope, oro-nasal
respiration, rectal temperature and the event marker.

- EMG submental (µV rms, the cassette recorder's 1-Hz envelope): high in wake, lower in NREM,
  atonia in REM with brief phasic twitches, bursts in movement time;
- Resp oro-nasal: breathing at the subject's rate, slower and more regular in deep sleep,
  irregular in REM and wake;
- Temp rectal (°C): the nocturnal decline of core temperature;
- Event marker: the lights-off mark at the start.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from sleepbench.recording import Signal
from sleepbench.tasks.sleep_edf.synth_hypnogram import EPOCH_S
from sleepbench.tasks.sleep_edf.synth_signal import STATES, event_onsets, per_second
from sleepbench.tasks.sleep_edf.synth_traits import SubjectTraits

__all__ = ["synth_aux"]

# per-state tables, columns follow STATES: W     1     2     3     4     R     ?     M     D
_EMG_LEVEL = np.array([22, 12, 8, 7, 7, 3, 15, 60, 16], dtype=np.float32)  # µV rms
_RESP_AMP = np.array([1.0, 0.9, 0.8, 0.85, 0.85, 0.7, 1.0, 1.4, 0.95], dtype=np.float32)
_RESP_JITTER = np.array([0.04, 0.02, 0.01, 0.005, 0.005, 0.04, 0.03, 0.06, 0.03], dtype=np.float32)


def synth_aux(
    rng: np.random.Generator, stage_idx: np.ndarray, traits: SubjectTraits
) -> list[Signal]:
    """Resp oro-nasal, EMG submental, Temp rectal and Event marker (1 Hz), in Sleep-EDF order."""
    n_s = stage_idx.size * int(EPOCH_S)
    emg = per_second(stage_idx, _EMG_LEVEL) * rng.lognormal(0.0, 0.2, n_s).astype(np.float32)
    # phasic REM twitches, ~1 per minute of REM (onsets in seconds: 30 "samples" per epoch)
    twitch_on = event_onsets(rng, stage_idx, np.where(np.array(STATES) == "R", 1.0, 0.0), 30)
    emg[np.minimum(twitch_on, n_s - 1)] += rng.uniform(8.0, 15.0, twitch_on.size)
    jitter = per_second(stage_idx, _RESP_JITTER) * rng.standard_normal(n_s).astype(np.float32)
    inst_hz = traits.resp_hz + uniform_filter1d(jitter, size=7) * 3.0
    resp = 150.0 * per_second(stage_idx, _RESP_AMP) * np.sin(2 * np.pi * np.cumsum(inst_hz))
    resp += rng.normal(0.0, 8.0, n_s)
    hours = np.arange(n_s) / 3600.0
    night_h = max(n_s / 3600.0, 1e-6)
    temp = traits.temp_c - 0.5 * np.sin(np.pi * np.clip(hours / night_h, 0, 1) * 0.85) ** 1.5
    temp += uniform_filter1d(rng.normal(0.0, 0.01, n_s), size=60)
    marker = np.zeros(n_s, dtype=np.float32)
    marker[: min(5, n_s)] = 1.0  # lights-off mark at the start of the recording
    return [
        Signal("Resp oro-nasal", resp, 1.0, ""),
        Signal("EMG submental", emg, 1.0, "uV"),
        Signal("Temp rectal", temp, 1.0, "DegC"),
        Signal("Event marker", marker, 1.0, ""),
    ]
