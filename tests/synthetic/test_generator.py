"""Tests for synthetic.generator: file contract, reproducibility, statistics, CLI."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from synthetic import generator

REPO_ROOT = Path(__file__).resolve().parents[2]
USERS, ITEMS, SEED = 2000, 500, 7


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, list(reader)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A 2000-user data set (mean 15 exposures), with latent assignments and parsed files."""
    out = tmp_path_factory.mktemp("synthetic")
    summary = generator.generate(
        out, users=USERS, items=ITEMS, seed=SEED, mean_exposures=15.0, return_latent=True
    )
    inter_header, inter = _read_csv(summary["paths"]["interactions"])
    user_header, user_rows = _read_csv(summary["paths"]["user_features"])
    item_header, item_rows = _read_csv(summary["paths"]["item_features"])
    return {
        "summary": summary,
        "latent": summary["latent"],
        "inter_header": inter_header,
        "inter": inter,
        "user_header": user_header,
        "user_rows": user_rows,
        "item_header": item_header,
        "item_rows": item_rows,
        # Integer indices recovered from the zero-padded ids.
        "u": np.array([int(r[0][1:]) for r in inter]),
        "i": np.array([int(r[1][1:]) for r in inter]),
        "click": np.array([int(r[3]) for r in inter]),
        "conv": np.array([int(r[4]) for r in inter]),
    }


def _majority_accuracy(groups, labels):
    """Accuracy of predicting ``labels`` by the majority label within each group."""
    groups = np.asarray(groups)
    hits = sum(np.bincount(labels[groups == g]).max() for g in np.unique(groups))
    return hits / len(labels)


# --- file contract ----------------------------------------------------------------------------


def test_files_and_exact_headers(dataset):
    paths = dataset["summary"]["paths"]
    assert set(paths) == {"interactions", "user_features", "item_features"}
    for key, header in [
        ("interactions", "user_id,item_id,timestamp,click,conversion"),
        ("user_features", "user_id,age_bucket,region"),
        ("item_features", "item_id,category,brand,price_bucket"),
    ]:
        raw = Path(paths[key]).read_bytes()
        assert raw.startswith(header.encode() + b"\n")
        assert b"\r" not in raw
        assert raw.endswith(b"\n")
    assert Path(paths["interactions"]).name == "interactions.csv"
    assert Path(paths["user_features"]).name == "user_features.csv"
    assert Path(paths["item_features"]).name == "item_features.csv"


def test_interaction_rows_are_well_formed(dataset):
    inter = dataset["inter"]
    assert len(inter) == dataset["summary"]["n_interactions"] > 0
    user_re, item_re = re.compile(r"u\d{6}"), re.compile(r"i\d{5}")
    for row in inter:
        assert len(row) == 5
        assert user_re.fullmatch(row[0]), row
        assert item_re.fullmatch(row[1]), row
        assert row[3] in ("0", "1") and row[4] in ("0", "1"), row
    ts = np.array([int(r[2]) for r in inter])
    assert ts.min() >= generator.START_TIMESTAMP == 1767225600
    assert ts.max() < generator.START_TIMESTAMP + 30 * 86400
    # Spread over the whole month, not bunched up.
    days = (ts - generator.START_TIMESTAMP) // 86400
    assert np.bincount(days, minlength=30).min() > 0.5 * len(ts) / 30


def test_conversion_implies_click_and_summary_rates(dataset):
    click, conv = dataset["click"], dataset["conv"]
    assert not np.any((conv == 1) & (click == 0))
    summary = dataset["summary"]
    assert summary["ctr"] == pytest.approx(click.mean())
    assert summary["cvr"] == pytest.approx(conv.sum() / click.sum())
    assert 0.10 <= summary["ctr"] <= 0.20
    assert 0.10 <= summary["cvr"] <= 0.25


def test_no_duplicate_pairs(dataset):
    pairs = {(r[0], r[1]) for r in dataset["inter"]}
    assert len(pairs) == len(dataset["inter"])


