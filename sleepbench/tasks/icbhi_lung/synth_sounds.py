"""Sounds of a synthetic ICBHI recording: breathing, crackles, wheezes, heart, artefacts, and
the colouring of each recording device.

:mod:`~sleepbench.tasks.icbhi_lung.synth` decides the database (patients, sessions, cycles,
labels); this module decides what a cycle sounds like (:func:`draw_events`, random, once per
session, so that simultaneously recorded chest locations hear the same crackles and wheezes)
and renders one recording at its file's rate (:func:`render_recording`).

What is in the audio (amplitudes relative to the peak RMS of inspiration noise, 1.0):

- breathing: band-limited noise with an inhale burst (35-45 % of the cycle) and a quieter,
  lower expiration; the trachea sounds louder and higher than the chest wall;
- crackles: 3-15 transients per cycle, each a damped oscillation of 5-20 ms at 100-2000 Hz
  (fine: short and high, late inspiration; coarse: long and low, early inspiration and
  expiration), peak 2-40, median ~10 (a few lost in the noise or behind a device);
- wheezes: one or two tones of 100-1000 Hz with harmonics, 0.16-0.9 s, gliding, amplitude
  0.6-4.5, median ~1.7 (faint through the dull devices);
- confusers that carry no label: heart sounds (30-70 Hz thumps), friction clicks, short
  tonal squeaks (< 100 ms, too short to be a wheeze), ambient noise, mains hum; and a few
  unannotated faint adventitious sounds in normal cycles (annotators disagree);
- device colouring: band-pass and spectral tilt per device (the acoustic Littmann Classic
  loses the high band, the microphone hears the room), a hiss floor, and the file's rate
  (4 kHz Litt3200 files lose everything above 2 kHz).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfilt

__all__ = [
    "DEVICE_SOUND",
    "CycleEvents",
    "Profile",
    "draw_events",
    "draw_profile",
    "render_recording",
]


@dataclass(frozen=True)
class Profile:
    """A patient's sound: breathing band and loudness, crackle type, adventitious loudness.

    Frequencies in Hz, amplitudes relative to the inspiration noise (1.0).
    """

    breath_band_hz: tuple[float, float]
    exhale_level: float
    fine_crackles: bool
    crackles_per_cycle: float
    crackle_level: float
    wheeze_f0_hz: float
    wheeze_level: float
    heart_rate_hz: float
    heart_level: float


@dataclass
class CycleEvents:
    """Adventitious sounds of one cycle, times in s from the recording start.

    ``crackles``: rows (onset_s, freq_hz, duration_s, peak); ``wheezes``: rows (onset_s,
    duration_s, f0_hz, glide (end/start f0), n_harmonics, amplitude).
    """

    crackles: list[tuple[float, float, float, float]] = field(default_factory=list)
    wheezes: list[tuple[float, float, float, float, int, float]] = field(default_factory=list)


def draw_profile(rng: np.random.Generator, child: bool) -> Profile:
    """A patient's sound profile (children breathe and beat faster, and sound higher)."""
    low = rng.uniform(80.0, 150.0) * (1.3 if child else 1.0)
    return Profile(
        breath_band_hz=(low, low * rng.uniform(4.0, 8.0)),
        exhale_level=rng.uniform(0.3, 0.7),
        fine_crackles=bool(rng.random() < 0.5),
        crackles_per_cycle=rng.uniform(2.5, 9.0),
        crackle_level=float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))),
        wheeze_f0_hz=float(np.exp(rng.uniform(np.log(150.0), np.log(800.0)))),
        wheeze_level=float(np.exp(rng.uniform(np.log(0.6), np.log(1.5)))),
        heart_rate_hz=rng.uniform(1.5, 2.0) if child else rng.uniform(1.0, 1.6),
        heart_level=rng.uniform(0.2, 0.8),
    )


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def draw_events(
    rng: np.random.Generator,
    start_s: float,
    end_s: float,
    crackle: bool,
    wheeze: bool,
    profile: Profile,
    unannotated: float = 0.04,
) -> CycleEvents:
    """The crackles and wheezes of the cycle ``[start_s, end_s)``.

    Args:
        rng: random source.
        start_s, end_s: the cycle in s.
        crackle, wheeze: its labels.
        profile: the patient's :class:`Profile`.
        unannotated: chance that an unlabelled kind is present anyway, faint (the annotators'
            misses; makes a perfect classifier impossible).
    """
    ev = CycleEvents()
    dur = end_s - start_s
    insp = 0.4 * dur
    faint_c = not crackle and rng.random() < unannotated
    if crackle or faint_c:
        n = max(3, int(rng.poisson(profile.crackles_per_cycle)))
        level = profile.crackle_level * _loguniform(rng, 5.0, 20.0) * (0.2 if faint_c else 1.0)
        for _ in range(min(n, 15)):
            if profile.fine_crackles:  # fine: short, high, mid-to-late inspiration
                t = start_s + insp * rng.uniform(0.3, 1.0)
                f, d = _loguniform(rng, 400.0, 2000.0), rng.uniform(0.005, 0.010)
            else:  # coarse: long, low, early inspiration and expiration
                t = start_s + (
                    insp * rng.uniform(0.0, 0.5)
                    if rng.random() < 0.7
                    else insp + (dur - insp) * rng.uniform(0.0, 0.8)
                )
                f, d = _loguniform(rng, 100.0, 600.0), rng.uniform(0.010, 0.020)
            ev.crackles.append((t, f, d, level * rng.uniform(0.5, 1.5)))
    faint_w = not wheeze and rng.random() < unannotated
    if wheeze or faint_w:
        n = 2 if rng.random() < 0.2 else 1  # polyphonic now and then
        level = profile.wheeze_level * _loguniform(rng, 1.0, 3.0) * (0.3 if faint_w else 1.0)
        for k in range(n):
            expiratory = rng.random() < 0.65
            a, b = (start_s + insp, end_s) if expiratory else (start_s, start_s + insp)
            d = min(rng.uniform(0.16, 0.9), 0.9 * (b - a))
            d = max(d, 0.16)  # a wheeze lasts > 100 ms by definition (ICBHI)
            t = rng.uniform(a, max(a, b - d))
            f0 = profile.wheeze_f0_hz * rng.uniform(0.85, 1.15) * (1.0 + 0.5 * k)
            ev.wheezes.append(
                (
                    t,
                    d,
                    float(np.clip(f0, 100.0, 1000.0)),
                    rng.uniform(0.85, 1.15),
                    int(rng.integers(1, 4)),
                    level,
                )
            )
    return ev


