"""Synthetic ICBHI 2017 Respiratory Sound Database in the real layout and formats.

Written tree (as the shared sample ``icbhi/``; SPECS §4.1, §4.7)::

    root/audio_and_txt_files/{patient}_{index}_{location}_{mode}_{device}.wav   (+ .txt)
    root/metadata/official_split.txt        stem<TAB>train|test, LF, no final newline
    root/metadata/patient_list_foldwise.txt "patient fold" (0-4), LF
    root/metadata/patient_diagnosis.txt     patient<TAB>diagnosis, LF, no final newline
    root/metadata/demographic_info.txt      empty first line, "id age sex bmi weight height"
                                            (NA where absent: adults have BMI, children weight
                                            and height), CRLF, no final newline

Cycle files: ``start<TAB>end<TAB>crackles<TAB>wheezes`` per line, contiguous cycles, times
with up to 3 decimals (Litt3200 files: 5 significant digits), as the real annotations.

The database is built like the real one (the numbers below are the real ones, measured on the
920 annotation files and the official split):

- patients 101, 102, ... with a diagnosis dealt in the real proportions (COPD ~50 %, healthy
  ~20 %, URTI ~11 %, ...); each diagnosis has its own share of crackles and wheezes and each
  patient a tendency around it, so the labels cluster by patient (the real COPD cycles are
  47/31/13/9 % normal/crackle/wheeze/both, healthy 94/5/1/0);
- devices follow diagnosis as in the real data (COPD on the AKG microphone in multichannel
  sessions, healthy and URTI on the Meditron); a multichannel (``mc``) session records 1-3 chest
  locations at once: same cycles, labels and adventitious sounds, each location its own noise;
- rates and sample types as the real files: Litt3200 4 kHz PCM_16; 44.1 kHz files PCM_16,
  PCM_24 or PCM_32; some Meditron at 10 kHz ([ASSUMPTION]: which device the real 10-kHz files
  come from was not checked);
- cycles 0.8-6 s around a patient's own breathing period (1-2.6 s), and a few of 8.2-11 s (cut
  by the 8-s fix);
- official split: recording-level ~60/40, patient-level except one "bridge" patient recorded
  with a Meditron (train) and a Litt3200 (test), as the real patients 156 and 218; nearly all
  Litt3200 recordings on the test side, LittC2SE on the training side (the real device shift).

The sounds themselves are :mod:`~sleepbench.tasks.icbhi_lung.synth_sounds`'.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from sleepbench.io.icbhi import CLASSES, DEVICES, LOCATIONS
from sleepbench.tasks.icbhi_lung.synth_metadata import official_sides, write_metadata
from sleepbench.tasks.icbhi_lung.synth_sounds import (
    CycleEvents,
    Profile,
    draw_events,
    draw_profile,
    render_recording,
)

__all__ = ["DEFAULTS", "write_synthetic", "write_synthetic_icbhi"]

MODE = {"AKGC417L": "mc", "LittC2SE": "mc", "Litt3200": "sc", "Meditron": "sc"}

#: ``synthetic:`` keys and their defaults (about 600 cycles, 23 min of audio, ~7 s to write).
DEFAULTS: dict[str, Any] = {
    "n_patients": 24,
    "recordings_per_patient": [1, 4],  # COPD patients draw from the upper half, others the lower
    "cycles_per_recording": [6, 14],
    "seed": 0,
    "rates_hz": {  # each recording draws one rate from its device's list
        "AKGC417L": [44100],
        "LittC2SE": [44100],
        "Litt3200": [4000],
        "Meditron": [44100, 44100, 10000],
    },
    "long_cycle_share": 0.01,  # cycles of 8.2-11 s
    "test_share": 0.4,  # share of recordings on the official test side
    "unannotated_share": 0.04,  # chance of a faint unlabelled crackle / wheeze in a cycle
    # share of the Litt3200 patients whose recordings go to the test side (the real list: 55 of
    # 60); with 0.9 a small set rarely trains on that device at all
    "litt3200_test_share": 0.9,
}

# diagnosis: (share of patients, mean P(crackle), mean P(wheeze), share of children,
# device probabilities (AKGC417L, LittC2SE, Litt3200, Meditron)) - from the real database
_DIAGNOSES: dict[str, tuple[float, float, float, float, tuple[float, float, float, float]]] = {
    "COPD": (0.50, 0.48, 0.18, 0.0, (0.5, 0.25, 0.15, 0.1)),
    "Healthy": (0.20, 0.05, 0.01, 0.5, (0.0, 0.1, 0.0, 0.9)),
    "URTI": (0.11, 0.09, 0.03, 0.6, (0.0, 0.0, 0.0, 1.0)),
    "Bronchiectasis": (0.05, 0.22, 0.30, 0.0, (0.0, 0.0, 0.0, 1.0)),
    "Pneumonia": (0.05, 0.07, 0.08, 0.0, (0.0, 0.8, 0.0, 0.2)),
    "Bronchiolitis": (0.04, 0.12, 0.35, 1.0, (0.0, 0.0, 0.0, 1.0)),
    "LRTI": (0.03, 0.03, 0.03, 0.5, (0.0, 0.0, 0.0, 1.0)),
    "Asthma": (0.02, 0.03, 0.60, 0.0, (0.0, 1.0, 0.0, 0.0)),
}
_SUBTYPES_44K = ("PCM_16",) * 5 + ("PCM_24",) * 3 + ("PCM_32",) * 2  # real 44.1 kHz: all three


@dataclass(frozen=True)
class _Patient:
    pid: str
    diagnosis: str
    child: bool
    p_crackle: float
    p_wheeze: float
    devices: tuple[str, ...]  # one per session
    profile: Profile
    period_s: float


@dataclass(frozen=True)
class _Recording:
    stem: str
    patient: str
    device: str
    fs_hz: int
    subtype: str
    duration_s: float
    cycles: tuple[tuple[float, float, int, int], ...]  # start_s, end_s, crackles, wheezes


def _deal(n: int, shares: Sequence[float]) -> list[int]:
    """Counts summing to ``n`` in proportion to ``shares`` (largest remainder)."""
    raw = np.asarray(shares) / sum(shares) * n
    counts = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    return counts.tolist()


def _range(value: Any, name: str) -> tuple[int, int]:
    lo, hi = (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))
    if not 1 <= lo <= hi:
        raise ValueError(f"synthetic.{name} must be [low, high] with 1 <= low <= high, got {value}")
    return lo, hi


def _fmt_time(x: float, device: str) -> str:
    """A cycle time as the real files print it: 3 decimals without trailing zeros (Litt3200: 5
    significant digits)."""
    if device == "Litt3200":
        return f"{x:.5g}"
    return f"{x:.3f}".rstrip("0").rstrip(".") or "0"


def _patients(rng: np.random.Generator, n: int, rec_range: tuple[int, int]) -> list[_Patient]:
    names = list(_DIAGNOSES)
    counts = _deal(n, [_DIAGNOSES[d][0] for d in names])
    diagnoses = [d for d, c in zip(names, counts) for _ in range(c)]
    rng.shuffle(diagnoses)
    lo, hi = rec_range
    mid = (lo + hi) / 2
    bridge = diagnoses.index("COPD") if "COPD" in diagnoses else 0
    out = []
    for i, diagnosis in enumerate(diagnoses):
        _, p_c, p_w, child_share, dev_p = _DIAGNOSES[diagnosis]
        child = bool(rng.random() < child_share)
        if diagnosis == "COPD":  # the real COPD patients hold 83 % of the cycles
            n_rec = int(rng.integers(math.ceil(mid), hi + 1))
        else:
            n_rec = int(rng.integers(lo, math.floor(mid) + 1))
        device = str(rng.choice(DEVICES, p=dev_p))
        tilt = float(np.exp(rng.normal(0.0, 0.5)))  # the patient's tendency around its diagnosis
        p_crackle = float(np.clip(p_c * tilt, 0.0, 0.9))
        p_wheeze = float(np.clip(p_w * np.exp(rng.normal(0.0, 0.5)), 0.0, 0.9))
        profile = draw_profile(rng, child)
        period = rng.uniform(1.4, 2.6) * (0.7 if child else 1.0)
        if i == bridge and hi >= 2:  # recorded with two devices, on both sides of the split
            n_rec = max(n_rec, 2)
            devices = tuple("Meditron" if k < n_rec // 2 else "Litt3200" for k in range(n_rec))
        else:
            devices = _sessions(rng, device, n_rec)
        out.append(
            _Patient(f"{101 + i}", diagnosis, child, p_crackle, p_wheeze, devices, profile, period)
        )
    return out


def _sessions(rng: np.random.Generator, device: str, n_rec: int) -> tuple[str, ...]:
    """One device entry per session; multichannel sessions cover 1-3 recordings."""
    if MODE[device] == "sc":
        return (device,) * n_rec
    sizes = []
    while sum(sizes) < n_rec:
        sizes.append(min(int(rng.integers(1, 4)), n_rec - sum(sizes)))
    return tuple(f"{device}*{s}" for s in sizes)


def _cycles(
    rng: np.random.Generator, patient: _Patient, n: int, long_share: float
) -> tuple[list[float], tuple[tuple[float, float, int, int], ...], float]:
    """Breath boundaries (with an unannotated breath before and after), annotated cycles and the
    recording length in s; times rounded to 1 ms so the text file and the audio agree."""
    p_c = float(np.clip(patient.p_crackle * np.exp(rng.normal(0.0, 0.3)), 0.0, 0.95))
    p_w = float(np.clip(patient.p_wheeze * np.exp(rng.normal(0.0, 0.3)), 0.0, 0.95))
    t = round(float(rng.uniform(0.0, 1.5)), 3)
    bounds = [t - patient.period_s, t]
    cycles = []
    for _ in range(n):
        if rng.random() < long_share:
            d = rng.uniform(8.2, 11.0)
        else:
            d = float(np.clip(patient.period_s * np.exp(rng.normal(0.0, 0.22)), 0.8, 6.0))
        end = round(t + d, 3)
        cycles.append((t, end, int(rng.random() < p_c), int(rng.random() < p_w)))
        t = end
        bounds.append(t)
    duration = round(t + rng.uniform(0.2, 1.5), 3)
    bounds.append(t + patient.period_s)
    return bounds, tuple(cycles), duration


def write_synthetic_icbhi(root: str | Path, **cfg: Any) -> dict[str, Any]:
    """Write a synthetic ICBHI database under ``root``; keyword arguments as :data:`DEFAULTS`.

    Args:
        root: dataset folder (``audio_and_txt_files/`` and ``metadata/`` go in it).
        n_patients: patients 101, 102, ...
        recordings_per_patient: ``[low, high]`` recordings (files) per patient; COPD patients
            draw from the upper half, the others from the lower half (as in the real database,
            where COPD patients hold most recordings).
        cycles_per_recording: ``[low, high]`` annotated cycles per recording.
        seed: random seed; the same arguments give byte-identical files.
        rates_hz: device -> list of rates in Hz; each recording draws one.
        long_cycle_share: share of cycles of 8.2-11 s.
        test_share: share of recordings on the official test side (the real split: 0.41).
        unannotated_share: chance that a cycle holds a faint crackle or wheeze its label omits.

    Returns:
        The manifest: counts per class, split and device, patients on both sides, rates, sample
        types, total duration, and ``records`` (one dict per recording).
    """
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown synthetic keys for icbhi_lung: {sorted(unknown)}")
    c = {**DEFAULTS, **cfg}
    seed = int(c["seed"])
    rec_range = _range(c["recordings_per_patient"], "recordings_per_patient")
    cyc_range = _range(c["cycles_per_recording"], "cycles_per_recording")
    if not isinstance(c["rates_hz"], Mapping):
        raise ValueError(f"synthetic.rates_hz must map devices to rate lists, got {c['rates_hz']}")
    rates_cfg = {**DEFAULTS["rates_hz"], **c["rates_hz"]}
    rates = {d: [int(r) for r in rates_cfg[d]] for d in DEVICES}
    if not 1 <= int(c["n_patients"]) <= 899:  # three-digit patient numbers from 101
        raise ValueError(f"synthetic.n_patients must be 1..899, got {c['n_patients']}")
    root = Path(root)
    audio_dir, meta_dir = root / "audio_and_txt_files", root / "metadata"
    audio_dir.mkdir(parents=True, exist_ok=True)
    meta_dir.mkdir(parents=True, exist_ok=True)

    patients = _patients(np.random.default_rng(seed), int(c["n_patients"]), rec_range)
    recordings: list[_Recording] = []
    for i, p in enumerate(patients):
        used: set[tuple[str, str]] = set()
        for s, entry in enumerate(p.devices):
            rng = np.random.default_rng((seed, i, s))
            device, _, size = entry.partition("*")
            n_loc = int(size or 1)
            fs = int(rng.choice(rates[device]))
            subtype = str(rng.choice(_SUBTYPES_44K)) if fs > 20000 else "PCM_16"
            n_cycles = int(rng.integers(cyc_range[0], cyc_range[1] + 1))
            bounds, cycles, duration = _cycles(rng, p, n_cycles, float(c["long_cycle_share"]))
            events: list[CycleEvents] = [
                draw_events(rng, a, b, bool(cr), bool(wh), p.profile, float(c["unannotated_share"]))
                for a, b, cr, wh in cycles
            ]
            letter = "p" if device == "Litt3200" and len(set(p.devices)) > 1 else "b"
            index = _index(rng, s, letter, n_loc, used, MODE[device])
            for k, loc in enumerate(index[1]):
                stem = f"{p.pid}_{index[0]}_{loc}_{MODE[device]}_{device}"
                gain, own = float(rng.uniform(0.5, 1.2)), np.random.default_rng((seed, i, s, k, 7))
                audio = render_recording(
                    own, fs, duration, bounds, events, p.profile, device, loc, gain
                )
                sf.write(audio_dir / f"{stem}.wav", audio, fs, subtype=subtype)
                lines = [
                    f"{_fmt_time(a, device)}\t{_fmt_time(b, device)}\t{cr}\t{wh}"
                    for a, b, cr, wh in cycles
                ]
                (audio_dir / f"{stem}.txt").write_text("\n".join(lines) + "\n")
                recordings.append(_Recording(stem, p.pid, device, fs, subtype, duration, cycles))
    n_recs = Counter(r.patient for r in recordings)
    side = official_sides(
        np.random.default_rng((seed, 1)),
        patients,
        n_recs,
        float(c["test_share"]),
        float(c["litt3200_test_share"]),
    )
    split = {r.stem: side[f"{r.patient}/{r.device}"] for r in recordings}
    write_metadata(meta_dir, np.random.default_rng((seed, 2)), patients, split)
    return _manifest(patients, recordings, split)


def _index(
    rng: np.random.Generator, s: int, letter: str, n_loc: int, used: set, mode: str
) -> tuple[str, list[str]]:
    """Recording index (``1b1``, ``2b3``, ``1p1``...) and the locations of session ``s``:
    a multichannel session has its own index; single-channel ones share ``1b1`` while free
    locations remain (as the real ``104_1b1_Al/Ar/Ll/...``)."""
    if mode == "mc":
        index = f"{1 + s // 5}{letter}{1 + s % 5}"
        locs = [str(x) for x in rng.choice(LOCATIONS, size=n_loc, replace=False)]
    else:
        k = 0
        while all((f"1{letter}{1 + k}", loc) in used for loc in LOCATIONS):
            k += 1
        index = f"1{letter}{1 + k}"
        free = [loc for loc in LOCATIONS if (index, loc) not in used]
        locs = [str(rng.choice(free))]
    used.update((index, loc) for loc in locs)
    return index, locs


def _manifest(
    patients: list[_Patient], recordings: list[_Recording], split: dict[str, str]
) -> dict[str, Any]:
    classes: Counter = Counter()
    by_split: dict[str, dict[str, Any]] = {
        s: {"recordings": 0, "cycles": 0, "classes": dict.fromkeys(CLASSES, 0)}
        for s in ("train", "test")
    }
    devices: dict[str, dict[str, int]] = {d: {"train": 0, "test": 0} for d in DEVICES}
    sides: dict[str, set[str]] = {}
    for r in recordings:
        s = split[r.stem]
        by_split[s]["recordings"] += 1
        by_split[s]["cycles"] += len(r.cycles)
        devices[r.device][s] += 1
        sides.setdefault(r.patient, set()).add(s)
        for _, _, cr, wh in r.cycles:
            classes[CLASSES[cr + 2 * wh]] += 1
            by_split[s]["classes"][CLASSES[cr + 2 * wh]] += 1
    return {
        "n_patients": len(patients),
        "n_recordings": len(recordings),
        "n_cycles": sum(len(r.cycles) for r in recordings),
        "classes": {k: classes[k] for k in CLASSES},
        "splits": by_split,
        "devices": devices,
        "patients_on_both_sides": sorted(p for p, s in sides.items() if len(s) == 2),
        "rates_hz": dict(sorted(Counter(r.fs_hz for r in recordings).items())),
        "subtypes": dict(sorted(Counter(r.subtype for r in recordings).items())),
        "diagnoses": dict(Counter(p.diagnosis for p in patients)),
        "duration_s": round(sum(r.duration_s for r in recordings), 1),
        "cycles_over_8s": sum(b - a > 8.0 for r in recordings for a, b, _, _ in r.cycles),
        "records": [
            {
                "record_id": r.stem,
                "subject_id": r.patient,
                "device": r.device,
                "fs_hz": r.fs_hz,
                "subtype": r.subtype,
                "split": split[r.stem],
                "n_cycles": len(r.cycles),
                "duration_s": r.duration_s,
            }
            for r in recordings
        ],
    }


def write_synthetic(root: Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Registry entry: the ``synthetic:`` block ``cfg`` (or a whole task config holding one)
    -> :func:`write_synthetic_icbhi`; returns its manifest."""
    block = cfg.get("synthetic", cfg)
    return write_synthetic_icbhi(Path(root), **{str(k): v for k, v in block.items()})
