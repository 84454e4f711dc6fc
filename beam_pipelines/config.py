"""Every setting of the preprocessing job, with its default, in one place.

`InputConfig` says where the raw logs are and how to read them;
`PreprocessConfig` says what the job makes of them (output, user sample,
sampled negatives, split, graphs, neighbour sampling). Each field is a flag of
`python -m beam_pipelines.run` of the same name (`beam_pipelines.dataclass_flags`,
as for `model.config`), with the field's description as its help, and each
`__post_init__` checks the values, so a bad setting fails at once with one
line, from the command line or from code. A run writes both, resolved, to
`OUT/preprocess_config.json` (`to_json`; `from_json` reads them back).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass, field

from beam_pipelines import dataclass_flags
from beam_pipelines.dataclass_flags import check_choice
from beam_pipelines.negative_sampler import DISTRIBUTIONS, UNIFORM
from beam_pipelines.pair_sampler import MEMORY, SAMPLERS
from beam_pipelines.similarity import COSINE, MEASURES

FORMATS = ("canonical", "tmall", "aliccp", "behaviors")
# How rows are split into train / valid / test (`beam_pipelines.split.AssignSplits`).
AUTO = "auto"
TIME = "time"
RANDOM = "random"
SPLIT_MODES = (AUTO, TIME, RANDOM)
# How the training rows are divided into graph rows and supervising rows
# (`beam_pipelines.split.SplitGraphRows`).
SHARED = "shared"
GRAPH_SPLIT_MODES = (RANDOM, TIME, SHARED)
# Which graph rows become G's edges (`beam_pipelines.graphs.BuildGraphs`).
POSITIVE = "positive"
ANY = "any"
GRAPH_EDGES = (POSITIVE, ANY)

# The resolved InputConfig and PreprocessConfig of a run, in its output directory.
CONFIG_FILE = "preprocess_config.json"


def parse_names(text: str) -> tuple[str, ...]:
    """Reads a comma-separated list of names ("a, b" is ("a", "b"))."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def parse_fanouts(text: str) -> tuple[int, ...]:
    """Reads --fanouts ("10,5"); argparse shows its errors against the flag."""
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"fan-outs must be integers like 10,5, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"fan-outs must be positive, got {text!r}")
    return values