@dataclass(frozen=True)
class DeviceSound:
    """A recording device's colouring: pass band (Hz), low-band emphasis (corner Hz, gain),
    hiss floor and how much of the room it hears (relative to the inspiration noise)."""

    band_hz: tuple[float, float]
    order: int
    low_boost: tuple[float, float]
    hiss: float
    room: float


DEVICE_SOUND: dict[str, DeviceSound] = {
    # free-field microphone: wide band, hears the room
    "AKGC417L": DeviceSound((80.0, 4000.0), 2, (250.0, 0.0), 0.03, 0.5),
    # acoustic stethoscope recorded through a microphone: dull above ~700 Hz, a bell resonance
    "LittC2SE": DeviceSound((50.0, 1200.0), 2, (220.0, 1.2), 0.02, 0.25),
    # electronic stethoscope (4 kHz): strong low-frequency emphasis, electronic hiss
    "Litt3200": DeviceSound((20.0, 1500.0), 1, (180.0, 1.5), 0.06, 0.1),
    # electronic stethoscope: band-pass, hiss and mains hum
    "Meditron": DeviceSound((60.0, 2000.0), 2, (300.0, 0.4), 0.04, 0.2),
}


def _band(fs: float, low: float, high: float, order: int = 2) -> np.ndarray:
    high = min(high, 0.45 * fs)
    return butter(order, [low, high], btype="bandpass", fs=fs, output="sos")


