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

One module per job, each importing only those above it:

  plan     which variants the tables and figure need, and the runs;
  results  what a run leaves on disk, and runs.csv;
  runner   trains the runs not finished yet, one `model.train` process each;
  tables   the statistics and each table's markdown;
  figures  table2.png and fig2.png;
  report   report.md;
  cli      the command line (`__main__` runs it).
"""
