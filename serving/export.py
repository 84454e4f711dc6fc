"""Exports a trained MoGENet as a SavedModel that plain TF Serving serves.

  python -m serving.export --model_dir DIR --data OUT --export_base export \
      --model_name mogenet

1. Every user's and item's channel representations are computed offline over
   the training graph (`serving.representations`, a Beam job on the runner
   given by `--runner` and Beam's pipeline flags), into
   `<model_dir>/representations/`; a finished run for the same weights and
   data is reused.
2. `<export_base>/<model_name>/<version>/` (the next integer version unless
   `--version`; written aside and renamed into place, so a polling server
   never sees half a version) gets a SavedModel with two signatures:

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

   `assets.extra/tf_serving_warmup_requests` holds a few representative
   requests of each signature (TF Serving and `serving.server` replay them
   before a version takes traffic).
3. `<export_base>/` gets `models.config`, `batching_parameters.txt` and
   `monitoring.config` for `tensorflow_model_server` (see the README).

The SavedModel holds variables, hash tables and `tf.function`s only, not the
Keras model object, so it loads with plain TensorFlow: no import of this
project or TF-GNN. `--jit_compile` compiles the heads with XLA, which
`tensorflow_model_server` runs only with `--xla_cpu_compilation_enabled`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time

import numpy as np
import tensorflow as tf

from beam_pipelines.sample_layout import ID_FEATURE, ITEM, LABEL_PREFIX, NODE_SETS, USER
from serving.representations import (
    NODE_TREES,
    ROOT,
    NodeRepresentations,
    WriteRepresentations,
    read_representations,
)

log = logging.getLogger("serving.export")
SERVING_DEFAULT = "serving_default"
SCORE_EXAMPLES = "score_examples"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_SUCCESS = "_SUCCESS"


class ExportError(ValueError):
    """The export cannot be made as asked: a one-line message."""


class ServingModule(tf.Module):
    """What the SavedModel holds: id tables, variables and the two signatures.

    The trained model is closed over by the functions, never tracked itself,
    so that only its variables (and the id tables) are saved. Each node set's
    representations are one [V, (1 + trees) * d] table (root encoding, then
    its trees in `NODE_TREES` order), so a request reads two rows per pair.

    Args:
      model: A trained MoGENet (`model.trained.load`).
      entities: {node set: EntityTable} of the model.
      representations: `read_representations` output.
      jit_compile: Compile `serving_default` after the id look-ups with XLA.
    """

    def __init__(self, model, entities, representations: dict, jit_compile: bool = False):
        super().__init__(name="mogenet_serving")
        from model.input_pipeline import dense_feature_spec, dense_inputs

        tasks = model.task_names
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

        def outputs(logits):
            return {task: tf.sigmoid(logits[:, k]) for k, task in enumerate(tasks)}

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
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None], tf.string, name="item_id"),
            ]
        )
        def serve(user_id, item_id):
            users, items = tf.size(user_id), tf.size(item_id)
            ok = (users == items) | (users == 1) | (items == 1)
            message = "user_id and item_id need the same length, or one of them 1 id; got"
            with tf.control_dependencies([tf.debugging.Assert(ok, [message, users, items])]):
                user_index = tf.identity(self.lookups[USER].lookup(user_id))
            return outputs(score_pairs(user_index, self.lookups[ITEM].lookup(item_id)))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def score_examples(examples):
            inputs = dense_inputs(tf.io.parse_example(examples, spec), self.lookups)
            logits, _ = model.forward(inputs)
            return outputs(logits)

        self.serve = serve
        self.score_examples = score_examples


def _fingerprint(model_dir: str, data_dir: str, seed: int, sampler: str) -> str:
    """Identifies what a representation run computed from: weights, data and sampling."""
    from model.trained import WEIGHTS

    digest = hashlib.sha256()
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, WEIGHTS) + "*")):
        with tf.io.gfile.GFile(path, "rb") as f:
            digest.update(f.read())
    digest.update(json.dumps([os.path.abspath(data_dir), seed, sampler]).encode())
    return digest.hexdigest()


def compute_representations(
    model_dir: str, data_dir: str, layout, seed: int, sampler: str, beam_args, output: str
) -> None:
    """Runs the representation job into `output` unless a finished run for the same inputs is there.

    Args:
      model_dir: The trained model's directory.
      data_dir: The preprocessing output the model trained on.
      layout: The model's sample layout.
      seed: The preprocessing run's seed.
      sampler: "memory" or "join".
      beam_args: Beam pipeline flags (e.g. ["--runner=FnApiRunner"]).
      output: Where the representations go.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    fingerprint = _fingerprint(model_dir, data_dir, seed, sampler)
    success = os.path.join(output, _SUCCESS)
    if tf.io.gfile.exists(success):
        with tf.io.gfile.GFile(success) as f:
            if f.read().strip() == fingerprint:
                log.info("representations: reusing the finished run in %s", output)
                return
    if tf.io.gfile.exists(output):
        tf.io.gfile.rmtree(output)  # a run for other weights or unfinished: ours to replace
    tf.io.gfile.makedirs(output)
    started = time.monotonic()
    options = PipelineOptions(beam_args or ["--runner=FnApiRunner"])
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "Representations"
            >> NodeRepresentations(
                os.path.join(data_dir, "graphs"), model_dir, layout, seed, sampler
            )
            | "Write" >> WriteRepresentations(output)
        )
    with tf.io.gfile.GFile(success, "w") as f:
        f.write(fingerprint + "\n")
    log.info("representations: computed in %.1f s into %s", time.monotonic() - started, output)


