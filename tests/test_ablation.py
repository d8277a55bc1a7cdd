"""The generic ablation runner's variant lookup and table."""

from __future__ import annotations

import pytest

from sleepbench.ablation import ablation_table, ablation_variants


def test_variants_come_from_the_task_config() -> None:
    variants = ablation_variants("apnea_ecg", "head")
    assert variants == {
        "pooled": ["model.head_input=pooled"],
        "temporal": ["model.head_input=temporal"],
    }
    with pytest.raises(KeyError, match="head"):
        ablation_variants("apnea_ecg", "no_such_ablation")


def test_table_has_one_line_per_variant() -> None:
    rows = [
        {"config": {"ablation_variant": v}, "data": {"synthetic": True}, "metrics": {"test/f1": f}}
        for v, f in (("pooled", 0.25), ("temporal", 0.75))
    ]
    table = ablation_table("apnea_ecg", "head", rows)
    assert "| pooled | SYNTHETIC | 0.250 / –" in table
    assert "| temporal | SYNTHETIC | 0.750 / –" in table
