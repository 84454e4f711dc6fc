"""The tables' statistics and markdown: mean ± std over seeds, paired t-tests, RelaImpr."""

from __future__ import annotations

import numpy as np

from model import metrics
from model.experiments.plan import OURS, figure_variants, kept, table_variants
from model.experiments.results import gauc_per_seed


def _stars(ours: np.ndarray, base: np.ndarray) -> str:
    """** / * if `ours` is better than `base` with p < 0.01 / 0.05 (paired, two-sided)."""
    ok = ~(np.isnan(ours) | np.isnan(base))
    if ok.sum() < 2 or np.allclose(ours[ok], base[ok]) or np.mean(ours[ok] - base[ok]) <= 0:
        return ""
    p = metrics.paired_t_test(ours[ok], base[ok])
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def _cell(values: np.ndarray) -> str:
    values = values[~np.isnan(values)]
    if not len(values):
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"  # sample std over seeds


def _rela(ours: np.ndarray, base: np.ndarray) -> str:
    ours, base = np.nanmean(ours), np.nanmean(base)
    if np.isnan(ours) or np.isnan(base) or base <= 0.5:
        return "—"
    return f"{metrics.rela_impr(ours, base):+.2%}"


def table_markdown(table: int, rows, tasks, seeds: int, only=()) -> str:
    """One table in the paper's layout (see `model.experiments`), its rows limited to `only`."""
    sections = [(title, kept(table, vs, only)) for title, vs in table_variants(table)]
    _, variants = sections[0]
    data = {v.label: {t: gauc_per_seed(rows, v, t, seeds) for t in tasks} for v in variants}
    header = "| model | " + " | ".join(f"{t} GAUC" for t in tasks) + " |"
    lines = [header, "|" + " --- |" * (len(tasks) + 1)]
    if table == 2:
        baselines = [v.label for v in variants if v.label != OURS]
        best = {
            t: max(baselines, key=lambda b, t=t: np.nan_to_num(np.nanmean(data[b][t]), nan=-1))
            for t in tasks
        }
        for variant in variants:
            cells = []
            for t in tasks:
                text = _cell(data[variant.label][t])
                if variant.label == best[t]:
                    text = f"<u>{text}</u>"
                if variant.label == OURS:
                    text += _stars(data[OURS][t], data[best[t]][t])
                cells.append(text)
            lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
        rela = [_rela(data[OURS][t], data[best[t]][t]) for t in tasks]
        lines.append("| RelaImpr over the best baseline | " + " | ".join(rela) + " |")
        return "\n".join(lines)
    if table == 3:
        for base, plus in zip(variants[::2], variants[1::2], strict=True):
            lines.append(
                f"| {base.label} | " + " | ".join(_cell(data[base.label][t]) for t in tasks) + " |"
            )
            cells = [
                _cell(data[plus.label][t]) + _stars(data[plus.label][t], data[base.label][t])
                for t in tasks
            ]
            lines.append(f"| {plus.label} | " + " | ".join(cells) + " |")
            rela = [_rela(data[plus.label][t], data[base.label][t]) for t in tasks]
            lines.append("| RelaImpr of + MGNN | " + " | ".join(rela) + " |")
        return "\n".join(lines)
    # Tables 4 and 5: every row against the first section's reference row; a
    # further section (Table 5's L2 ablation) is a table of its own below.
    reference = variants[0].label if table == 4 else variants[-1].label
    reference_values = data[reference]
    parts = []
    for k, (title, section) in enumerate(sections):
        values = (
            data
            if k == 0
            else {v.label: {t: gauc_per_seed(rows, v, t, seeds) for t in tasks} for v in section}
        )
        if title:
            parts.append(f"{title}:")
        section_lines = list(lines[:2])
        for variant in section:
            cells = []
            for t in tasks:
                text = _cell(values[variant.label][t])
                if variant.label != reference:
                    text += _stars(values[variant.label][t], reference_values[t])
                cells.append(text)
            section_lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
        parts.append("\n".join(section_lines))
    return "\n\n".join(parts)


def figure_markdown(rows, tasks, seeds: int) -> str:
    """Fig. 2's numbers as a table (the PNG draws them)."""
    variants = figure_variants(2)
    lines = ["| graph enhanced experts | " + " | ".join(f"{t} GAUC" for t in tasks) + " |"]
    lines.append("|" + " --- |" * (len(tasks) + 1))
    for variant in variants:
        cells = [_cell(gauc_per_seed(rows, variant, t, seeds)) for t in tasks]
        lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
