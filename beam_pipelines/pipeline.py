"""The preprocessing job, assembled from the named transforms in one place.

  read + validate (adapter) -> [sampled negatives] -> split
    -> training rows divided into graph rows and supervising rows
    -> graphs G, G^U, G^I from the graph rows
    -> ranked neighbour lists -> pair samples per split -> tells audit

Outputs under OUT/ (see README "Output layout"): `{train,valid,test}/*.tfrecord`,
`graph_schema.pbtxt`, `layout.json`, `preprocess_config.json`, `graphs/`,
`features/`, `vocab/`, `rejected/` and `stats.json`. The settings are
`beam_pipelines.config`'s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_pipelines import audit, records, stats
from beam_pipelines.adapters.base import InputError, files_matching
from beam_pipelines.config import (
    CONFIG_FILE,
    SHARED,
    InputConfig,
    PreprocessConfig,
    stats_config,
)
from beam_pipelines.graphs import AdjacencyEdges, BuildGraphs, GraphStats
from beam_pipelines.negative_sampler import AddSampledNegatives
from beam_pipelines.pair_sampler import RankNeighbors, SamplePairs
from beam_pipelines.sample_writer import WriteSamples
from beam_pipelines.split import AssignSplits, SplitGraphRows
from beam_pipelines.user_sample import SampleUsers
from contracts.layout import SampleLayout

# Written last, by a run that finished: its OUT is not replaced without --overwrite.
SUCCESS = "_SUCCESS"
# Everything a run writes below OUT/, removed before a rerun.
OUTPUT_ENTRIES = (
    *records.SPLITS,
    "graphs",
    "features",
    "vocab",
    "rejected",
    "_stats",
    "graph_schema.pbtxt",
    "layout.json",
    CONFIG_FILE,
    "stats.json",
    SUCCESS,
)


def make_adapter(config: InputConfig) -> beam.PTransform:
    """Returns the adapter of the input's format.

    Raises:
      InputError: For an unknown format or input the adapter cannot read.
    """
    if config.format == "canonical":
        from beam_pipelines.adapters.canonical import ReadCanonical

        return ReadCanonical(config)
    if config.format == "tmall":
        from beam_pipelines.adapters.tmall import ReadTmall

        return ReadTmall(config)
    if config.format == "aliccp":
        from beam_pipelines.adapters.aliccp import ReadAliCCP

        return ReadAliCCP(config)
    if config.format == "behaviors":
        from beam_pipelines.adapters.behaviors import ReadBehaviors

        return ReadBehaviors(config)
    raise InputError(
        f"unknown format {config.format!r}; choose canonical, tmall, aliccp or behaviors"
    )


def output_path(config: PreprocessConfig, *parts: str) -> str:
    return FileSystems.join(config.output, *parts)


def _count_rows(kind: str):
    def count(kv):
        table, n = kv
        beam.metrics.Metrics.counter("rows", f"{kind}_{table}").inc(n)
        return "rows", {table: {kind: n}}

    return count


def _features_line(kv) -> str:
    node_id, features = kv
    return json.dumps({"id": node_id, **features}, ensure_ascii=False, sort_keys=True)


class _FeatureKinds(beam.CombineFn):
    """{feature: "numeric" or "categorical"} over all rows; categorical wins on a mix."""

    def create_accumulator(self):
        return {}

    def add_input(self, kinds, row):
        kinds_of_row = {
            k: "numeric" if isinstance(v, float) else "categorical" for k, v in row.items()
        }
        return self.merge_accumulators([kinds, kinds_of_row])

    def merge_accumulators(self, accumulators):
        merged = {}
        for kinds in accumulators:
            for name, kind in kinds.items():
                if merged.get(name) != "categorical":
                    merged[name] = kind
        return merged

    def extract_output(self, kinds):
        return dict(sorted(kinds.items()))


def _label_stat(split: str, sums: list[int], tasks: Sequence[str]):
    counts = {"rows": sums[0], **{f"positives_{t}": sums[1 + k] for k, t in enumerate(tasks)}}
    return "examples", {split: counts}


class _Vocabulary(beam.PTransform):
    """Writes `id<TAB>count` of the training split (sharded, in no set order)."""

    def __init__(self, path: str, field_index: int):
        super().__init__()
        self.path = path
        self.field_index = field_index

    def expand(self, train):
        index = self.field_index
        return (
            train
            | "Ids" >> beam.Map(lambda r: r[index])
            | "Count" >> beam.combiners.Count.PerElement()
            | "Format" >> beam.MapTuple(lambda node, n: f"{node}\t{n}")
            | "Write" >> beam.io.WriteToText(self.path, ".tsv")
        )


def build(pipeline: beam.Pipeline, input_config: InputConfig, config: PreprocessConfig) -> dict:
    """Adds the whole job to `pipeline`.

    Args:
      pipeline: The Beam pipeline.
      input_config: How to read the input.
      config: The job's settings.

    Returns:
      A dict with "tasks" and "has_time" of the input.

    Raises:
      InputError: If the input cannot be read as asked.
      ValueError: For settings the input cannot meet (a time split without
        timestamps).
    """
    layout = SampleLayout(config.fanouts)
    data = pipeline | "Read" >> make_adapter(input_config)
    tasks = data.tasks
    stat_parts = [
        data.rows_read | "ReadCounts" >> beam.Map(_count_rows("read")),
        data.rows_kept | "KeptCounts" >> beam.Map(_count_rows("kept")),
        data.rejected
        | "RejectedByReason" >> beam.Map(lambda r: ((r.table, r.reason), 1))
        | "SumRejected" >> beam.CombinePerKey(sum)
        | "RejectedStat" >> beam.MapTuple(lambda tr, n: ("rejected", {tr[0]: {tr[1]: n}})),
    ]
    _ = (
        data.rejected
        | "RejectedJson" >> beam.Map(lambda r: r.to_json())
        | "WriteRejected"
        >> beam.io.WriteToText(output_path(config, "rejected", "rejected"), ".jsonl")
    )

    interactions = data.interactions
    if config.user_fraction < 1.0:
        interactions, left_out = interactions | "SampleUsers" >> SampleUsers(
            config.user_fraction, config.seed
        )
        stat_parts.append(
            left_out
            | "UserSampleStat"
            >> beam.Map(
                lambda n, f=config.user_fraction: (
                    "user_sample",
                    {"user_fraction": f, "rows_dropped": n},
                )
            )
        )
    if config.negatives_per_positive:
        interactions, short = interactions | "Negatives" >> AddSampledNegatives(
            config.negatives_per_positive,
            config.seed,
            config.negative_sampling,
            config.negative_alpha,
        )
        stat_parts.append(stats.named_value(short, "negatives_short"))

    split = interactions | "Split" >> AssignSplits(config, data.has_time)
    by_split = split | "BySplit" >> beam.Partition(
        lambda kv, n: records.SPLITS.index(kv[0]), len(records.SPLITS)
    )
    rows = {s: by_split[k] | f"Rows_{s}" >> beam.Values() for k, s in enumerate(records.SPLITS)}
    # The rows that build the graphs and the rows that supervise are disjoint
    # (unless --graph_split shared): a training sample sees no graph computed
    # from its own row, like a validation or test sample and a serving request.
    train_split = rows["train"]  # every id in it is in the vocabulary
    divided = train_split | "GraphRows" >> SplitGraphRows(config, data.has_time)
    rows["train"], graph_rows = divided.supervise, divided.graph
    split = (
        rows["train"] | "TagTrain" >> beam.Map(lambda r: ("train", r)),
        by_split[records.SPLITS.index("valid")],
        by_split[records.SPLITS.index("test")],
    ) | "Supervised" >> beam.Flatten()
    labelled = {"": split}
    if divided.disjoint:  # in shared mode the graph rows are the training rows
        labelled["graph_"] = graph_rows | "TagGraph" >> beam.Map(lambda r: ("graph", r))
    for name, pcoll in labelled.items():
        stat_parts.append(
            pcoll
            | f"{name}Labels" >> beam.MapTuple(lambda s, r: (s, (1, *r.labels)))
            | f"{name}SumLabels" >> beam.CombinePerKey(stats.sum_columns)
            | f"{name}LabelStats" >> beam.Map(lambda kv: _label_stat(kv[0], kv[1], tasks))
        )

    # G leaves out every pair that supervises (its own edge is never in a graph).
    held_out = [rows["valid"], rows["test"]] + ([rows["train"]] if divided.disjoint else [])
    held_out = held_out | "HeldOut" >> beam.Flatten()
    graphs = {"train": graph_rows, "held_out": held_out} | "Graphs" >> BuildGraphs(config)
    stat_parts.append(graphs | "GraphStats" >> GraphStats())
    _ = (
        graphs.edges
        | "FormatG" >> beam.MapTuple(lambda u, i: f"{u}\t{i}")
        | "WriteG" >> beam.io.WriteToText(output_path(config, "graphs", "bipartite"), ".tsv")
    )
    for name, pcoll in (("user_sim", graphs.user_sim), ("item_sim", graphs.item_sim)):
        _ = (
            pcoll
            # repr: the exact float, so `ReadGraphs` ranks neighbours as this job did
            | f"Format_{name}" >> beam.MapTuple(lambda a, b, w: f"{a}\t{b}\t{w!r}")
            | f"Write_{name}" >> beam.io.WriteToText(output_path(config, "graphs", name), ".tsv")
        )

    neighbors = (
        graphs
        | "Adjacency" >> AdjacencyEdges()
        | "Rank" >> RankNeighbors(config.seed, max(config.fanouts) + 1)
    )
    samples = split | "Sample" >> SamplePairs(
        neighbors, layout, tasks, config.sampler, mix_seed=config.seed
    )
    stat_parts.append(
        samples
        | "WriteSamples" >> WriteSamples(config.output)
        | "SampleStats" >> beam.MapTuple(lambda split, n: ("samples", {split: n}))
    )
    stat_parts.append(samples | "Audit" >> audit.AuditSamples(layout, tasks[0], graphs.edges))

    for table, feats, index in (
        ("user", data.user_features, 0),
        ("item", data.item_features, 1),
    ):
        _ = (
            feats
            | f"Json_{table}" >> beam.Map(_features_line)
            | f"Write_{table}"
            >> beam.io.WriteToText(output_path(config, "features", table), ".jsonl")
        )
        stat_parts.append(
            feats
            | f"Rows_{table}_features" >> beam.Values()
            | f"Kinds_{table}" >> beam.CombineGlobally(_FeatureKinds())
            | f"KindStat_{table}" >> beam.Map(lambda kinds, t=table: ("features", {t: kinds}))
        )
        _ = train_split | f"Vocab_{table}" >> _Vocabulary(
            output_path(config, "vocab", table), index
        )

    _ = (
        stat_parts
        | "AllStats" >> beam.Flatten()
        | "WriteStats" >> stats.WriteStats(output_path(config, "_stats"))
    )
    return {"tasks": tasks, "has_time": data.has_time, "layout": layout}


def prepare_output(config: PreprocessConfig, overwrite: bool) -> None:
    """Makes OUT ready for a run without losing a finished one by accident.

    A finished run (one with a `_SUCCESS` file) is kept unless `overwrite`;
    the leftovers of an unfinished or failed run are removed, so that no stale
    shard survives. Call it only once the input has been checked.

    Raises:
      InputError: If OUT holds a finished run and `overwrite` is False.
    """
    if FileSystems.exists(output_path(config, SUCCESS)) and not overwrite:
        raise InputError(
            f"{config.output} already holds a finished run; "
            "pass --overwrite to replace it or choose another --output"
        )
    stale = []
    for entry in OUTPUT_ENTRIES:
        path = output_path(config, entry)
        if "://" not in path:
            stale += [path] if FileSystems.exists(path) else []
        else:  # object stores: a "directory" is the objects under its prefix
            stale += files_matching(path) + files_matching(path + "/*")
    if stale:
        logging.info("removing the previous run's outputs: %s", ", ".join(stale[:10]))
        FileSystems.delete(stale)


def write_text(path: str, text: str) -> None:
    """Writes a small text file, local or remote."""
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))


def finish(
    input_config: InputConfig, config: PreprocessConfig, meta: dict, result, started: float
) -> dict:
    """Merges the job's statistics into stats.json and checks them.

    Returns:
      The statistics.

    Raises:
      InputError: If no interaction row was kept (empty or all-bad input).
      RuntimeError: If rows read != rows kept + rows rejected for some table.
    """
    merged = stats.read_stats(output_path(config, "_stats"))
    rows = merged.setdefault("rows", {})
    for table, reasons in merged.get("rejected", {}).items():
        rows.setdefault(table, {})["rejected"] = sum(reasons.values())
    for table, counts in rows.items():
        counts.setdefault("read", 0)
        counts.setdefault("kept", 0)
        counts.setdefault("rejected", 0)
        if counts["read"] != counts["kept"] + counts["rejected"]:
            raise RuntimeError(f"row accounting broken for {table}: {counts}")
    samples = merged.setdefault("samples", {})
    examples = merged.setdefault("examples", {})
    for split in records.SPLITS:  # empty splits have no statistics of their own
        samples.setdefault(split, 0)
        examples.setdefault(split, {"rows": 0, **{f"positives_{t}": 0 for t in meta["tasks"]}})
    merged["tasks"] = list(meta["tasks"])
    merged["config"] = stats_config(input_config, config)
    merged["duration_s"] = round(time.monotonic() - started, 1)
    try:
        counters = {
            f"{c.key.metric.namespace}/{c.key.metric.name}": c.committed
            for c in result.metrics().query()["counters"]
        }
        merged["beam_counters"] = dict(sorted(counters.items()))
    except Exception as e:  # some runners report no metrics
        logging.warning("Beam counters unavailable: %s", e)
    write_text(
        output_path(config, "stats.json"), json.dumps(merged, indent=2, sort_keys=True) + "\n"
    )
    FileSystems.delete([output_path(config, "_stats")])
    kept = rows.get(records.INTERACTIONS, {}).get("kept", 0)
    if kept == 0:
        read = rows.get(records.INTERACTIONS, {}).get("read", 0)
        raise InputError(
            f"no usable interaction rows: {read} read, all rejected; "
            f"see {output_path(config, 'rejected')}/ and stats.json"
            if read
            else "the input holds no interaction rows"
        )
    if config.graph_split != SHARED and "graph" not in examples:
        raise InputError(
            "no training row is left to build the graphs; raise --graph_fraction, or with "
            "--graph_split time check that the training rows span more than one timestamp"
        )
    if merged["examples"]["train"]["rows"] == 0:
        raise InputError(
            "the training split has no supervising rows; lower --test_fraction or "
            "--graph_fraction, or use --split random (see stats.json)"
        )
    write_text(output_path(config, SUCCESS), "")
    return merged
