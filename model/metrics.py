"""Evaluation metrics of the paper (§3): GAUC, AUC, log loss, RelaImpr, t-test.

GAUC is the AUC of each user's examples, averaged with the user's example
count as weight; users whose examples are all of one class have no AUC and are
skipped (their examples count nowhere):

  GAUC = Σ_u n_u · AUC_u / Σ_u n_u   over users with both classes.

RelaImpr (Yan et al., 2014, as the paper uses it) is the relative improvement
of a model over a base model on the part of the metric above chance:

  RelaImpr = (GAUC_model − 0.5) / (GAUC_base − 0.5) − 1.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn import metrics as sk_metrics


def gauc(user_ids, labels, scores) -> float:
    """Returns the example-weighted mean of per-user AUCs.

    Per-user AUCs are computed from ranks (the Mann-Whitney U statistic, ties
    counted half), which equals scikit-learn's `roc_auc_score` per user.

    Args:
      user_ids: [N] user of each example (any hashable dtype numpy can sort).
      labels: [N] 0/1 labels.
      scores: [N] predicted scores.

    Returns:
      The GAUC, or NaN if no user has both positive and negative examples.

    Raises:
      ValueError: If the arrays have different lengths or labels are not 0/1.
    """
    user_ids, labels, scores = _arrays(user_ids, labels, scores)
    if len(labels) == 0:
        return float("nan")
    order = np.argsort(user_ids, kind="stable")
    user_ids, labels, scores = user_ids[order], labels[order], scores[order]
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    ends = np.r_[starts[1:], len(user_ids)]
    total, weight = 0.0, 0
    for start, end in zip(starts, ends, strict=True):
        user_labels = labels[start:end]
        positives = int(user_labels.sum())
        negatives = len(user_labels) - positives
        if positives == 0 or negatives == 0:
            continue
        ranks = stats.rankdata(scores[start:end])
        auc = (ranks[user_labels == 1].sum() - positives * (positives + 1) / 2) / (
            positives * negatives
        )
        total += auc * len(user_labels)
        weight += len(user_labels)
    return total / weight if weight else float("nan")


def auc(labels, scores) -> float:
    """Returns the ROC AUC, or NaN if the labels are all of one class."""
    _, labels, scores = _arrays(None, labels, scores)
    if labels.size == 0 or labels.min() == labels.max():
        return float("nan")
    return float(sk_metrics.roc_auc_score(labels, scores))


def log_loss(labels, scores, eps: float = 1e-7) -> float:
    """Returns the binary cross-entropy of the scores, clipped to [eps, 1 - eps]."""
    _, labels, scores = _arrays(None, labels, scores)
    return float(sk_metrics.log_loss(labels, np.clip(scores, eps, 1 - eps), labels=[0, 1]))


def rela_impr(metric_model: float, metric_base: float) -> float:
    """Returns RelaImpr of a model over a base model (AUC or GAUC values).

    Raises:
      ValueError: If the base model is not better than chance.
    """
    if metric_base <= 0.5:
        raise ValueError(f"RelaImpr needs a base model better than chance, got {metric_base}")
    return (metric_model - 0.5) / (metric_base - 0.5) - 1.0


def paired_t_test(model_runs, base_runs) -> float:
    """Returns the two-sided p-value of a paired t-test over seeds.

    Args:
      model_runs: One metric value per seed for the model.
      base_runs: The base model's values for the same seeds, in the same order.

    Raises:
      ValueError: If the runs are not paired (lengths differ) or fewer than 2.
    """
    model_runs, base_runs = np.asarray(model_runs, float), np.asarray(base_runs, float)
    if model_runs.shape != base_runs.shape or model_runs.size < 2:
        raise ValueError("a paired t-test needs two equal-length runs of at least 2 seeds")
    return float(stats.ttest_rel(model_runs, base_runs).pvalue)


def _arrays(user_ids, labels, scores):
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    labels = labels.astype(np.int64)
    if user_ids is not None:
        user_ids = np.asarray(user_ids).reshape(-1)
        if user_ids.shape != labels.shape:
            raise ValueError(f"{user_ids.size} user ids but {labels.size} labels")
    return user_ids, labels, scores
