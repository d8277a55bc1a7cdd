"""YASA, trained on real NSRR nights and never on ours, stages the synthetic nights well.

The judge reads the written files back (Fpz-Cz + horizontal EOG through the benchmark's own
``yasa_night_probs``, stages through the project's hypnogram reader). ``benchmarks/
bench_synth_sleep.py`` runs the same judge over the default synthetic set and several seeds.
"""

from __future__ import annotations

import pytest

from sleepbench.tasks.sleep_edf.synth import write_synthetic_sleep_edf
from sleepbench.tasks.sleep_edf.synth_judge import AASM, judge_nights


def test_yasa_stages_synthetic_nights(tmp_path) -> None:
    pytest.importorskip("yasa")
    # two default-length nights (4 h): YASA smooths its features over 7.5 min and normalises
    # them per night, so it needs whole nights with their cycles
    nights = write_synthetic_sleep_edf(tmp_path, n_subjects=2, nights_per_subject=1, minutes=240)
    scores = judge_nights(nights)
    assert scores["kappa"] >= 0.65, scores
    for stage in AASM:
        assert scores["f1"][stage] >= 0.4, (stage, scores)
    assert min(scores["per_night_kappa"]) >= 0.6, scores
