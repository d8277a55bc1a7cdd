"""Run configuration: base < task config < dotlist overrides; the hash ignores runtime-only keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sleepbench.config import (
    apply_synthetic_overrides,
    config_hash,
    default_cache_dir,
    default_data_root,
    load_config,
    to_plain,
)

TASK_YAML = """
protocol: official
data:
  batch_size: 16
optim:
  lr: 1.0e-3
trainer:
  max_epochs: 20
synthetic_overrides:
  trainer:
    max_epochs: 2
  data:
    batch_size: 4
"""


@pytest.fixture
def task_folder(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(TASK_YAML)
    return tmp_path


def test_layers_merge_base_then_task_then_overrides(task_folder: Path) -> None:
    cfg = load_config("toy", ["trainer.max_epochs=5", "data.root=/data/x"], task_folder)
    assert cfg.task == "toy"
    assert cfg.protocol == "official"  # task over base (null)
    assert cfg.data.batch_size == 16  # task over base (32)
    assert cfg.trainer.max_epochs == 5  # command line over task (20)
    assert cfg.data.root == "/data/x"  # command line over base (null)
    assert cfg.data.num_workers == 0 and cfg.seed == 42  # base defaults kept
    assert cfg.optim.lr == pytest.approx(1e-3)


def test_real_task_config_loads_through_the_registry() -> None:
    cfg = load_config("apnea_ecg", ["optim.lr=0.1"])
    assert cfg.task == "apnea_ecg"
    assert cfg.protocol == "official"
    assert cfg.optim.lr == pytest.approx(0.1)
    assert cfg.trainer.max_epochs == 25


def test_synthetic_overrides_apply_under_the_command_line(task_folder: Path) -> None:
    cfg = load_config("toy", ["data.batch_size=8"], task_folder)
    synth = apply_synthetic_overrides(cfg, ["data.batch_size=8"])
    assert synth.trainer.max_epochs == 2
    assert synth.data.batch_size == 8  # command line still wins
    assert cfg.trainer.max_epochs == 20  # the original is left alone


def test_hash_ignores_runtime_keys_and_follows_real_ones(task_folder: Path) -> None:
    base = config_hash(load_config("toy", [], task_folder))
    assert len(base) == 12 and int(base, 16) >= 0
    assert config_hash(load_config("toy", [], task_folder)) == base
    runtime = [
        "data.num_workers=8",
        "data.cache_dir=/scratch",
        "trainer.devices=4",
        "trainer.strategy=ddp",
        "logger.wandb=true",
        "output.results=/elsewhere.jsonl",
        "force=true",
    ]
    assert config_hash(load_config("toy", runtime, task_folder)) == base
    for real in ["optim.lr=0.01", "seed=1", "fold=2", "data.batch_size=64", "trainer.max_epochs=3"]:
        assert config_hash(load_config("toy", [real], task_folder)) != base, real


def test_hash_does_not_mutate_the_config(task_folder: Path) -> None:
    cfg = load_config("toy", ["data.num_workers=3"], task_folder)
    before = to_plain(cfg)
    config_hash(cfg)
    assert to_plain(cfg) == before and cfg.data.num_workers == 3


def test_to_plain_resolves_interpolations() -> None:
    cfg = OmegaConf.create({"a": 2, "b": "${a}"})
    plain = to_plain(cfg)
    assert plain == {"a": 2, "b": 2}
    json.dumps(plain)


def test_default_folders_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEEPBENCH_CACHE", "/c")
    monkeypatch.setenv("SLEEPBENCH_DATA", "/d")
    assert default_cache_dir() == Path("/c")
    assert default_data_root("apnea-ecg") == Path("/d/apnea-ecg")
    monkeypatch.delenv("SLEEPBENCH_CACHE")
    monkeypatch.delenv("SLEEPBENCH_DATA")
    assert default_cache_dir() == Path.home() / ".cache" / "sleepbench"
    assert default_data_root("apnea-ecg") == Path("data/apnea-ecg")
