"""ESMM (Ma et al., 2018): conversion modelled over the entire exposure space.

The first task (click) has its tower, p_ctr = σ(a); every later task k has a
tower for the conditional b_k, p(k | click) = σ(b_k), and is predicted as
p_k = p_ctr · σ(b_k) — the entire-space product, so the k-th label is fitted
on every exposure, not only on clicks. Towers: `config.tower_units`.
Losses stay BCE on logits: the product's logit is log p − log(1 − p),
computed from log-sigmoids.
"""

from __future__ import annotations

import tensorflow as tf

from model.baselines.mlp import MLPBaseline


def product_logit(a, b):
    """logit(σ(a)·σ(b)), stably: log p = log σ(a) + log σ(b); logit = log p − log(1 − p)."""
    log_p = tf.math.log_sigmoid(a) + tf.math.log_sigmoid(b)
    log_p = tf.minimum(log_p, -1e-7)  # p < 1, so log(1 − p) is finite
    return log_p - tf.math.log(-tf.math.expm1(log_p))


class ESMM(MLPBaseline):
    """Entire-space multi-task model; the first task is the click-like one.

    The towers are the MLP baseline's; what differs is the output.
    """

    multi_task = True  # the entire-space product ties the tasks

    def logits(self, x, training=False):
        raw = self.task_logits(self.towers(x))  # [B, K]: the click logit, then conditionals
        click = raw[:, 0]
        later = [product_logit(click, raw[:, k]) for k in range(1, len(self.task_names))]
        return tf.stack([click, *later], 1), None
