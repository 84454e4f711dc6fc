"""Every user's and item's channel representations, computed offline as a Beam job.

A trained MoGENet scores a pair from its root encodings (p_u, q_i) and the
states of four trees: G_u and U rooted at the user, G_i and I rooted at the
item. A user's trees depend on the user alone and an item's on the item alone
(the preprocessing job's sampler gives a node the same neighbourhood in every
sample, see `beam_pipelines.pair_sampler`), so they can be computed once per
node and baked into the serving export. This job does it the way the samples
were made:

  graphs/ (the training graphs the preprocessing job wrote)
    -> RankNeighbors with the job's seed          (the same ranked neighbours)
    -> SamplePairs on one pseudo pair per node    (the same trees, same layout)
    -> RunInference(NodeStatesModelHandler)       (encoders + MGNN channels)
    -> OUTPUT/representations-*.tfrecord

`compute_representations` runs the job, and reuses a finished run for the
same weights, data and sampling (`OUTPUT/_SUCCESS` holds their fingerprint).

A pseudo pair puts the node at one root and, at the other, an id that is no
node (so the node's trees skip no edge, as for every held-out pair). Each
output record is a tf.Example: `node_set`, `id`, `root` (the encoding) and
one float feature per tree of the node (`G_u`, `U` for users; `G_i`, `I` for
items), each `embedding_dim` long. On the local runners the model is loaded
once per worker; on Dataflow, Flink or Spark it scales with the graph (pass
`--sampler join` when the graph does not fit in a worker's memory).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.graphs import AdjacencyEdges, ReadGraphs
from beam_pipelines.pair_sampler import RankNeighbors, SamplePairs
from beam_pipelines.records import Interaction
from contracts.layout import ITEM, NODE_SETS, TREES, USER, SampleLayout
from model.input_pipeline import dense_feature_spec, dense_inputs
from model.trained import WEIGHTS, load

log = logging.getLogger(__name__)
_SUCCESS = "_SUCCESS"
# The trees rooted at each node set, in the order of `contracts.layout.TREES`.
NODE_TREES = {s: tuple(t.name for t in TREES if t.root == s) for s in NODE_SETS}
ROOT = "root"
# The other root of a pseudo pair: no node has an id starting with NUL.
_NO_NODE = "\x00"


def pseudo_pair(node_set: str, node_id: str) -> tuple[str, Interaction]:
    """Returns (key, unlabelled pair) that samples the trees of one node.

    Args:
      node_set: "user" or "item".
      node_id: The node's id.
    """
    other = _NO_NODE + node_id  # one per node: no hot key in the join sampler
    if node_set == USER:
        return f"{USER}\t{node_id}", Interaction(node_id, other, None, ())
    return f"{ITEM}\t{node_id}", Interaction(other, node_id, None, ())


class NodeStatesModelHandler(ModelHandler[bytes, PredictionResult, object]):
    """RunInference handler: serialized samples -> every root encoding and tree state.

    The model is rebuilt from `model_dir` (`model.trained.load`); a batch of
    samples is parsed, looked up and run through the encoders and the MGNN
    channels (`MoGENet.encode`, `MoGENet.tree_states`), not the heads.

    Args:
      model_dir: A --model_dir of `model.train`.
      min_batch_size: Smallest batch RunInference forms.
      max_batch_size: Largest batch RunInference forms.
    """

    def __init__(self, model_dir: str, min_batch_size: int = 64, max_batch_size: int = 1024):
        super().__init__()
        self.model_dir = model_dir
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}

    def load_model(self):
        model, entities = load(self.model_dir)
        spec = dense_feature_spec(model.layout)
        tables = {s: entities[s].lookup_table() for s in NODE_SETS}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def states(serialized):
            inputs = dense_inputs(tf.io.parse_example(serialized, spec), tables)
            encoded, dense, _ = model.encode(inputs)
            roots, trees = model.tree_states(encoded, dense)
            return {**roots, **trees}

        states.tables = tables  # keeps the tables alive with the function
        return states

    def run_inference(
        self, batch: Sequence[bytes], model, inference_args=None
    ) -> Iterable[PredictionResult]:
        outputs = {k: v.numpy() for k, v in model(tf.constant(list(batch))).items()}
        for k, example in enumerate(batch):
            yield PredictionResult(example, {name: value[k] for name, value in outputs.items()})

    def batch_elements_kwargs(self):
        return self._batching


def to_example(key: str, result: PredictionResult) -> bytes:
    """Serializes one node's representations (see the module doc)."""
    node_set, node_id = key.split("\t", 1)
    features = {
        "node_set": _bytes_feature(node_set),
        "id": _bytes_feature(node_id),
        ROOT: _float_feature(result.inference[node_set]),
    }
    for tree in NODE_TREES[node_set]:
        features[tree] = _float_feature(result.inference[tree])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _bytes_feature(value: str) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))


def _float_feature(values: np.ndarray) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=values.tolist()))


class ReadNodeIds(beam.PTransform):
    """Reads a trained model's known ids: (node set, id) for every entity.

    Args:
      model_dir: A --model_dir of `model.train` (its `entities/vocab/`).
    """

    def __init__(self, model_dir: str):
        super().__init__()
        self.model_dir = model_dir

    def expand(self, pipeline):
        parts = []
        for node_set in NODE_SETS:
            pattern = os.path.join(self.model_dir, "entities", "vocab", f"{node_set}-*.tsv")
            parts.append(
                pipeline
                | f"Read_{node_set}" >> beam.io.ReadFromText(pattern)
                | f"Id_{node_set}" >> beam.Map(lambda line, s=node_set: (s, line.split("\t", 1)[0]))
            )
        return parts | "AllIds" >> beam.Flatten()


