"""Command line of the preprocessing job.

Example (local):

  python -m beam_pipelines.run --input data/ --format canonical --output out/ \\
      --nested_tasks --runner FnApiRunner

Example (Dataflow; every flag this CLI does not know goes to Beam):

  python -m beam_pipelines.run --input gs://b/logs/ --format aliccp --output gs://b/out/ \\
      --sampler join --runner DataflowRunner --project P --region R \\
      --temp_location gs://b/tmp --setup_file ./setup.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines import pipeline, sample_encoder
from beam_pipelines.adapters.base import InputConfig, InputError
from beam_pipelines.graphs import GRAPH_EDGES
from beam_pipelines.negative_sampler import DISTRIBUTIONS
from beam_pipelines.pair_sampler import STRATEGIES
from beam_pipelines.similarity import MEASURES
from beam_pipelines.split import GRAPH_MODES, MODES

FORMATS = ("canonical", "tmall", "aliccp", "behaviors")


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _fanouts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fan-outs must be integers like 10,5, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"fan-outs must be positive, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    """Returns the argument parser (unknown flags are Beam pipeline options)."""
    p = argparse.ArgumentParser(
        prog="python -m beam_pipelines.run",
        description="Interaction logs -> graphs -> one GraphTensor sample per labelled pair. "
        "Flags not listed here are passed to Beam (e.g. --project, --region, "
        "--temp_location, --setup_file for Dataflow).",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--input", required=True, help="File, glob or directory of the raw logs.")
    io.add_argument("--format", choices=FORMATS, default="canonical", help="Raw format.")
    io.add_argument("--output", required=True, help="Output directory OUT (local or gs://).")
    io.add_argument("--overwrite", action="store_true", help="Replace a finished run in OUT.")
    io.add_argument(
        "--tasks",
        type=_names,
        default=(),
        help="Comma-separated task names (default: click,conversion; tmall: favorite,purchase; "
        "behaviors: the --behavior_files task names, which --tasks may only repeat in order).",
    )
    io.add_argument("--user_col", default="user_id", help="Canonical: user id column.")
    io.add_argument("--item_col", default="item_id", help="Canonical: item id column.")
    io.add_argument(
        "--label_cols",
        type=_names,
        default=(),
        help="Canonical: label columns, one per task (default: the task names).",
    )
    io.add_argument(
        "--time_col",
        default="auto",
        help="Canonical: timestamp column; 'auto' uses 'timestamp' if present, '' means none.",
    )
    io.add_argument(
        "--nested_tasks",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Task k can be 1 only where task k-1 is 1 (no conversion without click); "
        "rows breaking it are rejected. Default: on for aliccp, off otherwise.",
    )
    io.add_argument(
        "--numeric_features",
        type=_names,
        default=(),
        help="Canonical CSV side-table columns to read as numbers (others are categorical).",
    )
    io.add_argument("--user_features", default="", help="Canonical: user side table path.")
    io.add_argument("--item_features", default="", help="Canonical: item side table path.")
    io.add_argument(
        "--behavior_files",
        default="",
        help="Behaviors: the files of each task in the --input directory, as comma-separated "
        "task=file[+file...], e.g. favorite=collect.txt,purchase=buy.txt+validation.txt+test.txt "
        "(Tmall); each file holds 'user item' lines. The tasks are taken in this order.",
    )
    io.add_argument(
        "--negatives_per_positive",
        type=int,
        default=0,
        help="For logs of positives only: sampled unseen items per positive row (0 = off).",
    )
    io.add_argument(
        "--negative_sampling",
        choices=DISTRIBUTIONS,
        default="uniform",
        help="How negatives are drawn: uniform over the items, or popularity (an item in "
        "proportion to its rows in the log ** --negative_alpha, like real candidates).",
    )
    io.add_argument(
        "--negative_alpha",
        type=float,
        default=0.75,
        help="Exponent of --negative_sampling popularity (0.75, as in word2vec).",
    )

    job = p.add_argument_group("split, graphs and sampling")
    job.add_argument(
        "--user_fraction",
        type=float,
        default=1.0,
        help="Keep a seeded sample of this share of the users, each with all their rows "
        "(for experiments within a time budget); the rows left out are counted in "
        "stats.json (user_sample).",
    )
    job.add_argument("--split", choices=MODES, default="auto", help="auto: by time if timed.")
    job.add_argument("--test_fraction", type=float, default=0.2, help="Share of rows in test.")
    job.add_argument(
        "--valid_fraction", type=float, default=0.1, help="Share of train held out as validation."
    )
    job.add_argument(
        "--graph_split",
        choices=GRAPH_MODES,
        default="random",
        help="Which training rows build the graphs; the others supervise, so no training "
        "sample sees a graph built from its own row. random: a seeded hash of the pair "
        "picks --graph_fraction of them; time: the oldest --graph_fraction; shared: every "
        "training row does both, as in the paper (leaks the label, see README).",
    )
    job.add_argument(
        "--graph_fraction",
        type=float,
        default=0.5,
        help="Share of the training rows that build the graphs (not with shared).",
    )
    job.add_argument(
        "--graph_edges",
        choices=GRAPH_EDGES,
        default="positive",
        help="Which graph rows become G's edges: positive (a label is 1, the paper's click "
        "graph) or any (every logged pair, exposures too).",
    )
    job.add_argument("--similarity", choices=MEASURES, default="cosine", help="G^U/G^I measure.")
    job.add_argument("--sim_top_k", type=int, default=10, help="Neighbours kept in G^U and G^I.")
    job.add_argument(
        "--max_pivot_degree",
        type=int,
        default=200,
        help="Hot-node cap: a node shared by more neighbours adds only a sample of this many "
        "to the similarity counts.",
    )
    job.add_argument(
        "--fanouts", type=_fanouts, default=(10, 5), help="Neighbours per hop, e.g. 10,5."
    )
    job.add_argument(
        "--sampler",
        choices=STRATEGIES,
        default="memory",
        help="memory: neighbour lists as a side input (graphs that fit); "
        "join: CoGroupByKey hops, no worker holds the graph (Dataflow).",
    )
    job.add_argument("--seed", type=int, default=0, help="Seed of every random choice.")
    job.add_argument(
        "--runner",
        default="FnApiRunner",
        help="Beam runner: FnApiRunner (default), DirectRunner, DataflowRunner, FlinkRunner, ...",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the job; returns the process exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
    )
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    args, beam_args = parser().parse_known_args(argv)
    nested = args.nested_tasks if args.nested_tasks is not None else args.format == "aliccp"
    input_config = InputConfig(
        input=args.input,
        format=args.format,
        tasks=args.tasks,
        user_col=args.user_col,
        item_col=args.item_col,
        label_cols=args.label_cols,
        time_col=args.time_col,
        nested=nested,
        numeric_features=args.numeric_features,
        user_features=args.user_features,
        item_features=args.item_features,
        behavior_files=args.behavior_files,
    )
    config = pipeline.PreprocessConfig(
        output=args.output,
        fanouts=args.fanouts,
        sampler=args.sampler,
        seed=args.seed,
        split=args.split,
        test_fraction=args.test_fraction,
        valid_fraction=args.valid_fraction,
        graph_split=args.graph_split,
        graph_fraction=args.graph_fraction,
        negatives_per_positive=args.negatives_per_positive,
        negative_sampling=args.negative_sampling,
        negative_alpha=args.negative_alpha,
        user_fraction=args.user_fraction,
        similarity=args.similarity,
        sim_top_k=args.sim_top_k,
        max_pivot_degree=args.max_pivot_degree,
        graph_edges=args.graph_edges,
        extra={
            "input": args.input,
            "format": args.format,
            "nested_tasks": nested,
            "behavior_files": args.behavior_files,
        },
    )
    started = time.monotonic()
    try:
        options = PipelineOptions([f"--runner={args.runner}", *beam_args])
        p = beam.Pipeline(options=options)
        meta = pipeline.build(p, input_config, config)  # checks the input first
        pipeline.prepare_output(config, args.overwrite)
        pipeline.write_text(
            pipeline.output_path(config, "graph_schema.pbtxt"),
            sample_encoder.graph_schema_text(meta["tasks"]),
        )
        pipeline.write_text(pipeline.output_path(config, "layout.json"), meta["layout"].to_json())
        logging.info(
            "running on %s: tasks %s, fan-outs %s, %s sampler",
            args.runner,
            ",".join(meta["tasks"]),
            ",".join(map(str, config.fanouts)),
            config.sampler,
        )
        result = p.run()
        result.wait_until_finish()
        summary = pipeline.finish(config, meta, result, started)
    except (InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    _log_summary(summary, config.output)
    return 0


def _log_summary(summary: dict, output: str) -> None:
    rows = summary["rows"]
    for table, counts in sorted(rows.items()):
        logging.info(
            "%s rows: %d read = %d kept + %d rejected",
            table,
            counts["read"],
            counts["kept"],
            counts["rejected"],
        )
    for table, reasons in sorted(summary.get("rejected", {}).items()):
        logging.info(
            "rejected %s: %s", table, ", ".join(f"{k}={v}" for k, v in sorted(reasons.items()))
        )
    graphs = summary.get("graphs", {})
    logging.info(
        "graphs: G %d edges (%d users, %d items), G^U %d edges, G^I %d edges; "
        "%d pairs labelled in samples kept out of G",
        graphs.get("G_user_degree", {}).get("edges", 0),
        graphs.get("G_user_degree", {}).get("nodes", 0),
        graphs.get("G_item_degree", {}).get("nodes", 0),
        graphs.get("GU_degree", {}).get("edges", 0),
        graphs.get("GI_degree", {}).get("edges", 0),
        graphs.get("held_out_edges_removed", 0),
    )
    graph_rows = summary.get("examples", {}).get("graph", {}).get("rows")
    if graph_rows is not None:
        logging.info("graph rows: %d (they build the graphs and are not samples)", graph_rows)
    gaps = [
        (abs(v["train"] - v["test"]), name)
        for name, v in summary.get("audit", {}).get("gauc", {}).items()
        if "train" in v and "test" in v
    ]
    if gaps:
        gap, name = max(gaps)
        logging.info(
            "tells audit: largest train-test gap %.3f (%s); python -m beam_pipelines.audit %s",
            gap,
            name,
            output,
        )
    samples = summary.get("samples", {})
    logging.info(
        "samples: %s in %.1f s -> %s",
        ", ".join(f"{s}={samples.get(s, 0)}" for s in ("train", "valid", "test")),
        summary["duration_s"],
        output,
    )


if __name__ == "__main__":
    sys.exit(main())
