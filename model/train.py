"""Trains a model on the preprocessing job's samples: `python -m model.train`.

  python -m model.train --data OUT --model_dir DIR [--model mogenet] [--epochs N]
      [--strategy default|mirrored|multi_worker|parameter_server] [model flags]

Every field of `ModelConfig` and `TrainConfig` is a flag (`--help` lists
them with the paper's defaults). The run

  * trains with a Keras progress bar, logging to `DIR/logs` for TensorBoard
    every epoch: per-task training loss and AUC, validation AUC, GAUC and log
    loss, the learned σ_k and the mean gate weight of every expert;
  * backs up its state every epoch in `DIR/backup`: run the same command
    again after a crash and it resumes from the last finished epoch;
  * stops early when the validation signal `--monitor` (default: GAUC, mean
    over tasks) has not improved for `--patience` epochs, keeping the best
    epoch's weights (after a resume, the best of the epochs since the resume);
    `--monitor none` trains every epoch and keeps the last weights;
  * writes the model (`model.trained` layout: model.json, which records the
    samples' seed for the serving export, entities/, weights/) and
    `DIR/metrics.json` with the test AUC, GAUC and log loss of every task. A
    DIR that already holds a finished run is left alone unless
    `--overwrite` is given.

`multi_worker` and `parameter_server` read the cluster from `TF_CONFIG`, as
tf.distribute does; with `parameter_server` this process is the coordinator.
Errors in the input (no such directory, no schema, no examples, a task
without a label) end the run with one line naming the problem and exit code 2.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from model import config as config_lib
from model import graph_init, trained
from model.entities import EntityError, load_entities
from model.evaluation import ValidationMetrics, evaluate_split
from model.input_pipeline import DataError, DataSpec, make_dataset
from model.optimizers import make_optimizer


def parse_args(argv=None) -> argparse.Namespace:
    """Returns the parsed command line."""
    parser = argparse.ArgumentParser(
        prog="python -m model.train",
        description="Train MoGENet (or a baseline) on the samples of beam_pipelines.run.",
    )
    parser.add_argument("--data", required=True, help="--output directory of beam_pipelines.run")
    parser.add_argument("--model_dir", required=True, help="where the model, logs and metrics go")
    parser.add_argument(
        "--tasks", default=None, help="comma-separated tasks (default: every label in the schema)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="delete a finished run in --model_dir and train again (default: refuse)",
    )
    parser.add_argument(
        "--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras verbosity (1 = bar)"
    )
    config_lib.add_flags(parser, config_lib.ModelConfig)
    config_lib.add_flags(parser, config_lib.TrainConfig)
    return parser.parse_args(argv)


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy called `name` (cluster from TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if not resolver.cluster_spec().jobs:
        raise DataError("--strategy parameter_server needs a cluster in TF_CONFIG")
    return tf.distribute.experimental.ParameterServerStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the model and metrics (one process per cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().jobs:
        return True
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return True  # the coordinator
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs
    )


def make_early_stopping(
    train_config: config_lib.TrainConfig, verbose: int = 0
) -> tf.keras.callbacks.EarlyStopping | None:
    """Returns the callback that stops on `val_<monitor>` and keeps the best epoch's weights.

    It reads the logs `ValidationMetrics` writes; log loss is minimised, the
    AUCs maximised. Returns None for monitor "none" (every epoch, last weights).
    """
    if train_config.monitor == "none":
        return None
    return tf.keras.callbacks.EarlyStopping(
        monitor=f"val_{train_config.monitor}",
        mode="min" if train_config.monitor == "log_loss" else "max",
        patience=train_config.patience,
        restore_best_weights=True,
        verbose=1 if verbose else 0,
    )


def train(
    data_dir: str,
    model_dir: str,
    model_config: config_lib.ModelConfig,
    train_config: config_lib.TrainConfig,
    tasks=None,
    verbose: int = 1,
    extra_callbacks=(),
    overwrite: bool = False,
) -> dict:
    """Trains, evaluates on test and writes the model and metrics.json.

    Args:
      data_dir: The --output directory of beam_pipelines.run.
      model_dir: Where the model, logs, backups and metrics.json go.
      model_config: The model's sizes and switches.
      train_config: How to train.
      tasks: Task names (default: every label in the schema).
      verbose: Keras verbosity.
      extra_callbacks: More Keras callbacks, run after the built-in ones.
      overwrite: Delete a finished run in `model_dir` (one with metrics.json)
        and train again; without it such a directory is an error.

    Returns:
      The test metrics written to metrics.json.

    Raises:
      DataError, EntityError, GraphInitError: For unusable input (one-line
        messages).
    """
    spec = DataSpec(data_dir)
    tasks = spec.check_tasks(tasks or spec.tasks)
    if len(tasks) < 1:
        raise DataError(f"{spec.schema_path} has no label_<task> context feature")
    for split in ("train", "valid", "test"):
        spec.files(split)
    entities = load_entities(spec.data_dir)
    finished = tf.io.gfile.exists(os.path.join(model_dir, "metrics.json"))
    if finished and not overwrite:
        raise DataError(
            f"{model_dir} holds a finished run (metrics.json); "
            "pass --overwrite to train again from scratch"
        )
    strategy = make_strategy(train_config.strategy)
    # Counting records may start TensorFlow's runtime, which multi_worker
    # must configure first: so only now, and still before anything is deleted.
    counts = {split: spec.num_examples(split) for split in ("train", "valid", "test")}
    for split, count in counts.items():
        if count == 0:
            raise DataError(f"no examples: the {split} split of {data_dir} is empty")
    chief = is_chief(strategy)
    if finished and chief:
        tf.io.gfile.rmtree(model_dir)
    # Under multi_worker every worker shuffles the same way (seeded), so that
    # splitting the examples by position gives disjoint shares.
    same_order = train_config.deterministic or train_config.strategy == "multi_worker"
    tf.keras.utils.set_random_seed(train_config.seed)
    steps_per_epoch = max(1, math.ceil(counts["train"] / train_config.batch_size))
    steps_per_execution = min(train_config.steps_per_execution, steps_per_epoch)

    def dataset_fn(input_context=None):
        batch_size = train_config.batch_size
        if input_context is not None:
            batch_size = input_context.get_per_replica_batch_size(batch_size)
        data = make_dataset(
            spec,
            "train",
            batch_size,
            tasks=tasks,
            shuffle=True,
            deterministic=same_order,
            seed=train_config.seed,
            repeat=True,
            shuffle_buffer=train_config.shuffle_buffer,
            entities=entities,
        )
        if input_context is not None and input_context.num_input_pipelines > 1:
            data = data.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        # Workers split the examples, not the files (there may be fewer files than workers).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return data.with_options(options)

    with strategy.scope():
        net = trained.build_model(
            model_config, tasks, spec.layout, entities, train_config.jit_compile
        )
        trained.build_with_dummy_batch(net, spec.layout)
        if train_config.embedding_init == "graph":
            graph_init.initialise_from_graph(
                net.encoders,
                entities,
                spec.data_dir,
                train_config.embedding_init_rank,
                train_config.seed,
            )
        net.compile(
            optimizer=make_optimizer(
                train_config.optimizer,
                train_config.learning_rate,
                train_config.embedding_lr_scale,
            ),
            steps_per_execution=steps_per_execution,
        )
        # The metrics are synchronised across replicas already: show replica 0's.
        net.distribute_reduction_method = "first"
    if isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        train_data = tf.keras.utils.experimental.DatasetCreator(dataset_fn)
    else:
        train_data = dataset_fn()

    work_dir = model_dir if chief else tempfile.mkdtemp(prefix="mogenet-worker-")
    early_stopping = make_early_stopping(train_config, verbose)
    callbacks = [
        # Every worker names the same directory: Keras restores all of them
        # from the chief's backup and sends the others' writes elsewhere.
        tf.keras.callbacks.BackupAndRestore(os.path.join(model_dir, "backup")),
        ValidationMetrics(spec, max(train_config.batch_size, 1024), entities),
        *([early_stopping] if early_stopping else []),
        tf.keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"), update_freq="epoch"),
        tf.keras.callbacks.CSVLogger(os.path.join(work_dir, "history.csv"), append=True),
        *extra_callbacks,
    ]
    started = time.time()
    history = net.fit(
        train_data,
        epochs=train_config.epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    duration = time.time() - started
    test = evaluate_split(net, spec, "test", max(train_config.batch_size, 1024), entities)
    result = {
        "test": test,
        "tasks": list(tasks),
        **_epochs_summary(os.path.join(work_dir, "history.csv"), history),
        "monitor": f"val_{train_config.monitor}" if early_stopping else "none",
        "best_epoch": _kept_epoch(early_stopping, history, train_config.epochs),
        "train_seconds": round(duration, 1),
        "model_config": json.loads(config_lib.to_json(model_config)),
        "train_config": json.loads(config_lib.to_json(train_config)),
        "data": data_dir,
    }
    # Saving is collective under MultiWorkerMirroredStrategy: every worker saves,
    # the others into their scratch directory.
    trained.save(net, model_dir if chief else work_dir, entities, spec.sampler_seed)
    if not chief:
        shutil.rmtree(work_dir, ignore_errors=True)
    else:
        with tf.io.gfile.GFile(os.path.join(model_dir, "metrics.json"), "w") as f:
            f.write(json.dumps(result, indent=2, sort_keys=True, allow_nan=True))
    return result


def _kept_epoch(early_stopping, history, epochs: int) -> int:
    """The 1-based epoch whose weights the model holds at the end of `fit`.

    Keras numbers epochs from the start of the first run, also after a
    resume. The last epoch's weights are kept with no early stopping, and
    also when a resume had no epoch left to run (the backup's weights stay).
    """
    if early_stopping is not None and early_stopping.best_weights is not None:
        return early_stopping.best_epoch + 1
    return history.epoch[-1] + 1 if history.epoch else epochs


def _epochs_summary(history_csv: str, history) -> dict:
    """Epochs run and the best validation GAUC of any epoch, over every resumed run.

    `best_val_gauc` need not be the kept epoch's (see `--monitor`).
    """
    values = history.history.get("val_gauc", [])
    if tf.io.gfile.exists(history_csv):
        with tf.io.gfile.GFile(history_csv) as f:
            values = [float(row["val_gauc"]) for row in csv.DictReader(f) if row.get("val_gauc")]
    return {
        "epochs_run": len(values),
        "best_val_gauc": float(np.nanmax(values)) if values else float("nan"),
    }


def format_metrics(result: dict) -> str:
    """Returns the test metrics as a table."""
    lines = [f"{'task':<14}{'AUC':>8}{'GAUC':>8}{'log loss':>10}{'examples':>10}"]
    for task in result["tasks"]:
        m = result["test"][task]
        lines.append(
            f"{task:<14}{m['auc']:>8.4f}{m['gauc']:>8.4f}{m['log_loss']:>10.4f}{m['examples']:>10}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model_config = config_lib.from_flags(args, config_lib.ModelConfig)
        train_config = config_lib.from_flags(args, config_lib.TrainConfig)
        if model_config.model not in trained.MODELS:
            raise ValueError(
                f"unknown --model {model_config.model!r}; "
                f"choose one of {', '.join(sorted(trained.MODELS))}"
            )
    except ValueError as e:
        print(f"model.train: error: {e}", file=sys.stderr)
        return 2
    tasks = tuple(t for t in args.tasks.split(",") if t) if args.tasks else None
    try:
        result = train(
            args.data,
            args.model_dir,
            model_config,
            train_config,
            tasks,
            args.verbose,
            overwrite=args.overwrite,
        )
    except (DataError, EntityError, graph_init.GraphInitError) as e:
        print(f"model.train: error: {e}", file=sys.stderr)
        return 2
    print(f"test metrics ({args.model_dir}/metrics.json):")
    print(format_metrics(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
