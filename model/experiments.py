"""The paper's evaluation as one command: Tables 2–5 and Fig. 2, over seeds, with t-tests.

  python -m model.experiments --data OUT --out reports/NAME --seeds 5 \
      [--tables 2,3,4,5] [--figure 2] [training flags, e.g. --epochs 10]

What runs (every variant once per seed, `python -m model.train`'s `train` on
the same samples; a variant shared by several tables runs once):

  Table 2  the baselines (MLP, ESMM, NGCF — one model per task —, Shared-
           Bottom, Cross-Stitch, MMoE, SNR-Trans, CGC) and MoGENet;
  Table 3  the six multi-task baselines with and without "+ MGNN";
  Table 4  MoGENet with κ = product, concat, add, mlp;
  Table 5  MoGENet's losses as the paper ablates them: i the original loss
           (plain sum of BCEs), ii the uncertainty weighting, iii the
           cooperative loss; rows i, i + ii, i + iii, i + ii + iii (the last is
           MoGENet's default, Table 2's run), all with the L2 penalty on; and
           beside it, not in the paper, i + ii + iii − L2;
  Fig. 2   MoGENet with 0–4 graph enhanced experts (added left to right).

Each run trains into `OUT/runs/<key>/`; a run whose `metrics.json` exists is
skipped, so the command resumes where it stopped. Then it writes

  runs.csv    one row per run: key, model, config overrides, tasks, seed, test
              GAUC/AUC/log loss per task, epochs run, the epoch whose weights
              were kept (best on `--monitor`), duration;
  report.md   each table as in the paper: test GAUC per task (mean ± std over
              seeds, sample std), the best baseline underlined, RelaImpr of
              MoGENet over it, ** / * where it is better with p < 0.01 / 0.05
              in a paired two-sided t-test across seeds (scipy);
  table2.png  Table 2 as bars with error bars; fig2.png Fig. 2 as lines.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from model import config as config_lib
from model import metrics

# (label, model name) of Table 2's baselines, in the paper's order.
BASELINES = (
    ("MLP", "mlp"),
    ("ESMM", "esmm"),
    ("NGCF", "ngcf"),
    ("Shared-Bottom", "shared_bottom"),
    ("Cross-Stitch", "cross_stitch"),
    ("MMoE", "mmoe"),
    ("SNR-Trans", "snr_trans"),
    ("CGC", "cgc"),
)
MULTI_TASK = ("esmm", "shared_bottom", "cross_stitch", "mmoe", "snr_trans", "cgc")
SINGLE_TASK = ("ngcf",)
OURS = "MoGENet"
TABLES = (2, 3, 4, 5)
FIGURES = (2,)
# Table 5's second section: MoGENet's full loss without L2, an ablation the paper does not have.
L2_ABLATION = "Beside Table 5, not in the paper: the full loss without the L2 penalty"


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
        return [("", [Variant.of(label, model=m) for label, m in BASELINES] + [ours])]
    if table == 3:
        rows = []
        for label, model in BASELINES:
            if model in MULTI_TASK:
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
            task_sets = [(t,) for t in tasks] if variant.model in SINGLE_TASK else [None]
            for task_set in task_sets:
                run = Run(Variant("", variant.overrides), task_set, seed)
                if run.key not in seen:
                    seen.add(run.key)
                    runs.append(run)
    return runs


def train_run(run: Run, data_dir: str, run_dir: str, train_config, tasks) -> None:
    """Trains one run with `python -m model.train` on `tasks`, in a process of its own.

    One process per run: XLA's compiled code and TF's graphs are not freed
    between runs in one process (52 runs in one process ran out of memory).

    Raises:
      RuntimeError: If the training process fails (its output's last lines).
    """
    config = dataclasses.replace(train_config, seed=run.seed)
    command = [
        sys.executable,
        "-m",
        "model.train",
        "--data",
        data_dir,
        "--model_dir",
        run_dir,
        "--tasks",
        ",".join(tasks),
        "--verbose",
        "0",
        *config_lib.to_flags(dict(run.variant.overrides)),
        *config_lib.to_flags(dataclasses.asdict(config)),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"training {run.key} failed ({result.returncode}):\n{tail}")


def run_settings(run: Run, data_dir: str, train_config, tasks) -> dict:
    """What a run trained from beyond its key: data, tasks and training config."""
    config = dataclasses.replace(train_config, seed=run.seed)
    return {
        "data": os.path.abspath(data_dir),
        "tasks": list(run.tasks or tasks),
        "train_config": json.loads(config_lib.to_json(config)),
    }


def execute(
    runs, data_dir: str, out: str, train_config, tasks, train_fn: Callable = train_run
) -> list[dict]:
    """Trains the runs not finished yet and returns every run's runs.csv row.

    A run is finished when `OUT/runs/<key>/metrics.json` exists; its row is
    read back from there (and `duration.json`). Each run records what it
    trained from (`run.json`: data, tasks, training config); a finished run
    recorded with other settings is an error, never silently reused.

    Raises:
      ValueError: If a finished run was trained with other settings.
    """
    rows = []
    for number, run in enumerate(runs, 1):
        run_dir = os.path.join(out, "runs", run.key)
        metrics_path = os.path.join(run_dir, "metrics.json")
        duration_path = os.path.join(run_dir, "duration.json")
        settings_path = os.path.join(run_dir, "run.json")
        settings = run_settings(run, data_dir, train_config, tasks)
        if os.path.exists(metrics_path):
            with open(settings_path) as f:
                recorded = _with_defaults(json.load(f))
            if recorded != settings:
                raise ValueError(
                    f"{run_dir} was trained with other settings ({settings_path}); "
                    "use another --out or the same flags"
                )
            print(f"[{number}/{len(runs)}] {run.key}: done before, skipped", flush=True)
        else:
            print(f"[{number}/{len(runs)}] {run.key}: training", flush=True)
            os.makedirs(run_dir, exist_ok=True)
            with open(settings_path, "w") as f:
                json.dump(settings, f, indent=2, sort_keys=True)
            started = time.monotonic()
            train_fn(run, data_dir, run_dir, train_config, settings["tasks"])
            with open(duration_path, "w") as f:
                json.dump({"duration_s": round(time.monotonic() - started, 1)}, f)
        with open(metrics_path) as f:
            result = json.load(f)
        duration = None
        if os.path.exists(duration_path):
            with open(duration_path) as f:
                duration = json.load(f)["duration_s"]
        row = {
            "key": run.key,
            "model": run.variant.model,
            "overrides": json.dumps(dict(run.variant.overrides), sort_keys=True),
            "tasks": ",".join(run.tasks or tasks),
            "seed": run.seed,
            "epochs": result.get("epochs_run"),
            "best_epoch": result.get("best_epoch"),
            "duration_s": duration,
        }
        for task in tasks:
            test = result.get("test", {}).get(task)
            for name in ("gauc", "auc", "log_loss"):
                row[f"{task}_{name}"] = None if test is None else test[name]
        rows.append(row)
    return rows


def _with_defaults(settings: dict) -> dict:
    """A run.json's settings with the training config's newer fields at their defaults.

    A run recorded before a TrainConfig field existed trained as its default
    says, so it still counts as trained with the same settings.
    """
    try:
        train_config = config_lib.TrainConfig(**settings.get("train_config", {}))
    except (TypeError, ValueError):  # a field that no longer exists: not the same settings
        return settings
    return {**settings, "train_config": json.loads(config_lib.to_json(train_config))}


def write_runs_csv(rows, path: str) -> None:
    """Writes the runs' rows as CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_runs_csv(path: str) -> list[dict]:
    """Reads runs.csv back (metric cells as floats, empty as None)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for name, value in row.items():
            if name.endswith(("_gauc", "_auc", "_log_loss")):
                row[name] = float(value) if value not in ("", None) else None
        row["seed"] = int(row["seed"])
    return rows


def _values(rows, variant: Variant, task: str, seeds: int) -> np.ndarray:
    """The variant's test GAUC of a task, one per seed (NaN where missing)."""
    overrides = json.dumps(dict(variant.overrides), sort_keys=True)
    by_seed = {}
    for row in rows:
        if row["overrides"] == overrides and task in row["tasks"].split(","):
            value = row.get(f"{task}_gauc")
            by_seed[row["seed"]] = np.nan if value is None else value
    return np.array([by_seed.get(seed, np.nan) for seed in range(seeds)], float)


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
    """One table in the paper's layout (see the module doc), its rows limited to `only`."""
    sections = [(title, kept(table, vs, only)) for title, vs in table_variants(table)]
    _, variants = sections[0]
    data = {v.label: {t: _values(rows, v, t, seeds) for t in tasks} for v in variants}
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
            else {v.label: {t: _values(rows, v, t, seeds) for t in tasks} for v in section}
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


def figure_markdown(rows, tasks, seeds: int) -> str:
    """Fig. 2's numbers as a table (the PNG draws them)."""
    variants = figure_variants(2)
    lines = ["| graph enhanced experts | " + " | ".join(f"{t} GAUC" for t in tasks) + " |"]
    lines.append("|" + " --- |" * (len(tasks) + 1))
    for variant in variants:
        cells = [_cell(_values(rows, variant, t, seeds)) for t in tasks]
        lines.append(f"| {variant.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
            values = [_values(rows, v, task, seeds) for v in variants]
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
            values = [_values(rows, v, task, seeds) for v in variants]
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


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in text.split(",") if t.strip()) if text else ()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model.experiments",
        description="Train the paper's tables and figure over seeds and write the report.",
    )
    parser.add_argument("--data", required=True, help="--output directory of beam_pipelines.run")
    parser.add_argument("--out", required=True, help="report directory, e.g. reports/NAME")
    parser.add_argument("--seeds", type=int, default=5, help="runs per variant (seeds 0..n-1)")
    parser.add_argument("--tables", type=_ints, default=TABLES, help="e.g. 2,3,4,5")
    parser.add_argument("--figure", type=_ints, default=FIGURES, help="2, or empty for none")
    parser.add_argument("--tasks", default=None, help="tasks (default: every label)")
    parser.add_argument(
        "--only",
        type=lambda text: tuple(t.strip() for t in text.split(",") if t.strip()),
        default=(),
        help='rows of Tables 2 and 3 to run, by label, e.g. "MLP,MMoE,MMoE + MGNN" (Table 2 '
        "keeps MoGENet; Table 3 keeps whole pairs); default: every row",
    )
    config_lib.add_flags(parser, config_lib.TrainConfig)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Runs the experiments CLI; returns the exit code (2 for a one-line error)."""
    args = parse_args(argv)
    from model.input_pipeline import DataError, DataSpec

    try:
        for table in args.tables:
            table_variants(table)
        for figure in args.figure:
            figure_variants(figure)
        labels = {v.label for t in (2, 3) for _, vs in table_variants(t) for v in vs}
        unknown = sorted(set(args.only) - labels)
        if unknown:
            raise ValueError(f"--only names no row of Table 2 or 3: {', '.join(unknown)}")
        train_config = config_lib.from_flags(args, config_lib.TrainConfig)
        spec = DataSpec(args.data)
        tasks = spec.check_tasks(args.tasks.split(",") if args.tasks else spec.tasks)
    except (DataError, ValueError) as e:
        print(f"model.experiments: error: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    runs = plan_runs(args.tables, args.figure, args.seeds, tasks, args.only)
    print(f"{len(runs)} runs into {args.out}/runs", flush=True)
    rows = execute(runs, args.data, args.out, train_config, tasks)
    write_runs_csv(rows, os.path.join(args.out, "runs.csv"))
    command = "python -m model.experiments " + " ".join(sys.argv[1:] if argv is None else argv)
    path = write_report(
        rows, tasks, args.seeds, args.tables, args.figure, args.out, command, args.only
    )
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
