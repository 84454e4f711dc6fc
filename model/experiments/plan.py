"""The run plan: each table's and the figure's variants, and the runs they need.

A variant is a row of a table, a label and the `ModelConfig` fields that
differ from the defaults; a run is a variant on a set of tasks with a seed.
Which baselines are multi-task (Table 3) and which single-task (one run per
task) their classes say (`multi_task`, `single_task`; see
`model.multitask.GraphMultiTaskModel`).
"""

from __future__ import annotations

import dataclasses
import functools

from model import config as config_lib

# (label, model name) of Table 2's baselines, in the paper's order.
BASELINE_LABELS = (
    ("MLP", "mlp"),
    ("ESMM", "esmm"),
    ("NGCF", "ngcf"),
    ("Shared-Bottom", "shared_bottom"),
    ("Cross-Stitch", "cross_stitch"),
    ("MMoE", "mmoe"),
    ("SNR-Trans", "snr_trans"),
    ("CGC", "cgc"),
)
OURS = "MoGENet"
TABLES = (2, 3, 4, 5)
FIGURES = (2,)
# Table 5's second section: MoGENet's full loss without L2, an ablation the paper does not have.
L2_ABLATION = "Beside Table 5, not in the paper: the full loss without the L2 penalty"


@functools.cache
def _model_classes() -> dict:
    """Model name -> class, imported when first asked (TensorFlow comes with it)."""
    from model.trained import MODELS

    return MODELS


def multi_task_models() -> tuple[str, ...]:
    """The multi-task baselines' model names, in Table 2's order (Table 3's pairs)."""
    classes = _model_classes()
    return tuple(model for _, model in BASELINE_LABELS if classes[model].multi_task)


def single_task(model: str) -> bool:
    """Whether the model scores one task, so that it trains once per task."""
    return _model_classes()[model].single_task


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a table: a label and the ModelConfig fields that differ from the defaults."""

    label: str
    overrides: tuple = ()  # sorted (field, value) pairs

    @classmethod
    def of(cls, label: str, **overrides) -> Variant:
        defaults = config_lib.ModelConfig()
        kept = {k: v for k, v in overrides.items() if getattr(defaults, k) != v}
        return cls(label, tuple(sorted(kept.items())))

    @property
    def model(self) -> str:
        return dict(self.overrides).get("model", "mogenet")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: a variant, the tasks it trains (None = all) and a seed."""

    variant: Variant
    tasks: tuple | None
    seed: int

    @property
    def key(self) -> str:
        """The run's directory name, the same for the same config, tasks and seed."""
        parts = [self.variant.model]
        for name, value in self.variant.overrides:
            if name != "model":
                text = "_".join(map(str, value)) if isinstance(value, tuple) else str(value)
                parts.append(f"{name}={text}")
        if self.tasks:
            parts.append("tasks=" + "_".join(self.tasks))
        parts.append(f"seed={self.seed}")
        return "-".join(parts)


def table_variants(table: int) -> list[tuple[str, list[Variant]]]:
    """Returns a table's sections: (section title, variants in row order).

    Raises:
      ValueError: For a table the paper does not have.
    """
    ours = Variant.of(OURS)
    if table == 2:
        return [("", [Variant.of(label, model=m) for label, m in BASELINE_LABELS] + [ours])]
    if table == 3:
        rows = []
        multi_task = multi_task_models()
        for label, model in BASELINE_LABELS:
            if model in multi_task:
                rows.append(Variant.of(label, model=model))
                rows.append(Variant.of(f"{label} + MGNN", model=model, mgnn=True))
        return [("", rows)]
    if table == 4:
        return [("", [Variant.of(f"κ = {k}", kappa=k) for k in config_lib.KAPPAS])]
    if table == 5:
        # i = the plain sum of BCEs, ii = uncertainty weighting, iii = the
        # cooperative loss; L2 stays on (the default) in all four rows.
        return [
            (
                "",
                [
                    Variant.of("i", uncertainty=False, cooperative=False),
                    Variant.of("i + ii", uncertainty=True, cooperative=False),
                    Variant.of("i + iii", uncertainty=False, cooperative=True),
                    Variant.of("i + ii + iii", uncertainty=True, cooperative=True),
                ],
            ),
            (L2_ABLATION, [Variant.of("i + ii + iii − L2", l2=False)]),
        ]
    raise ValueError(f"no Table {table} in the paper; choose from {TABLES}")


def figure_variants(figure: int) -> list[Variant]:
    """Fig. 2: MoGENet with 0..4 graph enhanced experts."""
    if figure != 2:
        raise ValueError(f"no Fig. {figure} here; choose from {FIGURES}")
    return [Variant.of(f"{n}", graph_experts=n) for n in range(5)]


def kept(table: int, variants, only) -> list[Variant]:
    """Table 2's or 3's rows whose label is in `only` (every row if `only` is empty).

    Table 3's rows are kept in whole pairs (a baseline and its "+ MGNN"),
    Table 2 always keeps MoGENet, and other tables are never filtered.
    """
    if not only or table not in (2, 3):
        return list(variants)
    if table == 3:
        pairs = zip(variants[::2], variants[1::2], strict=True)
        return [v for pair in pairs if {p.label for p in pair} <= set(only) for v in pair]
    return [v for v in variants if v.label in only or v.label == OURS]


def plan_runs(tables, figures, seeds: int, tasks, only=()) -> list[Run]:
    """Every run the tables and figures need, each once, in a stable order.

    Args:
      only: Row labels of Tables 2 and 3 to run (e.g. "MMoE", "MMoE + MGNN";
        see `kept`); empty for all.
    """
    variants = [v for t in tables for _, vs in table_variants(t) for v in kept(t, vs, only)]
    variants += [v for f in figures for v in figure_variants(f)]
    runs, seen = [], set()
    for seed in range(seeds):
        for variant in variants:
            task_sets = [(t,) for t in tasks] if single_task(variant.model) else [None]
            for task_set in task_sets:
                run = Run(Variant("", variant.overrides), task_set, seed)
                if run.key not in seen:
                    seen.add(run.key)
                    runs.append(run)
    return runs
