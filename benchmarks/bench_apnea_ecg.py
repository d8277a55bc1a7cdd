"""apnea_ecg speed: windows/s from the HDF5 cache vs decoding WFDB each time; inference latency.

Usage: ``python benchmarks/bench_apnea_ecg.py [--minutes 240] [--device cpu|cuda]``.
Writes ``benchmarks/out/apnea_ecg.json``.
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

from sleepbench.cache.build import SourceRecord, build_cache  # noqa: E402
from sleepbench.cache.store import CacheStore  # noqa: E402
from sleepbench.data.windows import WindowDataset, WindowIndex, regular_windows  # noqa: E402
from sleepbench.io.apnea_ecg_labels import read_apnea_ecg_record  # noqa: E402
from sleepbench.tasks.apnea_ecg.data import MINUTE_SAMPLES, preprocess_record  # noqa: E402
from sleepbench.tasks.apnea_ecg.network import ApneaECGNet  # noqa: E402
from sleepbench.tasks.apnea_ecg.synth import write_synthetic_apnea_ecg  # noqa: E402


def loader_throughput(root: Path, cache_dir: Path, n_windows: int) -> dict[str, float]:
    """Random-access windows per second: cache (lazy h5py) vs re-reading the WFDB record."""
    names = sorted(p.stem for p in root.glob("[abc]*.hea"))
    sources = [
        SourceRecord(n, n, (root / f"{n}.hea", root / f"{n}.dat", root / f"{n}.apn")) for n in names
    ]
    t0 = time.perf_counter()
    path = build_cache(
        "apnea_ecg", sources, preprocess_record, {"max_nan_run_s": 10.0}, cache_dir, "bench"
    )
    build_s = time.perf_counter() - t0
    store = CacheStore(path)
    index = WindowIndex.concat(
        regular_windows(i, int(r.attrs["n_minutes"]), MINUTE_SAMPLES)
        for i, r in enumerate(store.records)
    )
    ds = WindowDataset(store, index)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(ds), n_windows)
    cache_s = best_of(lambda: [ds[int(i)] for i in picks], repeats=2)

    def decode() -> None:
        for i in picks[: max(1, n_windows // 20)]:
            rec = read_apnea_ecg_record(root / names[int(index.record[i])])
            ecg = next(iter(rec.signals.values())).data
            _ = ecg[int(index.x_start[i]) : int(index.x_stop[i])]

    decode_s = best_of(decode, repeats=1) * 20
    hours = sum(int(r.attrs["n_minutes"]) for r in store.records) / 60
    return {
        "cache_windows_per_s": n_windows / cache_s,
        "wfdb_decode_windows_per_s": n_windows / decode_s,
        "speedup": decode_s / cache_s,
        "cache_build_s_per_hour_of_ecg": build_s / hours,
    }


def inference_ms_per_hour(size: str, device: str, batch: int = 60) -> float:
    """Forward-pass milliseconds per hour of ECG (60 one-minute windows) in eval mode."""
    net = ApneaECGNet(size=size).to(device).eval()
    x = torch.randn(batch, 1, MINUTE_SAMPLES, device=device)
    with torch.inference_mode():
        net(x)  # warm-up

        def step() -> None:
            net(x)
            if device == "cuda":
                torch.cuda.synchronize()

        seconds = best_of(step, repeats=3)
    return 1000 * seconds * (60 / batch)


def main() -> None:
    """Run the benchmarks and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=int, default=240)
    p.add_argument("--records", type=int, default=6)
    p.add_argument("--windows", type=int, default=2000)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_synthetic_apnea_ecg(root, n_released=args.records, n_withheld=0, minutes=args.minutes)
        figures = loader_throughput(root, Path(tmp) / "cache", args.windows)
    for size in ("base", "small", "tiny"):
        figures[f"inference_ms_per_hour_{size}_{args.device}"] = inference_ms_per_hour(
            size, args.device
        )
    write_json("apnea_ecg", figures)


if __name__ == "__main__":
    main()
