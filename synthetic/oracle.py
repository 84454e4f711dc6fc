"""The best GAUC any model can reach on the synthetic data: the generating model's own scores.

  python -m synthetic.oracle --data OUT --users 4000 --items 500 --mean_exposures 40 --seed 7

`synthetic.generator` draws every label from known probabilities, so
the ceiling of a split is the GAUC of those probabilities on its samples
(the oracle; on a finite split, an expected ceiling, not a strict bound).
Two parts of it are printed as well:

  * community match only: the user-item affinity of the latent communities,
    which the interaction graph carries and the side features mostly do not;
  * item quality only: what an item's own id or features can learn (with the
    users' biases, which GAUC ignores anyway).

It also prints how much of the communities the training graphs carry: the
share of their edges within a community, against shuffled edges.

Each part is the generator's probability with the other terms of the logits
left out. The generator flags must be those the data was made with: it is
rerun, into a temporary directory, to recover the latent variables, and
every sample's pair and labels are checked against the rerun's
interactions. Data with sampled negatives (`--negatives_per_positive`) fails
that check: those labels were not drawn by the generator. Prints one line
per split and task; `--out FILE` also writes them as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile

import numpy as np

from model.entities import load_entities
from model.input_pipeline import DataError, make_dataset
from model.metrics import auc, gauc
from synthetic import generator
from synthetic.latent import community_match, entity_numbers, true_probabilities


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


def _without(latent: dict, *, match: bool, item: bool) -> dict:
    """The latent variables with the community match or the item and user terms taken out."""
    neutral = dict(latent)
    if not match:  # no user shares an item's community
        neutral["user_community"] = np.full_like(latent["user_community"], -1)
        neutral["user_second_community"] = np.full_like(latent["user_second_community"], -1)
    if not item:  # every item and user alike but for the match
        for name in ("item_quality", "item_conv_quality", "user_click_bias", "user_conv_bias"):
            neutral[name] = np.zeros_like(latent[name])
    return neutral


def drawn_labels(interactions_csv: str) -> dict:
    """Returns {(user id, item id): {task: label}} of a generated interactions file."""
    with open(interactions_csv, newline="") as f:
        return {
            (row["user_id"], row["item_id"]): {
                "click": int(row["click"]),
                "conversion": int(row["conversion"]),
            }
            for row in csv.DictReader(f)
        }


def oracle_metrics(data_dir: str, latent: dict, splits=("valid", "test"), drawn=None) -> dict:
    """Returns {split: {task: {scorer: {"gauc", "auc"}}}} for the oracle and its two parts.

    Args:
      data_dir: A `beam_pipelines.run` output of the synthetic data.
      latent: `generator.generate(..., return_latent=True)["latent"]` of that data.
      splits: The splits to score.
      drawn: `drawn_labels` of the generated interactions; if given, every
        sample must be one of them, with the same labels.

    Raises:
      DataError: If a task is not one the generator draws, or a sample is not
        one of `drawn`.
    """
    scorers = {
        "oracle": latent,
        "community_match": _without(latent, match=True, item=False),
        "item_quality": _without(latent, match=False, item=True),
    }
    results = {}
    for split in splits:
        users, items, labels = split_pairs(data_dir, split)
        unknown = sorted(set(labels) - {"click", "conversion"})
        if unknown:
            raise DataError(f"tasks {unknown} are not the synthetic data's (click, conversion)")
        if drawn is not None:
            _check_drawn(split, users, items, labels, drawn)
        scores = {
            name: true_probabilities(variables, users, items) for name, variables in scorers.items()
        }
        results[split] = {
            task: {
                name: {"gauc": gauc(users, values, s[task]), "auc": auc(values, s[task])}
                for name, s in scores.items()
            }
            for task, values in labels.items()
        }
    return results


def graph_homophily(data_dir: str, latent: dict) -> dict:
    """How much of the latent communities the training graphs carry.

    Returns {graph: {"edges", "same", "random"}}: for `user_sim` and
    `item_sim`, the share of edges between two nodes of the same (main)
    community; for `bipartite`, the share of edges whose user and item match
    (main or second community). "random" is that share with one end of every
    edge shuffled (seeded), the level of a graph that carried nothing.
    """
    import glob

    rng = np.random.default_rng(0)
    shares = {}
    for graph in ("bipartite", "user_sim", "item_sim"):
        ends = [[], []]
        for path in sorted(glob.glob(os.path.join(data_dir, "graphs", f"{graph}-*.tsv"))):
            with open(path) as f:
                for line in f:
                    fields = line.rstrip("\n").split("\t")
                    ends[0].append(fields[0])
                    ends[1].append(fields[1])
        a, b = entity_numbers(ends[0]), entity_numbers(ends[1])
        community = latent["user_community" if graph == "user_sim" else "item_community"]

        def same(x, y, graph=graph, community=community):
            if graph == "bipartite":
                return community_match(latent, x, y) > 0
            return community[x] == community[y]

        shares[graph] = {
            "edges": int(a.size),
            "same": float(same(a, b).mean()) if a.size else float("nan"),
            "random": float(same(a, rng.permutation(b)).mean()) if a.size else float("nan"),
        }
    return shares


def _check_drawn(split, users, items, labels, drawn) -> None:
    for k, pair in enumerate(zip(users, items, strict=True)):
        expected = drawn.get(pair)
        if expected is None or any(int(labels[t][k]) != expected[t] for t in labels):
            raise DataError(
                f"the {split} sample {pair} is not in the data these generator flags make "
                "(other flags, or sampled negatives?)"
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synthetic.oracle", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data", required=True, help="beam_pipelines.run output directory")
    generator.add_generator_flags(parser)  # as the data was generated
    parser.add_argument("--splits", default="valid,test")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            flags = {name: getattr(args, name) for name in generator.GENERATOR_FLAGS}
            generated = generator.generate(scratch, **flags, return_latent=True)
            drawn = drawn_labels(os.path.join(scratch, generator.INTERACTIONS_FILE))
        splits = tuple(args.splits.split(","))
        results = oracle_metrics(args.data, generated["latent"], splits, drawn)
    except (DataError, ValueError) as e:
        print(f"synthetic.oracle: error: {e}".splitlines()[0], file=sys.stderr)
        return 2
    for split, tasks in results.items():
        for task, scorers in tasks.items():
            figures = ", ".join(f"{name} {m['gauc']:.4f}" for name, m in scorers.items())
            print(f"{split} {task} GAUC: {figures}")
    results["graphs"] = graph_homophily(args.data, generated["latent"])
    for graph, share in results["graphs"].items():
        print(
            f"graph {graph}: {share['edges']} edges, {share['same']:.3f} within a community "
            f"(shuffled: {share['random']:.3f})"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
