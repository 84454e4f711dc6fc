"""Entity tables: indices, feature tables, lookup and the save/load round trip."""

import numpy as np
import pytest
import tensorflow as tf

from model.entities import EntityError, EntityTable


def _table():
    return EntityTable.from_rows(
        ["b", "a", "z"],
        [
            {"id": "a", "colour": "red", "price": 2.0},
            {"id": "c", "colour": "blue", "price": 4.0},
            {"id": "b", "colour": "red"},
        ],
    )


def test_indices_features_and_lookup():
    table = _table()
    assert table.ids == ["a", "b", "c", "z"] and table.size == 5
    values, column = table.categorical["colour"]
    assert values == ["blue", "red"]
    np.testing.assert_array_equal(column, [0, 2, 2, 1, 0])
    np.testing.assert_allclose(table.numeric["price"], [0, -1, 0, 1, 0])
    lookup = table.lookup_table()
    np.testing.assert_array_equal(lookup.lookup(tf.constant(["z", "a", "", "new"])), [4, 1, 0, 0])


def test_save_and_load_give_the_same_table(tmp_path):
    table = _table()
    table.save(str(tmp_path), "item")
    loaded = EntityTable.load(str(tmp_path), "item")
    assert loaded.ids == table.ids
    assert loaded.categorical["colour"][0] == table.categorical["colour"][0]
    np.testing.assert_array_equal(loaded.categorical["colour"][1], table.categorical["colour"][1])
    np.testing.assert_array_equal(loaded.numeric["price"], table.numeric["price"])


def test_missing_vocabulary_and_bad_rows_are_one_line_errors(tmp_path):
    with pytest.raises(EntityError, match="no vocab/user"):
        EntityTable.load(str(tmp_path), "user")
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "user-00000-of-00001.tsv").write_text("u1\t3\n")
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "user-00000-of-00001.jsonl").write_text('{"id": "u1"}\n{oops\n')
    with pytest.raises(EntityError, match="user-00000-of-00001.jsonl:2: not a feature row"):
        EntityTable.load(str(tmp_path), "user")
