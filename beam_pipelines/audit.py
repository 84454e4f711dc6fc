"""The tells audit: does a training sample look like a test sample?

A model learns whatever separates its training positives from its training
negatives. If some label-free statistic of the samples separates them in the
training split but not in the test split (a "tell", e.g. a positive that sees
one G neighbour fewer than its user's negatives because its own edge was
skipped), the model learns something false about test data and serving
requests. The audit measures, per split, the within-user GAUC of such
statistics against the first task's label: per user, the AUC of the statistic
(ties count one half), weighted by the user's number of samples, users with one
label class skipped, exactly like the model's GAUC. On leak-free samples each
statistic's train and test figures agree up to noise; 0.5 means the statistic
says nothing within a user.

The statistics are read back from the written tf.Examples (what the model
sees), with the item's degree in G joined from the graph:

  * ``<tree>_hop<h>_real``: real (unpadded) nodes of a tree's hop, for
    the trees G_u, G_i, U and I of the sample layout;
  * ``<tree>_empty``: 1 if the tree's hop 1 has no real node;
  * ``overlap_U_G_i``: users both among u's G^U hop-1 neighbours and among
    i's G hop-1 neighbours;
  * ``overlap_I_G_u``: items both among i's G^I hop-1 neighbours and among
    u's G hop-1 neighbours;
  * ``item_G_degree``: the item's degree in G (with ``--graph_split
    shared`` it counts a training positive's own edge, which its sample
    skips).

The preprocessing job writes the result to `stats.json` ("audit");
``python -m beam_pipelines.audit OUT`` prints it as a table and exits 1 when a
statistic's train and test figures differ by more than ``--max_gap``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from scipy.stats import rankdata

from beam_pipelines import stats
from beam_pipelines.records import SPLITS
from contracts.example_keys import id_key, label_feature, label_key, mask_key
from contracts.layout import ITEM, TREES, USER, SampleLayout

ITEM_DEGREE = "item_G_degree"


def statistic_names(layout: SampleLayout) -> tuple[str, ...]:
    """Returns the audited statistics' names, in table order."""
    names = [f"{s.channel}_hop{s.hop}_real" for s in layout.segments]
    names += [f"{t.name}_empty" for t in TREES]
    return (*names, "overlap_U_G_i", "overlap_I_G_u", ITEM_DEGREE)


class SampleStatistics:
    """Reads the label-free statistics of one serialized sample.

    Args:
      layout: The samples' layout.
      task: The task whose label the statistics are set against.
    """

    def __init__(self, layout: SampleLayout, task: str):
        self.layout = layout
        self.task = task
        self._hop1 = {s.channel: s for s in layout.segments if s.hop == 1}
        self._example = None

    def __reduce__(self):
        return SampleStatistics, (self.layout, self.task)

    def __call__(self, serialized: bytes) -> tuple[str, str, int, list[float]]:
        """Returns (user id, item id, label, statistics without the item degree)."""
        if self._example is None:  # TensorFlow's proto, imported where it is used
            from tensorflow.core.example import example_pb2

            self._example = example_pb2.Example
        feature = self._example.FromString(serialized).features.feature
        ids = {n: feature[id_key(n)].bytes_list.value for n in (USER, ITEM)}
        masks = {n: feature[mask_key(n)].int64_list.value for n in (USER, ITEM)}
        label = int(feature[label_key(self.task)].int64_list.value[0])

        def real(segment):
            end = segment.node_offset + segment.size
            return sum(masks[segment.node_set][segment.node_offset : end])

        def hop1_ids(tree):
            s = self._hop1[tree]
            window = ids[s.node_set][s.node_offset : s.node_offset + s.size]
            return {v for v in window if v}

        values = [float(real(s)) for s in self.layout.segments]
        values += [float(real(self._hop1[t.name]) == 0) for t in TREES]
        values.append(float(len(hop1_ids("U") & hop1_ids("G_i"))))
        values.append(float(len(hop1_ids("I") & hop1_ids("G_u"))))
        return ids[USER][0].decode(), ids[ITEM][0].decode(), label, values


def user_aucs(labels: Sequence[int], values: np.ndarray) -> np.ndarray | None:
    """Per statistic, the AUC of one user's samples (ties count one half).

    Args:
      labels: The user's 0/1 labels, [n].
      values: The user's statistics, [n, statistics].

    Returns:
      The AUC of every column, or None if the user has only one label class.
    """
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(values, axis=0)  # average ranks: ties count one half
    rank_sum = ranks[labels].sum(axis=0)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


