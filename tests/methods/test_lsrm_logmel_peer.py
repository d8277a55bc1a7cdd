"""The log-mel classical peer of icbhi_lung / esc50: its features against numpy, its linear layer
against scikit-learn's own probabilities, and classes it never saw in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from sleepbench.methods.lsrm.frontend import FrontEndConfig, LogMelFrontEnd
from sleepbench.methods.lsrm.logmel_peer import fit_logmel_peer, logmel_statistics
from sleepbench.methods.lsrm.peer import run_peers

FS = 16000


def _frontend() -> LogMelFrontEnd:
    return LogMelFrontEnd(
        FrontEndConfig(
            sample_rate=FS, n_fft=512, hop=160, n_mels=32, f_min_hz=50.0, f_max_hz=8000.0
        )
    )


def _clips(labels: list[int], seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """1-s clips: noise plus a tone whose pitch depends on the class (so a linear model can
    tell them apart, not perfectly: the tone's level varies)."""
    rng = np.random.default_rng(seed)
    t = np.arange(FS) / FS
    out = []
    for y in labels:
        tone = rng.uniform(0.0, 0.4) * np.sin(2 * np.pi * (300.0 + 500.0 * y) * t)
        x = (0.1 * rng.standard_normal(FS) + tone).astype(np.float32)
        out.append({"x": torch.from_numpy(x), "y": torch.tensor(y)})
    return out


def test_statistics_match_numpy() -> None:
    mel = torch.randn(3, 1, 50, 8) * 4.0 - 30.0
    x = mel[:, 0].double().numpy()
    expected = np.concatenate(
        [x.mean(axis=1), x.std(axis=1), np.abs(np.diff(x, axis=1)).mean(axis=1)], axis=1
    )
    np.testing.assert_allclose(logmel_statistics(mel).numpy(), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("kind", ["logistic", "gboost"])
def test_probabilities_are_the_classifiers(kind: str) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    train = _clips([0, 1, 2, 3] * 25, seed=1)  # boosting needs leaves of 20 clips
    test = _clips([0, 1, 2, 3] * 3, seed=2)
    frontend = _frontend().eval()
    peer = fit_logmel_peer(frontend, train, n_classes=4, classifier=kind, batch_size=5)

    def feats(items: list[dict[str, torch.Tensor]]) -> np.ndarray:
        with torch.no_grad():
            wave = torch.stack([it["x"] for it in items])
            return logmel_statistics(frontend(wave)).double().numpy()

    # the same model fitted here by hand on the same features, balanced class weights
    y = [int(it["y"]) for it in train]
    if kind == "logistic":
        scaler = StandardScaler().fit(feats(train))
        clf = LogisticRegression(class_weight="balanced", max_iter=2000)
        expected = clf.fit(scaler.transform(feats(train)), y).predict_proba(
            scaler.transform(feats(test))
        )
    else:
        clf = HistGradientBoostingClassifier(class_weight="balanced", random_state=0)
        expected = clf.fit(feats(train), y).predict_proba(feats(test))
    with torch.no_grad():
        probs = peer(torch.stack([it["x"] for it in test])).softmax(-1).double().numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert (probs.argmax(1) == np.array([0, 1, 2, 3] * 3)).mean() > 0.5  # it learnt the tones


def test_a_class_absent_from_training_is_never_predicted() -> None:
    peer = fit_logmel_peer(_frontend(), _clips([0, 2] * 8), n_classes=3)
    with torch.no_grad():
        probs = peer(torch.stack([it["x"] for it in _clips([0, 1, 2] * 2, seed=3)])).softmax(-1)
    assert torch.all(probs[:, 1] < 1e-9) and torch.allclose(probs.sum(-1), torch.ones(6))


def test_one_class_refuses() -> None:
    with pytest.raises(ValueError, match="two classes"):
        fit_logmel_peer(_frontend(), _clips([1] * 4), n_classes=4)


@pytest.mark.parametrize(
    "cfg",
    [
        {"peer": {"enabled": False}},
        {"peer": {"enabled": True}, "ablation_variant": "time"},
        {"peer": {"enabled": True, "logmel": False, "htsat": False}},
    ],
)
def test_no_peer_rows_when_switched_off(cfg: dict, tmp_path) -> None:
    # returns before touching the data module or the result
    assert run_peers(DictConfig(cfg), None, None, tmp_path) == []
