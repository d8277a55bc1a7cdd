"""sleep_edf speed: cache build per hour of PSG, sequences/s from the cache vs decoding the EDF,
inference milliseconds per night (TinyUStaging at the paper's size and the synthetic default's,
YASA for comparison).

Usage: ``python benchmarks/bench_sleep_edf.py [--nights 4] [--hours 4] [--device cpu|cuda]``.
Writes ``benchmarks/out/sleep_edf.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, write_json  # noqa: E402

from sleepbench.cache.build import build_cache  # noqa: E402
from sleepbench.cache.store import CacheStore  # noqa: E402
from sleepbench.config import load_config, to_plain  # noqa: E402
from sleepbench.data.covering import covering_windows  # noqa: E402
from sleepbench.data.windows import WindowDataset, WindowIndex, regular_windows  # noqa: E402
from sleepbench.tasks.sleep_edf.data import (  # noqa: E402
    EPOCH_S,
    SleepEDFDataModule,
    preprocess_night,
)
from sleepbench.tasks.sleep_edf.module import build_module  # noqa: E402
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf  # noqa: E402

SEQ = 31


def cache_and_loader(root: Path, cache_dir: Path, n_items: int) -> dict[str, float]:
    """Cache build seconds per hour of PSG; random 31-epoch sequences/s, cache vs EDF decoding.

    Without a cache every item must read its night's EDF channels, trim them to the hypnogram,
    resample and robust-scale the whole night (the scaling statistics are per night) before the
    sequence can be cut out: that is what the "EDF" figure times.
    """
    preprocess = to_plain(load_config("sleep_edf").preprocess)
    sources = SleepEDFDataModule.list_sources(root, None)
    t0 = time.perf_counter()
    path = build_cache(
        "sleep_edf", sources, preprocess_night, preprocess, cache_dir, "bench", progress=False
    )
    build_s = time.perf_counter() - t0
    store = CacheStore(path)
    samples = round(EPOCH_S * float(preprocess["fs_hz"]))
    index = WindowIndex.concat(
        regular_windows(i, int(r.attrs["n_epochs"]), samples, SEQ, 1)
        for i, r in enumerate(store.records)
    )
    ds = WindowDataset(store, index)
    picks = np.random.default_rng(0).integers(0, len(ds), n_items)
    cache_s = best_of(lambda: [ds[int(i)] for i in picks], repeats=2)

    n_decode = max(1, n_items // 50)

    def decode() -> None:
        for i in picks[:n_decode]:
            rec = preprocess_night(sources[int(index.record[i])], preprocess)
            _ = rec.arrays["x"][:, int(index.x_start[i]) : int(index.x_stop[i])]

    decode_s = best_of(decode, repeats=1) * n_items / n_decode
    hours = sum(int(r.attrs["n_signal_epochs"]) for r in store.records) * EPOCH_S / 3600
    return {
        "cache_build_s_per_hour_of_psg": build_s / hours,
        "cache_sequences_per_s": n_items / cache_s,
        "edf_decode_sequences_per_s": n_items / decode_s,
        "cache_speedup": decode_s / cache_s,
    }


def inference_ms_per_night(
    overrides: list[str], device: str, hours: float, batch: int = 16
) -> float:
    """Milliseconds to stage one night of ``hours`` (covering windows, both EEG views averaged)."""
    cfg = load_config("sleep_edf", overrides)
    module = build_module(cfg, None).to(device).eval()
    seq, fs = int(cfg.data.seq_epochs), float(cfg.preprocess.fs_hz)
    samples = round(EPOCH_S * fs)
    n_epochs = int(hours * 3600 / EPOCH_S)
    windows = covering_windows(0, n_epochs, samples, seq)
    night = torch.randn(3, n_epochs * samples, device=device)
    batches = [
        torch.stack(
            [
                night[:, a:b]
                for a, b in zip(windows.x_start[i : i + batch], windows.x_stop[i : i + batch])
            ]
        )
        for i in range(0, len(windows), batch)
    ]
    with torch.inference_mode():
        module.predict_probs(batches[0])  # warm-up

        def night_pass() -> None:
            for x in batches:
                module.predict_probs(x)
            if device == "cuda":
                torch.cuda.synchronize()

        return 1000 * best_of(night_pass, repeats=2)


def yasa_ms_per_night(root: Path) -> float:
    """Milliseconds YASA takes on the first synthetic night (EDF read + features + LightGBM)."""
    from sleepbench.tasks.sleep_edf.yasa_baseline import yasa_night_probs

    source = SleepEDFDataModule.list_sources(root, None)[0]
    from sleepbench.io.edf import read_edf_header

    n = int(read_edf_header(source.paths[0])["duration_s"] // EPOCH_S)
    t0 = time.perf_counter()
    yasa_night_probs(Path(source.paths[0]), "EEG Fpz-Cz", "EOG horizontal", 0, n)
    return 1000 * (time.perf_counter() - t0)


def main() -> None:
    """Run the benchmarks and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--nights", type=int, default=4)
    p.add_argument("--hours", type=float, default=4.0)
    p.add_argument("--sequences", type=int, default=500)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    figures: dict[str, float | str] = {"night_hours": args.hours}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_synthetic_sleep_edf(
            root, n_subjects=args.nights, nights_per_subject=1, hours=args.hours
        )
        figures |= cache_and_loader(root, Path(tmp) / "cache", args.sequences)
        figures["yasa_ms_per_night_cpu"] = yasa_ms_per_night(root)
    paper = ["data.seq_epochs=31"]
    small = ["data.seq_epochs=15", "preprocess.fs_hz=64", "model.init_filters=4"]
    for name, overrides in (("paper_size", paper), ("synthetic_default", small)):
        figures[f"inference_ms_per_night_{name}_{args.device}"] = inference_ms_per_night(
            overrides, args.device, args.hours
        )
    write_json("sleep_edf", figures)


if __name__ == "__main__":
    main()
