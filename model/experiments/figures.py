"""The figures: Table 2 as bars with error bars (table2.png), Fig. 2 as lines (fig2.png)."""

from __future__ import annotations

import os

import numpy as np

from model.experiments.plan import figure_variants, table_variants
from model.experiments.results import gauc_per_seed


def draw_figures(rows, tasks, seeds: int, tables, figures, out: str) -> list[str]:
    """Writes table2.png (bars with error bars) and fig2.png (lines); returns their names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if 2 in tables:
        ((_, variants),) = table_variants(2)
        fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            values = [gauc_per_seed(rows, v, task, seeds) for v in variants]
            means = [np.nanmean(v) if not np.isnan(v).all() else 0.0 for v in values]
            errors = [np.nanstd(v, ddof=1) if (~np.isnan(v)).sum() > 1 else 0.0 for v in values]
            ax.bar([v.label for v in variants], means, yerr=errors, capsize=3)
            ax.set_ylim(min(m for m in means if m) - 0.02 if any(means) else 0, None)
            ax.set_title(f"{task}: test GAUC")
            ax.tick_params(axis="x", rotation=60)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "table2.png"), dpi=120)
        plt.close(fig)
        written.append("table2.png")
    if 2 in figures:
        variants = figure_variants(2)
        fig, ax = plt.subplots(figsize=(5, 4))
        for task in tasks:
            values = [gauc_per_seed(rows, v, task, seeds) for v in variants]
            ax.errorbar(
                range(len(variants)),
                [np.nanmean(v) for v in values],
                yerr=[np.nanstd(v, ddof=1) if (~np.isnan(v)).sum() > 1 else 0.0 for v in values],
                marker="o",
                capsize=3,
                label=task,
            )
        ax.set_xlabel("graph enhanced experts")
        ax.set_ylabel("test GAUC")
        ax.set_xticks(range(len(variants)))
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, "fig2.png"), dpi=120)
        plt.close(fig)
        written.append("fig2.png")
    return written
