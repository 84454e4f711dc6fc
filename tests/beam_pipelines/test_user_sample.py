"""The seeded user sample: whole users kept or left out, counted, seeded."""

import json
import os

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_pipelines import run
from beam_pipelines.records import Interaction
from beam_pipelines.user_sample import SampleUsers, keeps_user

ROWS = [Interaction(f"u{k % 400}", f"i{k}", None, (k % 2,)) for k in range(1200)]


@pytest.mark.parametrize("seed", [0, 1])
def test_kept_users_keep_every_row_and_the_rest_are_counted(seed):
    kept_users = {r.user_id for r in ROWS if keeps_user(seed, r.user_id, 0.3)}
    assert 0.25 < len(kept_users) / 400 < 0.35
    expected = [r for r in ROWS if r.user_id in kept_users]
    with TestPipeline(runner="FnApiRunner") as p:
        kept, dropped = p | beam.Create(ROWS) | SampleUsers(0.3, seed)
        assert_that(kept, equal_to(expected), label="Kept")
        assert_that(dropped, equal_to([len(ROWS) - len(expected)]), label="Dropped")
    other = {r.user_id for r in ROWS if keeps_user(1 - seed, r.user_id, 0.3)}
    assert other != kept_users


@pytest.mark.parametrize("fraction", [0.0, 1.5])
def test_bad_fraction_is_refused(fraction):
    with pytest.raises(ValueError, match=r"user_fraction must be in \(0, 1\]"):
        SampleUsers(fraction)


def test_cli_flag_keeps_a_share_of_the_users_and_records_what_it_left_out(tmp_path, capsys):
    lines = ["user_id,item_id,click,conversion"]
    lines += [f"u{k % 60},i{k % 25},{k % 3 == 0:d},0" for k in range(600)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    args = ["--input", str(tmp_path / "log.csv"), "--output", out, "--user_fraction", "0.5"]
    assert run.main(["--runner", "FnApiRunner", *args, "--fanouts", "2"]) == 0
    stats = json.load(open(os.path.join(out, "stats.json")))
    kept = sum(e["rows"] for e in stats["examples"].values())
    assert stats["user_sample"]["user_fraction"] == 0.5
    assert kept + stats["user_sample"]["rows_dropped"] == stats["rows"]["interactions"]["kept"]
    assert 0 < stats["user_sample"]["rows_dropped"] < 600
    bad = ["--input", str(tmp_path / "log.csv"), "--output", str(tmp_path / "bad")]
    assert run.main(["--runner", "FnApiRunner", *bad, "--user_fraction", "0"]) == 2
    assert "user_fraction must be in (0, 1]" in capsys.readouterr().err
