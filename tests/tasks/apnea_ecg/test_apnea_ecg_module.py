"""apnea_ecg LightningModule: gradual unfreezing re-attaches the scheduler to the new optimiser."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from sleepbench.config import load_config
from sleepbench.tasks.apnea_ecg.module import ApneaECGModule, stage_names
from sleepbench.tasks.apnea_ecg.network import ApneaECGNet


class _Minutes(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        return {
            "x": torch.randn(1, 640, generator=g),
            "y": torch.tensor(i % 2),
            "record": torch.tensor(0),
            "window": torch.tensor(i),
        }


class _Probe(pl.Callback):
    """Records, at the end of each epoch, the optimiser, its scheduler's optimiser and sizes."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: ApneaECGModule) -> None:
        opt = trainer.optimizers[0]
        sched = trainer.lr_scheduler_configs[0].scheduler
        self.seen.append(
            {
                "opt": opt,
                "sched_opt": sched.optimizer,
                "lr0": opt.param_groups[0]["initial_lr"],
                "n": sum(p.numel() for g in opt.param_groups for p in g["params"]),
            }
        )


def test_gradual_unfreezing_replaces_optimiser_and_scheduler() -> None:
    cfg = load_config(
        "apnea_ecg", ["model.unfreeze.epochs=[1,2]", "model.unfreeze.stages=[[3],[2,3]]"]
    )
    net = ApneaECGNet(size="tiny")
    module = ApneaECGModule(net, cfg)
    frozen_total, frozen_trainable = module.n_params()
    probe = _Probe()
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    trainer.fit(module, DataLoader(_Minutes(), batch_size=4))
    epoch0, epoch1, epoch2 = probe.seen
    assert epoch0["lr0"] == cfg.optim.lr and epoch1["lr0"] == cfg.optim.unfreeze_lr
    for seen in probe.seen:
        assert seen["sched_opt"] is seen["opt"]  # upstream's bug: the scheduler kept the old one
    assert epoch0["opt"] is not epoch1["opt"] is not epoch2["opt"]
    assert epoch0["n"] < epoch1["n"] < epoch2["n"]
    stage3, stage23 = stage_names(net, [3]), stage_names(net, [2, 3])
    assert epoch1["n"] - epoch0["n"] == sum(dict(net.named_parameters())[n].numel() for n in stage3)
    assert epoch2["n"] - epoch0["n"] == sum(
        dict(net.named_parameters())[n].numel() for n in stage23
    )
    # stage 0 never joined the optimiser: its weights did not move; stage 3 did
    moved = {n: not torch.equal(before[n], p) for n, p in net.named_parameters()}
    assert not any(v for n, v in moved.items() if n.startswith("backbone.stages.0."))
    assert any(v for n, v in moved.items() if n.startswith("backbone.stages.3."))
    assert module.n_params()[1] > frozen_trainable and module.n_params()[0] == frozen_total
