"""The command line, `python -m model.experiments`: checks the flags, runs the plan, reports."""

from __future__ import annotations

import argparse
import os
import sys

from model import config as config_lib
from model.experiments.plan import FIGURES, TABLES, figure_variants, plan_runs, table_variants
from model.experiments.report import write_report
from model.experiments.results import write_runs_csv
from model.experiments.runner import execute


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip()) if text else ()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model.experiments",
        description="Train the paper's tables and figure over seeds and write the report.",
    )
    parser.add_argument("--data", required=True, help="--output directory of beam_pipelines.run")
    parser.add_argument("--out", required=True, help="report directory, e.g. reports/NAME")
    parser.add_argument("--seeds", type=int, default=5, help="runs per variant (seeds 0..n-1)")
    parser.add_argument("--tables", type=_ints, default=TABLES, help="e.g. 2,3,4,5")
    parser.add_argument("--figure", type=_ints, default=FIGURES, help="2, or empty for none")
    parser.add_argument("--tasks", default=None, help="tasks (default: every label)")
    parser.add_argument(
        "--only",
        type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
        default=(),
        help='rows of Tables 2 and 3 to run, by label, e.g. "MLP,MMoE,MMoE + MGNN" (Table 2 '
        "keeps MoGENet; Table 3 keeps whole pairs); default: every row",
    )
    config_lib.add_flags(parser, config_lib.TrainConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Runs the experiments CLI; returns the exit code (2 for a one-line error)."""
    args = parse_args(argv)
    from model.input_pipeline import DataError, DataSpec

    try:
        for table in args.tables:
            table_variants(table)
        for figure in args.figure:
            figure_variants(figure)
        labels = {v.label for t in (2, 3) for _, vs in table_variants(t) for v in vs}
        unknown = sorted(set(args.only) - labels)
        if unknown:
            raise ValueError(f"--only names no row of Table 2 or 3: {', '.join(unknown)}")
        train_config = config_lib.from_flags(args, config_lib.TrainConfig)
        spec = DataSpec(args.data)
        tasks = spec.check_tasks(args.tasks.split(",") if args.tasks else spec.tasks)
    except (DataError, ValueError) as e:
        print(f"model.experiments: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    runs = plan_runs(args.tables, args.figure, args.seeds, tasks, args.only)
    print(f"{len(runs)} runs into {args.out}/runs", flush=True)
    rows = execute(runs, args.data, args.out, train_config, tasks)
    write_runs_csv(rows, os.path.join(args.out, "runs.csv"))
    command = "python -m model.experiments " + " ".join(sys.argv[1:] if argv is None else argv)
    path = write_report(
        rows, tasks, args.seeds, args.tables, args.figure, args.out, command, args.only
    )
    print(f"report: {path}")
    return 0
