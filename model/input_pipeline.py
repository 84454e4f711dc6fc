"""tf.data input pipeline over the preprocessing job's TFRecord samples.

`DataSpec` reads what an output directory holds once (`graph_schema.pbtxt`,
`layout.json`, `stats.json`); `make_dataset(spec, split, ...)` reads a split,
`OUT/<split>/*.tfrecord`, and yields (inputs, labels) batches, the labels
taken out of the graph before the model sees it (keys and input names from
`contracts`):

  * ``dense`` (default): the fixed sample layout read as dense tensors with
    `tf.io.parse_example` — `<set>_ids` [B, n] strings, `<set>_mask` [B, n]
    float32 for node sets `user` and `item`, `<set>_weight` [B, m] float32 for
    `user_user` and `item_item` — the fast path: no ragged tensors, no edge
    lists (the layout says which slot is which);
  * ``graph``: a `tfgnn.GraphTensor` parsed with the schema, without its
    `label_<task>` context features.

Labels are a dict {task: [B] float32}. With `entities` (dense mode), the
string ids become int32 `<set>_index` through a hash table in tf.data, so the
batches the model gets hold no strings and its numeric part can run under XLA.

`GraphTensorInputs` turns ``graph`` batches into the same model inputs (the
samples' fixed layout makes every node and edge feature a [B, n] tensor), so
the models also take TF-GNN GraphTensors laid out as the preprocessing job
lays them out, as a preprocessing step in the TF-GNN way. Nodes are read by
position, as in dense mode; adjacency is not checked again.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
import tensorflow_gnn as tfgnn

from contracts.example_keys import (
    ID_FEATURE,
    MASK_FEATURE,
    WEIGHT_FEATURE,
    context_key,
    edge_key,
    id_key,
    label_feature,
    label_key,
    mask_key,
    node_key,
    task_of,
    weight_key,
)
from contracts.layout import NODE_SETS, WEIGHTED_EDGE_SETS, SampleLayout
from contracts.model_inputs import (
    ids_input,
    index_input,
    mask_input,
    root_id_input,
    weight_input,
)

DENSE = "dense"
GRAPH = "graph"


class DataError(ValueError):
    """The data directory cannot be used as asked: a one-line message."""


class DataSpec:
    """What a preprocessing output directory holds, read once.

    Made once per directory and passed to `make_dataset`, `model.evaluation`
    and the serving export, which then read no description again.

    Args:
      data_dir: The --output directory of `beam_pipelines.run`.

    Attributes:
      data_dir: The directory.
      schema_path: Its `graph_schema.pbtxt`.
      schema: The samples' `tfgnn.GraphSchema`.
      layout: The samples' `SampleLayout` (from `layout.json`).
      tasks: The tasks of the schema's `label_<task>` features, sorted.
      sampler_seed: The preprocessing run's `--seed`, which the samples'
        neighbours were drawn with (`stats.json`; None without stats.json).

    Raises:
      DataError: If the directory, its schema or its layout is missing.
    """

    def __init__(self, data_dir: str):
        if not tf.io.gfile.isdir(data_dir):
            raise DataError(f"no such data directory: {data_dir}")
        self.data_dir = data_dir
        schema_path = os.path.join(data_dir, "graph_schema.pbtxt")
        layout_path = os.path.join(data_dir, "layout.json")
        for path in (schema_path, layout_path):
            if not tf.io.gfile.exists(path):
                raise DataError(
                    f"{data_dir} has no {os.path.basename(path)}: "
                    "is it the --output of python -m beam_pipelines.run?"
                )
        self.schema_path = schema_path
        try:
            with tf.io.gfile.GFile(layout_path) as f:
                self.layout = SampleLayout.from_json(f.read())
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{layout_path} is not a sample layout: {e}".splitlines()[0]) from None
        try:
            self.schema = tfgnn.read_schema(schema_path)
        except Exception as e:  # noqa: BLE001 — text_format raises its own ParseError
            raise DataError(f"{schema_path} is not a GraphSchema: {e}".splitlines()[0]) from None
        labels = (task_of(name) for name in self.schema.context.features)
        self.tasks = tuple(sorted(task for task in labels if task is not None))
        stats = {}
        stats_path = os.path.join(data_dir, "stats.json")
        if tf.io.gfile.exists(stats_path):
            with tf.io.gfile.GFile(stats_path) as f:
                stats = json.load(f)
        self._samples = stats.get("samples", {})
        self.sampler_seed = int(stats.get("config", {}).get("seed", 0)) if stats else None

    @classmethod
    def of(cls, data: DataSpec | str) -> DataSpec:
        """Returns `data` if it is a DataSpec, else the DataSpec of the directory `data`."""
        return data if isinstance(data, DataSpec) else cls(data)

    def check_tasks(self, tasks) -> tuple[str, ...]:
        """Returns the tasks, checked against the schema's label features.

        Raises:
          DataError: Naming the first task without a `label_<task>` feature.
        """
        for task in tasks:
            if task not in self.tasks:
                raise DataError(
                    f"task {task!r} has no context feature {label_feature(task)} in "
                    f"{self.schema_path} (its tasks: {', '.join(self.tasks) or 'none'})"
                )
        return tuple(tasks)

    def files(self, split: str) -> list[str]:
        """Returns the split's TFRecord files.

        Raises:
          DataError: If the split has no files.
        """
        pattern = os.path.join(self.data_dir, split, "*.tfrecord*")
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise DataError(f"no examples: nothing matches {pattern}")
        return files

    def num_examples(self, split: str) -> int:
        """Returns the split's number of examples (from stats.json, else by counting).

        Raises:
          DataError: If the split has no files.
        """
        count = self._samples.get(split)
        if count is not None:
            return int(count)
        files = self.files(split)
        return int(tf.data.TFRecordDataset(files).reduce(0, lambda n, _: n + 1))

    def dense_feature_spec(self, tasks) -> dict:
        """Returns the tf.io.parse_example spec of the fixed layout and labels."""
        return dense_feature_spec(self.layout, tasks)


def dense_feature_spec(layout: SampleLayout, tasks=()) -> dict:
    """Returns the tf.io.parse_example spec of a layout's samples and their labels.

    Args:
      layout: The samples' layout.
      tasks: Tasks whose `label_<task>` to parse (none: the samples may lack labels).
    """
    spec = {}
    for node_set in NODE_SETS:
        size = layout.node_set_sizes[node_set]
        spec[id_key(node_set)] = tf.io.FixedLenFeature([size], tf.string)
        spec[mask_key(node_set)] = tf.io.FixedLenFeature([size], tf.int64)
    for edge_set in WEIGHTED_EDGE_SETS:
        size = layout.edge_set_sizes[edge_set]
        spec[weight_key(edge_set)] = tf.io.FixedLenFeature([size], tf.float32)
    for task in tasks:
        spec[label_key(task)] = tf.io.FixedLenFeature([1], tf.int64)
    return spec


def dense_inputs(features: dict, tables=None, keep_root_ids: bool = False) -> dict:
    """Turns parsed dense features into the model's inputs.

    Args:
      features: `tf.io.parse_example` output for `dense_feature_spec`.
      tables: {node set: id -> index hash table}; None keeps `<set>_ids` strings.
      keep_root_ids: Also keep the roots' ids, `user_id` and `item_id` [B].

    Returns:
      {`<set>_index` (or `<set>_ids`), `<set>_mask`, `<edge set>_weight`}
      (names from `contracts.model_inputs`).
    """
    inputs = {}
    for node_set in NODE_SETS:
        ids = features[id_key(node_set)]
        if tables is None:
            inputs[ids_input(node_set)] = ids
        else:
            inputs[index_input(node_set)] = tables[node_set].lookup(ids)
        if keep_root_ids:
            inputs[root_id_input(node_set)] = ids[:, 0]
        inputs[mask_input(node_set)] = tf.cast(features[mask_key(node_set)], tf.float32)
    for edge_set in WEIGHTED_EDGE_SETS:
        inputs[weight_input(edge_set)] = features[weight_key(edge_set)]
    return inputs


class GraphTensorInputs(tf.keras.layers.Layer):
    """Maps a batch of GraphTensor samples to the models' dense inputs.

    Each sample of the fixed layout has the same node and edge counts, so a
    feature of a batch of B samples holds B · n values in sample order: a
    reshape to [B, n] reads it in the layout's slots, as `dense_inputs` reads
    the parsed dense features. The string ids go through the entity tables
    (unknown -> 0, as in dense mode). A sample whose node or edge counts
    differ from the layout's is an error, not a silent misreading.

    Args:
      layout: The samples' layout.
      entities: {node set: `model.entities.EntityTable`}; None keeps the
        `<set>_ids` strings.
      keep_root_ids: Also return the roots' ids, `user_id` and `item_id` [B].

    Call args:
      graph: A GraphTensor of rank 1 (`make_dataset(mode="graph")`
        batches) or of rank 0 whose components are the samples.

    Returns:
      The dense inputs (see `dense_inputs`).
    """

    def __init__(self, layout: SampleLayout, entities=None, keep_root_ids=False, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.layout = layout
        self.keep_root_ids = keep_root_ids
        self._tables = {s: entities[s].lookup_table() for s in NODE_SETS} if entities else None

    def call(self, graph):
        if graph.rank > 0:
            graph = graph.merge_batch_to_components()
        features, checks = {}, []
        pieces = [
            (f"nodes/{s}", graph.node_sets[s], self.layout.node_set_sizes[s]) for s in NODE_SETS
        ]
        pieces += [
            (f"edges/{e}", graph.edge_sets[e], self.layout.edge_set_sizes[e])
            for e in WEIGHTED_EDGE_SETS
        ]
        for prefix, piece, size in pieces:
            checks.append(
                tf.debugging.assert_equal(
                    piece.sizes,
                    tf.cast(size, piece.sizes.dtype),
                    message=f"{prefix} of a sample does not have the layout's {size} slots",
                )
            )
        with tf.control_dependencies(checks):
            for node_set in NODE_SETS:
                size = self.layout.node_set_sizes[node_set]
                for name in (ID_FEATURE, MASK_FEATURE):
                    value = graph.node_sets[node_set][name]
                    features[node_key(node_set, name)] = tf.reshape(value, [-1, size])
            for edge_set in WEIGHTED_EDGE_SETS:
                size = self.layout.edge_set_sizes[edge_set]
                value = graph.edge_sets[edge_set][WEIGHT_FEATURE]
                features[edge_key(edge_set, WEIGHT_FEATURE)] = tf.reshape(value, [-1, size])
        return dense_inputs(features, self._tables, self.keep_root_ids)


def make_dataset(
    spec: DataSpec | str,
    split: str,
    batch_size: int,
    *,
    tasks=None,
    mode: str = DENSE,
    shuffle: bool = True,
    deterministic: bool | None = None,
    seed: int = 0,
    repeat: bool = False,
    shuffle_buffer: int = 10_000,
    entities=None,
    keep_root_ids: bool = False,
) -> tf.data.Dataset:
    """Returns a dataset of (inputs, labels) batches of one split.

    Args:
      spec: The data's `DataSpec` (or its directory, read here).
      split: "train", "valid" or "test".
      batch_size: Examples per batch (the last batch may be smaller).
      tasks: Task names; None means every `label_<task>` in the schema.
      mode: "dense" (fast path) or "graph" (GraphTensor); see the module doc.
      shuffle: Whether to shuffle files and examples.
      deterministic: Same order on every run (seeded shuffles, ordered reads).
        None (the default) means `not shuffle`: unshuffled reads come in file
        order, shuffled ones as the parallel reads finish.
      seed: Seed of the shuffles.
      repeat: Whether to repeat forever.
      shuffle_buffer: Examples in the shuffle buffer.
      entities: Dense mode only: {node set: `model.entities.EntityTable`}; if
        given, `<set>_ids` are replaced by int32 `<set>_index` (unknown ids
        and padding -> 0), so the batches hold no strings.
      keep_root_ids: Dense mode only: also keep the roots' string ids as
        `user_id` and `item_id` [B] (e.g. to group examples by user).

    Returns:
      A `tf.data.Dataset`.

    Raises:
      DataError: If the data directory, its schema or examples are missing, or
        a task has no label in the schema.
      ValueError: For an unknown mode.
    """
    if mode not in (DENSE, GRAPH):
        raise ValueError(f"unknown mode {mode!r}; choose {DENSE} or {GRAPH}")
    spec = DataSpec.of(spec)
    tasks = spec.check_tasks(spec.tasks if tasks is None else tasks)
    files = spec.files(split)
    if deterministic is None:
        deterministic = not shuffle
    options = tf.data.Options()
    options.deterministic = deterministic
    data = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        data = data.shuffle(len(files), seed=seed if deterministic else None)
    data = data.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(4, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if shuffle:
        data = data.shuffle(shuffle_buffer, seed=seed if deterministic else None)
    if repeat:
        data = data.repeat()
    data = data.batch(batch_size)
    if mode == DENSE:
        parse = _dense_parser(spec, tasks, entities, keep_root_ids)
    else:
        parse = _graph_parser(spec, tasks)
    data = data.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return data.prefetch(tf.data.AUTOTUNE).with_options(options)


def _labels(features: dict, tasks) -> dict:
    return {task: tf.cast(tf.squeeze(features[label_key(task)], -1), tf.float32) for task in tasks}


def _dense_parser(spec: DataSpec, tasks, entities=None, keep_root_ids=False):
    feature_spec = spec.dense_feature_spec(tasks)
    tables = {s: entities[s].lookup_table() for s in NODE_SETS} if entities else None

    def parse(serialized):
        features = tf.io.parse_example(serialized, feature_spec)
        return dense_inputs(features, tables, keep_root_ids), _labels(features, tasks)

    return parse


def _graph_parser(spec: DataSpec, tasks):
    graph_spec = tfgnn.create_graph_spec_from_schema_pb(spec.schema)
    label_names = [label_feature(t) for t in spec.tasks]

    def parse(serialized):
        graph = tfgnn.parse_example(graph_spec, serialized)
        labels = _labels({context_key(n): graph.context[n] for n in label_names}, tasks)
        return graph.remove_features(context=label_names), labels

    return parse
