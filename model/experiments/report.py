"""Writes report.md: every table's and the figure's markdown under its title, with the PNGs."""

from __future__ import annotations

import os

from model import config as config_lib
from model.experiments.figures import draw_figures
from model.experiments.tables import figure_markdown, table_markdown

TITLES = {
    2: "Table 2 — MoGENet and the baselines (test GAUC)",
    3: "Table 3 — the multi-task baselines with and without + MGNN",
    4: "Table 4 — the graph interaction κ",
    5: "Table 5 — the losses: i the original loss (plain sum of BCEs), "
    "ii uncertainty weighting, iii cooperative loss; L2 on in every row",
}
NOTES = {
    2: "Underlined: the best baseline per task. ** / *: MoGENet against it, "
    "paired t-test across seeds, p < 0.01 / 0.05.",
    3: "** / *: + MGNN against the same baseline, paired t-test across seeds.",
    4: "** / *: against κ = product (the paper's choice), paired t-test across seeds.",
    5: "The paper's four rows keep the L2 penalty "
    f"(`--l2`, λ = {config_lib.ModelConfig().l2_lambda:g}, MoGENet's default); the ablation "
    "beside them drops it (`--no-l2`). i + ii + iii is MoGENet's default, the same runs as "
    "Table 2's MoGENet. ** / *: against i + ii + iii, paired t-test across seeds.",
}


def write_report(rows, tasks, seeds: int, tables, figures, out: str, command: str, only=()) -> str:
    """Writes report.md (and the PNGs) from runs.csv's rows; returns the report's path."""
    images = draw_figures(rows, tasks, seeds, tables, figures, out)
    lines = [
        "# MoGENet experiments",
        "",
        f"Command: `{command}`",
        "",
        f"{len(rows)} runs, {seeds} seed(s) each; test GAUC per task, mean ± std over seeds. "
        "Every run's metrics, config and duration are in `runs.csv`.",
    ]
    for table in tables:
        markdown = table_markdown(table, rows, tasks, seeds, only)
        lines += ["", f"## {TITLES[table]}", "", markdown, ""]
        lines.append(NOTES[table])
        if table == 2 and "table2.png" in images:
            lines += ["", "![Table 2](table2.png)"]
    if 2 in figures:
        lines += ["", "## Fig. 2 — graph enhanced experts added left to right", ""]
        lines.append(figure_markdown(rows, tasks, seeds))
        if "fig2.png" in images:
            lines += ["", "![Fig. 2](fig2.png)"]
    path = os.path.join(out, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
