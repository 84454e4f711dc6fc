"""The names of the models' dense inputs (docs/sample-contract.md, "What the model reads").

`model.input_pipeline` turns a batch of samples into a dict of tensors named
here, and every model reads its inputs by these names:

  * `<set>_index` int32 [B, n]: the node set's ids looked up in the entity
    tables (0 = padding or unknown), or `<set>_ids` string [B, n] without
    tables;
  * `<set>_mask` float32 [B, n]: 1 real, 0 padding;
  * `<edge set>_weight` float32 [B, m] for `user_user` and `item_item`;
  * `<set>_id` string [B]: the roots' ids, when asked for (`keep_root_ids`).
"""

from __future__ import annotations


def index_input(node_set: str) -> str:
    """Returns the name of a node set's looked-up ids: `<set>_index`."""
    return f"{node_set}_index"


def ids_input(node_set: str) -> str:
    """Returns the name of a node set's string ids (no entity tables): `<set>_ids`."""
    return f"{node_set}_ids"


def mask_input(node_set: str) -> str:
    """Returns the name of a node set's mask: `<set>_mask`."""
    return f"{node_set}_mask"


def weight_input(edge_set: str) -> str:
    """Returns the name of a weighted edge set's weights: `<edge set>_weight`."""
    return f"{edge_set}_weight"


def root_id_input(node_set: str) -> str:
    """Returns the name of the roots' string ids of a node set: `<set>_id`."""
    return f"{node_set}_id"
