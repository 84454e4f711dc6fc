"""`model.experiments.plan`: the runs the tables need, and the models' kinds from their classes."""

import pytest

from model.experiments import plan

TASKS = ("click", "conversion")


def test_plan_runs_each_config_once_per_seed_and_ngcf_per_task():
    runs = plan.plan_runs((2, 4, 5), (2,), seeds=2, tasks=TASKS)
    keys = [r.key for r in runs]
    assert len(keys) == len(set(keys))
    # MoGENet's defaults are Table 2's row, κ = product, i+ii+iii and 4 graph experts: one run.
    assert keys.count("mogenet-seed=0") == 1 and "mogenet-seed=1" in keys
    assert "ngcf-tasks=click-seed=0" in keys and "ngcf-tasks=conversion-seed=1" in keys
    assert "mogenet-kappa=concat-seed=1" in keys and "mogenet-graph_experts=0-seed=0" in keys
    assert "mogenet-cooperative=False-uncertainty=False-seed=0" in keys
    assert "mogenet-l2=False-seed=1" in keys  # the L2 ablation beside Table 5
    # 8 baselines (NGCF twice) + MoGENet + 3 other κ + 3 other losses + the L2
    # ablation + 4 other expert counts
    assert len(runs) == 2 * (9 + 1 + 3 + 3 + 1 + 4)
    with pytest.raises(ValueError, match="no Table 7"):
        plan.plan_runs((7,), (), 1, TASKS)


def test_the_model_classes_say_which_are_multi_task_and_which_single_task():
    from model.baselines import ESMM, NGCF, MLPBaseline
    from model.mogenet import MoGENet

    # The paper's six multi-task baselines, in Table 2's order: Table 3's pairs.
    assert plan.multi_task_models() == (
        "esmm", "shared_bottom", "cross_stitch", "mmoe", "snr_trans", "cgc",
    )  # fmt: skip
    ((_, table3),) = plan.table_variants(3)
    assert [v.label for v in table3[:4]] == [
        "ESMM",
        "ESMM + MGNN",
        "Shared-Bottom",
        "Shared-Bottom + MGNN",
    ]
    # The MLP's towers are independent; ESMM, on the MLP's towers, ties the tasks.
    assert not MLPBaseline.multi_task and ESMM.multi_task and MoGENet.multi_task
    # NGCF alone scores one task, so it trains once per task.
    assert [m for _, m in plan.BASELINE_LABELS if plan.single_task(m)] == ["ngcf"]
    assert NGCF.single_task and not NGCF.multi_task and not plan.single_task("mogenet")
