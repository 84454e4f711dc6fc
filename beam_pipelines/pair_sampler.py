"""The pair sampler: one fixed-layout GraphTensor sample per labelled pair.

Sampling: for a pair (u, i) the sample holds L hops over G from u and from i,
L hops over G^U from u and L hops over G^I from i, with a fan-out per hop (see
:mod:`contracts.layout` for the layout, and docs/sample-contract.md,
"How neighbours are chosen", for the contract).

How neighbours are chosen. Each node's neighbours in each adjacency are put in
one seeded order, computed once per node by :class:`RankNeighbors`:

  * on G, a uniformly random order (the order of a seeded 64-bit hash of
    (seed, adjacency, node, neighbour), i.e. bottom-k sampling);
  * on G^U and G^I, the most similar first (ties broken by the same hash).

Expanding a node at a hop takes the first `fanout` of that order. Only the
first max(fanouts) + 1 neighbours are kept per node, so the ranking is a
bounded-memory Beam combiner however hot the node. The pair's own edge is
never in its own sample: expanding u over G skips i and expanding i skips u
(that is why one extra neighbour is kept). The sample is therefore a pure
function of (seed, graphs, pair): the same seed gives the same samples on any
runner, and both strategies below give byte-identical records. A node's
neighbourhood is the same in every sample it appears in, which also lets the
serving export compute each node's representation once, as training saw it.

Two strategies, one flag (`--sampler`):

  * ``memory``: the ranked neighbour lists of all nodes are one side input and
    each pair is expanded with dictionary look-ups; for graphs that fit in a
    worker's memory.
  * ``join``: each node's L-hop neighbourhood is assembled with CoGroupByKey
    joins, hop by hop, and the pairs are joined with their user's and their
    item's neighbourhoods; no worker ever holds the whole graph (Dataflow).

With a `mix_seed`, `SamplePairs` emits the samples in a seeded random order
(:mod:`beam_pipelines.mixing`): the memory strategy mixes the pairs before
sampling, the join strategy the samples after its last join.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import apache_beam as beam

from beam_pipelines.hashing import hash64
from beam_pipelines.mixing import MixOrder
from beam_pipelines.progress import Progress
from beam_pipelines.records import Interaction
from beam_pipelines.sample_encoder import EncodedSegment, SampleEncoder
from contracts.layout import ITEM, IU, TREES, UI, USER, WEIGHTED_EDGE_SETS, SampleLayout, Tree

MEMORY = "memory"
JOIN = "join"
SAMPLERS = (MEMORY, JOIN)  # the choices of `--sampler`

# A node's ranked neighbours: (ids, weights), most preferred first.
Neighbors = tuple[tuple[str, ...], tuple[float, ...]]
# Look-up of a node's ranked neighbours in one adjacency (None: no neighbours).
Lookup = Callable[[tuple[str, str]], "Neighbors | None"]
# Per tree, per hop: (ids with None for padding, weights).
TreePart = list[tuple[list, list]]

_MAX_CACHED_PARTS = 200_000  # about 0.3 GB; cleared whole when full
_USER_TREES = tuple(t for t in TREES if t.root == USER)
_ITEM_TREES = tuple(t for t in TREES if t.root == ITEM)


class AdjacencyEdge(NamedTuple):
    """A directed edge of one adjacency, as input to :class:`RankNeighbors`."""

    adjacency: str
    node: str
    neighbor: str
    weight: float


class RankNeighbors(beam.PTransform):
    """Ranks each node's neighbours per adjacency and keeps the first `keep`.

    Input: AdjacencyEdge records. Output: ((adjacency, node), Neighbors).

    Args:
      seed: The sampling seed.
      keep: How many neighbours to keep per node (max fan-out + 1).
    """

    def __init__(self, seed: int, keep: int):
        super().__init__()
        self.seed = seed
        self.keep = keep

    def expand(self, edges):
        seed = self.seed

        def keyed(e: AdjacencyEdge):
            order = hash64(seed, e.adjacency, e.node, e.neighbor)
            return (e.adjacency, e.node), (-e.weight, order, e.neighbor, e.weight)

        def unzip(kv):
            key, ranked = kv
            return key, (tuple(r[2] for r in ranked), tuple(r[3] for r in ranked))

        return (
            edges
            | "Key" >> beam.Map(keyed)
            | "KeepFirst" >> beam.combiners.Top.SmallestPerKey(self.keep)
            | "Unzip" >> beam.Map(unzip)
        )


class PairSampler:
    """Expands pairs into tree parts and encodes them; shared by both strategies.

    Args:
      layout: The sample layout.
      tasks: Task names.
    """

    def __init__(self, layout: SampleLayout, tasks: Sequence[str]):
        self.layout = layout
        self.encoder = SampleEncoder(layout, tasks)
        # Per tree, per hop: (fan-out, adjacency the hop expands over).
        self._hops = {
            t.name: [(s.fanout, t.adjacency(s.hop)) for s in layout.tree_segments(t.name)]
            for t in TREES
        }
        self._cache: dict[tuple[str, str], TreePart] = {}

    def __reduce__(self):
        # Pickled (into Beam DoFns) as its arguments, without its cache.
        return PairSampler, (self.layout, self.encoder.tasks)

    def clear_cache(self) -> None:
        """Forgets the cached trees (when their roots will not come back)."""
        self._cache.clear()

    def tree_part(self, tree: Tree, user: str, item: str, lookup: Lookup) -> list[EncodedSegment]:
        """Samples one tree of the pair (user, item), encoded.

        A root's tree is the same in every pair unless the pair's own edge
        would be in it, so it is sampled and encoded once per root and cached.

        Args:
          tree: The tree.
          user: The pair's user id.
          item: The pair's item id.
          lookup: Ranked neighbours by (adjacency, node).

        Returns:
          Per hop, the encoded segment (see SampleEncoder.encode_segment).
        """
        root = user if tree.root == USER else item
        key = (tree.name, root)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= _MAX_CACHED_PARTS:
                self._cache.clear()
            part = self._expand(tree, root, lookup, None, None)
            cached = self._cache[key] = (part, self._encode_part(tree, part))
        part, encoded = cached
        if tree.bipartite and self._holds_edge(tree, root, part, user, item):
            encoded = self._encode_part(tree, self._expand(tree, root, lookup, user, item))
        return encoded

    def _encode_part(self, tree: Tree, part: TreePart) -> list[EncodedSegment]:
        return [
            self.encoder.encode_segment(ids, None if tree.bipartite else weights)
            for ids, weights in part
        ]

    def _holds_edge(self, tree: Tree, root: str, part: TreePart, user: str, item: str):
        """Whether a sampled tree holds the edge (user, item)."""
        parents: list = [root]
        for (f, adjacency), (ids, _) in zip(self._hops[tree.name], part, strict=True):
            if adjacency == UI:
                parent, child = user, item
            elif adjacency == IU:
                parent, child = item, user
            else:
                return False
            if parent in parents:
                for k, p in enumerate(parents):
                    if p == parent and child in ids[k * f : (k + 1) * f]:
                        return True
            parents = ids
        return False

    def _expand(
        self, tree: Tree, root: str, lookup: Lookup, user: str | None, item: str | None
    ) -> TreePart:
        """Expands a tree hop by hop; skips the edge (user, item) if given."""
        parents: list = [root]
        part = []
        for fanout, adjacency in self._hops[tree.name]:
            ids: list = []
            weights: list = []
            for parent in parents:
                found = None if parent is None else lookup((adjacency, parent))
                if found is None:
                    ids.extend([None] * fanout)
                    weights.extend([0.0] * fanout)
                    continue
                nbr_ids, nbr_weights = found
                # The pair's own edge is never in its own sample.
                if adjacency == UI and parent == user and item in nbr_ids:
                    drop = nbr_ids.index(item)
                elif adjacency == IU and parent == item and user in nbr_ids:
                    drop = nbr_ids.index(user)
                else:
                    drop = -1
                if drop >= 0:
                    nbr_ids = nbr_ids[:drop] + nbr_ids[drop + 1 :]
                    nbr_weights = nbr_weights[:drop] + nbr_weights[drop + 1 :]
                taken = min(fanout, len(nbr_ids))
                ids.extend(nbr_ids[:taken])
                weights.extend(nbr_weights[:taken])
                if taken < fanout:
                    ids.extend([None] * (fanout - taken))
                    weights.extend([0.0] * (fanout - taken))
            part.append((ids, weights))
            parents = ids
        return part

    def parts(
        self, trees: Iterable[Tree], user: str, item: str, lookup: Lookup
    ) -> dict[str, list[EncodedSegment]]:
        """Samples several trees of a pair; see `tree_part`."""
        return {t.name: self.tree_part(t, user, item, lookup) for t in trees}

    def encode(self, pair: Interaction, parts: dict[str, list[EncodedSegment]]) -> bytes:
        """Assembles the encoded trees in layout order and serializes the sample."""
        encoder = self.encoder
        segments = {
            USER: [encoder.encode_segment([pair.user_id])],
            ITEM: [encoder.encode_segment([pair.item_id])],
        }
        weights: dict[str, list[bytes]] = {e: [] for e in WEIGHTED_EDGE_SETS}
        for segment in self.layout.segments:
            encoded = parts[segment.channel][segment.hop - 1]
            segments[segment.node_set].append(encoded)
            if segment.edge_set in weights:
                weights[segment.edge_set].append(encoded[2])
        return encoder.encode_chunks(segments, weights, pair.labels)


def _by_split(samples) -> list[tuple[str, list[bytes]]]:
    """Groups (split, record) pairs into one (split, [records]) per split."""
    grouped: dict[str, list[bytes]] = {}
    for split, record in samples:
        grouped.setdefault(split, []).append(record)
    return sorted(grouped.items())


class _SampleWithSideInput(beam.DoFn):
    def __init__(self, sampler: PairSampler):
        self.sampler = sampler

    def setup(self):
        self.progress = Progress("pair samples (memory)")

    def process(self, batch, neighbors: dict):
        sampler, lookup = self.sampler, neighbors.get
        samples = []
        for split, pair in batch:
            parts = sampler.parts(TREES, pair.user_id, pair.item_id, lookup)
            samples.append((split, sampler.encode(pair, parts)))
        self.progress.step(len(samples))
        yield from _by_split(samples)


class _Strategy(beam.PTransform):
    """A sampling strategy: pairs in, (split, [serialized samples]) batches out.

    Args:
      sampler: The PairSampler.
      neighbors: PCollection of ((adjacency, node), Neighbors) from RankNeighbors.
      mix_seed: If not None, the samples come out in this seed's random order
        (`beam_pipelines.mixing.MixOrder`); else in the runner's order.
    """

    def __init__(self, sampler: PairSampler, neighbors, mix_seed: int | None = None):
        super().__init__()
        self.sampler = sampler
        self.neighbors = neighbors
        self.mix_seed = mix_seed


class SamplePairsInMemory(_Strategy):
    """The in-memory strategy: ranked neighbour lists as one side input.

    It samples the pairs in the order they arrive, so it mixes the pairs.
    """

    def expand(self, pairs):
        table = self.neighbors | "ToDict" >> beam.combiners.ToDict()
        if self.mix_seed is not None:
            pairs = pairs | "MixOrder" >> MixOrder(self.mix_seed)
        return (
            pairs
            | "Batch" >> beam.BatchElements(min_batch_size=256, max_batch_size=2048)
            | "Sample"
            >> beam.ParDo(_SampleWithSideInput(self.sampler), beam.pvalue.AsSingleton(table))
        )


def _closure_adjacencies(tree: Tree, num_hops: int) -> list[str]:
    return [tree.adjacency(hop) for hop in range(1, num_hops + 1)]


class _Neighborhoods(beam.PTransform):
    """Per root node of a tree, every ranked list its L-hop expansion reads.

    Output: (root, {(adjacency, node): Neighbors}). Built bottom-up with one
    CoGroupByKey per hop, so each step only holds one node's requesters.
    """

    def __init__(self, tree: Tree, num_hops: int, by_adjacency: dict):
        super().__init__()
        self.adjacencies = _closure_adjacencies(tree, num_hops)
        self.by_adjacency = by_adjacency

    def expand(self, pipeline_or_pcoll):
        adjacencies = self.adjacencies
        last = adjacencies[-1]
        closure = self.by_adjacency[last] | f"Hop{len(adjacencies)}" >> beam.Map(
            lambda kv, a=last: (kv[0], {(a, kv[0]): kv[1]})
        )
        for depth in range(len(adjacencies) - 1, 0, -1):
            adjacency = adjacencies[depth - 1]
            ranked = self.by_adjacency[adjacency]
            requests = ranked | f"Request{depth}" >> beam.FlatMap(
                lambda kv: [(child, kv[0]) for child in kv[1][0]]
            )
            answers = (
                {"requests": requests, "closure": closure}
                | f"JoinChildren{depth}" >> beam.CoGroupByKey()
                | f"Answer{depth}" >> beam.FlatMap(_answer_requests)
            )
            closure = (
                {"self": ranked, "children": answers}
                | f"JoinParent{depth}" >> beam.CoGroupByKey()
                | f"Merge{depth}" >> beam.Map(_merge_closure, adjacency)
            )
        return closure


def _answer_requests(kv):
    child, grouped = kv
    closures = list(grouped["closure"])
    found = closures[0] if closures else {}
    for requester in grouped["requests"]:
        yield requester, found


def _merge_closure(kv, adjacency):
    node, grouped = kv
    merged = {}
    for own in grouped["self"]:
        merged[(adjacency, node)] = own
    for child_closure in grouped["children"]:
        merged.update(child_closure)
    return node, merged


class _SampleRootTrees(beam.DoFn):
    """Joins pairs with their root's neighbourhoods and samples that root's trees.

    Yields (item, (split, pair, parts)) for the item join, or, when `final`,
    (split, pair, serialized sample).
    """

    def __init__(self, sampler: PairSampler, trees: tuple, final: bool):
        self.sampler = sampler
        self.trees = trees
        self.final = final

    def setup(self):
        self.progress = Progress("pair samples (join)") if self.final else None

    def process(self, kv):
        _, grouped = kv
        lookup_table = {}
        for tree in self.trees:
            for closure in grouped[tree.name]:
                lookup_table.update(closure)
        n = 0
        for split, pair, parts in grouped["pairs"]:
            parts = dict(parts)
            parts.update(
                self.sampler.parts(self.trees, pair.user_id, pair.item_id, lookup_table.get)
            )
            if self.final:
                n += 1
                yield split, pair, self.sampler.encode(pair, parts)
            else:
                yield pair.item_id, (split, pair, parts)
        # Pairs arrive grouped by this root: its trees are not needed again.
        self.sampler.clear_cache()
        if n:
            self.progress.step(n)


class SamplePairsByJoin(_Strategy):
    """The join strategy: neighbourhoods joined to pairs, no whole-graph state.

    Its joins regroup the pairs by user, then by item, so it mixes the samples
    after the last join.
    """

    def expand(self, pairs):
        num_hops = self.sampler.layout.num_hops
        needed = {a for t in TREES for a in _closure_adjacencies(t, num_hops)}
        by_adjacency = {
            a: self.neighbors
            | f"Select_{a}" >> beam.Filter(lambda kv, a=a: kv[0][0] == a)
            | f"ByNode_{a}" >> beam.Map(lambda kv: (kv[0][1], kv[1]))
            for a in sorted(needed)
        }
        closures = {
            t.name: self.neighbors.pipeline
            | f"Neighborhoods_{t.name}" >> _Neighborhoods(t, num_hops, by_adjacency)
            for t in TREES
        }
        by_user = pairs | "ByUser" >> beam.Map(lambda sp: (sp[1].user_id, (sp[0], sp[1], {})))
        user_side = (
            {"pairs": by_user, **{t.name: closures[t.name] for t in _USER_TREES}}
            | "JoinUser" >> beam.CoGroupByKey()
            | "SampleUserTrees"
            >> beam.ParDo(_SampleRootTrees(self.sampler, _USER_TREES, final=False))
        )
        samples = (
            {"pairs": user_side, **{t.name: closures[t.name] for t in _ITEM_TREES}}
            | "JoinItem" >> beam.CoGroupByKey()
            | "SampleItemTrees"
            >> beam.ParDo(_SampleRootTrees(self.sampler, _ITEM_TREES, final=True))
        )
        if self.mix_seed is not None:
            samples = samples | "MixOrder" >> MixOrder(self.mix_seed)
        return (
            samples
            | "Batch" >> beam.BatchElements(min_batch_size=256, max_batch_size=2048)
            | "BySplit" >> beam.FlatMap(lambda batch: _by_split((s, r) for s, _, r in batch))
        )


class SamplePairs(beam.PTransform):
    """Samples every labelled pair with the chosen strategy.

    Input: (split, Interaction). Output: (split, [serialized tf.Examples]) batches.

    Args:
      neighbors: PCollection of ((adjacency, node), Neighbors) from RankNeighbors.
      layout: The sample layout.
      tasks: Task names.
      strategy: "memory" or "join".
      mix_seed: If not None, the samples of a split come out in this seed's
        random order, the same with either strategy within each bucket of
        `beam_pipelines.mixing`; None keeps the runner's order (for jobs
        whose output order does not matter).

    Raises:
      ValueError: For an unknown strategy.
    """

    def __init__(
        self,
        neighbors,
        layout: SampleLayout,
        tasks: Sequence[str],
        strategy: str,
        mix_seed: int | None = None,
    ):
        super().__init__()
        if strategy not in SAMPLERS:
            raise ValueError(f"unknown sampler {strategy!r}; choose one of {SAMPLERS}")
        self.neighbors = neighbors
        self.sampler = PairSampler(layout, tasks)
        self.strategy = strategy
        self.mix_seed = mix_seed

    def expand(self, pairs):
        if self.strategy == MEMORY:
            strategy = SamplePairsInMemory(self.sampler, self.neighbors, self.mix_seed)
            return pairs | "InMemory" >> strategy
        return pairs | "ByJoin" >> SamplePairsByJoin(self.sampler, self.neighbors, self.mix_seed)
