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

from contracts.example_keys import (
    ID_FEATURE,
    MASK_FEATURE,
    SIZE_FEATURE,
    SOURCE_FEATURE,
    TARGET_FEATURE,
    WEIGHT_FEATURE,
    edge_key,
    id_key,
    label_feature,
    label_key,
    mask_key,
    node_key,
    weight_key,
)
from contracts.layout import (
    EDGE_SET_ENDPOINTS,
    EDGE_SETS,
    NODE_SETS,
    WEIGHTED_EDGE_SETS,
    SampleLayout,
)


def _varint_slow(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINTS = [_varint_slow(v) for v in range(1 << 14)]


def _varint(value: int) -> bytes:
    """Encodes a non-negative integer as a protobuf varint."""
    return _SMALL_VARINTS[value] if value < 16384 else _varint_slow(value)


def _delimited(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(payload)) + payload


def _entry(key: str, feature: bytes) -> bytes:
    """One entry of the `Features.feature` map: key -> Feature."""
    return _delimited(0x0A, _delimited(0x0A, key.encode()) + _delimited(0x12, feature))


def _int64_feature(values: Sequence[int]) -> bytes:
    # Feature.int64_list (field 3) -> Int64List.value (field 1, packed varints).
    return _delimited(0x1A, _delimited(0x0A, b"".join(_varint(v) for v in values)))


_MAX_CACHED_IDS = 1_000_000

# One run of nodes, encoded: (BytesList elements of the ids, mask bytes, packed weights).
EncodedSegment = tuple[bytes, bytes, bytes]


class _EncodedIds(dict):
    """id -> its encoded BytesList element (b"" for None), filled on first use."""

    def __init__(self):
        super().__init__()
        self.lookup = self.__getitem__

    def __missing__(self, node_id: str | None) -> bytes:
        encoded = _delimited(0x0A, b"" if node_id is None else node_id.encode("utf-8"))
        self[node_id] = encoded
        return encoded


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
            constant.append(_entry(node_key(node_set, SIZE_FEATURE), _int64_feature([size])))
        for edge_set in EDGE_SETS:
            sources, targets = layout.adjacency_indices(edge_set)
            for feature, values in (
                (SIZE_FEATURE, [len(sources)]),
                (SOURCE_FEATURE, sources),
                (TARGET_FEATURE, targets),
            ):
                constant.append(_entry(edge_key(edge_set, feature), _int64_feature(values)))
        self._constant = b"".join(constant)
        # Per-sample features, as (entry prefix up to the values) or key prefix.
        self._id_keys = {s: _delimited(0x0A, id_key(s).encode()) for s in NODE_SETS}
        # Masks and weights have a fixed length: everything but the values is constant.
        self._mask_prefix = {
            s: _fixed_prefix(mask_key(s), 0x1A, layout.node_set_sizes[s]) for s in NODE_SETS
        }
        self._weight_prefix = {
            e: _fixed_prefix(weight_key(e), 0x12, 4 * layout.edge_set_sizes[e])
            for e in WEIGHTED_EDGE_SETS
        }
        self._label_entries = [
            (
                _entry(label_key(t), _int64_feature([0])),
                _entry(label_key(t), _int64_feature([1])),
            )
            for t in self.tasks
        ]
        self._encoded_ids = _EncodedIds()

    def __reduce__(self):
        # Pickled (into Beam DoFns) as its arguments; tables and caches are rebuilt.
        return SampleEncoder, (self.layout, self.tasks)

    def encode_segment(
        self, ids: Sequence[str | None], weights: Sequence[float] | None = None
    ) -> EncodedSegment:
        """Encodes one run of nodes (and their edges' weights) for `encode_chunks`.

        Args:
          ids: Node ids, None for padding.
          weights: The weights of the edges of these nodes, if weighted.

        Returns:
          (BytesList elements of the ids, their mask as packed 0/1 varints,
          the weights as packed floats or b"").
        """
        if len(self._encoded_ids) > _MAX_CACHED_IDS:
            self._encoded_ids.clear()
        payload = b"".join(map(self._encoded_ids.lookup, ids))
        # ids are non-empty, so bool(id) is the mask; 0/1 varints are one byte each.
        mask = bytes(map(bool, ids))
        packed = b"" if weights is None else struct.pack(f"<{len(weights)}f", *weights)
        return payload, mask, packed

    def encode_chunks(
        self,
        segments: dict[str, Sequence[EncodedSegment]],
        weights: dict[str, Sequence[bytes]],
        labels: Sequence[int],
    ) -> bytes:
        """Returns the serialized tf.Example from encoded segments in layout order.

        Args:
          segments: Per node set, its encoded segments in layout order.
          weights: Per weighted edge set, its packed weights in layout order.
          labels: One 0/1 label per task.

        Returns:
          The serialized tf.Example.
        """
        parts = [self._constant]
        for node_set in NODE_SETS:
            chunks = segments[node_set]
            payload = b"".join([c[0] for c in chunks])  # BytesList.value elements
            feature_header = b"\x0a" + _varint(len(payload))  # Feature.bytes_list
            value_header = b"\x12" + _varint(len(feature_header) + len(payload))
            key = self._id_keys[node_set]
            size = len(key) + len(value_header) + len(feature_header) + len(payload)
            parts += (b"\x0a", _varint(size), key, value_header, feature_header, payload)
            parts.append(self._mask_prefix[node_set])
            parts += [c[1] for c in chunks]
        for edge_set in WEIGHTED_EDGE_SETS:
            parts.append(self._weight_prefix[edge_set])
            parts += weights[edge_set]
        for entries, label in zip(self._label_entries, labels, strict=True):
            parts.append(entries[label])
        body = b"".join(parts)
        return b"\x0a" + _varint(len(body)) + body  # Example.features

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
        segments = {s: [self.encode_segment(ids)] for s, ids in node_ids.items()}
        packed = {e: [self.encode_segment([], w)[2]] for e, w in weights.items()}
        return self.encode_chunks(segments, packed, labels)


def _fixed_prefix(key: str, list_tag: int, payload_size: int) -> bytes:
    """Bytes of a Features map entry up to its packed values, whose size is fixed.

    Args:
      key: The feature name.
      list_tag: 0x12 for a FloatList, 0x1A for an Int64List (one byte per 0/1).
      payload_size: Size of the packed values in bytes.
    """
    values = b"\x0a" + _varint(payload_size)  # XList.value, packed
    feature = bytes((list_tag,)) + _varint(len(values) + payload_size)
    value = b"\x12" + _varint(len(feature) + len(values) + payload_size)
    key_field = _delimited(0x0A, key.encode())
    entry_size = len(key_field) + len(value) + len(feature) + len(values) + payload_size
    return b"\x0a" + _varint(entry_size) + key_field + value + feature + values


def graph_schema_text(tasks: Sequence[str]) -> str:
    """Returns the samples' tfgnn.GraphSchema in protobuf text format.

    Written as text so that the Beam job needs no TensorFlow; `tfgnn.read_schema`
    reads it (tested against a schema built with TF-GNN). The schema is the same
    for every fan-out: `layout.json` holds the offsets.

    Args:
      tasks: Task names, one int64 context feature `label_<task>` each.
    """

    def features(named: list[tuple[str, str]], indent: str) -> str:
        return "".join(
            f'{indent}features {{\n{indent}  key: "{name}"\n'
            f"{indent}  value {{\n{indent}    dtype: {dtype}\n{indent}  }}\n{indent}}}\n"
            for name, dtype in named
        )

    text = "context {\n"
    text += features([(label_feature(t), "DT_INT64") for t in tasks], "  ")
    text += "}\n"
    for node_set in NODE_SETS:
        text += f'node_sets {{\n  key: "{node_set}"\n  value {{\n'
        text += features([(ID_FEATURE, "DT_STRING"), (MASK_FEATURE, "DT_INT64")], "    ")
        text += "  }\n}\n"
    for edge_set in EDGE_SETS:
        source, target = EDGE_SET_ENDPOINTS[edge_set]
        text += f'edge_sets {{\n  key: "{edge_set}"\n  value {{\n'
        if edge_set in WEIGHTED_EDGE_SETS:
            text += features([(WEIGHT_FEATURE, "DT_FLOAT")], "    ")
        text += f'    source: "{source}"\n    target: "{target}"\n  }}\n}}\n'
    return text
