"""The three graphs of the paper (§2), built from the graph rows only.

The graph rows are the part of the training split that builds the graphs
(:class:`beam_pipelines.split.SplitGraphRows`); the other rows supervise.

* G, the user-item bipartite graph: an edge (u, i) iff the sum of the pair's
  labels in the graph rows is at least 1 (``graph_edges="positive"``, the
  paper's click graph), or iff the pair has any graph row at all
  (``graph_edges="any"``: exposures too, for logs that record what was
  shown). Pairs that also occur in a supervising, validation or test row are
  left out, so that no graph holds an edge of a pair that is labelled in a
  sample (with a time split the same pair can fall on both sides).
* G^U and G^I, the user-user and item-item collaborative similarity graphs,
  computed from G's edges (see :mod:`beam_pipelines.similarity`).
"""

from __future__ import annotations

from typing import NamedTuple

import apache_beam as beam

from beam_pipelines.config import ANY, PreprocessConfig
from beam_pipelines.pair_sampler import AdjacencyEdge
from beam_pipelines.records import Interaction, pair_key
from beam_pipelines.similarity import CollaborativeSimilarity
from beam_pipelines.stats import DegreeStatsFn
from contracts.layout import II, IU, UI, UU


class Graphs(NamedTuple):
    """The built graphs as PCollections.

    Attributes:
      edges: G's edges as (user, item).
      user_sim: G^U's edges as (user, similar user, similarity).
      item_sim: G^I's edges as (item, similar item, similarity).
      held_out_edges_removed: One element, the number of graph-row edges left
        out because their pair is also labelled in a sample.
    """

    edges: beam.PCollection
    user_sim: beam.PCollection
    item_sim: beam.PCollection
    held_out_edges_removed: beam.PCollection


class BuildGraphs(beam.PTransform):
    """Builds G, G^U and G^I.

    Input: a dict with "train" (the Interactions that build the graphs) and
    "held_out" (the Interactions whose pairs must stay out of them: the
    supervising, validation and test rows).

    Args:
      config: The job's settings: `graph_edges` (which graph rows become G's
        edges: "positive", a label is 1, or "any", every logged pair), and
        for G^U and G^I `sim_top_k` (most similar neighbours kept per node),
        `max_pivot_degree` (hot-node cap of the co-occurrence count),
        `similarity` ("cosine" or "jaccard") and `seed` (of the cap's sample).
    """

    def __init__(self, config: PreprocessConfig):
        super().__init__()
        self.config = config

    def expand(self, splits):
        config = self.config
        keep_all = config.graph_edges == ANY
        positives = (
            splits["train"]
            | "Positives" >> beam.Filter(lambda r: keep_all or any(r.labels))
            | "KeyPositive" >> beam.Map(lambda r: (pair_key(r.user_id, r.item_id), r))
        )
        held_out = splits["held_out"] | "KeyHeldOut" >> beam.Map(
            lambda r: (pair_key(r.user_id, r.item_id), None)
        )
        joined = {"train": positives, "held_out": held_out} | "JoinHeldOut" >> beam.CoGroupByKey()

        def to_edge(kv):
            _, grouped = kv
            train = list(grouped["train"])
            if not train:
                return
            first: Interaction = train[0]
            if list(grouped["held_out"]):
                yield beam.pvalue.TaggedOutput("removed", 1)
            else:
                yield first.user_id, first.item_id

        edges_and_removed = joined | "Edges" >> beam.FlatMap(to_edge).with_output_types(
            tuple[str, str]
        ).with_outputs("removed", main="edges")
        edges = edges_and_removed.edges
        removed = edges_and_removed.removed | "CountRemoved" >> beam.combiners.Count.Globally()
        user_sim = edges | "UserSim" >> CollaborativeSimilarity(
            config.sim_top_k, config.max_pivot_degree, config.seed, config.similarity
        )
        item_sim = (
            edges
            | "ItemUser" >> beam.Map(lambda e: (e[1], e[0]))
            | "ItemSim"
            >> CollaborativeSimilarity(
                config.sim_top_k, config.max_pivot_degree, config.seed, config.similarity
            )
        )
        return Graphs(edges, user_sim, item_sim, removed)


class AdjacencyEdges(beam.PTransform):
    """Turns the graphs into the directed AdjacencyEdges the sampler ranks."""

    def expand(self, graphs: Graphs):
        return (
            graphs.edges | "UI" >> beam.Map(lambda e: AdjacencyEdge(UI, e[0], e[1], 1.0)),
            graphs.edges | "IU" >> beam.Map(lambda e: AdjacencyEdge(IU, e[1], e[0], 1.0)),
            graphs.user_sim | "UU" >> beam.Map(lambda e: AdjacencyEdge(UU, *e)),
            graphs.item_sim | "II" >> beam.Map(lambda e: AdjacencyEdge(II, *e)),
        ) | "All" >> beam.Flatten()


class ReadGraphs(beam.PTransform):
    """Reads the graphs a preprocessing run wrote under `OUT/graphs/`.

    Input: a pipeline (or its root). Output: `Graphs` (its
    `held_out_edges_removed` unknown: 0).

    Args:
      graphs_dir: `OUT/graphs`.
    """

    def __init__(self, graphs_dir: str):
        super().__init__()
        self.graphs_dir = graphs_dir

    def expand(self, pipeline):
        def read(name, parse):
            pattern = f"{self.graphs_dir}/{name}-*.tsv"
            return (
                pipeline
                | f"Read_{name}" >> beam.io.ReadFromText(pattern)
                | f"Parse_{name}" >> beam.Map(parse)
            )

        def pair(line):
            user, item = line.split("\t")
            return user, item

        def weighted(line):
            a, b, w = line.split("\t")
            return a, b, float(w)

        return Graphs(
            read("bipartite", pair),
            read("user_sim", weighted),
            read("item_sim", weighted),
            pipeline | "Removed" >> beam.Create([0]),
        )


class GraphStats(beam.PTransform):
    """Degree statistics of the graphs, as (name, value) stats."""

    def expand(self, graphs: Graphs):
        def degrees(pcoll, name, side):
            return (
                pcoll
                | f"Node_{name}" >> beam.Map(lambda e: (e[side], 1))
                | f"Degree_{name}" >> beam.CombinePerKey(sum)
                | f"Values_{name}" >> beam.Values()
                | f"Summary_{name}" >> beam.CombineGlobally(DegreeStatsFn())
                | f"Name_{name}" >> beam.Map(lambda s: ("graphs", {name: s}))
            )

        return (
            degrees(graphs.edges, "G_user_degree", 0),
            degrees(graphs.edges, "G_item_degree", 1),
            degrees(graphs.user_sim, "GU_degree", 0),
            degrees(graphs.item_sim, "GI_degree", 0),
            graphs.held_out_edges_removed
            | "NameRemoved" >> beam.Map(lambda n: ("graphs", {"held_out_edges_removed": n})),
        ) | "AllGraphStats" >> beam.Flatten()
