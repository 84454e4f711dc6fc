"""benchmarks/serving_soak.py's flags, RESULT line and version-directory handling (no timing)."""

import importlib.util
import os
import re

import pytest

_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "benchmarks",
    "serving_soak.py",
)


@pytest.fixture(scope="module")
def soak():
    spec = importlib.util.spec_from_file_location("serving_soak", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_flags_and_their_checks(soak):
    args = soak.parse_args(["--model_base_path", "export/mogenet"])
    assert (args.duration_s, args.swap_every_s, args.qps, args.rest_qps) == (150.0, 4.0, 50.0, 0.0)
    assert args.model_name == "mogenet" and args.keep_versions == 3 and not args.no_record
    args = soak.parse_args(
        ["--model_base_path", "m", "--duration_s", "30", "--swap_every_s", "2", "--qps", "8"]
        + ["--rest_qps", "2", "--server_args", "--num_processes 2", "--no_record"]
    )
    assert (args.duration_s, args.swap_every_s, args.qps, args.rest_qps) == (30.0, 2.0, 8.0, 2.0)
    assert args.server_args == "--num_processes 2" and args.no_record
    for bad in (["--qps", "0"], ["--swap_every_s", "0"], ["--keep_versions", "0"], []):
        with pytest.raises(SystemExit):
            soak.parse_args((["--model_base_path", "m"] if bad else []) + bad)


def test_result_line_is_machine_readable(soak):
    line = soak.result_line(12345, 0, 37, 642.51, 700.04)
    assert line == "RESULT requests=12345 failed=0 swaps=37 rss_start_mb=642.5 rss_end_mb=700.0"
    fields = dict(re.findall(r"(\w+)=(\S+)", line))
    assert set(fields) == {"requests", "failed", "swaps", "rss_start_mb", "rss_end_mb"}


def test_versions_are_published_whole_and_old_ones_pruned(soak, tmp_path):
    source = tmp_path / "export" / "1"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    base = tmp_path / "served"
    base.mkdir()
    for version in range(1, 7):
        soak.publish_version(str(source), str(base), version)
    assert sorted(os.listdir(base)) == [str(v) for v in range(1, 7)]  # no staging dir left
    assert (base / "6" / "saved_model.pb").read_bytes() == b"pb"
    # The server still serves 2: it and the newer ones stay, whatever --keep_versions says.
    assert soak.prune_versions(str(base), served=2, keep=3) == [1]
    assert soak.prune_versions(str(base), served=6, keep=3) == [2, 3]
    assert soak.versions_on_disk(str(base)) == [4, 5, 6]
