"""shhs_spo2 speed: preprocessing nights/s per core, Mamba scan time vs length, training samples/s.

Usage: ``python benchmarks/bench_shhs_spo2.py [--nights 6] [--device cpu|cuda] [--quick]``.
Writes ``benchmarks/out/shhs_spo2.json``.

- Preprocessing runs in one process (one core): EDF read + XML AHI + SpO2 pipeline per night,
  for each smoother, on synthetic 8-h nights in NSRR layout.
- The pure-PyTorch selective scan is timed for growing sequence lengths ``L``; a least-squares
  line ``t = a + b L`` and the log-log slope show how it grows (1.0 = linear).
- Training throughput: forward + backward + Adam step of MSC-Mamba-LSTM on 8-h inputs, at the
  synthetic-default size and at the paper size (SPECS §3.3).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, write_json  # noqa: E402

from sleepbench.config import load_config  # noqa: E402
from sleepbench.nn.selective_scan import selective_scan  # noqa: E402
from sleepbench.tasks.shhs_spo2.data import (  # noqa: E402
    ShhsSpO2DataModule,
    discover_sources,
    preprocess_record,
)
from sleepbench.tasks.shhs_spo2.module import build_network  # noqa: E402
from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs  # noqa: E402


def _preprocess_all(sources: list, pre: dict) -> None:
    for source in sources:
        preprocess_record(source, pre)


def _scan_step(tensors: tuple[torch.Tensor, ...], device: str) -> None:
    u, delta, a, b, c = tensors
    selective_scan(u, delta, a, b, c, delta_softplus=True).sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()


def _train_step(
    net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, device: str
) -> None:
    opt.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    if device == "cuda":
        torch.cuda.synchronize()


def preprocessing(n_nights: int) -> dict[str, float]:
    """Nights per second on one core, per smoother (EDF + XML + SpO2 pipeline)."""
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_shhs(root, n_subjects=n_nights, visits=("shhs1",), hours=8.0, seed=0)
        sources = discover_sources(root, ["shhs1"], "ahi_a0h3a")
        for smoothing in ("adaptive", "median", "butterworth"):
            cfg = load_config(
                "shhs_spo2", [f"data.root={root}", f"preprocess.smoothing={smoothing}"]
            )
            pre = ShhsSpO2DataModule(cfg).preprocess_config()
            seconds = best_of(functools.partial(_preprocess_all, sources, pre), repeats=2)
            out[f"nights_per_s_per_core_{smoothing}"] = len(sources) / seconds
    return out


def scan_scaling(lengths: list[int], device: str) -> dict[str, object]:
    """Forward + backward time of the selective scan per length, with a linear fit."""
    batch, dim, n_state = 4, 128, 16
    times = []
    for length in lengths:
        g = torch.Generator().manual_seed(0)
        u = torch.randn(batch, dim, length, generator=g).to(device).requires_grad_()
        delta = torch.rand(batch, dim, length, generator=g).to(device)
        a = -torch.rand(dim, n_state, generator=g).to(device)
        b = torch.randn(batch, n_state, length, generator=g).to(device)
        c = torch.randn(batch, n_state, length, generator=g).to(device)
        step = functools.partial(_scan_step, (u, delta, a, b, c), device)
        step()
        times.append(best_of(step, repeats=3))
    x, y = np.asarray(lengths, float), np.asarray(times)
    slope, intercept = np.polyfit(x, y, 1)
    loglog = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    resid = y - (intercept + slope * x)
    r2 = 1.0 - float(resid @ resid) / float(((y - y.mean()) @ (y - y.mean())) or 1.0)
    return {
        "shape": f"B={batch}, D={dim}, N={n_state}, fwd+bwd",
        "lengths": lengths,
        "seconds": [round(t, 5) for t in times],
        "us_per_step_fit": 1e6 * float(slope),
        "intercept_s": float(intercept),
        "linear_fit_r2": r2,
        "loglog_exponent": loglog,
        "time_ratio_longest_vs_shortest": float(y[-1] / y[0]),
        "length_ratio_longest_vs_shortest": float(x[-1] / x[0]),
    }


def training_throughput(device: str, sizes: dict[str, list[str]], batch: int) -> dict[str, float]:
    """Samples per second of a full optimiser step on 8-h (28,800-sample) inputs."""
    out: dict[str, float] = {}
    for name, overrides in sizes.items():
        cfg = load_config("shhs_spo2", overrides)
        net = build_network(cfg).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(batch, 1, int(cfg.preprocess.n_samples), device=device)
        y = torch.randint(0, 4, (batch,), device=device)
        step = functools.partial(_train_step, net, opt, x, y, device)
        step()
        out[f"train_samples_per_s_{name}"] = batch / best_of(step, repeats=3)
        out[f"params_{name}"] = float(sum(p.numel() for p in net.parameters()))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nights", type=int, default=6)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="shorter scan lengths, small model only")
    args = p.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(1)  # per-core figures
    lengths = [256, 512, 1024, 2048] if args.quick else [256, 512, 1024, 2048, 4096, 8192]
    sizes = {
        "synthetic_default": [
            "model.channels=[8,16,32]",
            "model.lstm_hidden=32",
            "model.fusion_hidden=64",
        ]
    }
    if not args.quick:
        sizes["paper"] = []
    t0 = time.perf_counter()
    figures: dict[str, object] = {"device": args.device}
    figures.update(preprocessing(args.nights))
    scan = scan_scaling(lengths, args.device)
    figures["mamba_scan"] = scan
    figures.update(training_throughput(args.device, sizes, args.batch))
    figures["bench_wall_s"] = time.perf_counter() - t0
    print(
        f"selective scan: {scan['us_per_step_fit']:.1f} us per step (R^2 {scan['linear_fit_r2']:.3f}), "
        f"log-log exponent {scan['loglog_exponent']:.2f}; "
        f"{scan['length_ratio_longest_vs_shortest']:.0f}x longer -> "
        f"{scan['time_ratio_longest_vs_shortest']:.1f}x time"
    )
    write_json("shhs_spo2", figures)


if __name__ == "__main__":
    main()
