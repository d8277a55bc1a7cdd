"""The shallow classifiers of the classical peer rows (apnea_ecg's HRV + EDR features, the
log-mel statistics of icbhi_lung and esc50): one builder, so every task's classical row means the
same two models."""

from __future__ import annotations

from typing import Any

__all__ = ["CLASSIFIERS", "build_classifier", "fitted_size"]

#: ``peer.classifier`` -> how a row names it
CLASSIFIERS = {"logistic": "logistic regression", "gboost": "gradient boosting"}


def build_classifier(kind: str, seed: int, balanced: bool = False) -> Any:
    """The unfitted scikit-learn pipeline of ``peer.classifier``.

    Args:
        kind: ``logistic`` (median imputation -> standardisation -> logistic regression) or
            ``gboost`` (histogram gradient boosting, which routes missing values itself).
        seed: random state of the gradient boosting (its validation split and binning).
        balanced: weigh classes inversely to their training frequency (for scores that weigh
            classes equally, such as the ICBHI score).

    Returns:
        A pipeline with ``fit(X, y)``, ``predict_proba(X)`` and ``classes_``; its model is the
        step ``clf``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if kind not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {sorted(CLASSIFIERS)}, got {kind!r}")
    weight = "balanced" if balanced else None
    if kind == "logistic":
        return Pipeline(
            [
                # an all-missing training column stays (as 0), so weights keep their feature names
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(class_weight=weight, max_iter=2000)),
            ]
        )
    # missing features (too few beats) may mean something; boosting learns where they go
    return Pipeline(
        [("clf", HistGradientBoostingClassifier(class_weight=weight, random_state=seed))]
    )


def fitted_size(pipe: Any) -> int:
    """Fitted numbers of a :func:`build_classifier` pipeline: coefficients and intercepts, or
    the nodes of all trees (a rough size; the predictors are not public API)."""
    clf = pipe.named_steps["clf"]
    if hasattr(clf, "coef_"):
        return int(clf.coef_.size + clf.intercept_.size)
    trees = getattr(clf, "_predictors", [])
    return int(sum(len(t.nodes) for it in trees for t in it))
