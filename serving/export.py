"""Exports a trained MoGENet as a SavedModel that plain TF Serving serves.

  python -m serving.export --model_dir DIR --data OUT --export_base export \
      --model_name mogenet

1. Every user's and item's channel representations are computed offline over
   the training graph (`serving.representations`, a Beam job on the runner
   given by `--runner` and Beam's pipeline flags), into
   `<model_dir>/representations/`; a finished run for the same weights and
   data is reused. The job samples the trees with the seed of the
   preprocessing run the model trained on, which `model.train` records in
   `<model_dir>/model.json`.
2. `<export_base>/<model_name>/<version>/` (the next integer version unless
   `--version`; written aside and renamed into place, so a polling server
   never sees half a version) gets a SavedModel with two signatures,
   `serving_default` (ids in) and `score_examples` (serialized samples in),
   and warm-up requests (`serving.saved_model`).
3. `<export_base>/` gets `models.config`, `batching_parameters.txt` and
   `monitoring.config` for `tensorflow_model_server` (`serving.tf_serving_config`;
   see the README).

`--jit_compile` compiles the heads with XLA, which `tensorflow_model_server`
runs only with `--xla_cpu_compilation_enabled`. `--evaluate` then scores the
test split through `serving_default` and prints its GAUC per task beside the
trained model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import tensorflow as tf

from contracts.layout import ITEM, USER
from contracts.model_inputs import ids_input
from contracts.signatures import ITEM_ID, SERVING_DEFAULT, USER_ID
from model import trained
from model.evaluation import Predictions, collect_predictions, split_metrics
from model.input_pipeline import DataError, DataSpec, make_dataset
from serving.representations import compute_representations, read_representations
from serving.saved_model import ServingModule, warmup_requests, write_version
from serving.tf_serving_config import write_server_configs

log = logging.getLogger("serving.export")


class ExportError(ValueError):
    """The export cannot be made as asked: a one-line message."""


def next_version(model_base: str) -> int:
    """Returns 1 + the newest integer version under `model_base` (1 if none)."""
    if not tf.io.gfile.isdir(model_base):
        return 1
    versions = [
        int(e.rstrip("/")) for e in tf.io.gfile.listdir(model_base) if e.rstrip("/").isdigit()
    ]
    return max(versions, default=0) + 1


def sampler_seed(model_dir: str, spec: DataSpec) -> int:
    """Returns the seed the model's samples were drawn with, from its model.json.

    A model directory written before model.json recorded the seed (or trained
    on an output without stats.json) falls back on the data's stats.json,
    with a warning.

    Raises:
      ExportError: If neither records it.
    """
    seed = trained.sampler_seed(model_dir)
    if seed is not None:
        return seed
    if spec.sampler_seed is None:
        raise ExportError(
            f"{model_dir}/model.json records no sampler_seed and {spec.data_dir} has no "
            "stats.json: retrain with python -m model.train on the preprocessing output"
        )
    log.warning(
        "%s/model.json records no sampler_seed (trained before it did): "
        "using the seed %d of %s/stats.json",
        model_dir,
        spec.sampler_seed,
        spec.data_dir,
    )
    return spec.sampler_seed


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
    started = time.monotonic()
    try:
        spec = DataSpec(data_dir)
        model, entities = trained.load(model_dir, jit_compile=jit_compile)
    except (DataError, FileNotFoundError) as e:
        raise ExportError(str(e)) from None
    if not model.scores_from_node_states:
        raise ExportError(
            f"model {model.config.model!r} cannot be exported: serving_default bakes "
            "per-node representations for MoGENet and the feature baselines"
        )
    if list(spec.layout.fanouts) != list(model.layout.fanouts):
        raise ExportError(
            f"{data_dir} has fan-outs {list(spec.layout.fanouts)}, the model was trained on "
            f"{list(model.layout.fanouts)}: export with the data it was trained on"
        )
    seed = sampler_seed(model_dir, spec)
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
    users = entities[USER].ids[:2]
    items = entities[ITEM].ids[:100]
    write_version(module, staging, warmup_requests(model_name, users, items, _test_records(spec)))
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


def _test_records(spec: DataSpec, count: int = 8) -> list[bytes]:
    """A few serialized test samples for the warm-up requests (none without test files)."""
    try:
        files = spec.files("test")
    except DataError:
        return []
    return list(tf.data.TFRecordDataset(files).take(count).as_numpy_iterator())


def serving_predictions(
    signature, spec: DataSpec | str, split: str, tasks, batch_size: int = 1024
) -> Predictions:
    """Scores a split's pairs through a `serving_default` signature by their ids.

    Args:
      signature: The loaded signature (user_id, item_id -> {task: [N]}).
      spec: The data's `DataSpec` (or its directory).
      split: The split to score.
      tasks: The task names.
      batch_size: Pairs per call.

    Returns:
      `model.evaluation.Predictions` (gates are empty).
    """
    data = make_dataset(
        spec, split, batch_size, tasks=tasks, shuffle=False, deterministic=True, keep_root_ids=True
    )

    def score(inputs):
        user_id, item_id = (inputs[ids_input(s)][:, 0] for s in (USER, ITEM))
        return signature(**{USER_ID: user_id, ITEM_ID: item_id}), None

    return collect_predictions(data, score, tasks)


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
        loaded = tf.saved_model.load(path)  # held: the signature reads its variables
        signature = loaded.signatures[SERVING_DEFAULT]
        tasks = list(signature.structured_outputs)
        result = split_metrics(serving_predictions(signature, args.data, "test", tasks))
        trained_metrics = {}
        metrics_path = os.path.join(args.model_dir, "metrics.json")
        if tf.io.gfile.exists(metrics_path):
            with tf.io.gfile.GFile(metrics_path) as f:
                trained_metrics = json.load(f).get("test", {})
        for task in tasks:
            gauc = trained_metrics.get(task, {}).get("gauc", float("nan"))
            print(
                f"test GAUC {task}: serving_default {result[task]['gauc']:.4f}, "
                f"trained model {gauc:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
