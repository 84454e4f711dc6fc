"""The graph initialisation of the id embeddings (`model.graph_init`)."""

import numpy as np
import pytest

from model.entities import EntityTable
from model.graph_init import (
    GraphInitError,
    initialise_from_graph,
    ppmi_embeddings,
    read_bipartite,
)
from model.layers.encoder import EntityEncoder

# Two audiences: users a* see items x*, users b* see items y*; one user of
# each also saw one popular item "pop" that everyone else saw too.
_COMMUNITY = {"x": [f"x{k}" for k in range(4)], "y": [f"y{k}" for k in range(4)]}


def _graph():
    edges = []
    for prefix, items in (("a", _COMMUNITY["x"]), ("b", _COMMUNITY["y"])):
        for n in range(6):
            user = f"{prefix}{n}"
            edges += [(user, items[(n + k) % 4]) for k in range(3)] + [(user, "pop")]
    return edges


def _tables(edges, extra_users=(), extra_items=()):
    users = sorted({u for u, _ in edges} | set(extra_users))
    items = sorted({i for _, i in edges} | set(extra_items))
    return EntityTable.from_rows(users, []), EntityTable.from_rows(items, [])


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_items_and_users_of_one_audience_point_the_same_way():
    edges = _graph()
    users, items = _tables(edges)
    p, q = ppmi_embeddings(edges, users, items, rank=2, seed=0)
    item = {i: q[k] for k, i in enumerate(items.ids, 1) if k in q}
    user = {u: p[k] for k, u in enumerate(users.ids, 1)}
    within = [_cosine(item["x0"], item[f"x{k}"]) for k in (1, 2, 3)]
    across = [_cosine(item["x0"], item[f"y{k}"]) for k in range(4)]
    assert min(within) > 0.9 and max(across) < 0.1
    # A user is the mean of its items: it points at its own audience's items.
    assert _cosine(user["a0"], item["x2"]) > 0.9
    assert _cosine(user["a0"], item["x2"]) > _cosine(user["a0"], item["y2"]) + 0.5
    # Cosine similarity would tie every item to "pop"; PMI does not reward it.
    assert max(abs(_cosine(item["pop"], item[i])) for i in ("x0", "y0")) < 0.9


def test_rows_have_the_uniform_init_norm_and_only_g_ids_get_one():
    edges = _graph()
    users, items = _tables(edges, extra_users=["cold_user"], extra_items=["cold_item"])
    p, q = ppmi_embeddings(edges + [("stranger", "x0")], users, items, rank=3, seed=0)
    expected = 0.05 / np.sqrt(3.0) * np.sqrt(3)
    assert all(v.shape == (3,) for v in [*p.values(), *q.values()])
    np.testing.assert_allclose([np.linalg.norm(v) for v in p.values()], expected, rtol=1e-6)
    np.testing.assert_allclose([np.linalg.norm(v) for v in q.values()], expected, rtol=1e-6)
    assert users.ids.index("cold_user") + 1 not in p and items.ids.index("cold_item") + 1 not in q
    assert len(p) == 12 and len(q) == 9 and 0 not in p and 0 not in q


def test_the_rank_is_capped_by_the_number_of_items():
    edges = [("u1", "i1"), ("u1", "i2"), ("u2", "i2"), ("u2", "i3")]
    p, q = ppmi_embeddings(edges, *_tables(edges), rank=16)
    assert {v.shape for v in [*p.values(), *q.values()]} == {(2,)}


def test_unusable_graphs_are_one_line_errors(tmp_path):
    users, items = _tables([("u1", "i1")])
    with pytest.raises(GraphInitError, match="no edge of G joins"):
        ppmi_embeddings([("nobody", "i1")], users, items, rank=2)
    with pytest.raises(GraphInitError, match="too few to factorise"):
        ppmi_embeddings([("u1", "i1")], users, items, rank=2)
    with pytest.raises(GraphInitError, match="rank must be at least 1"):
        ppmi_embeddings([("u1", "i1")], users, items, rank=0)
    with pytest.raises(GraphInitError, match="no graphs/bipartite"):
        read_bipartite(str(tmp_path))
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "bipartite-00000-of-00001.tsv").write_text("u1\ti1\nu2 i2\n")
    with pytest.raises(GraphInitError, match=r"bipartite-00000-of-00001.tsv:2: expected"):
        read_bipartite(str(tmp_path))


def test_initialise_writes_g_rows_and_keeps_the_others(tmp_path):
    edges = _graph()
    (tmp_path / "graphs").mkdir()
    (tmp_path / "graphs" / "bipartite-00000-of-00001.tsv").write_text(
        "".join(f"{u}\t{i}\n" for u, i in edges)
    )
    entities = dict(zip(("user", "item"), _tables(edges, extra_items=["cold_item"]), strict=True))
    encoders = {k: EntityEncoder.from_table(t, dim=4) for k, t in entities.items()}
    for encoder in encoders.values():
        encoder(np.zeros([1], np.int32))  # builds the weights
    before = {k: e.id_embedding.numpy().copy() for k, e in encoders.items()}
    summary = initialise_from_graph(encoders, entities, str(tmp_path), rank=2, seed=0)
    assert summary == {"users": 12, "items": 9, "rank": 2}
    p, q = ppmi_embeddings(edges, entities["user"], entities["item"], rank=2, seed=0)
    item_after, user_after = (
        encoders["item"].id_embedding.numpy(),
        encoders["user"].id_embedding.numpy(),
    )
    for row, vector in q.items():
        np.testing.assert_allclose(item_after[row, :2], vector, rtol=1e-5)
    for row, vector in p.items():
        np.testing.assert_allclose(user_after[row, :2], vector, rtol=1e-5)
    cold = entities["item"].ids.index("cold_item") + 1
    for row in (0, cold):  # padding and edge-less rows keep their initial values
        np.testing.assert_array_equal(item_after[row], before["item"][row])
    np.testing.assert_array_equal(item_after[:, 2:], before["item"][:, 2:])
