"""Benchmark of the preprocessing job: pairs/s end to end and peak memory.

For each size it generates synthetic logs (synthetic.generator; users =
n/15, items = n/50), then runs the whole job (`python -m beam_pipelines.run`,
FnApiRunner) once per sampler strategy in a fresh process, and measures:

  * pairs/s: samples written / wall time of the whole job (read, validate,
    split, graphs, sampling, writing; process start-up included);
  * peak RSS: the largest resident memory of the job's process tree, polled
    every 0.2 s.

Figures are appended to benchmarks/RESULTS.md with the command and the date.
The last lines are machine-readable, one per run, the last one last:

  RESULT strategy=<s> interactions=<n> pairs_per_s=<x> peak_rss_gb=<y>

Usage:
  python benchmarks/beam_sampling.py [--sizes 100000,1000000] [--strategies memory,join]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

import psutil

from synthetic import generator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def _peak_rss(process: psutil.Popen, stop: threading.Event, out: list) -> None:
    peak = 0
    while not stop.is_set():
        try:
            procs = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
        except psutil.Error:
            pass
        stop.wait(0.2)
    out.append(peak)


def run_job(data: str, output: str, strategy: str, extra: list[str]) -> dict:
    """Runs the job once; returns wall seconds, samples and peak RSS."""
    cmd = [
        sys.executable,
        "-m",
        "beam_pipelines.run",
        "--input",
        data,
        "--output",
        output,
        "--nested_tasks",
        "--overwrite",
        "--sampler",
        strategy,
        "--runner",
        "FnApiRunner",
        *extra,
    ]
    log_path = output.rstrip("/") + f"-{strategy}.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = psutil.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        stop, peak = threading.Event(), []
        watcher = threading.Thread(target=_peak_rss, args=(process, stop, peak))
        watcher.start()
        code = process.wait()
        stop.set()
        watcher.join()
    wall = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"job failed with exit code {code}; see {log_path}")
    with open(os.path.join(output, "stats.json")) as f:
        stats = json.load(f)
    samples = sum(stats["samples"].values())
    return {"wall_s": wall, "samples": samples, "peak_rss_gb": peak[0] / 2**30, "stats": stats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="Interactions per run.")
    parser.add_argument("--strategies", default="memory,join", help="Sampler strategies.")
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench_out"), help="Scratch.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no_record", action="store_true", help="Do not append RESULTS.md.")
    args, extra = parser.parse_known_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    strategies = [s.strip() for s in args.strategies.split(",")]
    os.makedirs(args.workdir, exist_ok=True)
    rows = []
    for n in sizes:
        data = os.path.join(args.workdir, f"data-{n}")
        shutil.rmtree(data, ignore_errors=True)
        summary = generator.generate(
            data,
            users=max(10, n // 15),
            items=max(10, n // 50),
            seed=args.seed,
            mean_exposures=15.0,  # about n interactions: n // 15 users with 15 each
        )
        for strategy in strategies:
            output = os.path.join(args.workdir, f"out-{n}-{strategy}")
            result = run_job(data, output, strategy, extra)
            row = {
                "strategy": strategy,
                "interactions": summary["n_interactions"],
                "pairs": result["samples"],
                "wall_s": result["wall_s"],
                "pairs_per_s": result["samples"] / result["wall_s"],
                "peak_rss_gb": result["peak_rss_gb"],
            }
            rows.append(row)
            print(
                f"{strategy:>6} {row['interactions']:>9,} interactions: {row['pairs']:>9,} pairs "
                f"in {row['wall_s']:7.1f} s = {row['pairs_per_s']:7.0f} pairs/s, "
                f"peak RSS {row['peak_rss_gb']:.2f} GB",
                flush=True,
            )
            shutil.rmtree(output, ignore_errors=True)
    command = "python benchmarks/beam_sampling.py " + " ".join(sys.argv[1:])
    if not args.no_record:
        _record(rows, command.strip())
    for row in rows:
        print(
            f"RESULT strategy={row['strategy']} interactions={row['interactions']} "
            f"pairs_per_s={row['pairs_per_s']:.0f} peak_rss_gb={row['peak_rss_gb']:.2f}"
        )


def _record(rows: list[dict], command: str) -> None:
    today = datetime.date.today().isoformat()
    lines = [
        "",
        f"### beam_sampling — {today}",
        "",
        f"`{command}` on {os.cpu_count()} cores, Python {platform.python_version()}, "
        "FnApiRunner, fan-outs 10,5; pairs/s = samples written / wall time of the whole job.",
        "",
        "| strategy | interactions | pairs | wall s | pairs/s | peak RSS GB |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['strategy']} | {r['interactions']:,} | {r['pairs']:,} | {r['wall_s']:.1f} "
            f"| {r['pairs_per_s']:.0f} | {r['peak_rss_gb']:.2f} |"
        )
    if not os.path.exists(RESULTS):
        with open(RESULTS, "w") as f:
            f.write("# Benchmark results\n\nFigures measured on this project's machines.\n")
    with open(RESULTS, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
