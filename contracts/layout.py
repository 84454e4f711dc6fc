"""The fixed layout of a pair's GraphTensor sample (docs/sample-contract.md, "Fixed layout").

A sample holds four sampled neighbourhoods, its trees, over the graphs the
paper's MGNN reads (the model's channels G, G^U and G^I; G gives two trees):

  * ``G_u``: L hops over the bipartite graph G from the pair's user,
  * ``G_i``: L hops over G from the pair's item,
  * ``U``: L hops over the user-user similarity graph G^U from the user,
  * ``I``: L hops over the item-item similarity graph G^I from the item.

Each tree has a fixed fan-out per hop and is written as the root, then
the hop-1 neighbours in sampling order, then each hop-1 node's hop-2
neighbours, and so on, padded to the full fan-out (``mask`` = 0 on padding
nodes, ``#id`` = b""). The user root is node 0 of node set ``user`` and the
item root node 0 of ``item``; both are shared by the trees that start from
them. After the root, a node set holds the segments of its type in tree
order (G_u, G_i, U, I) and, within a tree, in hop order. Every tree edge
points from the child (``#source``) to the node it was sampled for
(``#target``), so messages flow towards the roots; an edge is real iff its
source node is. With fan-outs [10, 5] the layout is

  user: [u | G_u hop 2 (50) | G_i hop 1 (10) | U hop 1 (10) | U hop 2 (50)] = 121
  item: [i | G_u hop 1 (10) | G_i hop 2 (50) | I hop 1 (10) | I hop 2 (50)] = 121

The layout depends only on the fan-outs, so a model can read a batch of
samples as dense [B, ...] tensors by slicing at the offsets given here, with no
search through edge lists. The features' names and the tf.Example keys are in
`contracts.example_keys`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import NamedTuple

USER = "user"
ITEM = "item"
NODE_SETS = (USER, ITEM)
USER_ITEM = "user_item"
ITEM_USER = "item_user"
USER_USER = "user_user"
ITEM_ITEM = "item_item"
EDGE_SETS = (USER_ITEM, ITEM_USER, USER_USER, ITEM_ITEM)
WEIGHTED_EDGE_SETS = (USER_USER, ITEM_ITEM)

# Adjacency names used by the sampler: which graph a hop expands over.
UI = "ui"  # user -> items of G
IU = "iu"  # item -> users of G
UU = "uu"  # user -> similar users (G^U)
II = "ii"  # item -> similar items (G^I)

_OTHER = {USER: ITEM, ITEM: USER}
# Edge set -> (source node set, target node set); sources are the children.
EDGE_SET_ENDPOINTS = {
    USER_ITEM: (USER, ITEM),
    ITEM_USER: (ITEM, USER),
    USER_USER: (USER, USER),
    ITEM_ITEM: (ITEM, ITEM),
}
_EDGE_SET = {ends: edge_set for edge_set, ends in EDGE_SET_ENDPOINTS.items()}
_ADJACENCY = {(USER, ITEM): UI, (ITEM, USER): IU, (USER, USER): UU, (ITEM, ITEM): II}


class Tree(NamedTuple):
    """One sampled neighbourhood of a pair: a tree from one of its roots.

    Attributes:
      name: "G_u", "G_i", "U" or "I".
      root: The node set of the root ("user" or "item").
      bipartite: Whether hops alternate between users and items (graph G).
    """

    name: str
    root: str
    bipartite: bool

    def node_set(self, hop: int) -> str:
        """Returns the node set of the nodes reached at `hop` (0 = root)."""
        if self.bipartite and hop % 2 == 1:
            return _OTHER[self.root]
        return self.root

    def adjacency(self, hop: int) -> str:
        """Returns the adjacency that expands nodes of `hop - 1` into `hop`."""
        return _ADJACENCY[(self.node_set(hop - 1), self.node_set(hop))]


TREES = (
    Tree("G_u", USER, True),
    Tree("G_i", ITEM, True),
    Tree("U", USER, False),
    Tree("I", ITEM, False),
)


class Segment(NamedTuple):
    """The nodes one tree reaches at one hop, and their edges to parents.

    Attributes:
      channel: The tree's name (the field name `layout.json` records).
      hop: 1..L.
      node_set: Node set of the segment's nodes.
      node_offset: Index of the segment's first node in its node set.
      size: Number of nodes (the product of the fan-outs up to `hop`).
      fanout: Children per parent at this hop.
      parent_set: Node set of the parents.
      parent_offset: Index of the parent segment's first node (0 for roots).
      edge_set: Edge set holding the child -> parent edges.
      edge_offset: Index of the segment's first edge in its edge set.
    """

    channel: str
    hop: int
    node_set: str
    node_offset: int
    size: int
    fanout: int
    parent_set: str
    parent_offset: int
    edge_set: str
    edge_offset: int


class SampleLayout:
    """Offsets and constant adjacency of samples with the given fan-outs.

    Args:
      fanouts: Neighbours sampled per node at each hop, e.g. (10, 5).

    Raises:
      ValueError: If there are no fan-outs or one is below 1.
    """

    def __init__(self, fanouts: Sequence[int]):
        fanouts = tuple(int(f) for f in fanouts)
        if not fanouts or min(fanouts) < 1:
            raise ValueError(f"fan-outs must be one or more positive integers, got {fanouts}")
        self.fanouts = fanouts
        self.num_hops = len(fanouts)
        node_sizes = dict.fromkeys(NODE_SETS, 1)  # the roots
        edge_sizes = dict.fromkeys(EDGE_SETS, 0)
        segments = []
        for tree in TREES:
            parent_offset = 0
            for hop in range(1, self.num_hops + 1):
                node_set = tree.node_set(hop)
                parent_set = tree.node_set(hop - 1)
                edge_set = _EDGE_SET[(node_set, parent_set)]
                size = math.prod(fanouts[:hop])
                segment = Segment(
                    channel=tree.name,
                    hop=hop,
                    node_set=node_set,
                    node_offset=node_sizes[node_set],
                    size=size,
                    fanout=fanouts[hop - 1],
                    parent_set=parent_set,
                    parent_offset=parent_offset,
                    edge_set=edge_set,
                    edge_offset=edge_sizes[edge_set],
                )
                segments.append(segment)
                node_sizes[node_set] += size
                edge_sizes[edge_set] += size
                parent_offset = segment.node_offset
        self.segments: tuple[Segment, ...] = tuple(segments)
        self.node_set_sizes: dict[str, int] = node_sizes
        self.edge_set_sizes: dict[str, int] = edge_sizes

    def tree_segments(self, tree: str) -> tuple[Segment, ...]:
        """Returns the segments of one tree, hop 1 first."""
        return tuple(s for s in self.segments if s.channel == tree)

    def adjacency_indices(self, edge_set: str) -> tuple[list[int], list[int]]:
        """Returns the constant (source, target) node indices of an edge set."""
        sources, targets = [], []
        for s in self.segments:
            if s.edge_set != edge_set:
                continue
            for slot in range(s.size):
                sources.append(s.node_offset + slot)
                targets.append(s.parent_offset + slot // s.fanout)
        return sources, targets

    def to_json(self) -> str:
        """Returns the layout as JSON, written to `OUT/layout.json`."""
        return json.dumps(
            {
                "fanouts": list(self.fanouts),
                "channels": [t.name for t in TREES],
                "node_set_sizes": self.node_set_sizes,
                "edge_set_sizes": self.edge_set_sizes,
                "segments": [s._asdict() for s in self.segments],
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> SampleLayout:
        """Rebuilds a layout from `to_json` output."""
        return cls(json.loads(text)["fanouts"])
