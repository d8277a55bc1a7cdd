"""Synthetic ESC-50 in the real layout: ``audio/{fold}-{source}-{take}-{target}.wav`` (mono
PCM_16, 44.1 kHz, 5 s, as the real clips) and ``meta/esc50.csv`` with the real header, the 50
real category names and their ``esc10`` flags.

Each class is a fixed recipe of one to three parametric layers (the same for every seed):
harmonic tones (pitch, harmonics, glide, vibrato), noise bands, click trains (rate, band,
decay), FM tones and struck bells, each shaped by a pattern (continuous, bursts at a rate,
amplitude modulation). The recipes loosely evoke their category (a dog barks in short harmonic
bursts, a clock ticks, a siren sweeps) and differ in pitch, band and rhythm, so the 50 classes
are separable. What varies from clip to clip, so that it is learnable but not perfect:

- per source recording: pitch (about +-7 %), rate (+-15 %), level (-12-0 dB), background
  noise (brown/pink, SNR 3-30 dB), an interfering tone now and then;
- per take: small pitch and rate changes, a new onset; takes of one source sound alike and
  share a fold (the real rule);
- some event-like clips stop before 5 s and are padded with digital silence, as real ESC-50
  clips shorter than 5 s were.

Folds: every class has ``n_per_class`` clips spread over the five folds (the remainder dealt
round-robin so that the folds stay balanced); a fold's clips of one class come from one or more
sources, a source giving takes ``A``, ``B``, ``C``.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from sleepbench.io.esc50 import CATEGORIES, ESC50_HEADER

__all__ = ["CATEGORIES", "DEFAULTS", "ESC10", "write_synthetic", "write_synthetic_esc50"]

#: Targets flagged ``esc10`` in the real file.
ESC10 = frozenset({0, 1, 10, 11, 12, 20, 21, 38, 40, 41})

#: ``synthetic:`` keys and their defaults (300 clips, ~25 s of audio per class; ~10 s to write).
DEFAULTS: dict[str, Any] = {"n_per_class": 6, "seed": 0, "fs_hz": 44100, "clip_s": 5.0}

# Layers: (source, source params, pattern, pattern params).
#   source "tone": (f0_hz, n_harmonics, rolloff, glide (end/start f0 within an event), vibrato)
#   source "noise": (low_hz, high_hz); "click": (low_hz, high_hz, decay_s);
#   "fm": (carrier_hz, mod_hz, depth_hz); "bell": (f0_hz, decay_s)
#   pattern "cont": (); "burst": (event_s, rate_hz, regular 0/1); "am": (rate_hz, depth 0-1);
#   clicks and bells take "burst" for their strike times (event_s unused).
_T, _N, _C, _F, _B = "tone", "noise", "click", "fm", "bell"
# fmt: off
_RECIPES: tuple[tuple[tuple[str, tuple, str, tuple], ...], ...] = (
    ((_T, (450, 6, 0.6, 0.9, 0.0), "burst", (0.18, 1.3, 0)),),  # 0 dog
    ((_T, (600, 5, 0.5, 1.4, 0.01), "burst", (1.0, 0.4, 1)),),  # 1 rooster
    ((_T, (220, 8, 0.7, 1.0, 0.0), "burst", (0.3, 1.5, 0)),  # 2 pig
     (_N, (300, 2000), "am", (1.5, 1.0))),
    ((_T, (140, 10, 0.7, 0.9, 0.01), "burst", (1.5, 0.4, 1)),),  # 3 cow
    ((_C, (300, 1500, 0.006), "burst", (0.0, 35.0, 1)),  # 4 frog
     (_N, (100, 200), "am", (1.2, 1.0))),
    ((_T, (700, 4, 0.5, 0.7, 0.02), "burst", (0.8, 0.6, 0)),),  # 5 cat
    ((_T, (950, 4, 0.5, 1.1, 0.0), "burst", (0.1, 3.0, 0)),),  # 6 hen
    ((_F, (4000, 50, 300), "cont", ()),),  # 7 insects
    ((_T, (320, 6, 0.6, 1.0, 0.0), "burst", (0.7, 0.6, 1)),  # 8 sheep
     (_N, (300, 600), "am", (25, 0.8))),
    ((_T, (800, 6, 0.8, 0.95, 0.0), "burst", (0.25, 1.6, 0)),  # 9 crow
     (_N, (800, 3000), "am", (1.6, 1.0))),
    ((_C, (2000, 10000, 0.002), "burst", (0.0, 200.0, 0)),  # 10 rain
     (_N, (1000, 8000), "cont", ())),
    ((_N, (200, 3000), "am", (0.25, 0.9)),),  # 11 sea_waves
    ((_C, (1000, 8000, 0.004), "burst", (0.0, 15.0, 0)),  # 12 crackling_fire
     (_N, (50, 300), "cont", ())),
    ((_F, (4500, 30, 0), "am", (30.0, 1.0)),),  # 13 crickets
    ((_T, (3500, 2, 0.3, 1.6, 0.0), "burst", (0.08, 4.0, 0)),),  # 14 chirping_birds
    ((_T, (800, 1, 0.5, 2.0, 0.0), "burst", (0.03, 2.0, 0)),),  # 15 water_drops
    ((_N, (100, 800), "am", (0.3, 0.8)),),  # 16 wind
    ((_N, (500, 4000), "am", (8.0, 0.6)),  # 17 pouring_water
     (_T, (600, 1, 0.5, 1.0, 0.05), "cont", ())),
    ((_N, (200, 3000), "am", (0.2, 0.5)),  # 18 toilet_flush
     (_N, (60, 200), "cont", ())),
    ((_N, (30, 300), "am", (0.3, 1.0)),  # 19 thunderstorm
     (_N, (300, 2000), "burst", (0.6, 0.4, 0))),
    ((_T, (450, 8, 0.6, 1.0, 0.06), "burst", (1.0, 0.7, 0)),),  # 20 crying_baby
    ((_N, (1000, 8000), "burst", (0.3, 0.3, 0)),),  # 21 sneezing
    ((_C, (500, 5000, 0.01), "burst", (0.0, 4.0, 1)),),  # 22 clapping
    ((_N, (200, 2000), "am", (0.3, 1.0)),),  # 23 breathing
    ((_N, (300, 3000), "burst", (0.25, 0.7, 0)),  # 24 coughing
     (_T, (300, 6, 0.5, 0.9, 0.0), "burst", (0.1, 0.7, 0))),
    ((_C, (100, 1000, 0.03), "burst", (0.0, 2.0, 1)),),  # 25 footsteps
    ((_T, (260, 6, 0.6, 1.0, 0.0), "burst", (0.12, 5.0, 1)),  # 26 laughing
     (_N, (300, 600), "am", (0.6, 1.0))),
    ((_N, (2000, 8000), "am", (4.0, 0.9)),),  # 27 brushing_teeth
    ((_T, (70, 12, 0.8, 1.0, 0.0), "burst", (1.5, 0.3, 1)),  # 28 snoring
     (_N, (100, 800), "am", (0.3, 1.0))),
    ((_N, (1000, 4000), "burst", (0.1, 1.5, 0)),  # 29 drinking_sipping
     (_T, (300, 2, 0.5, 1.3, 0.0), "burst", (0.1, 1.0, 0))),
    ((_B, (300, 0.05), "burst", (0.0, 3.0, 0)),),  # 30 door_wood_knock
    ((_C, (2000, 10000, 0.001), "burst", (0.0, 1.5, 0)),),  # 31 mouse_click
    ((_C, (1000, 6000, 0.008), "burst", (0.0, 8.0, 0)),),  # 32 keyboard_typing
    ((_F, (400, 3, 80), "am", (0.5, 1.0)),),  # 33 door_wood_creaks
    ((_N, (3000, 9000), "burst", (0.5, 0.5, 0)),  # 34 can_opening
     (_C, (1000, 4000, 0.01), "burst", (0.0, 0.5, 0))),
    ((_N, (100, 1000), "am", (1.0, 0.7)),  # 35 washing_machine
     (_T, (50, 3, 0.5, 1.0, 0.0), "cont", ())),
    ((_N, (500, 6000), "cont", ()),  # 36 vacuum_cleaner
     (_T, (1000, 2, 0.4, 1.0, 0.0), "cont", ())),
    ((_T, (2000, 3, 0.4, 1.0, 0.0), "burst", (0.1, 4.0, 1)),),  # 37 clock_alarm
    ((_C, (2000, 6000, 0.003), "burst", (0.0, 1.0, 1)),),  # 38 clock_tick
    ((_B, (3000, 0.4), "burst", (0.0, 0.8, 0)),  # 39 glass_breaking
     (_N, (2000, 10000), "burst", (0.2, 0.5, 0))),
    ((_N, (50, 500), "am", (12.0, 0.9)),),  # 40 helicopter
    ((_T, (100, 20, 0.9, 1.0, 0.02), "am", (0.5, 0.5)),  # 41 chainsaw
     (_N, (1000, 5000), "cont", ())),
    ((_F, (1000, 0.3, 350), "cont", ()),),  # 42 siren
    ((_T, (420, 8, 0.7, 1.0, 0.0), "burst", (0.8, 0.5, 0)),),  # 43 car_horn
    ((_T, (40, 15, 0.85, 1.0, 0.01), "cont", ()),  # 44 engine
     (_N, (50, 400), "cont", ())),
    ((_N, (100, 2000), "cont", ()),  # 45 train
     (_C, (100, 800, 0.05), "burst", (0.0, 2.0, 1))),
    ((_B, (500, 2.0), "burst", (0.0, 0.7, 1)),),  # 46 church_bells
    ((_N, (100, 3000), "am", (0.1, 0.3)),  # 47 airplane
     (_F, (150, 0.05, 40), "cont", ())),
    ((_C, (50, 3000, 0.3), "burst", (0.0, 0.6, 0)),),  # 48 fireworks
    ((_N, (1000, 6000), "burst", (0.3, 2.0, 1)),),  # 49 hand_saw
)
# fmt: on


def _band(fs: float, low: float, high: float) -> np.ndarray:
    high = min(high, 0.45 * fs)
    low = min(low, 0.5 * high)
    return butter(2, [low, high], btype="bandpass", fs=fs, output="sos")


def _onsets(rng: np.random.Generator, rate: float, regular: int, clip_s: float) -> np.ndarray:
    """Event onsets in s: a jittered grid (``regular``) or a Poisson process at ``rate`` Hz."""
    if regular:
        grid = np.arange(rng.uniform(0.0, 1.0 / rate), clip_s, 1.0 / rate)
        return grid + rng.normal(0.0, 0.02 / rate, grid.size)
    return np.sort(rng.uniform(0.0, clip_s, max(1, rng.poisson(rate * clip_s))))


def _layer(
    rng: np.random.Generator, layer: tuple, fs: float, n: int, pitch: float, rate: float
) -> np.ndarray:
    """One layer of a recipe, float32 ``[n]`` at unit-ish RMS."""
    source, sp, pattern, pp = layer
    clip_s = n / fs
    t = np.arange(n, dtype=np.float32) / np.float32(fs)
    env = np.ones(n, dtype=np.float32)
    pos = np.zeros(n, dtype=np.float32)  # position within the current event, 0..1 (glides)
    onsets = np.zeros(0)
    if pattern == "burst":
        event_s, ev_rate, regular = pp
        onsets = _onsets(rng, ev_rate * rate, regular, clip_s)
        if source in ("tone", "noise", "fm"):
            env[:] = 0.0
            m = max(8, round(event_s * fs))
            win = np.hanning(m).astype(np.float32) ** 0.5
            ramp = np.linspace(0.0, 1.0, m, dtype=np.float32)
            for onset in onsets:
                i0 = round(onset * fs)
                k = min(m, n - i0)
                if k > 0 and i0 >= 0:
                    env[i0 : i0 + k] = np.maximum(env[i0 : i0 + k], win[:k])
                    pos[i0 : i0 + k] = ramp[:k]
    elif pattern == "am":
        am_rate, depth = pp
        phase = rng.uniform(0.0, 2 * np.pi)
        env = 1.0 - depth * 0.5 * (1.0 + np.sin(2 * np.pi * am_rate * rate * t + phase))
        env = env.astype(np.float32)
    if source == "tone":
        f0, n_h, rolloff, glide, vib = sp
        f = np.float32(f0 * pitch) * (1.0 + np.float32(glide - 1.0) * pos)
        if vib:
            f *= 1.0 + np.float32(vib) * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * np.cumsum(f, dtype=np.float64) / fs
        y = np.zeros(n, dtype=np.float32)
        for h in range(1, int(n_h) + 1):
            if h * f0 * pitch * max(glide, 1.0) < 0.45 * fs:
                y += (rolloff ** (h - 1)) * np.sin(h * phase).astype(np.float32)
        return y * env
    if source == "noise":
        low, high = sp
        y = sosfilt(_band(fs, low * pitch, high * pitch), rng.standard_normal(n, dtype=np.float32))
        return (y / (y[::4].std() + 1e-9)).astype(np.float32) * env
    if source == "fm":
        fc, fm, depth = sp
        inst = fc * pitch + depth * pitch * np.sin(2 * np.pi * fm * rate * t)
        return np.sin(2 * np.pi * np.cumsum(inst, dtype=np.float64) / fs).astype(np.float32) * env
    # strikes: a click (filtered noise) or a bell (inharmonic partials) at each onset
    if source == "click":
        low, high, decay = sp
        m = max(16, round(5 * decay * fs))
        kernel = sosfilt(_band(fs, low * pitch, high * pitch), rng.standard_normal(m))
        kernel *= np.exp(-np.arange(m) / (decay * fs))
    else:
        f0, decay = sp
        m = max(16, round(min(3 * decay, clip_s) * fs))
        tk = np.arange(m) / fs
        kernel = sum(
            a * np.sin(2 * np.pi * f0 * pitch * r * tk)
            for r, a in ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25), (8.93, 0.12))
            if f0 * pitch * r < 0.45 * fs
        ) * np.exp(-tk / decay)
    kernel = (kernel / (np.abs(kernel).max() + 1e-9)).astype(np.float32)
    y = np.zeros(n, dtype=np.float32)
    for onset in onsets:
        i0 = round(onset * fs)
        k = min(m, n - i0)
        if k > 0 and i0 >= 0:
            y[i0 : i0 + k] += kernel[:k] * np.float32(rng.uniform(0.5, 1.0))
    return y * env


def _render(
    rng: np.random.Generator, target: int, fs: float, n: int, source: dict[str, float]
) -> np.ndarray:
    """One clip of class ``target``; ``source`` holds the source recording's own parameters."""
    pitch = source["pitch"] * float(np.exp(rng.normal(0.0, 0.015)))
    rate = source["rate"] * rng.uniform(0.95, 1.05)
    y = np.zeros(n, dtype=np.float32)
    for k, layer in enumerate(_RECIPES[target]):
        y += _layer(rng, layer, fs, n, pitch, rate) * np.float32(0.6 if k else 1.0)
    y /= np.sqrt(np.mean(y**2)) + 1e-9
    bg = rng.standard_normal(n, dtype=np.float32)
    bg = sosfilt(butter(1, source["bg_corner_hz"], fs=fs, output="sos"), bg).astype(np.float32)
    y += bg / (bg[::4].std() + 1e-9) * np.float32(10 ** (-source["snr_db"] / 20))
    if source["hum_hz"]:  # an interfering tone (fridge, mains, distant machine)
        y += 0.3 * np.sin(2 * np.pi * source["hum_hz"] / fs * np.arange(n)).astype(np.float32)
    y *= np.float32(rng.uniform(0.3, 0.9) * 10 ** (source["level_db"] / 20))
    y /= max(1.0, float(np.abs(y).max()) / 0.98)
    if _RECIPES[target][0][2] == "burst" and rng.random() < 0.3:
        y[round(n * rng.uniform(0.5, 0.9)) :] = 0.0  # a short clip padded with silence
    return y