@dataclass(frozen=True)
class InputConfig:
    """Where the raw logs are and how to read them.

    Attributes:
      input: File, glob or directory of the raw logs.
      format: Raw format.
      tasks: Comma-separated task names (default: click,conversion; tmall:
        favorite,purchase; behaviors: the --behavior_files task names, which
        --tasks may only repeat in order).
      user_col: Canonical: user id column.
      item_col: Canonical: item id column.
      label_cols: Canonical: label columns, one per task (default: the task
        names).
      time_col: Canonical: timestamp column; 'auto' uses 'timestamp' if
        present, '' means none.
      nested_tasks: Task k can be 1 only where task k-1 is 1 (no conversion
        without click); rows breaking it are rejected. Default: on for
        aliccp, off otherwise.
      numeric_features: Canonical CSV side-table columns to read as numbers
        (others are categorical).
      user_features: Canonical: user side table path (otherwise a directory
        --input is searched for it by name).
      item_features: Canonical: item side table path, likewise.
      behavior_files: Behaviors: the files of each task in the --input
        directory, as comma-separated task=file[+file...], e.g.
        favorite=collect.txt,purchase=buy.txt+validation.txt+test.txt
        (Tmall); each file holds 'user item' lines. The tasks are taken in
        this order.
    """

    input: str
    format: str = field(default="canonical", metadata={"choices": FORMATS})
    tasks: tuple[str, ...] = field(default=(), metadata={"type": parse_names})
    user_col: str = "user_id"
    item_col: str = "item_id"
    label_cols: tuple[str, ...] = field(default=(), metadata={"type": parse_names})
    time_col: str = "auto"
    nested_tasks: bool | None = None
    numeric_features: tuple[str, ...] = field(default=(), metadata={"type": parse_names})
    user_features: str = ""
    item_features: str = ""
    behavior_files: str = ""

    def __post_init__(self):
        check_choice("format", self.format, FORMATS)
        for name in ("tasks", "label_cols", "numeric_features"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.nested_tasks is None:  # resolved, so that the saved config says what ran
            object.__setattr__(self, "nested_tasks", self.format == "aliccp")


@dataclass(frozen=True)
class PreprocessConfig:
    """What the job makes of the input, in the order the job does it.

    Attributes:
      output: Output directory OUT (local or gs://).
      user_fraction: Keep a seeded sample of this share of the users, each
        with all their rows (for experiments within a time budget); the rows
        left out are counted in stats.json (user_sample).
      negatives_per_positive: For logs of positives only: sampled unseen
        items per positive row (0 = off).
      negative_sampling: How negatives are drawn: uniform over the items, or
        popularity (an item in proportion to its rows in the log **
        --negative_alpha, like real candidates).
      negative_alpha: Exponent of --negative_sampling popularity, as in
        word2vec.
      split: How rows are split into train, valid and test: time (the newest
        --test_fraction of the rows is test), random (a seeded hash of the
        pair decides) or auto: by time if timed.
      test_fraction: Share of rows in test.
      valid_fraction: Share of train held out as validation.
      graph_split: Which training rows build the graphs; the others
        supervise, so no training sample sees a graph built from its own row.
        random: a seeded hash of the pair picks --graph_fraction of them;
        time: the oldest --graph_fraction; shared: every training row does
        both, as in the paper (leaks the label, see README).
      graph_fraction: Share of the training rows that build the graphs (not
        with shared).
      graph_edges: Which graph rows become G's edges: positive (a label is 1,
        the paper's click graph) or any (every logged pair, exposures too).
      similarity: G^U/G^I measure.
      sim_top_k: Neighbours kept in G^U and G^I.
      max_pivot_degree: Hot-node cap: a node shared by more neighbours adds
        only a sample of this many to the similarity counts.
      fanouts: Neighbours per hop, e.g. 10,5.
      sampler: memory: neighbour lists as a side input (graphs that fit);
        join: CoGroupByKey hops, no worker holds the graph (Dataflow).
      seed: Seed of every random choice.
    """

    output: str
    user_fraction: float = 1.0
    negatives_per_positive: int = 0
    negative_sampling: str = field(default=UNIFORM, metadata={"choices": DISTRIBUTIONS})
    negative_alpha: float = 0.75
    split: str = field(default=AUTO, metadata={"choices": SPLIT_MODES})
    test_fraction: float = 0.2
    valid_fraction: float = 0.1
    graph_split: str = field(default=RANDOM, metadata={"choices": GRAPH_SPLIT_MODES})
    graph_fraction: float = 0.5
    graph_edges: str = field(default=POSITIVE, metadata={"choices": GRAPH_EDGES})
    similarity: str = field(default=COSINE, metadata={"choices": MEASURES})
    sim_top_k: int = 10
    max_pivot_degree: int = 200
    fanouts: tuple[int, ...] = field(default=(10, 5), metadata={"type": parse_fanouts})
    sampler: str = field(default=MEMORY, metadata={"choices": SAMPLERS})
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "fanouts", tuple(int(f) for f in self.fanouts))
        for name, choices in (
            ("negative_sampling", DISTRIBUTIONS),
            ("split", SPLIT_MODES),
            ("graph_split", GRAPH_SPLIT_MODES),
            ("graph_edges", GRAPH_EDGES),
            ("similarity", MEASURES),
            ("sampler", SAMPLERS),
        ):
            check_choice(name, getattr(self, name), choices)
        if not 0.0 < self.user_fraction <= 1.0:
            raise ValueError(f"user_fraction must be in (0, 1], got {self.user_fraction}")
        if self.negatives_per_positive < 0:
            raise ValueError(
                f"negatives per positive must be >= 1, got {self.negatives_per_positive}"
            )
        if self.negatives_per_positive and not self.negative_alpha > 0:
            raise ValueError(f"the popularity exponent must be > 0, got {self.negative_alpha}")
        if self.graph_edges == ANY and self.negatives_per_positive:
            # Sampled negatives are rows too: "any" would make them random edges of G.
            raise ValueError(
                "--graph_edges any makes every logged row an edge, and sampled negatives were "
                "never shown: use --graph_edges positive with --negatives_per_positive"
            )
        for name in ("test_fraction", "valid_fraction"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.graph_split != SHARED and not 0.0 < self.graph_fraction < 1.0:
            raise ValueError(f"graph_fraction must be in (0, 1), got {self.graph_fraction}")
        if self.sim_top_k < 1 or self.max_pivot_degree < 2:
            raise ValueError("top_k must be >= 1 and max_pivot_degree >= 2")
        if not self.fanouts or min(self.fanouts) < 1:
            raise ValueError(f"fan-outs must be one or more positive integers, got {self.fanouts}")


def to_json(input_config: InputConfig, config: PreprocessConfig) -> str:
    """Returns both configs as one JSON object: {flag name: value} for every setting."""
    return dataclass_flags.to_json(input_config, config) + "\n"


def from_json(text: str) -> tuple[InputConfig, PreprocessConfig]:
    """Rebuilds the configs from `to_json` output (unknown keys are an error)."""
    values = json.loads(text)
    input_fields = {f.name for f in dataclasses.fields(InputConfig)}
    return (
        InputConfig(**{k: v for k, v in values.items() if k in input_fields}),
        PreprocessConfig(**{k: v for k, v in values.items() if k not in input_fields}),
    )


def stats_config(input_config: InputConfig, config: PreprocessConfig) -> dict:
    """Returns the `config` block of stats.json: the job's settings and four of the input's."""
    return {
        **dataclasses.asdict(config),
        "input": input_config.input,
        "format": input_config.format,
        "nested_tasks": input_config.nested_tasks,
        "behavior_files": input_config.behavior_files,
    }
