"""The graphs hold only training edges, never a held-out pair's edge."""

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines.config import PreprocessConfig
from beam_pipelines.graphs import BuildGraphs, GraphStats
from beam_pipelines.records import Interaction


def _config(**settings):
    return PreprocessConfig(output="unused", sim_top_k=3, max_pivot_degree=10, **settings)


def test_bipartite_graph_from_train_positives_without_held_out_pairs():
    train = [
        Interaction("u1", "i1", 1, (1, 0)),
        Interaction("u1", "i1", 2, (1, 1)),  # the same pair twice: one edge
        Interaction("u1", "i2", 3, (0, 0)),  # no positive label: no edge
        Interaction("u2", "i2", 4, (0, 1)),  # any label counts
        Interaction("u3", "i1", 5, (1, 0)),  # also in test below: left out
    ]
    held_out = [Interaction("u3", "i1", 9, (0, 0)), Interaction("u9", "i9", 9, (1, 1))]
    with TestPipeline(runner="FnApiRunner") as p:
        graphs = {
            "train": p | "Train" >> beam.Create(train),
            "held_out": p | "HeldOut" >> beam.Create(held_out),
        } | BuildGraphs(_config())
        assert_that(graphs.edges, equal_to([("u1", "i1"), ("u2", "i2")]), label="Edges")
        assert_that(graphs.held_out_edges_removed, equal_to([1]), label="Removed")
        # u1 and u2 share no item once (u3, i1) is out, so G^U is empty.
        assert_that(graphs.user_sim, equal_to([]), label="UserSim")
        stats = graphs | GraphStats() | beam.Filter(lambda kv: "G_user_degree" in kv[1])
        assert_that(
            stats
            | beam.Map(lambda kv: (kv[1]["G_user_degree"]["nodes"], kv[1]["G_user_degree"]["max"])),
            equal_to([(2, 1)]),
            label="Degrees",
        )


def test_any_edges_take_every_graph_row_but_still_no_held_out_pair():
    train = [
        Interaction("u1", "i1", 1, (1, 0)),
        Interaction("u1", "i2", 3, (0, 0)),  # shown, not acted on: an edge with edges="any"
        Interaction("u2", "i2", 4, (0, 0)),
        Interaction("u3", "i1", 5, (0, 0)),  # also held out below: left out
    ]
    held_out = [Interaction("u3", "i1", 9, (1, 0))]
    with TestPipeline(runner="FnApiRunner") as p:
        graphs = {
            "train": p | "Train" >> beam.Create(train),
            "held_out": p | "HeldOut" >> beam.Create(held_out),
        } | BuildGraphs(_config(graph_edges="any"))
        assert_that(
            graphs.edges, equal_to([("u1", "i1"), ("u1", "i2"), ("u2", "i2")]), label="Edges"
        )
        assert_that(graphs.held_out_edges_removed, equal_to([1]), label="Removed")
        # u1 and u2 now share i2: G^U links them both ways.
        assert_that(
            graphs.user_sim | beam.Map(lambda e: (e[0], e[1])),
            equal_to([("u1", "u2"), ("u2", "u1")]),
            label="UserSim",
        )
