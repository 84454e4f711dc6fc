"""`model.experiments.cli`: a bad flag is a one-line error, before anything trains."""

from model.experiments import cli


def test_a_bad_training_flag_is_a_one_line_error(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli.main(["--data", str(tmp_path), "--out", out, "--monitor", "loss"]) == 2
    error = capsys.readouterr().err.strip()
    assert (
        error.startswith("model.experiments: error: monitor must be one of") and "\n" not in error
    )


def test_only_naming_no_row_of_tables_2_and_3_is_an_error(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli.main(["--data", str(tmp_path), "--out", out, "--only", "MMoE,Nope"]) == 2
    assert "--only names no row of Table 2 or 3: Nope" in capsys.readouterr().err