class AuditSamples(beam.PTransform):
    """The within-user GAUC of every statistic, per split.

    Input: (split, [serialized samples]) batches, as the samplers emit them.
    Output: ("audit", {...}) statistics for `stats.json`: "task", "users"
    ({split: users with both classes}) and "gauc" ({statistic: {split: GAUC}}).

    Args:
      layout: The samples' layout.
      task: The task whose label the statistics are set against.
      edges: G's edges as (user, item), for the item degree.
    """

    def __init__(self, layout: SampleLayout, task: str, edges):
        super().__init__()
        self.layout = layout
        self.task = task
        self.edges = edges

    def expand(self, batches):
        read = SampleStatistics(self.layout, self.task)
        names = statistic_names(self.layout)

        def per_sample(batch):
            split, records = batch
            for record in records:
                user, item, label, values = read(record)
                yield item, (split, user, label, values)

        def with_degree(kv):
            _, grouped = kv
            degree = float(sum(grouped["degree"]))
            for split, user, label, values in grouped["samples"]:
                yield (split, user), (label, [*values, degree])

        def per_user(kv):
            (split, _), rows = kv
            rows = list(rows)
            aucs = user_aucs([r[0] for r in rows], np.array([r[1] for r in rows]))
            if aucs is None:
                return
            yield (split, "_users"), (1.0, 1.0)
            for name, auc in zip(names, aucs, strict=True):
                yield (split, name), (float(auc) * len(rows), float(len(rows)))

        def to_stat(kv):
            (split, name), (weighted, weight) = kv
            if name == "_users":
                return "audit", {"users": {split: int(weighted)}}
            return "audit", {"gauc": {name: {split: round(weighted / weight, 4)}}}

        degree = (
            self.edges
            | "ItemOfEdge" >> beam.Map(lambda e: (e[1], 1))
            | "ItemDegree" >> beam.CombinePerKey(sum)
        )
        samples = batches | "Statistics" >> beam.FlatMap(per_sample)
        parts = (
            {"samples": samples, "degree": degree}
            | "JoinDegree" >> beam.CoGroupByKey()
            | "WithDegree" >> beam.FlatMap(with_degree)
            | "ByUser" >> beam.GroupByKey()
            | "UserAUC" >> beam.FlatMap(per_user)
            | "SumPerStatistic" >> beam.CombinePerKey(stats.sum_columns)
            | "ToStat" >> beam.Map(to_stat)
        )
        task = parts.pipeline | "Task" >> beam.Create([("audit", {"task": self.task})])
        return (parts, task) | "AuditStats" >> beam.Flatten()


def table(audit: dict, max_gap: float, layout: SampleLayout) -> tuple[str, list[str]]:
    """Formats an audit as a text table.

    Args:
      audit: The "audit" entry of `stats.json`.
      max_gap: The largest |train - test| accepted.
      layout: The samples' layout (orders the statistics).

    Returns:
      The table, and the statistics whose train and test figures differ by
      more than `max_gap` or were not measured on one of them.
    """
    users = audit.get("users", {})
    lines = [
        "within-user GAUC of label-free sample statistics against " + label_feature(audit["task"]),
        "users with both classes: " + ", ".join(f"{s} {users.get(s, 0)}" for s in SPLITS),
        f"{'statistic':<18}" + "".join(f"{s:>8}" for s in SPLITS) + f"{'|train-test|':>14}",
    ]
    failed = []
    for name in statistic_names(layout):
        by_split = audit["gauc"].get(name, {})
        cells = [by_split.get(s) for s in SPLITS]
        row = f"{name:<18}" + "".join(f"{'-':>8}" if v is None else f"{v:>8.3f}" for v in cells)
        train, test = by_split.get("train"), by_split.get("test")
        if train is None or test is None:  # no user with both classes in the split
            lines.append(row + f"{'-':>14}  <- not measured")
            failed.append(name)
            continue
        gap = abs(train - test)
        flag = "  <- tell" if gap > max_gap else ""
        lines.append(row + f"{gap:>14.3f}{flag}")
        if gap > max_gap:
            failed.append(name)
    return "\n".join(lines), failed


def main(argv: list[str] | None = None) -> int:
    """Prints the audit of a preprocessing output; returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m beam_pipelines.audit",
        description="Print the tells audit of a preprocessing output (its stats.json): "
        "per split, the within-user GAUC of label-free sample statistics.",
    )
    p.add_argument("output", help="The --output directory of python -m beam_pipelines.run.")
    p.add_argument(
        "--max_gap",
        type=float,
        default=0.02,
        help="Exit 1 if a statistic's train and test GAUC differ by more (default 0.02).",
    )
    args = p.parse_args(argv)
    path = FileSystems.join(args.output, "stats.json")
    try:
        with FileSystems.open(path) as f:
            summary = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        print(f"error: cannot read {path}: {e}", file=sys.stderr)
        return 2
    if "audit" not in summary:
        print(
            f"error: {path} has no audit; it was written by an older version of "
            "python -m beam_pipelines.run: rerun it",
            file=sys.stderr,
        )
        return 2
    layout = SampleLayout(summary["config"]["fanouts"])
    text, failed = table(summary["audit"], args.max_gap, layout)
    print(text)
    if failed:
        print(
            f"{len(failed)} statistic(s) differ between train and test by more than "
            f"{args.max_gap} or were not measured: {', '.join(failed)}"
        )
        return 1
    print(f"train and test agree within {args.max_gap} on every statistic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