def _layout(rng: np.random.Generator, n_per_class: int) -> list[tuple[int, int, str, str]]:
    """(fold, target, source id, take) for every clip; folds balanced, multi-take sources."""
    per_fold = n_per_class // 5
    extra = n_per_class % 5
    rows: list[tuple[int, int, int, str]] = []
    for target in range(len(CATEGORIES)):
        for fold in range(1, 6):
            k = per_fold + (1 if (fold - 1 - target) % 5 < extra else 0)
            src_no = 0
            while k > 0:
                takes = min(k, 1 + int(rng.random() < 0.4) + int(rng.random() < 0.1))
                for j in range(takes):
                    rows.append((fold, target, src_no, "ABC"[j]))
                src_no += 1
                k -= takes
    n_sources = len({(f, t, s) for f, t, s, _ in rows})
    ids = rng.choice(np.arange(10000, 260000), size=n_sources, replace=False)
    mapping: dict[tuple[int, int, int], str] = {}
    out = []
    for fold, target, s, take in rows:
        key = (fold, target, s)
        if key not in mapping:
            mapping[key] = str(int(ids[len(mapping)]))
        out.append((fold, target, mapping[key], take))
    return out


def write_synthetic_esc50(root: str | Path, **cfg: Any) -> dict[str, Any]:
    """Write a synthetic ESC-50 under ``root``; keyword arguments as :data:`DEFAULTS`.

    Args:
        root: dataset folder (``audio/`` and ``meta/esc50.csv`` go in it).
        n_per_class: clips per class (the real set: 40), spread over the five folds.
        seed: random seed; the same arguments give byte-identical files.
        fs_hz: rate in Hz (the real clips: 44100).
        clip_s: clip length in s (the real clips: 5.0).

    Returns:
        The manifest: counts of clips, sources and multi-take sources, clips per fold and per
        class, rate, length, and ``records`` (one dict per clip).
    """
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown synthetic keys for esc50: {sorted(unknown)}")
    c = {**DEFAULTS, **cfg}
    n_per_class, seed, fs = int(c["n_per_class"]), int(c["seed"]), int(c["fs_hz"])
    if n_per_class < 1:
        raise ValueError(f"synthetic.n_per_class must be >= 1, got {n_per_class}")
    n = round(float(c["clip_s"]) * fs)
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    layout = _layout(np.random.default_rng(seed), n_per_class)
    sources: dict[str, dict[str, float]] = {}
    records = []
    for fold, target, src, take in layout:
        if src not in sources:
            srng = np.random.default_rng((seed, int(src)))
            sources[src] = {
                "pitch": float(np.exp(srng.normal(0.0, 0.07))),
                "rate": srng.uniform(0.85, 1.15),
                "level_db": srng.uniform(-12.0, 0.0),
                "snr_db": srng.uniform(3.0, 30.0),
                "bg_corner_hz": srng.uniform(200.0, 4000.0),
                "hum_hz": srng.uniform(50.0, 2000.0) if srng.random() < 0.15 else 0.0,
            }
        name = f"{fold}-{src}-{take}-{target}.wav"
        rng = np.random.default_rng((seed, int(src), ord(take)))
        sf.write(
            root / "audio" / name, _render(rng, target, fs, n, sources[src]), fs, subtype="PCM_16"
        )
        records.append((name, fold, target, src, take))
    records.sort()
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(ESC50_HEADER)
        for name, fold, target, src, take in records:
            w.writerow([name, fold, target, CATEGORIES[target], target in ESC10, src, take])
    per_source = Counter(r[3] for r in records)
    return {
        "n_clips": len(records),
        "n_sources": len(per_source),
        "multi_take_sources": sum(v > 1 for v in per_source.values()),
        "folds": dict(sorted(Counter(r[1] for r in records).items())),
        "per_class": n_per_class,
        "fs_hz": fs,
        "clip_s": float(c["clip_s"]),
        "records": [
            {"record_id": name[:-4], "subject_id": src, "fold": fold, "target": target}
            for name, fold, target, src, _ in records
        ],
    }


def write_synthetic(root: Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Registry entry: the ``synthetic:`` block ``cfg`` (or a whole task config holding one)
    -> :func:`write_synthetic_esc50`; returns its manifest."""
    block = cfg.get("synthetic", cfg)
    return write_synthetic_esc50(Path(root), **{str(k): v for k, v in block.items()})
