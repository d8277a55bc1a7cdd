"""psg_audio_osa data path: feature build speed per core, peak memory while building a 48-kHz
night, cache bytes per hour of audio, and the synthetic default's synthesis + cache time.

Usage::

    python benchmarks/bench_psg_audio.py                 # a 1-h 48-kHz night (+ synthetic default)
    python benchmarks/bench_psg_audio.py --full-night    # also the 8-h 48-kHz night the issue names
    python benchmarks/bench_psg_audio.py --no-synthetic  # skip the synthetic-default timing

Each 48-kHz night is written with the synthetic writer (``Mic`` only, 1-h parts: 8 h is about
2.7 GB of EDF) into a temporary folder and preprocessed in a **fresh subprocess** with one torch
thread, which reports its wall time and peak RSS (``VmHWM``) and its peak right after the
imports (so the import baseline can be told apart). Writes ``benchmarks/out/psg_audio_osa.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

from sleepbench.cache.build import build_cache  # noqa: E402
from sleepbench.tasks.psg_audio_osa.data import (  # noqa: E402
    PsgAudioDataModule,
    preprocess_night,
)
from sleepbench.tasks.psg_audio_osa.network import inference_ms_per_minute  # noqa: E402
from sleepbench.tasks.psg_audio_osa.synth import write_synthetic_psg_audio  # noqa: E402

PRE = {"channel": "Mic", "gap_tolerance_s": 1.0, "annotations": "APNEA_RML"}
GIB = 1024**3


def _peak_rss_bytes() -> int:
    """This process's peak resident set size: ``VmHWM`` of ``/proc/self/status``.

    ``ru_maxrss`` is not used: Linux carries it across ``execve``, so a child started by a
    parent that once held gigabytes (writing the night) would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB assumed


def _measure(root: str) -> None:
    """Subprocess body: preprocess the one night under ``root`` with one thread; print JSON."""
    torch.set_num_threads(1)
    rss_imports = _peak_rss_bytes()
    (source,) = PsgAudioDataModule.list_sources(Path(root), None)
    t0 = time.perf_counter()
    rec = preprocess_night(source, PRE)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_bytes()
    print(
        json.dumps(
            {
                "audio_s": rec.attrs["duration_s"],
                "build_s": seconds,
                "peak_rss_bytes": peak,
                "rss_after_imports_bytes": rss_imports,
                "x_bytes": int(rec.arrays["x"].nbytes),
            }
        )
    )


def night_48k(hours: float, workdir: Path) -> dict[str, float]:
    """Write a ``hours``-long 48-kHz night, build its features in a subprocess, and cache it."""
    root = workdir / f"night_{hours:g}h"
    t0 = time.perf_counter()
    write_synthetic_psg_audio(
        root, n_subjects=1, minutes=hours * 60.0, fs_hz=48000.0, seed=7, part_s=3600.0,
        channels=("Mic",),
    )  # fmt: skip
    synth_s = time.perf_counter() - t0
    edf_bytes = sum(p.stat().st_size for p in (root / "APNEA_EDF").rglob("*.edf"))
    out = subprocess.run(
        [sys.executable, __file__, "--_measure", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    m = json.loads(out.stdout.strip().splitlines()[-1])
    sources = PsgAudioDataModule.list_sources(root, None)
    path = build_cache(
        "psg_audio_osa", sources, preprocess_night, PRE, workdir / f"c{hours:g}", "b"
    )
    hours_audio = m["audio_s"] / 3600.0
    return {
        "audio_h": round(hours_audio, 3),
        "edf_gb": round(edf_bytes / 1e9, 3),
        "synthesis_s": round(synth_s, 1),
        "build_s_one_thread": round(m["build_s"], 1),
        "realtime_factor_per_core": round(m["audio_s"] / m["build_s"], 1),
        "peak_rss_gib": round(m["peak_rss_bytes"] / GIB, 3),
        "rss_after_imports_gib": round(m["rss_after_imports_bytes"] / GIB, 3),
        "x_uint8_gib": round(m["x_bytes"] / GIB, 3),
        "cache_mb_per_hour": round(path.stat().st_size / 1e6 / hours_audio, 2),
    }


def synthetic_default(workdir: Path, workers: int) -> dict[str, float]:
    """Synthesis + cache build time of the synthetic default (config ``synthetic`` block)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(
        Path(__file__).resolve().parents[1] / "sleepbench/tasks/psg_audio_osa/config.yaml"
    ).synthetic
    root = workdir / "synthetic"
    t0 = time.perf_counter()
    nights = write_synthetic_psg_audio(
        root,
        n_subjects=int(cfg.n_subjects),
        minutes=float(cfg.minutes),
        fs_hz=float(cfg.fs_hz),
        seed=int(cfg.seed),
        part_s=float(cfg.part_s),
    )
    synth_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    sources = PsgAudioDataModule.list_sources(root, None)
    path = build_cache(
        "psg_audio_osa", sources, preprocess_night, PRE, workdir / "cs", "b", workers=workers
    )
    cache_s = time.perf_counter() - t1
    hours = sum(n.duration_s for n in nights) / 3600.0
    return {
        "nights": len(nights),
        "audio_h": round(hours, 2),
        "fs_hz": float(cfg.fs_hz),
        "synthesis_s": round(synth_s, 1),
        "cache_build_s": round(cache_s, 1),
        "build_workers": workers,
        "edf_mb": round(sum(p.stat().st_size for p in root.rglob("*.edf")) / 1e6, 1),
        "cache_mb": round(path.stat().st_size / 1e6, 1),
        "severity_counts": [sum(n.severity == k for n in nights) for k in range(4)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-night", action="store_true", help="also the 8-h 48-kHz night")
    parser.add_argument("--hours", type=float, default=1.0, help="length of the default night")
    parser.add_argument("--no-synthetic", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--_measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._measure:
        _measure(args._measure)
        return
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        figures[f"night_48k_{args.hours:g}h"] = night_48k(args.hours, work)
        if args.full_night:
            figures["night_48k_8h"] = night_48k(8.0, work)
        if not args.no_synthetic:
            figures["synthetic_default"] = synthetic_default(work, args.workers)
    torch.set_num_threads(1)  # per core, like the feature figures
    # the seed reports 11.60 ms per minute of audio on an RTX 5070 Ti
    for size in ("paper", "small"):
        figures[f"crnn_inference_ms_per_minute_{size}_cpu"] = inference_ms_per_minute(size)
    figures["goals"] = {
        "cache_mb_per_hour": "<= 60",
        "realtime_factor_per_core": ">= 200",
        "peak_rss_gib_8h_48k": "< 3",
    }
    write_json("psg_audio_osa", figures)


if __name__ == "__main__":
    main()
