"""Benchmark of training: steady-state examples/s and CPU-seconds per 1,000 examples.

Trains MoGENet at the paper's defaults (d = 64, L = 2, fan-outs [10, 5],
batch 256, Adam) and, on the same data, a graph-free MMoE (MoGENet with no
graph enhanced expert: the same encoders, experts, gates and heads, no MGNN),
reading the TFRecords through the real input pipeline (`model.input_pipeline`,
shuffled, ids looked up in tf.data), exactly as `python -m model.train` does.

For each model, after a warm-up that traces and compiles, it times `--steps`
training steps `--repeats` times, the models taking turns, and reports the
median examples/s (wall) and CPU-seconds (user + system of this process) per
1,000 examples. Each timed run is one `fit` call whose first execution (a
fresh iterator filling the shuffle buffer) is not timed. Without --data it
makes the data: synthetic logs (synthetic.generator, users = n/15,
items = n/50) through the Beam job, kept in --workdir for the next run.

Figures are appended to benchmarks/RESULTS.md with the command and the date.
The last line is machine-readable:

  RESULT mogenet_examples_per_s=<x> mmoe_examples_per_s=<y>

Usage:
  python benchmarks/train_throughput.py [--interactions 100000] [--steps 160] [--repeats 3]
      [--models mogenet,mmoe,mogenet_nojit]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

import psutil

import legacy_keras  # noqa: F401  (before TensorFlow)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")

# name -> (ModelConfig overrides, jit_compile, optimizer)
MODELS = {
    "mogenet": ({}, True, "row_sparse_adam"),
    "mogenet_nojit": ({}, False, "row_sparse_adam"),
    "mogenet_dense_adam": ({}, True, "adam"),
    "mmoe": ({"graph_experts": 0}, True, "row_sparse_adam"),
    "mmoe_dense_adam": ({"graph_experts": 0}, True, "adam"),
}


def make_data(workdir: str, interactions: int, seed: int) -> str:
    """Returns a preprocessing output for `interactions` synthetic rows, made once."""
    from synthetic import generator

    out = os.path.join(workdir, f"train-samples-{interactions}")
    if os.path.exists(os.path.join(out, "_SUCCESS")):
        return out
    raw = os.path.join(workdir, f"train-logs-{interactions}")
    generator.generate(
        raw,
        users=max(10, interactions // 15),
        items=max(10, interactions // 50),
        seed=seed,
        mean_exposures=15.0,  # about `interactions` rows: one user per 15
    )
    print(f"preprocessing {interactions:,} interactions into {out} ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_pipelines.run",
            "--input",
            raw,
            "--output",
            out,
            "--nested_tasks",
            "--overwrite",
            "--runner",
            "FnApiRunner",
        ],
        check=True,
        cwd=ROOT,
    )
    return out


class Bench:
    """One model, built and compiled, with its training dataset."""

    def __init__(self, name: str, data: str, batch_size: int, steps_per_execution: int):
        from model import trained
        from model.config import ModelConfig
        from model.entities import load_entities
        from model.input_pipeline import DataSpec, make_dataset
        from model.optimizers import make_optimizer

        overrides, jit, optimizer = MODELS[name]
        spec = DataSpec(data)
        entities = load_entities(data)
        self.name = name
        self.batch_size = batch_size
        self.steps_per_execution = steps_per_execution
        self.model = trained.build_model(
            ModelConfig(**overrides), spec.tasks, spec.layout, entities, jit_compile=jit
        )
        trained.build_with_dummy_batch(self.model, spec.layout)
        self.model.compile(
            optimizer=make_optimizer(optimizer, 1e-4), steps_per_execution=steps_per_execution
        )
        self.data = make_dataset(data, "train", batch_size, repeat=True, entities=entities)

    def run(self, steps: int) -> tuple[float, float]:
        """Trains `steps` steps after a warm-up execution; returns the steady-state figures.

        One `fit` call: its first execution (a new dataset iterator filling its
        shuffle buffer, and tracing on the first call) is left out; the clock and
        the CPU counters start when it ends.

        Returns:
          (examples/s, CPU-seconds per 1,000 examples) over the timed steps.
        """
        import tensorflow as tf

        marks = []
        process = psutil.Process()

        def mark(batch, logs=None):
            cpu = process.cpu_times()
            marks.append((time.perf_counter(), cpu.user + cpu.system))

        clock = tf.keras.callbacks.LambdaCallback(on_train_batch_end=mark)
        self.model.fit(
            self.data,
            epochs=1,
            steps_per_epoch=steps + self.steps_per_execution,
            verbose=0,
            callbacks=[clock],
        )
        (start, cpu_start), (end, cpu_end) = marks[0], marks[-1]
        examples = steps * self.batch_size
        return examples / (end - start), 1000 * (cpu_end - cpu_start) / examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="A beam_pipelines.run output (default: make one).")
    parser.add_argument("--interactions", type=int, default=100_000, help="Synthetic size.")
    parser.add_argument("--models", default="mogenet,mmoe", help=f"Of {', '.join(MODELS)}.")
    parser.add_argument("--steps", type=int, default=160, help="Timed steps per repeat.")
    parser.add_argument("--warmup", type=int, default=48, help="Untimed steps first.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--steps_per_execution", type=int, default=16)
    parser.add_argument("--workdir", default=os.path.join(ROOT, "bench_out"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no_record", action="store_true", help="Do not append RESULTS.md.")
    args = parser.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    os.makedirs(args.workdir, exist_ok=True)
    data = args.data or make_data(args.workdir, args.interactions, args.seed)

    benches = {}
    for name in names:
        started = time.perf_counter()
        bench = Bench(name, data, args.batch_size, args.steps_per_execution)
        bench.run(args.warmup)
        benches[name] = bench
        print(f"{name}: built, traced and warmed up in {time.perf_counter() - started:.1f} s")
    samples = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name, bench in benches.items():
            rate, cpu = bench.run(args.steps)
            samples[name].append((rate, cpu))
            print(f"repeat {repeat + 1}: {name:>14} {rate:8.0f} examples/s, {cpu:.2f} CPU-s/1k")
    rows = []
    for name in names:
        rate = statistics.median(r for r, _ in samples[name])
        cpu = statistics.median(c for _, c in samples[name])
        rows.append({"model": name, "examples_per_s": rate, "cpu_s_per_1k": cpu})
        print(f"{name:>14}: median {rate:.0f} examples/s, {cpu:.2f} CPU-seconds per 1,000 examples")
    command = "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:])
    if not args.no_record:
        _record(rows, command.strip(), data, args)
    by_name = {r["model"]: r["examples_per_s"] for r in rows}
    print(
        f"RESULT mogenet_examples_per_s={by_name.get('mogenet', float('nan')):.0f} "
        f"mmoe_examples_per_s={by_name.get('mmoe', float('nan')):.0f}"
    )


def _record(rows, command, data, args) -> None:
    today = datetime.date.today().isoformat()
    lines = [
        "",
        f"### train_throughput — {today}",
        "",
        f"`{command}` on {os.cpu_count()} cores, Python {platform.python_version()}; data "
        f"`{os.path.relpath(data, ROOT)}`; batch {args.batch_size}, d = 64, L = 2, fan-outs "
        f"10,5; median of {args.repeats} repeats of {args.steps} steps after "
        f"{args.warmup} warm-up steps, the models taking turns; end to end from the TFRecords.",
        "",
        "| model | examples/s | CPU-s per 1,000 examples |",
        "| --- | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['examples_per_s']:.0f} | {r['cpu_s_per_1k']:.2f} |")
    with open(RESULTS, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
