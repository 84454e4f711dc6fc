"""The validation callback's metrics, on fixed predictions."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import log_loss, roc_auc_score

from model import evaluation


class _Model:
    task_names = ("click", "conversion")

    def task_sigmas(self):
        return tf.constant([1.5, 0.5])


def test_a_task_without_gauc_enters_val_gauc_with_its_auc(monkeypatch, capsys):
    labels = {"click": np.array([1, 0, 1, 0.0]), "conversion": np.array([1, 1, 0, 0.0])}
    scores = {"click": np.array([0.9, 0.1, 0.2, 0.8]), "conversion": np.array([0.6, 0.3, 0.4, 0.1])}
    gates = np.array([[[0.5, 0.5], [0.9, 0.1]]] * 4)
    predictions = evaluation.Predictions(
        np.array([b"a", b"a", b"b", b"b"]), np.array([b"i"] * 4), labels, scores, gates
    )
    monkeypatch.setattr(evaluation, "predict_split", lambda *args: predictions)
    callback = evaluation.ValidationMetrics("unused", 4, entities=None)
    callback.set_model(_Model())
    logs = {}
    callback.on_epoch_end(0, logs)
    conversion_auc = roc_auc_score(labels["conversion"], scores["conversion"])
    assert logs["val_click_gauc"] == pytest.approx(0.5)
    assert np.isnan(logs["val_conversion_gauc"])
    assert logs["val_gauc"] == pytest.approx((0.5 + conversion_auc) / 2)
    click_auc = roc_auc_score(labels["click"], scores["click"])
    assert logs["val_auc"] == pytest.approx((click_auc + conversion_auc) / 2)
    losses = [log_loss(labels[task], scores[task]) for task in ("click", "conversion")]
    assert logs["val_log_loss"] == pytest.approx(np.mean(losses))
    assert logs["sigma_click"] == pytest.approx(1.5)
    assert logs["gate_conversion_expert0"] == pytest.approx(0.9)
    assert "GAUC of conversion is undefined" in capsys.readouterr().out
    assert evaluation.split_metrics(predictions)["gauc"] == pytest.approx(0.5)
