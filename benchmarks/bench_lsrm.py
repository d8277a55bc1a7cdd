"""Method 003 (LSRM; tasks icbhi_lung and esc50) on the CPU: front-end clips per second,
inference milliseconds per clip at the paper and small sizes, parameter counts.

Usage::

    python benchmarks/bench_lsrm.py            # everything (the paper-size forward takes a minute)
    python benchmarks/bench_lsrm.py --no-paper # skip the paper-size inference timing

Front end: torchaudio log-mel of a batch of 16 clips (ICBHI: 8 s at 16 kHz; ESC-50: 10 s at
32 kHz), best of 3, one torch thread. Inference: the whole classifier (front end + network) in
eval mode on a batch of ``--batch`` clips, best of 3, one torch thread, per clip. Parameter counts
at every size and branch setting for 4 (ICBHI) and 50 (ESC-50) classes, counted on the meta device
(no weights allocated). Writes ``benchmarks/out/lsrm.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_of, write_json  # noqa: E402

from sleepbench.config import load_config  # noqa: E402
from sleepbench.methods.lsrm.frontend import (  # noqa: E402
    ESC50_FRONT_END,
    ICBHI_FRONT_END,
    FrontEndConfig,
    LogMelFrontEnd,
)
from sleepbench.methods.lsrm.module import build_classifier  # noqa: E402
from sleepbench.methods.lsrm.network import BRANCHES, SIZES, count_parameters  # noqa: E402

#: task -> (front end, clip seconds, classes)
SETTINGS: dict[str, tuple[FrontEndConfig, float, int]] = {
    "icbhi_lung": (ICBHI_FRONT_END, 8.0, 4),
    "esc50": (ESC50_FRONT_END, 10.0, 50),
}


def frontend_clips_per_s(fe: FrontEndConfig, clip_s: float, batch: int = 16) -> float:
    """Clips per second through :class:`LogMelFrontEnd` (no grad)."""
    module = LogMelFrontEnd(fe).eval()
    wave = torch.randn(batch, round(clip_s * fe.sample_rate)) * 0.1
    with torch.no_grad():
        module(wave)  # warm-up
        seconds = best_of(lambda: module(wave))
    return batch / seconds


def inference_ms_per_clip(task: str, size: str, batch: int) -> float:
    """Milliseconds per clip of the task's classifier (front end + network), eval mode."""
    fe, clip_s, n_classes = SETTINGS[task]
    cfg = load_config(task, [f"model.size={size}"])
    net, _ = build_classifier(cfg, n_classes, fe)
    net.eval()
    wave = torch.randn(batch, round(clip_s * fe.sample_rate)) * 0.1
    with torch.no_grad():
        net(wave)  # warm-up
        seconds = best_of(lambda: net(wave))
    return 1000.0 * seconds / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-paper", action="store_true", help="skip the paper-size timing")
    parser.add_argument("--batch", type=int, default=4, help="clips per timed forward")
    args = parser.parse_args()
    torch.set_num_threads(1)  # per core
    torch.manual_seed(0)
    figures: dict[str, object] = {}
    for task, (fe, clip_s, n_classes) in SETTINGS.items():
        figures[f"{task}_frontend_clips_per_s"] = round(frontend_clips_per_s(fe, clip_s), 1)
        sizes = ["small"] if args.no_paper else ["small", "paper"]
        for size in sizes:
            figures[f"{task}_inference_ms_per_clip_{size}_cpu"] = round(
                inference_ms_per_clip(task, size, args.batch), 1
            )
        figures[f"{task}_params"] = {
            size: {b: count_parameters(size, n_classes, b) for b in BRANCHES} for size in SIZES
        }
    figures["paper_params_reported"] = 67_150_000
    write_json("lsrm", figures)


if __name__ == "__main__":
    main()
