"""Scoring a split and the paper's metrics on it; the validation callback.

GAUC needs every example of a user, so it is computed over the whole split
after a pass of predictions, not per batch: `evaluate_split` predicts a split
(in file order, deterministically) and returns AUC, GAUC and log loss per
task, the mean gate weight of every expert per task, and `gauc`, the mean of
the tasks' defined GAUCs.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from contracts.layout import ITEM, USER
from contracts.model_inputs import root_id_input
from model import metrics
from model.input_pipeline import DataSpec, make_dataset


class Predictions:
    """A split's predictions.

    Attributes:
      user_ids: [N] root user ids (bytes).
      item_ids: [N] root item ids (bytes).
      labels: {task: [N] float} labels.
      scores: {task: [N] float} predicted probabilities.
      gates: [N, K, N_experts] gate weights ([N, K, 0] for a model without gates).
    """

    def __init__(self, user_ids, item_ids, labels, scores, gates):
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.labels = labels
        self.scores = scores
        self.gates = gates


def predict_split(
    model, spec: DataSpec | str, split: str, batch_size: int, entities
) -> Predictions:
    """Predicts every example of a split, in file order.

    Args:
      model: A built model with `forward`, `probabilities` and `task_names`.
      spec: The data's `DataSpec` (or its directory, read here).
      split: "train", "valid" or "test".
      batch_size: Examples per batch.
      entities: {node set: EntityTable} of the model.

    Returns:
      The split's `Predictions`.
    """
    data = make_dataset(
        spec,
        split,
        batch_size,
        tasks=model.task_names,
        shuffle=False,
        deterministic=True,
        entities=entities,
        keep_root_ids=True,
    )

    @tf.function
    def score(inputs):
        logits, gates = model.forward(inputs)
        return model.probabilities(logits), gates

    return collect_predictions(data, score, model.task_names)


def collect_predictions(data, score, tasks) -> Predictions:
    """Scores every batch of a dataset and gathers the `Predictions`.

    Args:
      data: (inputs, labels) batches whose inputs hold the roots' ids
        (`make_dataset(..., keep_root_ids=True)`).
      score: inputs without the roots' ids -> ({task: probability [B]}, gates
        [B, K, N] or None).
      tasks: The task names.

    Returns:
      The `Predictions` (gates [N, K, 0] if `score` gives none).
    """
    users, items, gates = [], [], []
    labels = {t: [] for t in tasks}
    scores = {t: [] for t in tasks}
    for inputs, batch_labels in data:
        users.append(inputs.pop(root_id_input(USER)).numpy())
        items.append(inputs.pop(root_id_input(ITEM)).numpy())
        probabilities, batch_gates = score(inputs)
        if batch_gates is not None:  # models without gates report none
            gates.append(batch_gates.numpy())
        for task in tasks:
            labels[task].append(batch_labels[task].numpy())
            scores[task].append(probabilities[task].numpy())
    users = np.concatenate(users)
    return Predictions(
        users,
        np.concatenate(items),
        {t: np.concatenate(v) for t, v in labels.items()},
        {t: np.concatenate(v) for t, v in scores.items()},
        np.concatenate(gates) if gates else np.zeros([len(users), len(tasks), 0]),
    )


def split_metrics(predictions: Predictions) -> dict:
    """Returns {task: {"auc", "gauc", "log_loss", "examples", "positives"}} and "gauc".

    The top-level "gauc" is the mean of the tasks' GAUCs that are defined.
    """
    result = {}
    for task, labels in predictions.labels.items():
        scores = predictions.scores[task]
        result[task] = {
            "auc": metrics.auc(labels, scores),
            "gauc": metrics.gauc(predictions.user_ids, labels, scores),
            "log_loss": metrics.log_loss(labels, scores),
            "examples": int(len(labels)),
            "positives": int(labels.sum()),
        }
    result["gauc"] = _mean([result[t]["gauc"] for t in predictions.labels])
    return result


def evaluate_split(model, spec: DataSpec | str, split, batch_size, entities) -> dict:
    """Returns `split_metrics` of the split's predictions (see `predict_split`)."""
    return split_metrics(predict_split(model, spec, split, batch_size, entities))


class ValidationMetrics(tf.keras.callbacks.Callback):
    """Adds validation AUC, GAUC, log loss, σ_k and mean gate weights to the epoch logs.

    A task whose GAUC is undefined (no validation user has both classes)
    enters `val_gauc` with its AUC (said once on stdout). Put it before the
    callbacks that read them (EarlyStopping, TensorBoard, CSVLogger): Keras
    passes one logs dict down the list. Keys: `val_gauc`, `val_auc` and
    `val_log_loss` (means over tasks; `val_auc` leaves out a task whose
    labels are all of one class), `val_<task>_{auc,gauc,log_loss}`,
    `sigma_<task>` (the learned task uncertainty) and
    `gate_<task>_expert<n>` (mean gate weight on the validation split).

    Args:
      spec: The data's `DataSpec`.
      batch_size: Examples per prediction batch.
      entities: {node set: EntityTable} of the model.
      split: The split to evaluate.
    """

    def __init__(self, spec: DataSpec, batch_size, entities, split="valid"):
        super().__init__()
        self.spec = spec
        self.batch_size = batch_size
        self.entities = entities
        self.split = split
        self._warned = set()

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        predictions = predict_split(
            self.model, self.spec, self.split, self.batch_size, self.entities
        )
        result = split_metrics(predictions)
        # A task whose GAUC is undefined (no user with both classes) counts with its AUC.
        per_task = []
        for task in self.model.task_names:
            value = result[task]["gauc"]
            if np.isnan(value):
                value = result[task]["auc"]
                if task not in self._warned:
                    print(
                        f"{self.split} GAUC of {task} is undefined (no user has both "
                        f"classes); val_gauc counts its AUC instead"
                    )
                    self._warned.add(task)
            per_task.append(value)
        logs["val_gauc"] = _mean(per_task)
        for name in ("auc", "log_loss"):
            logs[f"val_{name}"] = _mean([result[task][name] for task in self.model.task_names])
        for task in self.model.task_names:
            for name in ("auc", "gauc", "log_loss"):
                logs[f"val_{task}_{name}"] = result[task][name]
        sigmas = self.model.task_sigmas().numpy()
        mean_gates = predictions.gates.mean(0)
        for k, task in enumerate(self.model.task_names):
            logs[f"sigma_{task}"] = float(sigmas[k])
            for n, weight in enumerate(mean_gates[k]):
                logs[f"gate_{task}_expert{n}"] = float(weight)


def _mean(values) -> float:
    """The mean of the values that are defined (NaN if none is)."""
    values = np.asarray(values, float)
    return float(np.nanmean(values)) if (~np.isnan(values)).any() else float("nan")