def test_every_interaction_has_feature_rows(dataset):
    user_ids = [r[0] for r in dataset["user_rows"]]
    item_ids = [r[0] for r in dataset["item_rows"]]
    assert len(set(user_ids)) == len(user_ids) == USERS
    assert len(set(item_ids)) == len(item_ids) == ITEMS
    assert {r[0] for r in dataset["inter"]} <= set(user_ids)
    assert {r[1] for r in dataset["inter"]} <= set(item_ids)
    patterns = {
        "age_bucket": r"a\d+",
        "region": r"r\d+",
        "category": r"c\d+",
        "brand": r"b\d+",
        "price_bucket": r"p\d+",
    }
    for header, rows in [
        (dataset["user_header"], dataset["user_rows"]),
        (dataset["item_header"], dataset["item_rows"]),
    ]:
        for col, name in enumerate(header[1:], start=1):
            assert all(re.fullmatch(patterns[name], r[col]) for r in rows), name


# --- reproducibility --------------------------------------------------------------------------


def _file_bytes(out_dir):
    return {name: (out_dir / name).read_bytes() for name in synthetic_files()}


def synthetic_files():
    return (
        generator.INTERACTIONS_FILE,
        generator.USER_FEATURES_FILE,
        generator.ITEM_FEATURES_FILE,
    )


def test_same_seed_gives_identical_files(tmp_path):
    for name in ("a", "b"):
        generator.generate(tmp_path / name, users=300, items=80, seed=11)
    assert _file_bytes(tmp_path / "a") == _file_bytes(tmp_path / "b")


def test_different_seed_gives_different_files(tmp_path):
    generator.generate(tmp_path / "a", users=300, items=80, seed=11)
    generator.generate(tmp_path / "b", users=300, items=80, seed=12)
    a, b = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
    for name in synthetic_files():
        assert a[name] != b[name], name


# --- statistical properties -------------------------------------------------------------------


