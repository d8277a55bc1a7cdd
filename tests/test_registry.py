"""Registry completeness: every registered task carries everything the benchmark promises."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from sleepbench.config import load_config
from sleepbench.data.datamodule import CachedDataModule
from sleepbench.registry import TASK_PACKAGES, get_task, task_names

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", task_names())
def test_task_is_complete(name: str) -> None:
    task = get_task(name)
    spec = task.spec
    assert spec.name == name
    assert spec.dataset and spec.modality and spec.paper and spec.model
    assert spec.protocols, "a task needs at least one protocol"
    assert spec.primary_metric in (spec.headline_metrics or (spec.primary_metric,))
    assert issubclass(task.datamodule, CachedDataModule)
    assert callable(task.build_module) and callable(task.write_synthetic)
    assert callable(task.export_spec), "a task needs an export spec (Task.export_ref)"
    from sleepbench.deploy.predict import Predictor

    assert isinstance(task.predictor, type) and issubclass(task.predictor, Predictor), (
        "a task needs a predictor for `sleepbench predict` / `serve` (Task.predict_ref)"
    )
    assert task.predictor.accepts, "the predictor says which files make one recording"

    cfg = load_config(name)
    assert cfg.task == name
    assert cfg.protocol is None or cfg.protocol in spec.protocols
    assert OmegaConf.select(cfg, "synthetic") is not None, (
        "a synthetic generator config is required"
    )
    assert OmegaConf.select(cfg, "synthetic_overrides") is not None

    ref = yaml.safe_load((task.folder / "reference.yaml").read_text())
    # a seed that publishes nothing on this task's data (method 003 on ICBHI cycles) shows the
    # best published numbers of other methods instead, labelled as such
    assert ref.get("paper") and (ref.get("results") or ref.get("other_methods")), (
        "reference.yaml needs the paper and its numbers (or other methods' numbers)"
    )
    for entry in ref.get("results") or []:
        assert entry["protocol"] and entry["source"] and entry["metrics"]
    for entry in ref.get("other_methods") or []:
        assert entry.get("method") and (entry.get("metrics") or entry.get("metric"))
        if entry.get("protocol"):
            assert entry["protocol"] in spec.protocols or not entry.get("metrics")
    card = REPO / spec.data_card
    assert card.exists(), f"missing data card {card}"
    text = card.read_text().lower()
    for section in ("source", "licence", "access", "channels", "labels", "protocol", "pitfalls"):
        assert section in text, f"data card {card.name} lacks a '{section}' section"


def test_unknown_task_lists_registered_names() -> None:
    with pytest.raises(KeyError, match=next(iter(TASK_PACKAGES))):
        get_task("no_such_task")


def _dotlist(tree: dict, prefix: str = "") -> list[str]:
    """A nested mapping as ``key=value`` overrides (lists and scalars as YAML flow values)."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out += _dotlist(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={yaml.safe_dump(value, default_flow_style=True).strip()}")
    return [o.removesuffix("\n...") for o in out]


@pytest.mark.parametrize("name", task_names())
def test_shipped_overrides_pass_the_config_check(name: str) -> None:
    """The task's own synthetic_overrides and every ablation variant are valid overrides."""
    cfg = load_config(name)
    synthetic = OmegaConf.to_container(cfg.synthetic_overrides, resolve=True) or {}
    load_config(name, _dotlist(synthetic))
    for variants in (OmegaConf.to_container(cfg.ablations, resolve=True) or {}).values():
        for overrides in variants.values():
            load_config(name, [str(o) for o in overrides])