def next_version(model_base: str) -> int:
    """Returns 1 + the newest integer version under `model_base` (1 if none)."""
    if not tf.io.gfile.isdir(model_base):
        return 1
    versions = [
        int(e.rstrip("/")) for e in tf.io.gfile.listdir(model_base) if e.rstrip("/").isdigit()
    ]
    return max(versions, default=0) + 1


def warmup_requests(model_name: str, user_ids, item_ids, examples) -> list[bytes]:
    """Returns serialized PredictionLogs: representative requests of both signatures.

    Args:
      model_name: The served model's name.
      user_ids: Some known user ids.
      item_ids: Some known item ids (the candidates of a request).
      examples: Some serialized samples.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

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
            logs.append(
                request(SERVING_DEFAULT, {"user_id": [user] * count, "item_id": candidates})
            )
    if examples:
        logs.append(request(SCORE_EXAMPLES, {"examples": list(examples)}))
    return logs


MODELS_CONFIG = """\
model_config_list {{
  config {{
    name: "{name}"
    base_path: "/models/{name}"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
  }}
}}
"""

# Requests of 1 user x 100 items; batches of up to ~10 such requests.
BATCHING_PARAMETERS = """\
max_batch_size { value: 1024 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: false
"""

MONITORING_CONFIG = """\
prometheus_config {
  enable: true
  path: "/monitoring/prometheus/metrics"
}
"""


def write_server_configs(export_base: str, model_name: str) -> None:
    """Writes models.config, batching_parameters.txt and monitoring.config under export_base."""
    files = {
        "models.config": MODELS_CONFIG.format(name=model_name),
        "batching_parameters.txt": BATCHING_PARAMETERS,
        "monitoring.config": MONITORING_CONFIG,
    }
    for name, text in files.items():
        with tf.io.gfile.GFile(os.path.join(export_base, name), "w") as f:
            f.write(text)


def _sample_records(data_dir: str, split: str, count: int) -> list[bytes]:
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, split, "*.tfrecord*")))
    if not files:
        return []
    return list(tf.data.TFRecordDataset(files).take(count).as_numpy_iterator())


def export(
    model_dir: str,
    data_dir: str,
    export_base: str,
    model_name: str = "mogenet",
    version: int | None = None,
    sampler: str = "memory",
    beam_args=None,
    jit_compile: bool = False,
    representations_dir: str | None = None,
) -> str:
    """Computes the representations and writes one exported version.

    Args:
      model_dir: The trained model's directory (`model.train --model_dir`).
      data_dir: The preprocessing output the model was trained on.
      export_base: The export root; the version goes to `<export_base>/<model_name>/`.
      model_name: The served model's name.
      version: The integer version; None = the next one.
      sampler: The representation job's sampling strategy ("memory" or "join").
      beam_args: Beam pipeline flags for the representation job.
      jit_compile: Compile the heads of the exported functions with XLA.
      representations_dir: Where the job writes; default `<model_dir>/representations`.

    Returns:
      The version's directory.

    Raises:
      ExportError: For a missing or mismatched model or data directory, or an
        existing version.
    """
    from model.input_pipeline import DataError, DataSpec
    from model.trained import load

    started = time.monotonic()
    try:
        spec = DataSpec(data_dir)
        model, entities = load(model_dir, jit_compile=jit_compile)
    except (DataError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None
    from model.baselines.base import FeatureBaseline
    from model.mogenet import MoGENet

    if not isinstance(model, (MoGENet, FeatureBaseline)):
        raise ExportError(
            f"model {model.config.model!r} cannot be exported: serving_default bakes "
            "per-node representations for MoGENet and the feature baselines"
        )
    if list(spec.layout.fanouts) != list(model.layout.fanouts):
        raise ExportError(
            f"{data_dir} has fan-outs {list(spec.layout.fanouts)}, the model was trained on "
            f"{list(model.layout.fanouts)}: export with the data it was trained on"
        )
    with tf.io.gfile.GFile(os.path.join(data_dir, "stats.json")) as f:
        run_config = json.load(f).get("config", {})
    seed = int(run_config.get("seed", 0))
    output = representations_dir or os.path.join(model_dir, "representations")
    compute_representations(model_dir, data_dir, model.layout, seed, sampler, beam_args, output)
    arrays = read_representations(output, entities, model.config.embedding_dim)

    model_base = os.path.join(export_base, model_name)
    version = next_version(model_base) if version is None else version
    final = os.path.join(model_base, str(version))
    if tf.io.gfile.exists(final):
        raise ExportError(f"{final} exists: versions are never overwritten; pick another --version")
    staging = os.path.join(model_base, f".staging-{version}")
    if tf.io.gfile.exists(staging):
        tf.io.gfile.rmtree(staging)
    module = ServingModule(model, entities, arrays, jit_compile)
    signatures = {SERVING_DEFAULT: module.serve, SCORE_EXAMPLES: module.score_examples}
    tf.saved_model.save(module, staging, signatures=signatures)
    users = entities[USER].ids[:2]
    items = entities[ITEM].ids[:100]
    logs = warmup_requests(model_name, users, items, _sample_records(data_dir, "test", 8))
    tf.io.gfile.makedirs(os.path.join(staging, "assets.extra"))
    with tf.io.TFRecordWriter(os.path.join(staging, WARMUP_FILE)) as writer:
        for entry in logs:
            writer.write(entry)
    tf.io.gfile.rename(staging, final)
    write_server_configs(export_base, model_name)
    log.info(
        "exported %s version %d (%d users, %d items, tasks %s) in %.1f s",
        model_name,
        version,
        len(entities[USER].ids),
        len(entities[ITEM].ids),
        ", ".join(model.task_names),
        time.monotonic() - started,
    )
    return final


def serving_predictions(signature, data_dir: str, split: str, tasks, batch_size: int = 1024):
    """Scores a split's pairs through a `serving_default` signature by their ids.

    Args:
      signature: The loaded signature (user_id, item_id -> {task: [N]}).
      data_dir: The preprocessing output directory.
      split: The split to score.
      tasks: The task names.
      batch_size: Pairs per call.

    Returns:
      `model.evaluation.Predictions` (gates are empty).
    """
    from model.evaluation import Predictions
    from model.input_pipeline import dense_feature_spec

    spec = {
        k: v
        for k, v in dense_feature_spec(_layout_of(data_dir), tasks).items()
        if k.startswith("context/") or k.endswith(f".{ID_FEATURE}")
    }
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, split, "*.tfrecord*")))
    data = tf.data.TFRecordDataset(files).batch(batch_size)
    users, items = [], []
    labels = {t: [] for t in tasks}
    scores = {t: [] for t in tasks}
    for serialized in data:
        features = tf.io.parse_example(serialized, spec)
        user_id = features[f"nodes/{USER}.{ID_FEATURE}"][:, 0]
        item_id = features[f"nodes/{ITEM}.{ID_FEATURE}"][:, 0]
        outputs = signature(user_id=user_id, item_id=item_id)
        users.append(user_id.numpy())
        items.append(item_id.numpy())
        for task in tasks:
            labels[task].append(
                features[f"context/{LABEL_PREFIX}{task}"][:, 0].numpy().astype(np.float32)
            )
            scores[task].append(outputs[task].numpy())
    return Predictions(
        np.concatenate(users),
        np.concatenate(items),
        {t: np.concatenate(v) for t, v in labels.items()},
        {t: np.concatenate(v) for t, v in scores.items()},
        np.zeros([0]),
    )


def _layout_of(data_dir: str):
    from model.input_pipeline import DataSpec

    return DataSpec(data_dir).layout


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    """Parses the export's flags; the ones it does not know go to Beam."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.export",
        description=__doc__.split("\n\n", 1)[0],
        epilog="Other flags (--runner, --project, --temp_location, ...) go to the Beam job.",
    )
    parser.add_argument("--model_dir", required=True, help="A --model_dir of model.train.")
    parser.add_argument("--data", required=True, help="The preprocessing output it trained on.")
    parser.add_argument("--export_base", required=True, help="The export root directory.")
    parser.add_argument("--model_name", default="mogenet", help="The served model's name.")
    parser.add_argument("--version", type=int, default=None, help="Version (default: next).")
    parser.add_argument(
        "--sampler",
        choices=("memory", "join"),
        default="memory",
        help="Sampling strategy of the representation job (join: graphs beyond one worker).",
    )
    parser.add_argument(
        "--jit_compile",
        action="store_true",
        help="Compile the heads with XLA (TF Serving then needs --xla_cpu_compilation_enabled).",
    )
    parser.add_argument(
        "--representations_dir",
        default=None,
        help="Where the representation job writes (default: MODEL_DIR/representations).",
    )
    parser.add_argument(
        "--evaluate",
        action="store_true",
        help="Score the test split through serving_default and print its GAUC per task.",
    )
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    """Runs the export CLI; returns the exit code (2 for a one-line error)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
    args, beam_args = parse_args(argv)
    try:
        path = export(
            args.model_dir,
            args.data,
            args.export_base,
            args.model_name,
            args.version,
            args.sampler,
            beam_args,
            args.jit_compile,
            args.representations_dir,
        )
    except (ExportError, ValueError) as e:
        print(f"serving.export: error: {e}", file=sys.stderr)
        return 2
    print(f"exported {path}")
    if args.evaluate:
        from model.evaluation import split_metrics

        loaded = tf.saved_model.load(path)
        tasks = list(loaded.signatures[SERVING_DEFAULT].structured_outputs)
        result = split_metrics(
            serving_predictions(loaded.signatures[SERVING_DEFAULT], args.data, "test", tasks)
        )
        trained_metrics = {}
        metrics_path = os.path.join(args.model_dir, "metrics.json")
        if tf.io.gfile.exists(metrics_path):
            with tf.io.gfile.GFile(metrics_path) as f:
                trained_metrics = json.load(f).get("test", {})
        for task in tasks:
            trained = trained_metrics.get(task, {}).get("gauc", float("nan"))
            print(
                f"test GAUC {task}: serving_default {result[task]['gauc']:.4f}, "
                f"trained model {trained:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