def test_item_popularity_is_long_tailed(dataset):
    counts = np.sort(np.bincount(dataset["i"], minlength=ITEMS))[::-1]
    top_share = counts[: ITEMS // 10].sum() / counts.sum()
    assert top_share > 0.40
    # The tail is not empty either: most items are exposed at least once.
    assert np.mean(counts > 0) > 0.8


def test_many_sparse_users_and_a_few_heavy_ones(dataset):
    per_user = np.bincount(dataset["u"], minlength=USERS)
    assert per_user.min() >= 1
    assert np.mean(per_user <= 5) >= 0.30
    assert per_user.max() >= 8 * np.median(per_user)
    assert 10 <= per_user.mean() <= 16  # mean_exposures=15, minus the cap and deduplication


def test_same_community_pairs_click_and_convert_more(dataset):
    lat, u, i = dataset["latent"], dataset["u"], dataset["i"]
    click, conv = dataset["click"], dataset["conv"]
    same = lat["item_community"][i] == lat["user_community"][u]
    # Both kinds of pairs are common, so the contrast is measurable.
    assert 0.2 < same.mean() < 0.8
    ctr_same, ctr_cross = click[same].mean(), click[~same].mean()
    assert ctr_same > 2.0 * ctr_cross
    table = [
        [click[same].sum(), (1 - click[same]).sum()],
        [click[~same].sum(), (1 - click[~same]).sum()],
    ]
    assert stats.chi2_contingency(table)[1] < 1e-12
    # Conversion given click also depends on the match, but less sharply than click.
    clicked = click == 1
    cvr_same, cvr_cross = conv[clicked & same].mean(), conv[clicked & ~same].mean()
    assert cvr_same > 1.3 * cvr_cross
    assert cvr_same / cvr_cross < ctr_same / ctr_cross


def test_co_clicks_carry_community_structure(dataset):
    """Items clicked by the same user share a community far more often than by chance."""
    lat, u, i, click = dataset["latent"], dataset["u"], dataset["i"], dataset["click"]
    ic = lat["item_community"]
    same_pairs = total_pairs = 0
    cu, ci = u[click == 1], i[click == 1]
    order = np.argsort(cu, kind="stable")
    cu, ci = cu[order], ci[order]
    for items in np.split(ci, np.flatnonzero(np.diff(cu)) + 1):
        n = len(items)
        if n < 2:
            continue
        per_comm = np.bincount(ic[items])
        same_pairs += (per_comm * (per_comm - 1) // 2).sum()
        total_pairs += n * (n - 1) // 2
    chance = np.sum((np.bincount(ic) / ITEMS) ** 2)
    assert same_pairs / total_pairs > 2.0 * chance


def test_side_features_are_only_partly_informative(dataset):
    lat = dataset["latent"]
    uc, ic = lat["user_community"], lat["item_community"]
    region = [r[2] for r in dataset["user_rows"]]
    age = [r[1] for r in dataset["user_rows"]]
    category = [r[1] for r in dataset["item_rows"]]
    brand = [r[2] for r in dataset["item_rows"]]

    user_chance = np.bincount(uc).max() / USERS
    item_chance = np.bincount(ic).max() / ITEMS
    region_acc = _majority_accuracy(region, uc)
    category_acc = _majority_accuracy(category, ic)
    # Informative, but far from determining the community.
    assert user_chance + 0.1 < region_acc < 0.9
    assert item_chance + 0.1 < category_acc < 0.9
    # age_bucket carries no community information (only small-sample overfit of the majority).
    assert _majority_accuracy(age, uc) < user_chance + 0.05
    # brand has 50 levels over 500 items, so allow for the overfit of a 10-item group majority.
    assert _majority_accuracy(brand, ic) < category_acc


def test_return_latent_is_optional(tmp_path):
    summary = generator.generate(tmp_path, users=50, items=20, seed=1)
    assert "latent" not in summary
    assert summary["n_users"] == 50 and summary["n_items"] == 20
    assert summary["communities"] == generator.default_communities(50, 20) == 4


@pytest.mark.parametrize(
    "kwargs",
    [
        {"users": 0},
        {"items": 1},
        {"communities": 0},
        {"items": 10, "communities": 11},
        {"mean_exposures": 0.5},
        {"mean_exposures": float("nan")},
        {"zipf_exponent": -0.1},
    ],
)
def test_generate_rejects_invalid_arguments(tmp_path, kwargs):
    with pytest.raises(ValueError):
        generator.generate(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


# --- CLI --------------------------------------------------------------------------------------


def _run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "synthetic.generator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_writes_files_and_prints_one_summary_line(tmp_path):
    out = tmp_path / "cli"
    proc = _run_cli("--out", str(out), "--users", "200", "--items", "60", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    match = re.match(r"wrote (\d+) interactions .* CTR=([\d.]+) CVR=([\d.]+) -> ", lines[0])
    assert match, lines[0]
    for name in synthetic_files():
        assert str(out / name) in lines[0]
    _, rows = _read_csv(out / generator.INTERACTIONS_FILE)
    assert int(match.group(1)) == len(rows)
    # The CLI and the Python function produce the same bytes.
    generator.generate(tmp_path / "py", users=200, items=60, seed=3)
    assert _file_bytes(out) == _file_bytes(tmp_path / "py")


@pytest.mark.parametrize(
    "args",
    [
        ["--users", "0"],
        ["--items", "1"],
        ["--users", "abc"],
        ["--communities", "999"],
        ["--mean_exposures", "0"],
    ],
)
def test_cli_invalid_arguments_fail_with_one_line(tmp_path, args):
    proc = _run_cli("--out", str(tmp_path / "x"), *args)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "error" in lines[0]
    assert not (tmp_path / "x").exists()


def test_cli_requires_out():
    proc = _run_cli("--users", "10")
    assert proc.returncode != 0
    assert "--out" in proc.stderr
