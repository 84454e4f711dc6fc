"""Tests of the fixed sample layout."""

import pytest

from contracts.layout import EDGE_SET_ENDPOINTS, SampleLayout


def test_default_layout_matches_the_documented_offsets():
    layout = SampleLayout([10, 5])
    assert layout.node_set_sizes == {"user": 121, "item": 121}
    assert layout.edge_set_sizes == dict.fromkeys(EDGE_SET_ENDPOINTS, 60)
    offsets = {(s.channel, s.hop): (s.node_set, s.node_offset, s.size) for s in layout.segments}
    assert offsets == {
        ("G_u", 1): ("item", 1, 10),
        ("G_u", 2): ("user", 1, 50),
        ("G_i", 1): ("user", 51, 10),
        ("G_i", 2): ("item", 11, 50),
        ("U", 1): ("user", 61, 10),
        ("U", 2): ("user", 71, 50),
        ("I", 1): ("item", 61, 10),
        ("I", 2): ("item", 71, 50),
    }


@pytest.mark.parametrize("fanouts", [[3], [10, 5], [3, 2, 2]])
def test_every_edge_points_from_a_child_to_its_parent(fanouts):
    layout = SampleLayout(fanouts)
    for edge_set, (source_set, target_set) in EDGE_SET_ENDPOINTS.items():
        sources, targets = layout.adjacency_indices(edge_set)
        assert len(sources) == layout.edge_set_sizes[edge_set]
        assert max(sources, default=0) < layout.node_set_sizes[source_set]
        assert max(targets, default=0) < layout.node_set_sizes[target_set]
    for segment in layout.segments:
        sources, targets = layout.adjacency_indices(segment.edge_set)
        start = segment.edge_offset
        for slot in range(segment.size):
            assert sources[start + slot] == segment.node_offset + slot
            assert targets[start + slot] == segment.parent_offset + slot // segment.fanout


def test_node_segments_tile_each_node_set_without_overlap():
    layout = SampleLayout([4, 3, 2])
    for node_set, size in layout.node_set_sizes.items():
        covered = [0]  # the root
        for s in layout.segments:
            if s.node_set == node_set:
                covered.extend(range(s.node_offset, s.node_offset + s.size))
        assert sorted(covered) == list(range(size))


def test_json_round_trip_and_bad_fanouts():
    layout = SampleLayout([6, 2])
    assert SampleLayout.from_json(layout.to_json()).segments == layout.segments
    with pytest.raises(ValueError, match="fan-outs"):
        SampleLayout([])
    with pytest.raises(ValueError, match="fan-outs"):
        SampleLayout([3, 0])
