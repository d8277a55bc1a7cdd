"""The list files of a synthetic ICBHI copy: which side of the official 60/40 list each recording
is on (with the real list's device shift and a patient on both sides), and the metadata files
(official list, patient folds, diagnoses, demographics) in the real formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["official_sides", "write_metadata"]


def official_sides(
    rng: np.random.Generator,
    patients: Sequence[Any],
    n_recs: dict[str, int],
    test_share: float,
    litt3200_test_share: float = 0.9,
) -> dict[str, str]:
    """The official list's side of each patient's recordings, per patient and device.

    Args:
        rng: random source.
        patients: the synthetic patients (``pid``, ``devices``).
        n_recs: recordings per patient id.
        test_share: share of the recordings on the test side.
        litt3200_test_share: chance that a Litt3200 patient goes to the test side (the real list:
            55 of 60 recordings); the bridge patient's Litt3200 recordings go there with it too.

    Returns:
        ``"<pid>/<device>"`` -> ``"train"`` / ``"test"`` (the bridge patient is split by device,
        so that one patient is on both sides, as the real patients 156 and 218).
    """
    side: dict[str, str] = {}
    total = sum(n_recs.values())
    test = 0
    order = rng.permutation(len(patients))
    free = []
    for i in order:
        p = patients[i]
        devices = {d.split("*")[0] for d in p.devices}
        if len(devices) > 1:  # the bridge patient: Meditron train, Litt3200 test (or, with
            # the chance 1 - litt3200_test_share, the other way round)
            lit = "test" if rng.random() < litt3200_test_share else "train"
            for d in devices:
                side[f"{p.pid}/{d}"] = (
                    lit if d == "Litt3200" else {"test": "train", "train": "test"}[lit]
                )
            test += sum((d == "Litt3200") == (lit == "test") for d in p.devices)
            continue
        (d,) = devices
        if d == "Litt3200":  # the real split: 55 of 60 Litt3200 recordings in test
            side[f"{p.pid}/{d}"] = "test" if rng.random() < litt3200_test_share else "train"
        elif d == "LittC2SE":  # the real split: all LittC2SE in train
            side[f"{p.pid}/{d}"] = "train"
        else:
            free.append((p, d))
            continue
        test += n_recs[p.pid] if side[f"{p.pid}/{d}"] == "test" else 0
    for p, d in free:
        n = n_recs[p.pid]
        side[f"{p.pid}/{d}"] = "test" if test + n / 2 <= test_share * total else "train"
        test += n if side[f"{p.pid}/{d}"] == "test" else 0
    return side


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def write_metadata(
    meta: Path, rng: np.random.Generator, patients: Sequence[Any], split: dict[str, str]
) -> None:
    """The four metadata files in the real formats (separators, line ends, NA): the official
    list (``split``: stem -> side), the patient fold list, diagnoses and demographics, in
    ``meta``."""
    (meta / "official_split.txt").write_text(
        "\n".join(f"{stem}\t{split[stem]}" for stem in sorted(split))
    )
    order = rng.permutation(len(patients))
    folds = {patients[j].pid: int(k % 5) for k, j in enumerate(order)}
    (meta / "patient_list_foldwise.txt").write_text(
        "".join(f"{pid} {fold}\n" for pid, fold in sorted(folds.items(), key=lambda x: x[1]))
    )
    (meta / "patient_diagnosis.txt").write_text(
        "\n".join(f"{p.pid}\t{p.diagnosis}" for p in patients)
    )
    rows = []
    for p in patients:
        sex = "M" if rng.random() < 0.6 else "F"
        if p.child:
            age = rng.uniform(0.3, 17.0)
            age_s = _num(age) if age < 2 else f"{round(age)}"
            weight = 3.5 + 3.0 * age + rng.normal(0.0, 2.0)
            height = 55.0 + 6.5 * age + rng.normal(0.0, 4.0)
            missing = rng.random() < 0.1  # the real file has children without weight/height
            w_s, h_s = ("NA", "NA") if missing else (_num(weight), f"{round(height)}")
            rows.append(f"{p.pid} {age_s} {sex} NA {w_s} {h_s}")
        else:
            age = rng.uniform(55.0, 88.0) if p.diagnosis == "COPD" else rng.uniform(19.0, 85.0)
            bmi = "NA" if rng.random() < 0.05 else _num(rng.uniform(18.0, 37.0))
            rows.append(f"{p.pid} {round(age)} {sex} {bmi} NA NA")
    (meta / "demographic_info.txt").write_bytes(("\r\n" + "\r\n".join(rows)).encode())
