"""The samples' feature names and tf.Example keys (docs/sample-contract.md, "tf.Example keys").

A sample is a GraphTensor as `tfgnn.write_example` writes it: the feature
`<feature>` of node set `<set>` is the tf.Example key `nodes/<set>.<feature>`,
of an edge set `edges/<set>.<feature>`, of the context `context/<feature>`.
The features are

  * node sets `user`, `item`: `#size`, `#id` (bytes, b"" for padding) and
    `mask` (int64, 1 real, 0 padding);
  * edge sets: `#size`, `#source`, `#target` and, on `user_user` and
    `item_item`, `weight` (float);
  * context: `label_<task>` (int64, 0 or 1), one per task.
"""

from __future__ import annotations

SIZE_FEATURE = "#size"
SOURCE_FEATURE = "#source"
TARGET_FEATURE = "#target"
ID_FEATURE = "#id"
MASK_FEATURE = "mask"
WEIGHT_FEATURE = "weight"
LABEL_PREFIX = "label_"


def node_key(node_set: str, feature: str) -> str:
    """Returns the tf.Example key of a node set's feature, e.g. `nodes/user.#id`."""
    return f"nodes/{node_set}.{feature}"


def edge_key(edge_set: str, feature: str) -> str:
    """Returns the tf.Example key of an edge set's feature, e.g. `edges/user_user.weight`."""
    return f"edges/{edge_set}.{feature}"


def context_key(feature: str) -> str:
    """Returns the tf.Example key of a context feature, e.g. `context/label_click`."""
    return f"context/{feature}"


def id_key(node_set: str) -> str:
    """Returns the key of a node set's ids: `nodes/<set>.#id`."""
    return node_key(node_set, ID_FEATURE)


def mask_key(node_set: str) -> str:
    """Returns the key of a node set's mask: `nodes/<set>.mask`."""
    return node_key(node_set, MASK_FEATURE)


def weight_key(edge_set: str) -> str:
    """Returns the key of a weighted edge set's weights: `edges/<set>.weight`."""
    return edge_key(edge_set, WEIGHT_FEATURE)


def label_feature(task: str) -> str:
    """Returns the context feature of a task's label: `label_<task>`."""
    return f"{LABEL_PREFIX}{task}"


def label_key(task: str) -> str:
    """Returns the key of a task's label: `context/label_<task>`."""
    return context_key(label_feature(task))


def task_of(feature: str) -> str | None:
    """Returns the task whose label a context feature is, or None for another feature."""
    return feature[len(LABEL_PREFIX) :] if feature.startswith(LABEL_PREFIX) else None
