"""Synthetic PSG-Audio nights in the real layout: EDF parts (``Mic``, ``Tracheal``, ``Snore``,
``SpO2``, each at its own rate) plus one Respironics RML per night.

Written tree (SPECS §1.8)::

    root/APNEA_EDF/<id>/<id>[001].edf, <id>[002].edf, ...    (parts of ``part_s`` seconds)
    root/APNEA_RML/<id>.rml
    root/APNEA_RML_clean/<id>.rml                             (the same scoring, as the clean set)

The audio carries the physiology the task learns from:

- breaths every 3-6 s (subject rate, per-breath jitter): an inspiration noise burst (band
  400-1800 Hz) then a quieter, lower expiration burst; breath loudness drifts with body position
  (a new level every 5-20 min) and jitters per breath; wake breathing is irregular;
- snoring in about half of the subjects: a harmonic buzz (f0 80-140 Hz) on inspirations in
  NREM sleep, loudest in the breaths before an apnea;
- apnea (obstructive, central, mixed): breath sounds absent for 10-60 s, then a loud recovery
  breath (2.5-4x) often with a movement; hypopnea: breath loudness reduced by 30-70 % for
  10-60 s; harmless pauses of 4-8 s and movements make the task not trivial;
- room noise (low-passed, level and microphone gain per subject) on ``Mic``; the ``Tracheal``
  channel hears the breaths louder and the room quieter;
- staging in the RML (lights-off wake, NREM/REM cycles, brief awakenings, wake at the end),
  ``LightsOff`` / ``LightsOn`` and one session segment; events only in sleep; the severity
  classes (AHI < 5, 5-15, 15-30, >= 30) are dealt round-robin so all four are present, each
  night's target AHI drawn across its whole class, so some nights lie near a cut-off, as in a
  real cohort (the reference class comes from the written RML and may differ from the deal).

Audio is rendered part by part from a per-night plan (breath times, events) by
:mod:`~sleepbench.tasks.psg_audio_osa.synth_audio`, so even an 8-h 48-kHz night never exists in
memory as a whole. ``drop_parts`` leaves part files out (the RML
still describes the whole session: the gap must be found from the parts' start times).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sleepbench.io.edf_write import write_edf
from sleepbench.io.rml import read_rml
from sleepbench.io.rml_write import write_rml
from sleepbench.recording import Event, Signal
from sleepbench.tasks.psg_audio_osa.labels import reference_ahi
from sleepbench.tasks.psg_audio_osa.synth_audio import Plan, Renderer, render_part, snore_channel

__all__ = ["PsgAudioSynthNight", "write_synthetic", "write_synthetic_psg_audio"]

EPOCH_S = 30.0
#: target AHI range (events per hour of sleep) per dealt severity class: each whole class, so that
#: nights lie near the 5 / 15 / 30 cut-offs (gaps around them made Se / Sp at 15 read 1.000)
_TARGET_AHI = ((0.0, 5.0), (5.0, 15.0), (15.0, 30.0), (30.0, 55.0))
_APNEA_TYPES = ("ObstructiveApnea", "CentralApnea", "MixedApnea")
_START = dt.datetime(2010, 5, 7, 22, 0, 0)


@dataclass(frozen=True)
class PsgAudioSynthNight:
    """One synthetic night on disk and its ground truth.

    Args:
        night_id: ``"00001000-100507"``; subject id is the part before the dash.
        parts: the EDF parts written (dropped ones are absent).
        rml: the ``APNEA_RML`` file.
        fs_hz: the audio rate.
        duration_s: session length.
        tst_s: total sleep time inside the ROI.
        ahi: reference AHI from the written RML (the task's own rule).
        severity: its class 0-3.
        n_apnea, n_hypopnea: generated events.
        snorer: whether the subject snores.
        dropped_parts: part numbers left out.
    """

    night_id: str
    parts: tuple[Path, ...]
    rml: Path
    fs_hz: float
    duration_s: float
    tst_s: float
    ahi: float
    severity: int
    n_apnea: int
    n_hypopnea: int
    snorer: bool
    dropped_parts: tuple[int, ...] = ()


def _staging(rng: np.random.Generator, n_epochs: int) -> list[str | None]:
    """Lights-off wake, NREM/REM cycles (90 min on full nights, shorter on short ones), wake."""
    w0 = int(np.clip(round(n_epochs * rng.uniform(0.05, 0.12)), 2, 20))
    w1 = int(np.clip(round(n_epochs * rng.uniform(0.03, 0.07)), 2, 12))
    body = n_epochs - w0 - w1
    n_cycles = max(2, round(body / 180))
    seq: list[str | None] = ["W"] * w0 + ["N1"] * 3
    for k in range(n_cycles):
        n = (body - 3) // n_cycles + (1 if k < (body - 3) % n_cycles else 0)
        deep = max(0.05, 0.3 - 0.1 * k)
        parts = [("N1", 0.05), ("N2", 0.35), ("N3", deep), ("N2", 0.2), ("REM", 0.4 - deep)]
        sizes = np.floor(np.array([f for _, f in parts]) / sum(f for _, f in parts) * n)
        sizes[1] += n - sizes.sum()
        for (label, _), size in zip(parts, sizes.astype(int)):
            seq += [label] * size
        if k < n_cycles - 1 and rng.random() < 0.6:  # brief awakening at a cycle's end
            seq[-1] = "W"
    seq += ["W"] * (n_epochs - len(seq))
    return seq[:n_epochs]


def _place_events(
    rng: np.random.Generator, stages: Sequence[str | None], n_events: int, apnea_share: float
) -> list[tuple[float, float, int, str]]:
    """Non-overlapping events (>= 15 s apart) inside sleep runs."""
    asleep = np.array([s not in ("W", None) for s in stages])
    events: list[tuple[float, float, int, str]] = []
    for _ in range(50 * n_events):
        if len(events) >= n_events:
            break
        duration = float(np.clip(rng.gamma(4.0, 6.0) + 10.0, 10.0, 60.0))
        onset = float(rng.uniform(0, len(stages) * EPOCH_S - duration - 20))
        first, last = int(onset // EPOCH_S), int((onset + duration + 10) // EPOCH_S)
        if last >= asleep.size or not asleep[first : last + 1].all():
            continue
        if any(onset < e[0] + e[1] + 15 and e[0] < onset + duration + 15 for e in events):
            continue
        if rng.random() < apnea_share:
            events.append((onset, duration, 2, str(rng.choice(_APNEA_TYPES, p=[0.6, 0.25, 0.15]))))
        else:
            events.append((onset, duration, 1, "Hypopnea"))
    return sorted(events)


def _plan(rng: np.random.Generator, duration_s: float, severity: int, snorer: bool) -> Plan:
    stages = _staging(rng, int(duration_s // EPOCH_S))
    sleep_h = sum(s not in ("W", None) for s in stages) * EPOCH_S / 3600.0
    target = rng.uniform(*_TARGET_AHI[severity])
    events = _place_events(rng, stages, max(0, round(target * sleep_h)), rng.uniform(0.3, 0.7))
    period = rng.uniform(3.0, 6.0)
    level, next_change = 1.0, 0.0
    breaths, t = [], float(rng.uniform(0, period))
    ev = iter(events + [(np.inf, 0.0, 0, "")])
    cur = next(ev)
    while t < duration_s:
        if t >= next_change:  # body position change: new breath loudness for a while
            level, next_change = rng.uniform(0.6, 1.4), t + rng.uniform(300, 1200)
        while t >= cur[0] + cur[1]:
            cur = next(ev)
        stage = stages[min(int(t // EPOCH_S), len(stages) - 1)]
        awake = stage == "W"
        step = period * rng.uniform(0.85, 1.15) * (rng.uniform(0.7, 1.5) if awake else 1.0)
        loud = level * rng.uniform(0.8, 1.2) * (rng.uniform(0.5, 1.5) if awake else 1.0)
        insp = period * rng.uniform(0.3, 0.4)
        snore = 0.0
        if snorer and stage in ("N2", "N3"):
            snore = loud * rng.uniform(0.6, 1.0)
        if cur[0] <= t < cur[0] + cur[1]:
            if cur[2] == 2:  # apnea: silence until the event ends, then a recovery breath
                t = cur[0] + cur[1] + rng.uniform(0.0, 1.0)
                breaths.append((t, insp * 1.3, loud * rng.uniform(2.5, 4.0), 1.5 * snore))
                t += period * 1.3
                continue
            loud *= 1.0 - rng.uniform(0.3, 0.7)  # hypopnea: shallower breaths
            snore *= 0.5
        elif cur[0] - 20 < t < cur[0]:
            snore *= 1.6  # crescendo snoring before an event
        elif not awake and rng.random() < 0.02:
            t += rng.uniform(4.0, 8.0)  # a harmless pause, shorter than an event
        breaths.append((t, insp, loud, snore))
        t += step
    moves = []
    for t_move in np.cumsum(rng.exponential(240.0, size=int(duration_s / 60) + 5)):
        if t_move < duration_s:
            moves.append((t_move, rng.uniform(0.5, 3.0), rng.uniform(0.5, 2.0)))
    for onset, duration, cls, _ in events:  # arousal movements after some recoveries
        if cls == 2 and rng.random() < 0.4:
            moves.append((onset + duration + rng.uniform(0.5, 3.0), rng.uniform(1.0, 3.0), 1.0))
    return Plan(
        duration_s=duration_s,
        stages=stages,
        events=events,
        breaths=np.array(breaths, dtype=np.float64).reshape(-1, 4),
        moves=np.array(sorted(moves), dtype=np.float64).reshape(-1, 3),
        room=rng.uniform(0.003, 0.012),
        mic_gain=rng.uniform(0.06, 0.12),
        tracheal_gain=rng.uniform(0.1, 0.2),
        f0_hz=rng.uniform(80.0, 140.0),
    )


def _spo2(plan: Plan, t0: int, t1: int) -> np.ndarray:
    t = np.arange(t0, t1, dtype=np.float64)
    sat = np.full(t.size, 96.0)
    for onset, duration, cls, _ in plan.events:
        nadir = onset + duration + 20.0
        depth = 6.0 if cls == 2 else 3.0
        sat -= depth * np.clip(1.0 - np.abs(t - nadir) / 20.0, 0.0, None)
    return np.round(sat)


def write_synthetic_psg_audio(
    root: str | Path,
    n_subjects: int = 12,
    minutes: float = 36.0,
    fs_hz: float = 8000.0,
    seed: int = 0,
    part_s: float = 900.0,
    drop_parts: Mapping[int, Sequence[int]] | None = None,
    fs_by_night: Mapping[int, float] | None = None,
    channels: Sequence[str] = ("Mic", "Tracheal", "Snore", "SpO2"),
    snore_fraction: float = 0.5,
) -> list[PsgAudioSynthNight]:
    """Write ``n_subjects`` synthetic nights (one each) in PSG-Audio's layout under ``root``.

    Args:
        root: dataset folder (``APNEA_EDF/``, ``APNEA_RML/``, ``APNEA_RML_clean/`` go in it).
        n_subjects: nights; severity class ``i % 4`` (a shuffled deal) so all four are present.
        minutes: night length (each night 90-110 % of it, whole 30-s epochs).
        fs_hz: audio rate of ``Mic`` / ``Tracheal`` (the real files: 48 kHz), stated in the header.
        seed: random seed (nights are reproducible one by one).
        part_s: EDF part length in seconds (the real files: 3600); the last part is shorter.
        drop_parts: night index -> part numbers not written (a gap in the night).
        fs_by_night: night index -> audio rate overriding ``fs_hz`` (one 48-kHz test night).
        channels: which of ``Mic``, ``Tracheal``, ``Snore`` (500 Hz), ``SpO2`` (1 Hz) to write.
        snore_fraction: share of snoring subjects.

    Returns:
        One :class:`PsgAudioSynthNight` per night.
    """
    root = Path(root)
    drop_parts = drop_parts or {}
    fs_by_night = fs_by_night or {}
    deal = np.random.default_rng(seed).permutation(n_subjects)
    out = []
    for i in range(n_subjects):
        rng = np.random.default_rng((seed, i))
        severity = int(deal[i] % 4)
        snorer = bool(rng.random() < snore_fraction + 0.1 * (severity - 1.5))
        duration = EPOCH_S * int(minutes * 60 * rng.uniform(0.9, 1.1) // EPOCH_S)
        plan = _plan(rng, duration, severity, snorer)
        fs = float(fs_by_night.get(i, fs_hz))
        night = f"{1000 + i:08d}-{100507 + i:06d}"
        start = _START + dt.timedelta(minutes=int(rng.integers(0, 90)))
        bounds = [(a, min(a + part_s, duration)) for a in np.arange(0.0, duration, part_s)]
        parts = []
        renderer = Renderer(plan, fs, (seed, i))
        for k, (a, b) in enumerate(bounds, start=1):
            if k in drop_parts.get(i, ()):
                for t in np.arange(a, b, 60.0):  # keep the stream as in an undropped night
                    renderer.render(t, min(t + 60.0, b))
                continue
            audio = render_part(renderer, a, b, channels)
            signals = _part_signals(channels, audio, plan, fs, a, b)
            parts.append(
                write_edf(
                    root / "APNEA_EDF" / night / f"{night}[{k:03d}].edf",
                    signals,
                    start=start + dt.timedelta(seconds=float(a)),
                    patient_code=night.split("-")[0],
                    physical_ranges={
                        "Mic": (-1.0, 1.0),
                        "Tracheal": (-1.0, 1.0),
                        "Snore": (0.0, 10.0),
                        "SpO2": (0.0, 100.0),
                    },
                )
            )
        rml = _write_rmls(root, night, plan, start)
        ref = reference_ahi(read_rml(rml))
        out.append(
            PsgAudioSynthNight(
                night_id=night,
                parts=tuple(parts),
                rml=rml,
                fs_hz=fs,
                duration_s=duration,
                tst_s=ref.tst_s,
                ahi=ref.ahi,
                severity=ref.severity,
                n_apnea=sum(e[2] == 2 for e in plan.events),
                n_hypopnea=sum(e[2] == 1 for e in plan.events),
                snorer=snorer,
                dropped_parts=tuple(sorted(drop_parts.get(i, ()))),
            )
        )
    return out


def _part_signals(
    channels: Sequence[str], audio: dict, plan: Plan, fs: float, a: float, b: float
) -> list[Signal]:
    """The requested channels of part ``[a, b)`` s, each at its own rate."""
    out = []
    for name in channels:
        if name in ("Mic", "Tracheal"):
            out.append(Signal(name, audio[name], fs, "V"))
        elif name == "Snore":
            out.append(Signal("Snore", snore_channel(audio["snore"], fs), 500.0, "mV"))
        elif name == "SpO2":
            out.append(Signal("SpO2", _spo2(plan, int(a), int(b)), 1.0, "%"))
        else:
            raise ValueError(f"unknown synthetic channel {name!r}")
    return out


def _write_rmls(root: Path, night: str, plan: Plan, start: dt.datetime) -> Path:
    """The night's RML in ``APNEA_RML/`` and the same scoring in ``APNEA_RML_clean/``."""
    events = [
        Event(onset, duration, kind, channel="Flow", attrs={"family": "Respiratory"})
        for onset, duration, _, kind in plan.events
    ]
    for onset, duration, cls, _ in plan.events:  # desaturations, as the scorers mark them
        if cls == 2:
            events.append(
                Event(
                    onset + duration + 8.0,
                    20.0,
                    "RelativeDesaturation",
                    channel="SpO2",
                    attrs={"family": "SpO2", "o2_before": 96.0, "o2_min": 90.0},
                )
            )
    runs = [(k * EPOCH_S, EPOCH_S, s) for k, s in enumerate(plan.stages)]
    kwargs: dict[str, Any] = dict(
        recording_start=start,
        duration_s=plan.duration_s,
        events=events,
        stage_runs=runs,
        lights_off_s=60.0,
        lights_on_s=plan.duration_s - 30.0,
    )
    path = root / "APNEA_RML" / f"{night}.rml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_rml(path, **kwargs)
    clean = root / "APNEA_RML_clean" / f"{night}.rml"
    clean.parent.mkdir(parents=True, exist_ok=True)
    write_rml(clean, **kwargs)
    return path


def write_synthetic(root: Path, cfg: Any) -> dict[str, Any]:
    """Synthetic nights per ``cfg.synthetic`` (``n_subjects``, ``minutes``, ``fs_hz``, ``seed``,
    ``part_s``); returns the manifest ``{"records": [...]}`` for the registry."""
    s = cfg.synthetic
    nights = write_synthetic_psg_audio(
        Path(root),
        n_subjects=int(s.n_subjects),
        minutes=float(s.minutes),
        fs_hz=float(s.fs_hz),
        seed=int(s.seed),
        part_s=float(s.get("part_s", 900.0)),
    )
    return {
        "records": [
            {
                "record_id": n.night_id,
                "subject_id": n.night_id.split("-")[0],
                "fs_hz": n.fs_hz,
                "duration_s": n.duration_s,
                "ahi": round(n.ahi, 2),
                "severity": n.severity,
                "n_apnea": n.n_apnea,
                "n_hypopnea": n.n_hypopnea,
                "snorer": n.snorer,
            }
            for n in nights
        ]
    }
