"""Runs the plan: trains each run not finished yet in a `python -m model.train` process."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

from model import config as config_lib
from model.experiments import results
from model.experiments.plan import Run


def train_run(run: Run, data_dir: str, run_dir: str, train_config, tasks) -> None:
    """Trains one run with `python -m model.train` on `tasks`, in a process of its own.

    One process per run: XLA's compiled code and TF's graphs are not freed
    between runs in one process (52 runs in one process ran out of memory).

    Raises:
      RuntimeError: If the training process fails (its output's last lines).
    """
    config = dataclasses.replace(train_config, seed=run.seed)
    command = [
        sys.executable,
        "-m",
        "model.train",
        "--data",
        data_dir,
        "--model_dir",
        run_dir,
        "--tasks",
        ",".join(tasks),
        "--verbose",
        "0",
        *config_lib.to_flags(dict(run.variant.overrides)),
        *config_lib.to_flags(dataclasses.asdict(config)),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"training {run.key} failed ({result.returncode}):\n{tail}")


def execute(
    runs, data_dir: str, out: str, train_config, tasks, train_fn: Callable = train_run
) -> list[dict]:
    """Trains the runs not finished yet and returns every run's runs.csv row.

    A run is finished when `OUT/runs/<key>/metrics.json` exists; its row is
    read back from there (and `duration.json`). Each run records what it
    trained from (`run.json`: data, tasks, training config); a finished run
    recorded with other settings is an error, never silently reused.

    Raises:
      ValueError: If a finished run was trained with other settings.
    """
    rows = []
    for number, run in enumerate(runs, 1):
        run_dir = os.path.join(out, "runs", run.key)
        metrics_path = os.path.join(run_dir, results.METRICS)
        duration_path = os.path.join(run_dir, results.DURATION)
        settings_path = os.path.join(run_dir, results.SETTINGS)
        settings = results.run_settings(run, data_dir, train_config, tasks)
        if os.path.exists(metrics_path):
            with open(settings_path) as f:
                recorded = results.with_defaults(json.load(f))
            if recorded != settings:
                raise ValueError(
                    f"{run_dir} was trained with other settings ({settings_path}); "
                    "use another --out or the same flags"
                )
            print(f"[{number}/{len(runs)}] {run.key}: done before, skipped", flush=True)
        else:
            print(f"[{number}/{len(runs)}] {run.key}: training", flush=True)
            os.makedirs(run_dir, exist_ok=True)
            with open(settings_path, "w") as f:
                json.dump(settings, f, indent=2, sort_keys=True)
            started = time.monotonic()
            train_fn(run, data_dir, run_dir, train_config, settings["tasks"])
            with open(duration_path, "w") as f:
                json.dump({"duration_s": round(time.monotonic() - started, 1)}, f)
        rows.append(results.run_row(run, run_dir, tasks))
    return rows
