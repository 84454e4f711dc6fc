"""The best GAUC any model can reach on the synthetic data: the generating model's own scores.

  python -m model.synthetic_oracle --data OUT --users 2000 --items 500 --seed 7

`beam_pipelines.synthetic` draws every label from known probabilities, so
the ceiling of a split is the GAUC of those probabilities on its samples
(the oracle). Two parts of it are printed as well:

  * community match only: the user-item affinity of the latent communities,
    which the interaction graph carries and the side features mostly do not;
  * item quality only: what an item's own id or features can learn.

The generator flags must be those the data was made with (it is rerun, into
a temporary directory, to recover the latent variables). Prints one line
per split and task; `--out FILE` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

import numpy as np

from beam_pipelines import synthetic
from model.entities import load_entities
from model.input_pipeline import DataError, make_dataset
from model.metrics import auc, gauc


def split_pairs(data_dir: str, split: str) -> tuple[list[str], list[str], dict]:
    """Returns (root user ids, root item ids, {task: labels}) of a split's samples."""
    entities = load_entities(data_dir)
    users, items, labels = [], [], {}
    dataset = make_dataset(
        data_dir, split, 4096, shuffle=False, entities=entities, keep_root_ids=True
    )
    for inputs, batch_labels in dataset:
        users += [u.decode() for u in inputs["user_id"].numpy()]
        items += [i.decode() for i in inputs["item_id"].numpy()]
        for task, values in batch_labels.items():
            labels.setdefault(task, []).append(values.numpy())
    return users, items, {task: np.concatenate(v) for task, v in labels.items()}


def oracle_metrics(data_dir: str, latent: dict, splits=("valid", "test")) -> dict:
    """Returns {split: {task: {scorer: {"gauc", "auc"}}}} for the oracle and its two parts.

    Args:
      data_dir: A `beam_pipelines.run` output of the synthetic data.
      latent: `synthetic.generate(..., return_latent=True)["latent"]` of that data.
      splits: The splits to score.

    Raises:
      DataError: If a task is not one the generator draws.
    """
    results = {}
    for split in splits:
        users, items, labels = split_pairs(data_dir, split)
        unknown = sorted(set(labels) - {"click", "conversion"})
        if unknown:
            raise DataError(f"tasks {unknown} are not the synthetic data's (click, conversion)")
        user, item = synthetic.entity_numbers(users), synthetic.entity_numbers(items)
        oracle = synthetic.true_probabilities(latent, users, items)
        parts = {
            "oracle": oracle,
            "community_match": synthetic.community_match(latent, user, item),
            "item_quality": latent["item_quality"][item],
        }
        results[split] = {
            task: {
                name: {
                    "gauc": gauc(users, values, scores if name != "oracle" else scores[task]),
                    "auc": auc(values, scores if name != "oracle" else scores[task]),
                }
                for name, scores in parts.items()
            }
            for task, values in labels.items()
        }
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.synthetic_oracle", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", required=True, help="beam_pipelines.run output directory")
    synthetic.add_generator_flags(parser)  # as the data was generated
    parser.add_argument("--splits", default="valid,test")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        flags = {name: getattr(args, name) for name in synthetic.GENERATOR_FLAGS}
        latent = synthetic.generate(scratch, **flags, return_latent=True)["latent"]
    try:
        results = oracle_metrics(args.data, latent, tuple(args.splits.split(",")))
    except (DataError, IndexError) as e:
        message = (
            str(e)
            if isinstance(e, DataError)
            else ("ids beyond the generator's: were --users/--items those of the data?")
        )
        print(f"model.synthetic_oracle: error: {message}", file=sys.stderr)
        return 2
    for split, tasks in results.items():
        for task, scorers in tasks.items():
            figures = ", ".join(f"{name} {m['gauc']:.4f}" for name, m in scorers.items())
            print(f"{split} {task} GAUC: {figures}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
