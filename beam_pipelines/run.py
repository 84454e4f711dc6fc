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

from beam_pipelines import config as config_lib
from beam_pipelines import pipeline, sample_encoder
from beam_pipelines.adapters.base import InputError
from beam_pipelines.dataclass_flags import add_flags, from_flags


def parser() -> argparse.ArgumentParser:
    """Returns the argument parser (unknown flags are Beam pipeline options).

    Every field of `InputConfig` and `PreprocessConfig` is a flag, with its
    default and description (`beam_pipelines.config`); `--overwrite` and
    `--runner` say how to run, not what to make.
    """
    p = argparse.ArgumentParser(
        prog="python -m beam_pipelines.run",
        description="Interaction logs -> graphs -> one GraphTensor sample per labelled pair. "
        "Flags not listed here are passed to Beam (e.g. --project, --region, "
        "--temp_location, --setup_file for Dataflow).",
    )
    add_flags(p, config_lib.InputConfig, title="input (InputConfig)")
    add_flags(
        p,
        config_lib.PreprocessConfig,
        title="output, split, graphs and sampling (PreprocessConfig)",
    )
    run = p.add_argument_group("run")
    run.add_argument("--overwrite", action="store_true", help="Replace a finished run in OUT.")
    run.add_argument(
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
    started = time.monotonic()
    try:
        input_config = from_flags(args, config_lib.InputConfig)  # checks the settings
        config = from_flags(args, config_lib.PreprocessConfig)
        options = PipelineOptions([f"--runner={args.runner}", *beam_args])
        p = beam.Pipeline(options=options)
        meta = pipeline.build(p, input_config, config)  # checks the input first
        pipeline.prepare_output(config, args.overwrite)
        pipeline.write_text(
            pipeline.output_path(config, "graph_schema.pbtxt"),
            sample_encoder.graph_schema_text(meta["tasks"]),
        )
        pipeline.write_text(pipeline.output_path(config, "layout.json"), meta["layout"].to_json())
        pipeline.write_text(
            pipeline.output_path(config, config_lib.CONFIG_FILE),
            config_lib.to_json(input_config, config),
        )
        logging.info(
            "running on %s: tasks %s, fan-outs %s, %s sampler",
            args.runner,
            ",".join(meta["tasks"]),
            ",".join(map(str, config.fanouts)),
            config.sampler,
        )
        result = p.run()
        result.wait_until_finish()
        summary = pipeline.finish(input_config, config, meta, result, started)
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
