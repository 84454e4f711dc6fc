"""The synthetic data's oracle: the generator's own probabilities, and the CLI that scores them."""

import csv
import json

import numpy as np
import pytest

from beam_pipelines import run
from synthetic import generator, oracle
from synthetic.latent import true_probabilities


def test_true_probabilities_are_the_ones_the_labels_were_drawn_from(tmp_path):
    summary = generator.generate(tmp_path, users=3000, items=400, seed=1, return_latent=True)
    with open(summary["paths"]["interactions"]) as f:
        rows = list(csv.DictReader(f))
    users, items = [r["user_id"] for r in rows], [r["item_id"] for r in rows]
    truth = true_probabilities(summary["latent"], users, items)
    for task in ("click", "conversion"):
        labels = np.array([int(r[task]) for r in rows])
        # Same rate overall (the click noise N(0, 0.3) moves it by well under 0.01)...
        assert abs(truth[task].mean() - labels.mean()) < 0.01, task
        # ...and calibrated: the label rate rises with the oracle's probability.
        edges = np.quantile(truth[task], np.linspace(0, 1, 6))
        rates = [
            labels[(truth[task] >= lo) & (truth[task] <= hi)].mean()
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        assert all(a < b for a, b in zip(rates, rates[1:], strict=False)), (task, rates)


@pytest.fixture(scope="module")
def synthetic_samples(tmp_path_factory):
    logs = str(tmp_path_factory.mktemp("logs"))
    generator.generate(logs, users=400, items=100, seed=5)
    out = str(tmp_path_factory.mktemp("samples"))
    args = ["--input", logs, "--output", out, "--fanouts", "3,2", "--nested_tasks"]
    assert run.main(["--runner", "FnApiRunner", *args]) == 0
    return out


def test_cli_scores_the_oracle_and_its_parts(synthetic_samples, tmp_path, capsys):
    out = str(tmp_path / "oracle.json")
    argv = ["--data", synthetic_samples, "--users", "400", "--items", "100", "--seed", "5"]
    assert oracle.main([*argv, "--out", out]) == 0
    printed = capsys.readouterr().out
    assert "test click GAUC: oracle" in printed and "community_match" in printed
    with open(out) as f:
        results = json.load(f)
    assert set(results) == {"valid", "test", "graphs"}
    for share in results["graphs"].values():  # the graphs follow the communities
        assert share["edges"] > 0 and share["same"] > share["random"] + 0.2
    for task in ("click", "conversion"):
        scores = results["test"][task]
        assert set(scores) == {"oracle", "community_match", "item_quality"}
        assert scores["oracle"]["gauc"] > 0.62  # the generator's signal is strong
        assert scores["oracle"]["gauc"] > scores["item_quality"]["gauc"]


@pytest.mark.parametrize(
    "flags",
    [["--users", "50", "--seed", "5"], ["--users", "400", "--seed", "6"]],
    ids=["fewer-users", "other-seed"],
)
def test_cli_names_a_generator_that_does_not_fit_the_data(synthetic_samples, flags, capsys):
    argv = ["--data", synthetic_samples, "--items", "100", *flags]
    assert oracle.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthetic.oracle: error:") and "\n" not in err
    assert "not in the data these generator flags make" in err
    assert oracle.main([*argv[:2], "--users", "0"]) == 2  # the generator refuses it