class NodeRepresentations(beam.PTransform):
    """The whole job: graphs and a trained model in, node representations out.

    Input: a pipeline. Output: (key "<node set>\\t<id>", PredictionResult).

    Args:
      graphs_dir: `OUT/graphs` of the preprocessing run the model trained on.
      model_dir: The trained model's directory.
      layout: The samples' layout (the model's fan-outs).
      seed: The preprocessing run's `--seed`.
      sampler: "memory" or "join", as in the preprocessing job.
    """

    def __init__(
        self,
        graphs_dir: str,
        model_dir: str,
        layout: SampleLayout,
        seed: int,
        sampler: str = "memory",
    ):
        super().__init__()
        self.graphs_dir = graphs_dir
        self.model_dir = model_dir
        self.layout = layout
        self.seed = seed
        self.sampler = sampler

    def expand(self, pipeline):
        neighbors = (
            pipeline
            | "ReadGraphs" >> ReadGraphs(self.graphs_dir)
            | "Adjacency" >> AdjacencyEdges()
            | "Rank" >> RankNeighbors(self.seed, max(self.layout.fanouts) + 1)
        )
        return (
            pipeline
            | "NodeIds" >> ReadNodeIds(self.model_dir)
            | "PseudoPairs" >> beam.MapTuple(pseudo_pair)
            | "Sample" >> SamplePairs(neighbors, self.layout, (), self.sampler)
            | "Unbatch" >> beam.FlatMapTuple(lambda key, records: [(key, r) for r in records])
            | "States" >> RunInference(KeyedModelHandler(NodeStatesModelHandler(self.model_dir)))
        )


class WriteRepresentations(beam.PTransform):
    """Writes (key, PredictionResult) as `<output>/representations-*.tfrecord`.

    Args:
      output: The output directory.
    """

    def __init__(self, output: str):
        super().__init__()
        self.output = output

    def expand(self, results):
        return (
            results
            | "ToExample" >> beam.MapTuple(to_example)
            | "Write"
            >> beam.io.WriteToTFRecord(
                os.path.join(self.output, "representations"), file_name_suffix=".tfrecord"
            )
        )


def compute_representations(
    model_dir: str, data_dir: str, layout, seed: int, sampler: str, beam_args, output: str
) -> None:
    """Runs the job into `output` unless a finished run for the same inputs is there.

    Args:
      model_dir: The trained model's directory.
      data_dir: The preprocessing output the model trained on (its `graphs/`).
      layout: The model's sample layout.
      seed: The preprocessing run's seed.
      sampler: "memory" or "join".
      beam_args: Beam pipeline flags (e.g. ["--runner=FnApiRunner"]).
      output: Where the representations go.
    """
    fingerprint = _fingerprint(model_dir, data_dir, seed, sampler)
    success = os.path.join(output, _SUCCESS)
    if tf.io.gfile.exists(success):
        with tf.io.gfile.GFile(success) as f:
            if f.read().strip() == fingerprint:
                log.info("reusing the finished run in %s", output)
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
    log.info("computed in %.1f s into %s", time.monotonic() - started, output)


def _fingerprint(model_dir: str, data_dir: str, seed: int, sampler: str) -> str:
    """Identifies what a representation run computed from: weights, data and sampling."""
    digest = hashlib.sha256()
    for path in sorted(tf.io.gfile.glob(os.path.join(model_dir, WEIGHTS) + "*")):
        with tf.io.gfile.GFile(path, "rb") as f:
            digest.update(f.read())
    digest.update(json.dumps([os.path.abspath(data_dir), seed, sampler]).encode())
    return digest.hexdigest()


def read_representations(directory: str, entities, dim: int) -> dict[str, dict[str, np.ndarray]]:
    """Reads the job's output into arrays in the entity tables' index order.

    Row 0 (padding and unknown ids) is the mean of the known rows: an unknown
    user or item is scored as the average known one.

    Args:
      directory: The job's output directory.
      entities: {node set: `model.entities.EntityTable`} of the model.
      dim: The representations' length (embedding_dim).

    Returns:
      {node set: {"root" or tree: float32 [V, dim]}}.

    Raises:
      ValueError: If a known id has no representation or a length is wrong.
    """
    files = sorted(tf.io.gfile.glob(os.path.join(directory, "representations-*.tfrecord")))
    if not files:
        raise ValueError(f"no representations-*.tfrecord under {directory}")
    arrays = {
        s: {name: np.zeros([entities[s].size, dim], np.float32) for name in (ROOT, *NODE_TREES[s])}
        for s in NODE_SETS
    }
    index = {s: {node_id: k + 1 for k, node_id in enumerate(entities[s].ids)} for s in NODE_SETS}
    seen = {s: np.zeros(entities[s].size, bool) for s in NODE_SETS}
    for record in tf.data.TFRecordDataset(files).as_numpy_iterator():
        example = tf.train.Example.FromString(record)
        feature = example.features.feature
        node_set = feature["node_set"].bytes_list.value[0].decode()
        row = index[node_set].get(feature["id"].bytes_list.value[0].decode())
        if row is None:
            continue  # an id the model does not know (another model's output)
        for name, array in arrays[node_set].items():
            values = feature[name].float_list.value
            if len(values) != dim:
                raise ValueError(f"{name} of a {node_set} has {len(values)} values, not {dim}")
            array[row] = values
        seen[node_set][row] = True
    for node_set in NODE_SETS:
        missing = np.flatnonzero(~seen[node_set][1:])
        if len(missing):
            example = entities[node_set].ids[missing[0]]
            raise ValueError(
                f"{len(missing)} {node_set}s have no representation under {directory} "
                f"(e.g. {example!r}): rerun the representation job"
            )
        for array in arrays[node_set].values():
            if len(array) > 1:
                array[0] = array[1:].mean(0)
    return arrays
