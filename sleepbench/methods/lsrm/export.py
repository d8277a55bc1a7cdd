"""Export spec shared by the LSRM tasks (icbhi_lung, esc50): waveform in, clip logits out.

The whole :class:`~sleepbench.methods.lsrm.module.ClipClassifier` is exported, log-mel front end
included: torchaudio's STFT becomes the ONNX ``STFT`` operator (opset >= 17), so a deployed model
takes the raw waveform just as the benchmark's network does. SpecAugment is the identity in eval
mode and leaves no trace in the graph.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from sleepbench.deploy.spec import ExportSpec
from sleepbench.methods.lsrm.frontend import FrontEndConfig, n_frames
from sleepbench.methods.lsrm.module import build_classifier

__all__ = ["lsrm_export_spec"]


def lsrm_export_spec(
    cfg: DictConfig,
    n_classes: int,
    frontend_cfg: FrontEndConfig,
    clip_s: float,
    classes: str,
) -> ExportSpec:
    """The task's classifier on ``clip_s`` seconds of audio at the front end's rate.

    Args:
        cfg: run config (``model.*``, ``augment.*``); ``model.time_branch_checkpoint`` is ignored
            (the checkpoint's weights replace the HTS-AT initialisation, and its file need not
            exist where the model is exported).
        n_classes: output classes.
        frontend_cfg: the task's front end.
        clip_s: seconds per clip (the export's fixed input length).
        classes: the classes in output order, in words.
    """
    cfg = OmegaConf.merge(cfg, {"model": {"time_branch_checkpoint": None}})
    net, _ = build_classifier(cfg, n_classes, frontend_cfg)
    samples = round(clip_s * frontend_cfg.sample_rate)
    fe = frontend_cfg
    return ExportSpec(
        net=net,
        item_shape=(samples,),
        item_s=float(clip_s),
        input_doc=(
            f"{clip_s:g} s of mono audio at {fe.sample_rate} Hz (float, full scale 1.0); the graph "
            f"computes the log-mel ({fe.n_mels} mels, n_fft {fe.n_fft}, hop {fe.hop}, "
            f"{n_frames(samples, fe.hop)} frames) itself"
        ),
        output_doc=f"clip logits, classes {classes}",
    )
