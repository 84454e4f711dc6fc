"""Metrics against brute-force scikit-learn/scipy references and known values."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from model import metrics


def _brute_force_gauc(users, labels, scores):
    total, weight = 0.0, 0
    for user in set(users.tolist()):
        mask = users == user
        if len(set(labels[mask].tolist())) < 2:
            continue
        total += roc_auc_score(labels[mask], scores[mask]) * mask.sum()
        weight += mask.sum()
    return total / weight


@pytest.mark.parametrize("seed", range(5))
def test_gauc_equals_per_user_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    users = rng.integers(0, 200, n).astype(str)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.round(rng.random(n) + 0.3 * labels, 2)  # rounded: ties happen
    assert metrics.gauc(users, labels, scores) == pytest.approx(
        _brute_force_gauc(users, labels, scores), abs=1e-12
    )


def test_gauc_by_hand_and_edge_cases():
    # u1: perfectly ranked (AUC 1, 3 examples); u2: reversed (AUC 0, 2 examples);
    # u3: one class only, skipped.
    users = ["u1", "u1", "u1", "u2", "u2", "u3"]
    labels = [1, 0, 0, 1, 0, 1]
    scores = [0.9, 0.2, 0.1, 0.1, 0.8, 0.5]
    assert metrics.gauc(users, labels, scores) == pytest.approx(3 / 5)
    assert math.isnan(metrics.gauc(["a", "a"], [1, 1], [0.1, 0.2]))
    assert math.isnan(metrics.gauc([], [], []))
    with pytest.raises(ValueError, match="0 or 1"):
        metrics.gauc(["a"], [2], [0.1])
    with pytest.raises(ValueError, match="user ids"):
        metrics.gauc(["a", "b"], [1], [0.1])


def test_auc_and_log_loss_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.random(500)
    assert metrics.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert metrics.log_loss(labels, scores) == pytest.approx(sk_log_loss(labels, scores))
    assert math.isnan(metrics.auc([1, 1], [0.2, 0.3]))
    assert math.isfinite(metrics.log_loss([1, 0], [1.0, 0.0]))  # clipped, not infinite


def test_rela_impr_known_values():
    assert metrics.rela_impr(0.75, 0.7) == pytest.approx(0.25)
    assert metrics.rela_impr(0.7, 0.7) == pytest.approx(0.0)
    assert metrics.rela_impr(0.65, 0.7) == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="better than chance"):
        metrics.rela_impr(0.7, 0.5)


def test_paired_t_test_known_values():
    model = [0.71, 0.72, 0.70, 0.73, 0.72]
    base = [0.70, 0.70, 0.69, 0.71, 0.70]
    # differences 0.01, 0.02, 0.01, 0.02, 0.02: mean 0.016, sd 0.005477, t = 6.532, df 4
    t = 0.016 / (0.0054772256 / math.sqrt(5))
    assert metrics.paired_t_test(model, base) == pytest.approx(2 * stats.t.sf(t, 4), rel=1e-6)
    assert metrics.paired_t_test(model, base) < 0.01
    with pytest.raises(ValueError, match="paired"):
        metrics.paired_t_test([0.7], [0.6])
