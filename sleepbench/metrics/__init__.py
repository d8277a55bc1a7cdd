"""sleepbench.metrics: torchmetrics-style clinical metrics for the five benchmark tasks.

Existing torchmetrics metrics are used as they are (accuracy, F1, kappa, AUROC, MCC, Pearson,
confusion matrix); this package adds the missing ones in the same shape — a pure function plus a
thin :class:`torchmetrics.Metric` whose states declare their DDP reduction.
"""

from sleepbench.metrics.agreement import (
    IndexAgreement,
    agreement_from_indices,
    bland_altman,
    class_accuracy,
    icc,
    per_record_index,
)
from sleepbench.metrics.auroc import (
    NanBinaryAUROC,
    NanMulticlassAUROC,
    binary_auroc_or_nan,
    multiclass_auroc_or_nan,
)
from sleepbench.metrics.binary import (
    BINARY_SCALAR_KEYS,
    BinaryScreeningMetrics,
    binary_screening_metrics,
)
from sleepbench.metrics.events import (
    EventIoU,
    EventSpan,
    event_iou,
    event_match_stats,
    frames_to_events,
    match_events,
)
from sleepbench.metrics.icbhi import (
    GroupedICBHIScore,
    ICBHIScore,
    icbhi_from_confmat,
    icbhi_score,
)
from sleepbench.metrics.multiclass import (
    MacroF1Score,
    MacroPrecision,
    MacroRecall,
    MacroSpecificity,
    OneVsRestAccuracy,
    flatten_metric_dict,
    make_multiclass_metrics,
)
from sleepbench.metrics.severity import (
    SEVERITY_CUTOFFS,
    SEVERITY_NAMES,
    ahi_to_severity,
    collapse_probs_at_cutoff,
    collapse_target_at_cutoff,
)

__all__ = [
    "BINARY_SCALAR_KEYS",
    "SEVERITY_CUTOFFS",
    "SEVERITY_NAMES",
    "BinaryScreeningMetrics",
    "EventIoU",
    "EventSpan",
    "GroupedICBHIScore",
    "ICBHIScore",
    "IndexAgreement",
    "MacroF1Score",
    "MacroPrecision",
    "MacroRecall",
    "MacroSpecificity",
    "NanBinaryAUROC",
    "NanMulticlassAUROC",
    "OneVsRestAccuracy",
    "agreement_from_indices",
    "ahi_to_severity",
    "binary_auroc_or_nan",
    "binary_screening_metrics",
    "bland_altman",
    "class_accuracy",
    "collapse_probs_at_cutoff",
    "collapse_target_at_cutoff",
    "event_iou",
    "event_match_stats",
    "flatten_metric_dict",
    "frames_to_events",
    "icbhi_from_confmat",
    "icbhi_score",
    "icc",
    "make_multiclass_metrics",
    "match_events",
    "multiclass_auroc_or_nan",
    "per_record_index",
]
