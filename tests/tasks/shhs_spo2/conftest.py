"""Fixtures shared by the synthetic-SHHS tests: one written 40-participant set per session."""

from __future__ import annotations

import pytest

from sleepbench.tasks.shhs_spo2.synth import write_synthetic_shhs

#: hours per synthetic night in the shared set
HOURS = 6.0


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    """(root, records) of 40 SHHS1 participants (+ their SHHS2 follow-ups), seed 0."""
    root = tmp_path_factory.mktemp("shhs")
    return root, write_synthetic_shhs(root, n_subjects=40, hours=HOURS, seed=0)
