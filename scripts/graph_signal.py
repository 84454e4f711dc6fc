"""How well G alone ranks a split's pairs, with no model and no label.

For each (user, item) pair of a split it scores, from G's edges only
(`graphs/bipartite-*.tsv`):

* item_degree: the item's G degree;
* mean_cosine: the mean cosine similarity (over G's users) between the item
  and the user's G items;
* mean_ppmi: the same with the positive pointwise mutual information of
  their co-occurrence instead of the cosine;
* ppmi_svd_<k>: p_u · q_i of `model.graph_init.ppmi_embeddings` at rank k,
  the vectors `--embedding_init graph` starts from;

and prints each score's within-user GAUC per task. With `--synthetic
USERS,ITEMS,MEAN_EXPOSURES,SEED` (the arguments of the data's
`synthetic.generator` run) it also prints how well each score ranks the
candidates that are in the user's latent community above the others.

    python scripts/graph_signal.py OUT --split valid \
        [--synthetic 4000,500,40,7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import legacy_keras  # noqa: F401  (before TensorFlow)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import tensorflow as tf  # noqa: E402

from model.entities import load_entities  # noqa: E402
from model.graph_init import item_ppmi, ppmi_embeddings, read_bipartite  # noqa: E402
from model.metrics import gauc  # noqa: E402
from synthetic import generator  # noqa: E402
from synthetic.latent import community_match, entity_numbers  # noqa: E402


def read_pairs(out: str, split: str):
    """Returns (users, items, {task: labels}) of a split's samples (roots and labels)."""
    users, items, labels = [], [], {}
    for record in tf.data.TFRecordDataset(tf.io.gfile.glob(f"{out}/{split}/*.tfrecord*")):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        users.append(feature["nodes/user.#id"].bytes_list.value[0].decode())
        items.append(feature["nodes/item.#id"].bytes_list.value[0].decode())
        for key, value in feature.items():
            if key.startswith("context/label_"):
                task = key[len("context/label_") :]
                labels.setdefault(task, []).append(value.int64_list.value[0])
    return np.array(users), np.array(items), {t: np.array(v) for t, v in sorted(labels.items())}


def scores(out: str, users, items, ranks) -> dict[str, np.ndarray]:
    """Returns {score name: [N] scores} of the module docstring (0 where G lacks an id)."""
    edges = read_bipartite(out)
    user_index = {u: k for k, u in enumerate(sorted({u for u, _ in edges}))}
    item_index = {i: k for k, i in enumerate(sorted({i for _, i in edges}))}
    r = sp.csr_matrix(
        (
            np.ones(len(edges)),
            ([user_index[u] for u, _ in edges], [item_index[i] for _, i in edges]),
        ),
        shape=(len(user_index), len(item_index)),
    )
    r.sum_duplicates()
    r.data[:] = 1.0
    pairs = zip(users, items, strict=True)
    known = np.array([a in user_index and b in item_index for a, b in pairs])
    u = np.array([user_index.get(x, 0) for x in users])
    i = np.array([item_index.get(x, 0) for x in items])
    user_degree = np.maximum(np.asarray(r.sum(1)).ravel(), 1)
    item_degree = np.asarray(r.sum(0)).ravel()
    normed = r @ sp.diags(1 / np.sqrt(np.maximum(item_degree, 1)))
    cosine = (normed.T @ normed).tocsr()
    cosine.setdiag(0)
    ppmi = item_ppmi(r)

    def mean_over_user_items(similarity):
        return np.asarray((r @ similarity)[u, i]).ravel() / user_degree[u]

    result = {
        "item_degree": item_degree[i],
        "mean_cosine": mean_over_user_items(cosine),
        "mean_ppmi": mean_over_user_items(ppmi),
    }
    entities = load_entities(out)
    rows = {n: {x: k for k, x in enumerate(entities[n].ids, 1)} for n in ("user", "item")}
    for rank in ranks:
        p, q = ppmi_embeddings(edges, entities["user"], entities["item"], rank)
        result[f"ppmi_svd_{rank}"] = np.array(
            [
                float(p[rows["user"][a]] @ q[rows["item"][b]])
                if rows["user"].get(a) in p and rows["item"].get(b) in q
                else 0.0
                for a, b in zip(users, items, strict=True)
            ]
        )
    return {k: np.where(known, v, 0.0) for k, v in result.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="--output directory of beam_pipelines.run")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--ranks", default="16,64", help="ranks of the PPMI factorisation")
    parser.add_argument("--synthetic", default="", help="USERS,ITEMS,MEAN_EXPOSURES,SEED")
    args = parser.parse_args(argv)
    users, items, labels = read_pairs(args.out, args.split)
    computed = scores(args.out, users, items, [int(k) for k in args.ranks.split(",") if k])
    columns = list(labels)
    match = None
    if args.synthetic:
        n_users, n_items, exposures, seed = args.synthetic.split(",")
        with tempfile.TemporaryDirectory() as scratch:
            latent = generator.generate(
                scratch,
                users=int(n_users),
                items=int(n_items),
                mean_exposures=float(exposures),
                seed=int(seed),
                return_latent=True,
            )["latent"]
        match = community_match(latent, entity_numbers(users), entity_numbers(items))
        columns.append("in community")
        print(f"candidates in the user's community: {np.mean(match > 0):.3f}")
    print(f"{args.out} {args.split}: {len(users)} pairs; within-user GAUC")
    print(f"{'score':16s}" + "".join(f"{c:>14s}" for c in columns))
    if match is not None:
        print(
            f"{'community match':16s}"
            + "".join(f"{gauc(users, y, match):14.4f}" for y in labels.values())
            + f"{'—':>14s}"
        )
    for name, score in computed.items():
        cells = [gauc(users, y, score) for y in labels.values()]
        if match is not None:
            cells.append(gauc(users, (match > 0).astype(int), score))
        print(f"{name:16s}" + "".join(f"{c:14.4f}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
