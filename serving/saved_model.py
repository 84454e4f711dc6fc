"""What one exported version holds: the SavedModel's signatures and warm-up requests.

`<export_base>/<model_name>/<version>/` (written by `serving.export`) is a
SavedModel with two signatures (names in `contracts.signatures`):

  * `serving_default`: `user_id`, `item_id` string [N] (or one of them [1],
    broadcast over the other) -> one float [N] probability per task, named
    after the task. The pair is scored from the baked representations by the
    trained heads (κ, experts, gates, towers). An unknown user or item is
    scored as the average known one: row 0 of every representation table is
    the mean of the known rows. It never fails on an id.
  * `score_examples`: `examples` string [N] (serialized samples as the
    preprocessing job writes them; labels are not read) -> the same outputs,
    computed as the trained model computes them (max abs diff <= 1e-5).
    Unknown ids in an example are treated as the model treats them in
    training (index 0, the padding row).

`assets.extra/tf_serving_warmup_requests` holds a few representative requests
of each signature (TF Serving and `serving.server` replay them before a
version takes traffic).

The SavedModel holds variables, hash tables and `tf.function`s only, not the
Keras model object, so it loads with plain TensorFlow: no import of this
project or TF-GNN.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from contracts.layout import ITEM, NODE_SETS, USER
from contracts.signatures import (
    EXAMPLES,
    ITEM_ID,
    SCORE_EXAMPLES,
    SERVING_DEFAULT,
    USER_ID,
    WARMUP_FILE,
)
from model.input_pipeline import dense_feature_spec, dense_inputs
from serving.representations import NODE_TREES, ROOT


class ServingModule(tf.Module):
    """What the SavedModel holds: id tables, variables and the two signatures.

    The trained model is closed over by the functions, never tracked itself,
    so that only its variables (and the id tables) are saved. Each node set's
    representations are one [V, (1 + trees) * d] table (root encoding, then
    its trees in `NODE_TREES` order), so a request reads two rows per pair.

    Args:
      model: A trained model that scores from node states
        (`scores_from_node_states`; `model.trained.load`).
      entities: {node set: EntityTable} of the model.
      representations: `read_representations` output.
      jit_compile: Compile `serving_default` after the id look-ups with XLA.
    """

    def __init__(self, model, entities, representations: dict, jit_compile: bool = False):
        super().__init__(name="mogenet_serving")
        self.lookups = {s: entities[s].lookup_table() for s in NODE_SETS}
        self.tables = {
            s: tf.Variable(
                np.concatenate([representations[s][n] for n in (ROOT, *NODE_TREES[s])], 1),
                trainable=False,
                name=f"{s}_representations",
            )
            for s in NODE_SETS
        }
        self.model_variables = list(model.variables)
        spec = dense_feature_spec(model.layout)

        def score_pairs(user_index, item_index):
            users, items = tf.size(user_index), tf.size(item_index)
            count = tf.where(tf.minimum(users, items) == 0, 0, tf.maximum(users, items))
            rows = {
                USER: tf.gather(self.tables[USER], tf.broadcast_to(user_index, [count])),
                ITEM: tf.gather(self.tables[ITEM], tf.broadcast_to(item_index, [count])),
            }
            roots, states = {}, {}
            for node_set, row in rows.items():
                parts = tf.split(row, 1 + len(NODE_TREES[node_set]), axis=1)
                roots[node_set] = parts[0]
                states.update(zip(NODE_TREES[node_set], parts[1:], strict=True))
            logits, _ = model.head(roots, states)
            return logits

        if jit_compile:
            score_pairs = tf.function(score_pairs, jit_compile=True)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name=USER_ID),
                tf.TensorSpec([None], tf.string, name=ITEM_ID),
            ]
        )
        def serve(user_id, item_id):
            users, items = tf.size(user_id), tf.size(item_id)
            ok = (users == items) | (users == 1) | (items == 1)
            message = "user_id and item_id need the same length, or one of them 1 id; got"
            with tf.control_dependencies([tf.debugging.Assert(ok, [message, users, items])]):
                user_index = tf.identity(self.lookups[USER].lookup(user_id))
            logits = score_pairs(user_index, self.lookups[ITEM].lookup(item_id))
            return model.probabilities(logits)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES)])
        def score_examples(examples):
            inputs = dense_inputs(tf.io.parse_example(examples, spec), self.lookups)
            logits, _ = model.forward(inputs)
            return model.probabilities(logits)

        self.serve = serve
        self.score_examples = score_examples

    def signatures(self) -> dict:
        """Returns {signature name: function} for `tf.saved_model.save`."""
        return {SERVING_DEFAULT: self.serve, SCORE_EXAMPLES: self.score_examples}


def warmup_requests(model_name: str, user_ids, item_ids, examples) -> list[bytes]:
    """Returns serialized PredictionLogs: representative requests of both signatures.

    Args:
      model_name: The served model's name.
      user_ids: Some known user ids.
      item_ids: Some known item ids (the candidates of a request).
      examples: Some serialized samples.
    """

    def request(signature, inputs):
        predict = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
        )
        for key, values in inputs.items():
            predict.inputs[key].CopyFrom(tf.make_tensor_proto(values, tf.string))
        log_entry = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=predict)
        )
        return log_entry.SerializeToString()

    items = list(item_ids)
    logs = []
    # The user id once per item: TF Serving's batching session (warm-up runs
    # through it) rejects inputs of unequal lengths, so a [1] broadcast
    # request here would fail the load under --enable_batching.
    for count in (1, 10, 100):  # the request sizes a ranking service sends
        candidates = (items * (count // max(len(items), 1) + 1))[:count]
        for user in list(user_ids)[:2]:
            logs.append(request(SERVING_DEFAULT, {USER_ID: [user] * count, ITEM_ID: candidates}))
    if examples:
        logs.append(request(SCORE_EXAMPLES, {EXAMPLES: list(examples)}))
    return logs


def write_version(module: ServingModule, path: str, warmup_logs) -> None:
    """Writes the SavedModel of `module` and its warm-up requests into `path`."""
    tf.saved_model.save(module, path, signatures=module.signatures())
    warmup = os.path.join(path, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(warmup))
    with tf.io.TFRecordWriter(warmup) as writer:
        for entry in warmup_logs:
            writer.write(entry)
