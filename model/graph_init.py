"""Id embeddings initialised from the bipartite graph G (`--embedding_init graph`).

The paper trains the id embeddings from scratch (§2.1). On the leak-free
samples that leaves the graph path little to aggregate: a user's row is in a
handful of batches per epoch, so it barely moves at the paper's learning
rate, and item rows learn only what the supervising pairs teach them. G
itself says more: two items shown to, or clicked by, the same users tend to
share an audience. This module writes that into the embeddings before
training, as the classic factorisation of the item co-occurrence matrix's
positive pointwise mutual information (PPMI; Levy & Goldberg 2014 show that
skip-gram embeddings factorise the same matrix):

  C = RᵀR (co-occurrence of items in users' G neighbourhoods, diagonal 0),
  PPMI_ij = max(0, log(C_ij · ΣC / (C_i· · C_·j))),
  q_i = first `rank` left singular vectors of PPMI, times √σ,
  p_u = mean of q_i over u's G items.

Only G's edges are read (`graphs/bipartite-*.tsv`, written by
`beam_pipelines.run` from the graph rows, which never hold a supervising,
validation or test pair), so the initialisation carries no sample's label.
Rows are scaled to the norm of the default U(-0.05, 0.05) rows and fill the
first `rank` dimensions; the rest keep their random initial values, and so do
ids without a G edge (and row 0, the padding row). This is a departure from
the paper, chosen on validation data (reports/validation-choices/NOTES.md).
"""

from __future__ import annotations

import glob
import logging
import os

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from model.entities import EntityTable

# The expected norm of a d-dim row of U(-0.05, 0.05), per √d: 0.05 / √3.
_UNIFORM_RMS = 0.05 / np.sqrt(3.0)


class GraphInitError(ValueError):
    """The graph initialisation cannot be computed: a one-line message."""


def read_bipartite(data_dir: str) -> list[tuple[str, str]]:
    """Returns G's edges (user id, item id) from `<data_dir>/graphs/bipartite-*.tsv`.

    Raises:
      GraphInitError: If there is no such file or a line is not `user<TAB>item`.
    """
    paths = sorted(glob.glob(os.path.join(data_dir, "graphs", "bipartite-*.tsv")))
    if not paths:
        raise GraphInitError(
            f"{data_dir} has no graphs/bipartite-*.tsv: --embedding_init graph needs the "
            "graphs that python -m beam_pipelines.run writes beside the samples"
        )
    edges = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                parts = line.split("\t")
                if len(parts) != 2:
                    raise GraphInitError(f"{path}:{number}: expected user<TAB>item, got {line!r}")
                edges.append((parts[0], parts[1]))
    return edges


def ppmi_embeddings(
    edges, users: EntityTable, items: EntityTable, rank: int, seed: int = 0
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Returns the graph initialisation of the module docstring.

    Args:
      edges: G's (user id, item id) edges; ids outside the tables are ignored.
      users: The user EntityTable (id `ids[k]` has row k + 1).
      items: The item EntityTable.
      rank: Dimensions filled from the factorisation (≥ 1).
      seed: Seed of the randomised SVD.

    Returns:
      ({user row: vector}, {item row: vector}), each vector of length ≤ rank
      (fewer when G has fewer items), scaled to the uniform init's row norm.

    Raises:
      GraphInitError: If no edge joins a known user and a known item, or G
        has fewer than two items.
    """
    if rank < 1:
        raise GraphInitError(f"the graph init rank must be at least 1, got {rank}")
    user_row = {u: k for k, u in enumerate(users.ids, 1)}
    item_row = {i: k for k, i in enumerate(items.ids, 1)}
    pairs = {(user_row[u], item_row[i]) for u, i in edges if u in user_row and i in item_row}
    if not pairs:
        raise GraphInitError("no edge of G joins a known user and a known item")
    u_rows, i_rows = np.array(sorted(pairs)).T
    g_users, u_index = np.unique(u_rows, return_inverse=True)
    g_items, i_index = np.unique(i_rows, return_inverse=True)
    if len(g_items) < 2:
        raise GraphInitError(f"G has {len(g_items)} item(s): too few to factorise")
    r = sp.csr_matrix((np.ones(len(pairs)), (u_index, i_index)), shape=(len(g_users), len(g_items)))
    ppmi = item_ppmi(r)
    k = min(rank, len(g_items) - 1)
    if ppmi.nnz == 0:
        q = np.zeros((len(g_items), k))
    else:
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
        # fit_transform is U·σ; dividing by √σ leaves U·√σ.
        q = svd.fit_transform(ppmi) / np.sqrt(np.maximum(svd.singular_values_, 1e-12))
    q = _unit_rows(q)
    degree = np.asarray(r.sum(1)).ravel()
    p = _unit_rows((sp.diags(1.0 / degree) @ r) @ q)
    scale = _UNIFORM_RMS * np.sqrt(k)
    return (
        {int(row): scale * p[n] for n, row in enumerate(g_users)},
        {int(row): scale * q[n] for n, row in enumerate(g_items)},
    )


def item_ppmi(r: sp.spmatrix) -> sp.csr_matrix:
    """Returns the PPMI of the item co-occurrence of a binary user × item matrix.

    C = RᵀR with a zero diagonal; PPMI_ij = max(0, log(C_ij · ΣC / (C_i· · C_·j))),
    kept sparse (zeros where C_ij = 0 or the PMI is not positive).
    """
    co = (r.T @ r).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    if co.nnz == 0:
        return co.astype(np.float64)
    row_sum = np.asarray(co.sum(1)).ravel()
    col_sum = np.asarray(co.sum(0)).ravel()
    coo = co.tocoo()
    pmi = np.log(coo.data * co.sum() / (row_sum[coo.row] * col_sum[coo.col]))
    keep = pmi > 0
    return sp.csr_matrix(
        (pmi[keep], (coo.row[keep], coo.col[keep])), shape=co.shape, dtype=np.float64
    )


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(norm > 0, x / np.maximum(norm, 1e-12), 0.0)


def initialise_from_graph(encoders, entities, data_dir: str, rank: int, seed: int = 0) -> dict:
    """Writes the graph initialisation into the encoders' id embeddings.

    Args:
      encoders: {"user": EntityEncoder, "item": EntityEncoder}, built.
      entities: {"user": EntityTable, "item": EntityTable} of the encoders.
      data_dir: The samples' directory (its `graphs/` is read).
      rank: Dimensions filled from the factorisation (capped at the encoding size).
      seed: Seed of the randomised SVD.

    Returns:
      {"users": n, "items": n, "rank": k}: the rows initialised and the rank used.

    Raises:
      GraphInitError: As `read_bipartite` and `ppmi_embeddings`.
    """
    dim = encoders["user"].dim
    users, items = ppmi_embeddings(
        read_bipartite(data_dir), entities["user"], entities["item"], min(rank, dim), seed
    )
    used = 0
    for node_set, vectors in (("user", users), ("item", items)):
        table = encoders[node_set].id_embedding
        values = table.numpy()
        for row, vector in vectors.items():
            values[row, : len(vector)] = vector
            used = len(vector)
        table.assign(values)
    summary = {"users": len(users), "items": len(items), "rank": used}
    logging.info(
        "embedding init from G: %d user and %d item rows, rank %d",
        summary["users"],
        summary["items"],
        summary["rank"],
    )
    return summary