def _breath_envelope(
    n: int, fs: float, bounds: np.ndarray, exhale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inhale and exhale envelopes ``[n]`` for breaths with boundaries ``bounds`` (s), drawn on a
    1-ms grid and interpolated (they are smooth; the full-rate sine would dominate the cost)."""
    grid = np.arange(0.0, n / fs + 0.002, 0.001)
    k = np.clip(np.searchsorted(bounds, grid, side="right") - 1, 0, bounds.size - 2)
    u = (grid - bounds[k]) / (bounds[k + 1] - bounds[k])
    inh = np.where(u < 0.4, np.sin(np.pi * np.clip(u / 0.4, 0, 1)) ** 1.5, 0.0)
    v = np.clip((u - 0.45) / 0.5, 0.0, 1.0)
    exh = np.sin(np.pi * v) ** 1.5 * exhale
    t = np.arange(n, dtype=np.float32) / np.float32(fs)
    return (np.interp(t, grid, inh).astype(np.float32), np.interp(t, grid, exh).astype(np.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 scaled to unit RMS (estimated on every 8th sample: cheaper, and enough)."""
    return (x / (x[::8].std() + 1e-9)).astype(np.float32)


def _add_crackle(x: np.ndarray, fs: float, onset: float, f: float, d: float, amp: float) -> None:
    i0 = round(onset * fs)
    n = max(4, round(d * fs))
    if i0 < 0 or i0 + n > x.size:
        return
    tt = np.arange(n) / fs
    f = min(f, 0.4 * fs)
    # the period lengthens along the crackle (as in recorded crackles), quick rise, decay
    phase = 2 * np.pi * f * tt * (1.0 - 0.25 * tt / d)
    env = (1.0 - np.exp(-tt / 0.0004)) * np.exp(-tt / (d / 4.0))
    x[i0 : i0 + n] += (amp * env * np.sin(phase)).astype(np.float32)


def _add_tone(
    x: np.ndarray,
    fs: float,
    onset: float,
    d: float,
    f0: float,
    glide: float,
    n_h: int,
    amp: float,
    vibrato: float = 0.01,
) -> None:
    i0 = round(onset * fs)
    n = round(d * fs)
    i0, i1 = max(i0, 0), min(i0 + n, x.size)
    if i1 - i0 < 8:
        return
    tt = np.arange(i1 - i0) / fs
    f = f0 * (1.0 + (glide - 1.0) * tt / d) * (1.0 + vibrato * np.sin(2 * np.pi * 6.0 * tt))
    phase = 2 * np.pi * np.cumsum(f) / fs
    ramp = min(0.02, d / 4)
    env = np.clip(np.minimum(tt, tt[-1] - tt) / ramp, 0.0, 1.0)
    y = np.zeros(tt.size)
    for h in range(1, n_h + 1):
        if h * f0 * max(glide, 1.0) * 1.02 < 0.45 * fs:  # no aliased harmonics at 4 kHz
            y += np.sin(h * phase) * 0.45 ** (h - 1)
    x[i0:i1] += (amp * env * y).astype(np.float32)


def render_recording(
    rng: np.random.Generator,
    fs: float,
    duration_s: float,
    breath_bounds: Sequence[float],
    events: Sequence[CycleEvents],
    profile: Profile,
    device: str,
    location: str,
    adventitious_gain: float,
) -> np.ndarray:
    """One recording at ``fs`` Hz: float32 ``[round(duration_s * fs)]`` with peak 0.2-0.8.

    Args:
        rng: random source of this recording (its own noise; events are shared).
        fs: the file's rate in Hz.
        duration_s: length in s.
        breath_bounds: boundaries of all breaths in s (annotated cycles and the unannotated
            ones before and after them), increasing, covering ``[0, duration_s]``.
        events: adventitious sounds of the annotated cycles.
        profile: the patient's :class:`Profile`.
        device: one of :data:`DEVICE_SOUND`.
        location: chest location (``Tc`` hears the breath louder and higher).
        adventitious_gain: how strongly this location hears the crackles and wheezes (0.5-1.2).
    """
    n = round(duration_s * fs)
    bounds = np.asarray(breath_bounds, dtype=np.float64)
    low, high = profile.breath_band_hz
    if location == "Tc":  # tracheal breath sounds: louder, higher, expiration as loud
        low, high = low * 1.5, high * 1.6
    exhale = 0.9 if location == "Tc" else profile.exhale_level
    inh, exh = _breath_envelope(n, fs, bounds, exhale)
    white = rng.standard_normal(n, dtype=np.float32)
    # each band's noise at unit RMS before the envelope: the inspiration peak RMS is 1
    x = _unit(sosfilt(_band(fs, low, high), white)) * inh
    x += _unit(sosfilt(_band(fs, low * 0.8, high * 0.7), white)) * exh
    for ev in events:
        for onset, f, d, peak in ev.crackles:
            _add_crackle(x, fs, onset, f, d, peak * adventitious_gain)
        for onset, d, f0, glide, n_h, amp in ev.wheezes:
            _add_tone(x, fs, onset, d, f0, glide, n_h, amp * adventitious_gain)
    heart = profile.heart_level * (1.8 if location in ("Al", "Ll") else 1.0)
    beat = rng.uniform(0.0, 1.0 / profile.heart_rate_hz)
    while beat < duration_s - 0.2:  # S1 then S2 ~0.3 s later: low, short thumps
        _add_crackle(x, fs, beat, rng.uniform(30.0, 60.0), 0.06, heart)
        _add_crackle(x, fs, beat + 0.3, rng.uniform(40.0, 70.0), 0.045, 0.6 * heart)
        beat += (1.0 / profile.heart_rate_hz) * rng.uniform(0.95, 1.05)
    for onset in np.sort(rng.uniform(0.0, duration_s, rng.poisson(duration_s / 30.0))):
        # friction / movement clicks: broadband, longer than crackles
        k = round(rng.uniform(0.02, 0.08) * fs)
        i0 = round(onset * fs)
        seg = rng.standard_normal(min(k, n - i0)).astype(np.float32)
        seg *= np.exp(-np.arange(seg.size) / (0.3 * k)) * rng.uniform(0.3, 2.0)
        x[i0 : i0 + seg.size] += seg
    for onset in rng.uniform(0.0, duration_s, rng.poisson(duration_s / 40.0)):
        # short squeaks (< 100 ms): tonal but too short to be annotated as wheezes
        _add_tone(
            x,
            fs,
            onset,
            rng.uniform(0.03, 0.09),
            rng.uniform(200.0, 900.0),
            1.0,
            2,
            rng.uniform(0.2, 1.0),
        )
    dev = DEVICE_SOUND[device]
    y = sosfilt(_band(fs, *dev.band_hz, order=dev.order), x).astype(np.float32)
    corner, gain = dev.low_boost
    if gain > 0:
        y += np.float32(gain) * sosfilt(butter(1, corner, fs=fs, output="sos"), x).astype(
            np.float32
        )
    room = sosfilt(
        butter(1, rng.uniform(300.0, 1500.0), fs=fs, output="sos"),
        rng.standard_normal(n, dtype=np.float32),
    )
    y += _unit(room) * np.float32(dev.room * rng.uniform(0.3, 1.5))
    y += rng.standard_normal(n, dtype=np.float32) * np.float32(dev.hiss * rng.uniform(0.5, 1.5))
    if device == "Meditron":
        hum = np.sin(2 * np.pi * 50.0 / fs * np.arange(n, dtype=np.float32))
        y += np.float32(0.05 * rng.uniform(0.0, 1.0)) * hum
    # the files were not normalised: peak 0.2-0.8 of full scale
    y *= rng.uniform(0.2, 0.8) / (np.max(np.abs(y)) + 1e-9)
    return y.astype(np.float32)
