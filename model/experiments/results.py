"""A run's results: the files it leaves in its directory, and runs.csv.

`OUT/runs/<key>/` holds `run.json` (what the run trained from: data, tasks,
training config), `metrics.json` (written by `model.train`; a run is
finished when it exists) and `duration.json`; runs.csv has one row per run.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np

from model import config as config_lib
from model.experiments.plan import Run, Variant

SETTINGS = "run.json"
METRICS = "metrics.json"
DURATION = "duration.json"


def run_settings(run: Run, data_dir: str, train_config, tasks) -> dict:
    """What a run trained from beyond its key: data, tasks and training config."""
    config = dataclasses.replace(train_config, seed=run.seed)
    return {
        "data": os.path.abspath(data_dir),
        "tasks": list(run.tasks or tasks),
        "train_config": json.loads(config_lib.to_json(config)),
    }


def with_defaults(settings: dict) -> dict:
    """A run.json's settings with the training config's newer fields at their defaults.

    A run recorded before a TrainConfig field existed trained as its default
    says, so it still counts as trained with the same settings.
    """
    try:
        train_config = config_lib.TrainConfig(**settings.get("train_config", {}))
    except (TypeError, ValueError):  # a field that no longer exists: not the same settings
        return settings
    return {**settings, "train_config": json.loads(config_lib.to_json(train_config))}


def run_row(run: Run, run_dir: str, tasks) -> dict:
    """A finished run's runs.csv row, read from its `metrics.json` (and `duration.json`)."""
    with open(os.path.join(run_dir, METRICS)) as f:
        result = json.load(f)
    duration = None
    duration_path = os.path.join(run_dir, DURATION)
    if os.path.exists(duration_path):
        with open(duration_path) as f:
            duration = json.load(f)["duration_s"]
    row = {
        "key": run.key,
        "model": run.variant.model,
        "overrides": json.dumps(dict(run.variant.overrides), sort_keys=True),
        "tasks": ",".join(run.tasks or tasks),
        "seed": run.seed,
        "epochs": result.get("epochs_run"),
        "best_epoch": result.get("best_epoch"),
        "duration_s": duration,
    }
    for task in tasks:
        test = result.get("test", {}).get(task)
        for name in ("gauc", "auc", "log_loss"):
            row[f"{task}_{name}"] = None if test is None else test[name]
    return row


def write_runs_csv(rows, path: str) -> None:
    """Writes the runs' rows as CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_runs_csv(path: str) -> list[dict]:
    """Reads runs.csv back (metric cells as floats, empty as None)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for name, value in row.items():
            if name.endswith(("_gauc", "_auc", "_log_loss")):
                row[name] = float(value) if value not in ("", None) else None
        row["seed"] = int(row["seed"])
    return rows


def gauc_per_seed(rows, variant: Variant, task: str, seeds: int) -> np.ndarray:
    """The variant's test GAUC of a task, one per seed (NaN where missing)."""
    overrides = json.dumps(dict(variant.overrides), sort_keys=True)
    by_seed = {}
    for row in rows:
        if row["overrides"] == overrides and task in row["tasks"].split(","):
            value = row.get(f"{task}_gauc")
            by_seed[row["seed"]] = np.nan if value is None else value
    return np.array([by_seed.get(seed, np.nan) for seed in range(seeds)], float)
