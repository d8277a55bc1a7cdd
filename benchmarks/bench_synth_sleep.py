"""Synthetic Sleep-EDF nights judged by YASA, and how fast they are generated.

YASA's pretrained EEG + EOG classifier (trained on real NSRR nights, never on ours) stages every
generated night from its files (Fpz-Cz + horizontal EOG, read back with the project's EDF and
hypnogram readers); the figures are Cohen's κ, accuracy, per-stage F1 and the confusion matrix,
pooled over the nights of each seed, plus the mean and worst over seeds. Generation speed is
the wall time of ``write_synthetic_sleep_edf`` (signals + EDF files) per night and per hour.

Usage: ``python benchmarks/bench_synth_sleep.py [--seeds 0 1 2] [--subjects N] [--nights N]
[--minutes M]`` (defaults: the ``synthetic:`` block of the sleep_edf config, seed 0).
Writes ``benchmarks/out/synth_sleep.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

from sleepbench.config import load_config  # noqa: E402
from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf  # noqa: E402
from sleepbench.tasks.sleep_edf.synth_judge import AASM, judge_nights  # noqa: E402


def main() -> None:
    synth = load_config("sleep_edf").synthetic
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[int(synth.seed)])
    ap.add_argument("--subjects", type=int, default=int(synth.n_subjects))
    ap.add_argument("--nights", type=int, default=int(synth.nights_per_subject))
    ap.add_argument("--minutes", type=float, default=float(synth.minutes))
    args = ap.parse_args()

    per_seed, gen_s, judge_s, n_nights = {}, 0.0, 0.0, 0
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            nights = write_synthetic_sleep_edf(
                tmp,
                n_subjects=args.subjects,
                nights_per_subject=args.nights,
                minutes=args.minutes,
                seed=seed,
            )
            t1 = time.perf_counter()
            scores = judge_nights(nights)
            judge_s += time.perf_counter() - t1
        gen_s += t1 - t0
        n_nights += len(nights)
        per_seed[str(seed)] = scores
        f1 = " ".join(f"{s} {v:.2f}" for s, v in scores["f1"].items())
        print(f"seed {seed}: kappa {scores['kappa']:.3f}  acc {scores['acc']:.3f}  F1 {f1}")

    kappas = [s["kappa"] for s in per_seed.values()]
    f1s = {st: [s["f1"][st] for s in per_seed.values()] for st in AASM}
    night_kappas = [k for s in per_seed.values() for k in s["per_night_kappa"]]
    hours = n_nights * args.minutes / 60.0
    write_json(
        "synth_sleep",
        {
            "setup": {
                "seeds": args.seeds,
                "subjects": args.subjects,
                "nights_per_subject": args.nights,
                "minutes": args.minutes,
                "judge": "YASA SleepStaging, EEG Fpz-Cz + EOG horizontal, pretrained clf_eeg+eog",
            },
            "yasa": {
                "kappa_mean": float(np.mean(kappas)),
                "kappa_worst_seed": float(np.min(kappas)),
                "kappa_worst_night": float(np.min(night_kappas)),
                "f1_mean": {st: float(np.mean(v)) for st, v in f1s.items()},
                "f1_worst_seed": {st: float(np.min(v)) for st, v in f1s.items()},
                "per_seed": per_seed,
                "confusion_order": list(AASM),
            },
            "speed": {
                "generate_s_per_night": gen_s / n_nights,
                "generate_s_per_hour": gen_s / hours,
                "yasa_s_per_night": judge_s / n_nights,
            },
        },
    )


if __name__ == "__main__":
    main()
