"""Serializes pair samples as TF-GNN GraphTensor tf.Examples, fast.

The records are exactly what `tfgnn.write_example` writes for the same
GraphTensor (features `nodes/<set>.#id`, `edges/<set>.#source`, ...), and
`tfgnn.parse_example` with the schema of :func:`graph_schema` reads them. They
are encoded here directly in the protobuf wire format because the layout is
fixed: every size and every `#source`/`#target` index is the same in every
sample, so that part is encoded once, and only ids, masks, weights and labels
are encoded per sample. This is several times faster than building a
tf.train.Example message, which dominated the sampler's time.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from beam_pipelines.sample_layout import (
    EDGE_SET_ENDPOINTS,
    EDGE_SETS,
    ID_FEATURE,
    ITEM,
    ITEM_ITEM,
    LABEL_PREFIX,
    MASK_FEATURE,
    NODE_SETS,
    USER,
    USER_USER,
    WEIGHT_FEATURE,
    WEIGHTED_EDGE_SETS,
    SampleLayout,
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def _entry(key: str, feature: bytes) -> bytes:
    """One entry of the `Features.feature` map: key -> Feature."""
    return _delimited(0x0A, _delimited(0x0A, key.encode()) + _delimited(0x12, feature))


def _int64_feature(values: Sequence[int]) -> bytes:
    # Feature.int64_list (field 3) -> Int64List.value (field 1, packed varints).
    return _delimited(0x1A, _delimited(0x0A, b"".join(_varint(v) for v in values)))


def _float_feature(values: Sequence[float]) -> bytes:
    # Feature.float_list (field 2) -> FloatList.value (field 1, packed floats).
    return _delimited(0x12, _delimited(0x0A, struct.pack(f"<{len(values)}f", *values)))


def _bytes_list_payload(values: Sequence[bytes]) -> bytes:
    return b"".join(_delimited(0x0A, v) for v in values)


class SampleEncoder:
    """Encodes one pair's sampled ids, masks, weights and labels as a tf.Example.

    Args:
      layout: The sample layout.
      tasks: Task names; labels are written as context features `label_<task>`.
    """

    def __init__(self, layout: SampleLayout, tasks: Sequence[str]):
        self.layout = layout
        self.tasks = tuple(tasks)
        constant = []
        for node_set in NODE_SETS:
            size = layout.node_set_sizes[node_set]
            constant.append(_entry(f"nodes/{node_set}.#size", _int64_feature([size])))
        for edge_set in EDGE_SETS:
            sources, targets = layout.adjacency_indices(edge_set)
            constant.append(_entry(f"edges/{edge_set}.#size", _int64_feature([len(sources)])))
            constant.append(_entry(f"edges/{edge_set}.#source", _int64_feature(sources)))
            constant.append(_entry(f"edges/{edge_set}.#target", _int64_feature(targets)))
        self._constant = b"".join(constant)
        self._id_keys = {s: _delimited(0x0A, f"nodes/{s}.{ID_FEATURE}".encode()) for s in NODE_SETS}
        self._mask_keys = {
            s: _delimited(0x0A, f"nodes/{s}.{MASK_FEATURE}".encode()) for s in NODE_SETS
        }
        self._weight_keys = {
            e: _delimited(0x0A, f"edges/{e}.{WEIGHT_FEATURE}".encode()) for e in WEIGHTED_EDGE_SETS
        }
        self._label_entries = [
            (
                _entry(f"context/{LABEL_PREFIX}{t}", _int64_feature([0])),
                _entry(f"context/{LABEL_PREFIX}{t}", _int64_feature([1])),
            )
            for t in self.tasks
        ]
        self._id_cache: dict[str, bytes] = {}

    def _encoded_id(self, node_id: str | None) -> bytes:
        """Returns the BytesList element of one id (b"" for padding), cached."""
        cached = self._id_cache.get(node_id)
        if cached is None:
            raw = b"" if node_id is None else node_id.encode("utf-8")
            cached = _delimited(0x0A, raw)
            if len(self._id_cache) < 2_000_000:
                self._id_cache[node_id] = cached
        return cached

    def encode(
        self,
        node_ids: dict[str, Sequence[str | None]],
        weights: dict[str, Sequence[float]],
        labels: Sequence[int],
    ) -> bytes:
        """Returns the serialized tf.Example of one sample.

        Args:
          node_ids: Per node set, the ids in layout order (None for padding).
          weights: Per weighted edge set, the edge weights in layout order.
          labels: One 0/1 label per task.

        Returns:
          The serialized tf.Example.
        """
        parts = [self._constant]
        for node_set in (USER, ITEM):
            ids = node_ids[node_set]
            encoded = b"".join([self._encoded_id(i) for i in ids])
            feature = _delimited(0x0A, encoded)  # Feature.bytes_list
            parts.append(_delimited(0x0A, self._id_keys[node_set] + _delimited(0x12, feature)))
            mask = bytes([0 if i is None else 1 for i in ids])  # 0/1 varints are one byte
            feature = _delimited(0x1A, _delimited(0x0A, mask))
            parts.append(_delimited(0x0A, self._mask_keys[node_set] + _delimited(0x12, feature)))
        for edge_set in (USER_USER, ITEM_ITEM):
            feature = _float_feature(weights[edge_set])
            parts.append(_delimited(0x0A, self._weight_keys[edge_set] + _delimited(0x12, feature)))
        for entries, label in zip(self._label_entries, labels, strict=True):
            parts.append(entries[label])
        return _delimited(0x0A, b"".join(parts))  # Example.features


def graph_schema(layout: SampleLayout, tasks: Sequence[str]):
    """Returns the tfgnn.GraphSchema proto of the samples.

    Args:
      layout: The sample layout (recorded in the schema's descriptions).
      tasks: Task names, one int64 context feature `label_<task>` each.

    Returns:
      A `tensorflow_gnn.GraphSchema`.
    """
    import tensorflow as tf
    import tensorflow_gnn as tfgnn

    del layout  # The schema is the same for every fan-out; layout.json has the offsets.
    schema = tfgnn.GraphSchema()
    for task in tasks:
        schema.context.features[f"{LABEL_PREFIX}{task}"].dtype = tf.int64.as_datatype_enum
    for node_set in NODE_SETS:
        features = schema.node_sets[node_set].features
        features[ID_FEATURE].dtype = tf.string.as_datatype_enum
        features[MASK_FEATURE].dtype = tf.int64.as_datatype_enum
    for edge_set in EDGE_SETS:
        source, target = EDGE_SET_ENDPOINTS[edge_set]
        schema.edge_sets[edge_set].source = source
        schema.edge_sets[edge_set].target = target
        if edge_set in WEIGHTED_EDGE_SETS:
            schema.edge_sets[edge_set].features[WEIGHT_FEATURE].dtype = tf.float32.as_datatype_enum
    return schema
