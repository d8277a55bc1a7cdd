"""Run folders as ``train.run`` leaves them, for the deploy tests (export, predict, serve).

Each task's network is built at its synthetic size (smaller still where the config allows), given
BatchNorm statistics far from the identity, and saved as Lightning saves a BenchModule
(``config.yaml`` + ``checkpoints/best.ckpt``, network tensors under ``net.``, the datamodule's
input state under :data:`~sleepbench.module.INPUT_STATE_KEY`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from sleepbench.config import apply_synthetic_overrides, load_config
from sleepbench.module import INPUT_STATE_KEY
from sleepbench.registry import get_task

#: overrides that shrink a task's network or input below its synthetic size (faster export)
SMALLER: dict[str, list[str]] = {
    "sleep_edf": ["data.seq_epochs=3"],
    "shhs_spo2": ["preprocess.n_samples=2048", "model.lstm_pool=16"],
    "icbhi_lung": ["preprocess.cycle_s=1.0"],
    "esc50": ["preprocess.clip_s=1.0"],
}


#: the input state a task's datamodule would save (normalisation statistics of training data)
INPUT_STATE: dict[str, dict[str, Any]] = {
    "apnea_ecg": {"ecg_mean_mv": 0.05, "ecg_std_mv": 0.4},
}


def small_cfg(task: str, extra: tuple[str, ...] = ()) -> DictConfig:
    """The task's synthetic-size config, shrunk by :data:`SMALLER`, plus ``extra`` overrides."""
    overrides = [*SMALLER.get(task, []), *extra]
    return apply_synthetic_overrides(load_config(task, overrides), overrides)


def _trained_like(net: torch.nn.Module, seed: int = 7) -> None:
    """Give BatchNorm layers running statistics far from (0, 1), as training would: at their
    initial values eval-mode normalisation is nearly the identity and would hide a mistake."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict(keep_vars=True).items():
            if name.endswith("running_mean"):
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))


def write_run(task: str, run_dir: Path, *extra: str) -> dict[str, torch.Tensor]:
    """A run folder as ``train.run`` writes it; returns the network's saved tensors."""
    cfg = small_cfg(task, extra)
    net = get_task(task).export_spec(cfg).net
    _trained_like(net)
    (run_dir / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    state = {f"net.{k}": v.clone() for k, v in net.state_dict().items()}
    state["loss_fn.weight"] = torch.ones(3)  # the module's own tensors are not the network's
    blob = {
        "epoch": 3,
        "global_step": 12,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": state,
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.5)}},
        "optimizer_states": [],
        "lr_schedulers": [],
        INPUT_STATE_KEY: dict(INPUT_STATE.get(task, {})),
    }
    torch.save(blob, run_dir / "checkpoints" / "best.ckpt")
    return net.state_dict()
