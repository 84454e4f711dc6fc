"""A trained model on disk: what `model.train` writes and serving reads.

`DIR/` (the --model_dir of `python -m model.train`) holds

  model.json           {"model", "tasks", "fanouts", "model_config", "sampler_seed"}
  entities/            the ids and side-feature tables the model indexes
                       (`model.entities`: vocab/*.tsv, features/*.jsonl)
  weights/             the trained weights (a TF checkpoint, `save_weights`)
  metrics.json         test metrics (written by `model.train`)

`load` rebuilds the model from `model.json` and `entities/` and restores the
weights, so an export needs nothing but the directory and the training graphs.
`sampler_seed` is the `--seed` of the preprocessing run the model trained on
(None if its output had no stats.json): the serving export samples each
node's trees with it, as the samples were drawn. Model directories written
before it was recorded lack it.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from contracts.layout import WEIGHTED_EDGE_SETS, SampleLayout
from contracts.model_inputs import index_input, mask_input, weight_input
from model import config as config_lib
from model.baselines import BASELINE_CLASSES
from model.entities import load_entities, save_entities
from model.mogenet import MoGENet

MODELS = {"mogenet": MoGENet, **BASELINE_CLASSES}
WEIGHTS = os.path.join("weights", "model")


def build_model(
    model_config: config_lib.ModelConfig,
    tasks,
    layout: SampleLayout,
    entities,
    jit_compile: bool = False,
):
    """Returns the model named by `model_config.model`, unbuilt.

    Raises:
      ValueError: For an unknown model name.
    """
    if model_config.model not in MODELS:
        raise ValueError(
            f"unknown model {model_config.model!r}; choose one of {', '.join(sorted(MODELS))}"
        )
    return MODELS[model_config.model](
        model_config, tasks, layout, entities, jit_compile=jit_compile
    )


def save(model, model_dir: str, entities, sampler_seed: int | None = None) -> None:
    """Writes model.json, entities/ and weights/ of a trained model under `model_dir`.

    Args:
      model: The trained model.
      model_dir: Where it goes.
      entities: {node set: EntityTable} of the model.
      sampler_seed: The seed of the preprocessing run it trained on
        (`DataSpec.sampler_seed`).
    """
    tf.io.gfile.makedirs(model_dir)
    description = {
        "model": model.config.model,
        "tasks": list(model.task_names),
        "fanouts": list(model.layout.fanouts),
        "model_config": json.loads(config_lib.to_json(model.config)),
        "sampler_seed": sampler_seed,
    }
    with tf.io.gfile.GFile(os.path.join(model_dir, "model.json"), "w") as f:
        f.write(json.dumps(description, indent=2, sort_keys=True))
    save_entities(entities, os.path.join(model_dir, "entities"))
    model.save_weights(os.path.join(model_dir, WEIGHTS))


def load(model_dir: str, jit_compile: bool = False):
    """Rebuilds a model saved by `save` and restores its weights.

    Returns:
      (model, entities): the model, built and restored, and its entity tables.

    Raises:
      FileNotFoundError: If `model_dir` holds no saved model.
    """
    description = _description(model_dir)
    model_config = config_lib.ModelConfig(**description["model_config"])
    entities = load_entities(os.path.join(model_dir, "entities"))
    layout = SampleLayout(description["fanouts"])
    model = build_model(model_config, description["tasks"], layout, entities, jit_compile)
    build_with_dummy_batch(model, layout)
    model.load_weights(os.path.join(model_dir, WEIGHTS)).expect_partial()
    return model, entities


def sampler_seed(model_dir: str) -> int | None:
    """Returns the seed of the preprocessing run the model trained on.

    None if `model.json` does not record it (written before it did, or from
    an output without stats.json).

    Raises:
      FileNotFoundError: If `model_dir` holds no saved model.
    """
    seed = _description(model_dir).get("sampler_seed")
    return None if seed is None else int(seed)


def _description(model_dir: str) -> dict:
    path = os.path.join(model_dir, "model.json")
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(
            f"{model_dir} has no model.json: is it a --model_dir of model.train?"
        )
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def build_with_dummy_batch(model, layout: SampleLayout) -> None:
    """Creates a model's variables by running it on one all-padding example."""
    inputs = {}
    for node_set, size in layout.node_set_sizes.items():
        inputs[index_input(node_set)] = tf.zeros([1, size], tf.int32)
        inputs[mask_input(node_set)] = tf.zeros([1, size], tf.float32)
    for edge_set in WEIGHTED_EDGE_SETS:
        inputs[weight_input(edge_set)] = tf.zeros([1, layout.edge_set_sizes[edge_set]], tf.float32)
    model(inputs)
