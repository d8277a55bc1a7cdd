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
from sleepbench.errors import ConfigError

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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.max_epoch=1",
            "unknown config key 'trainer.max_epoch'; did you mean trainer.max_epochs?",
        ),
        (
            "trainer.max_epochs=abc",
            "trainer.max_epochs=abc is text, but trainer.max_epochs takes an integer",
        ),
        ("data.batch_size=1.5", "data.batch_size takes an integer"),
        ("trainer.deterministic=maybe", "trainer.deterministic=maybe is not allowed"),
        ("trainer.precision=half", "trainer.precision=half is not allowed"),
        ("optim.lrr=0.1", "did you mean optim.lr?"),
        ("nonsense_key=1", "unknown config key 'nonsense_key'"),
        ("fold", "'fold' is not key=value"),
        ("trainer.max_epochs=[1, 2]", "takes an integer"),
        ("data.batch_size=true", "takes an integer"),
    ],
)
def test_bad_overrides_are_refused_naming_the_key(
    task_folder: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config("toy", [override], task_folder)
    assert message in str(err.value)


def test_good_overrides_of_every_kind_pass(task_folder: Path) -> None:
    cfg = load_config(
        "toy",
        [
            "optim.lr=1",  # an integer where a float is expected
            "trainer.precision=16-mixed",
            "trainer.precision=32",  # read as a number, matches the text choice "32"
            "trainer.devices=[0,1]",  # any_value: int, "auto" or a list
            "trainer.deterministic=warn",
            "data.root=/data/x",  # null default: free
            "trainer.limit_train_batches=0.25",
            "ablations.mine.a=[optim.lr=1]",  # empty-mapping default: free
            "trainer.gradient_clip_val=null",
        ],
        task_folder,
    )
    assert cfg.trainer.devices == [0, 1] and cfg.optim.lr == 1
    assert "schema" not in cfg  # checked against, not part of the run config or its hash


def test_task_choices_refuse_a_value_that_would_fail_every_recording() -> None:
    with pytest.raises(ConfigError, match="preprocess.smoothing=gaussian is not allowed"):
        load_config("shhs_spo2", ["preprocess.smoothing=gaussian"])
    with pytest.raises(ConfigError, match="no protocol 'nope'"):
        load_config("sleep_edf", ["protocol=nope"])


def test_schema_choices_match_what_the_code_accepts() -> None:
    """The choices written in config.yaml are the options the code implements, no more, no less."""
    from sleepbench.signal.spo2 import SMOOTHERS
    from sleepbench.tasks.apnea_ecg.network import SIZES
    from sleepbench.tasks.shhs_spo2.data import AHI_RULES
    from sleepbench.tasks.shhs_spo2.network import VARIANTS

    def choices(task: str) -> dict:
        from sleepbench.registry import task_folder

        return OmegaConf.load(task_folder(task) / "config.yaml").schema.choices

    shhs = choices("shhs_spo2")
    assert set(shhs["preprocess.smoothing"]) == set(SMOOTHERS)
    assert set(shhs["model.variant"]) == set(VARIANTS)
    assert set(shhs["labels.ahi_variable"]) == set(AHI_RULES)
    assert set(choices("apnea_ecg")["model.size"]) == set(SIZES)
