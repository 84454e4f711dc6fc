"""Diagnostic: which validation signal picks the epoch with the best test GAUC?

Trains a few runs for `--epochs` (20) epochs with the paper's settings (as
`model.experiments` does, no early stopping) and, after every epoch, scores the
validation and the test split. Then, for each run, it reports the test GAUC
at the epoch each validation signal would keep: mean validation GAUC
(`--monitor gauc`), mean pooled validation AUC (`auc`), mean validation log
loss (`log_loss`), the last epoch (`none`), and the best test epoch (the
ceiling of any selection rule). This reads the test split every epoch, so it
is a diagnostic of the protocol, never a way to pick a model.

  python reports/synthetic-default/epoch_selection.py --data demo_out/samples \
      --out reports/synthetic-default/epoch_selection/20-epochs \
      mogenet:1 mogenet:0 mmoe+mgnn:1 mmoe+mgnn:0 mmoe:0 mmoe:1

Writes OUT/<run>.jsonl (one line of metrics per epoch) and prints the table
(with no runs given, only the table of the JSONL files already in OUT). The
committed `epoch_selection/*-epochs/` came from this with `--epochs 20`, 30
(`mlp+mgnn:0 mlp+mgnn:1 mlp:1`) and 60 (`mogenet:0 mlp:0`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from model import config as config_lib  # noqa: E402
from model import train as train_lib  # noqa: E402
from model.entities import load_entities  # noqa: E402
from model.evaluation import predict_split, split_metrics  # noqa: E402

TASKS = ("click", "conversion")


class EveryEpoch(tf.keras.callbacks.Callback):
    """Appends the valid and test AUC, GAUC and log loss of every task to a JSONL file.

    The validation figures are the ones `ValidationMetrics` put in the logs
    this epoch; only the test split is scored here.
    """

    def __init__(self, data_dir, entities, path):
        super().__init__()
        self.data_dir, self.entities, self.path = data_dir, entities, path

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch}
        test = split_metrics(predict_split(self.model, self.data_dir, "test", 1024, self.entities))
        for task in self.model.task_names:
            for name in ("auc", "gauc", "log_loss"):
                row[f"valid_{task}_{name}"] = logs[f"val_{task}_{name}"]
                row[f"test_{task}_{name}"] = test[task][name]
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")


def train_runs(data_dir: str, out: str, specs, epochs: int = 20) -> None:
    """Trains each "model[+mgnn]:seed" spec, logging every epoch to OUT/<spec>.jsonl."""
    entities = load_entities(data_dir)
    for spec in specs:
        name, seed = spec.split(":")
        model, mgnn = (name[: -len("+mgnn")], True) if name.endswith("+mgnn") else (name, False)
        path = os.path.join(out, f"{name}-{seed}.jsonl")
        if os.path.exists(path):
            os.remove(path)
        train_lib.train(
            data_dir,
            os.path.join(out, f"{name}-{seed}"),
            config_lib.ModelConfig(model=model, mgnn=mgnn),
            config_lib.TrainConfig(seed=int(seed), epochs=epochs, monitor="none"),
            verbose=0,
            extra_callbacks=[EveryEpoch(data_dir, entities, path)],
            overwrite=True,
        )
        print("done", spec, flush=True)


def selection_table(out: str) -> str:
    """Returns the markdown table of test GAUC (click / conversion) per selection rule."""
    lines = [
        "| run | gauc | auc | log_loss | none (last) | best test epoch |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for path in sorted(glob.glob(os.path.join(out, "*.jsonl"))):
        with open(path) as f:
            rows = [json.loads(line) for line in f]
        test = [[row[f"test_{t}_gauc"] for t in TASKS] for row in rows]

        def valid(name, rows=rows):
            return [np.mean([row[f"valid_{t}_{name}"] for t in TASKS]) for row in rows]

        picks = {
            "gauc": int(np.argmax(valid("gauc"))),
            "auc": int(np.argmax(valid("auc"))),
            "log_loss": int(np.argmin(valid("log_loss"))),
            "none": len(rows) - 1,
            "test": int(np.argmax([np.mean(t) for t in test])),
        }
        cells = [f"ep {e + 1}: {test[e][0]:.3f} / {test[e][1]:.3f}" for e in picks.values()]
        lines.append(f"| {os.path.basename(path)[: -len('.jsonl')]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="--output directory of beam_pipelines.run")
    parser.add_argument("--out", required=True, help="where the per-epoch JSONL files go")
    parser.add_argument("--epochs", type=int, default=20, help="epochs per run")
    parser.add_argument("runs", nargs="*", help='"model[+mgnn]:seed"; none: only the table')
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train_runs(args.data, args.out, args.runs, args.epochs)
    print(selection_table(args.out))


if __name__ == "__main__":
    main()
