"""The preprocessing settings: one dataclass field per flag, defaults, checks, JSON."""

import dataclasses

import pytest

from beam_pipelines import run
from beam_pipelines.config import (
    InputConfig,
    PreprocessConfig,
    from_json,
    parse_fanouts,
    to_json,
)
from beam_pipelines.dataclass_flags import from_flags, to_flags

CLASSES = (InputConfig, PreprocessConfig)


def test_cli_defaults_are_the_dataclass_defaults():
    args = run.parser().parse_args(["--input", "logs", "--output", "out"])
    assert from_flags(args, InputConfig) == InputConfig(input="logs")
    assert from_flags(args, PreprocessConfig) == PreprocessConfig(output="out")
    actions = {a.dest: a for a in run.parser()._actions}
    for cls in CLASSES:
        for field in dataclasses.fields(cls):
            action = actions[field.name]
            assert action.help and not action.help.startswith(" ("), field.name
            if field.default is dataclasses.MISSING:
                assert action.required, field.name
            else:
                assert action.default == field.default, field.name
    # The two flags that say how to run, not what to make.
    assert not args.overwrite and args.runner == "FnApiRunner"
    # Both classes' fields are flags of one command line and keys of one file.
    names = [f.name for cls in CLASSES for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))


def test_settings_round_trip_through_flags_and_json():
    input_config = InputConfig(
        input="gs://b/logs",
        format="behaviors",
        tasks=("favorite", "purchase"),
        behavior_files="favorite=collect.txt,purchase=buy.txt",
        nested_tasks=False,
    )
    config = PreprocessConfig(
        output="gs://b/out",
        user_fraction=0.3,
        negatives_per_positive=2,
        negative_sampling="popularity",
        split="random",
        graph_split="time",
        graph_fraction=0.4,
        similarity="jaccard",
        fanouts=(3, 2),
        sampler="join",
        seed=7,
    )
    values = {**dataclasses.asdict(input_config), **dataclasses.asdict(config)}
    args = run.parser().parse_args(to_flags(values))
    assert from_flags(args, InputConfig) == input_config
    assert from_flags(args, PreprocessConfig) == config
    assert from_json(to_json(input_config, config)) == (input_config, config)


def test_nested_tasks_default_is_the_formats():
    assert InputConfig(input="x", format="aliccp").nested_tasks is True
    assert InputConfig(input="x").nested_tasks is False
    assert InputConfig(input="x", format="aliccp", nested_tasks=False).nested_tasks is False
    assert InputConfig(input="x", tasks=["a", "b"]).tasks == ("a", "b")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"split": "weekly"}, "split must be one of auto, time, random; got 'weekly'"),
        ({"graph_split": "leaky"}, "graph_split must be one of random, time, shared"),
        ({"graph_edges": "clicks"}, "graph_edges must be one of positive, any"),
        ({"similarity": "dice"}, "similarity must be one of cosine, jaccard"),
        ({"sampler": "disk"}, "sampler must be one of memory, join"),
        ({"negative_sampling": "zipf"}, "negative_sampling must be one of uniform, popularity"),
        ({"test_fraction": 1.5}, r"test_fraction must be in \[0, 1\), got 1.5"),
        ({"valid_fraction": -0.1}, r"valid_fraction must be in \[0, 1\), got -0.1"),
        ({"graph_fraction": 1.0}, r"graph_fraction must be in \(0, 1\), got 1.0"),
        ({"graph_split": "time", "graph_fraction": 0.0}, r"graph_fraction must be in \(0, 1\)"),
        ({"user_fraction": 0.0}, r"user_fraction must be in \(0, 1\], got 0.0"),
        ({"user_fraction": 1.5}, r"user_fraction must be in \(0, 1\], got 1.5"),
        ({"negatives_per_positive": -1}, "negatives per positive must be >= 1, got -1"),
        (
            {"negatives_per_positive": 1, "negative_alpha": 0.0},
            "the popularity exponent must be > 0, got 0.0",
        ),
        (
            {"graph_edges": "any", "negatives_per_positive": 1},
            "sampled negatives were never shown",
        ),
        ({"sim_top_k": 0}, "top_k must be >= 1 and max_pivot_degree >= 2"),
        ({"max_pivot_degree": 1}, "top_k must be >= 1 and max_pivot_degree >= 2"),
        ({"fanouts": ()}, "fan-outs must be one or more positive integers"),
        ({"fanouts": (3, 0)}, "fan-outs must be one or more positive integers"),
    ],
)
def test_bad_settings_are_refused_with_one_line(settings, message):
    with pytest.raises(ValueError, match=message):
        PreprocessConfig(output="out", **settings)


def test_good_edge_settings_are_accepted():
    PreprocessConfig(output="out", graph_split="shared", graph_fraction=1.0)
    PreprocessConfig(output="out", negative_alpha=0.0)  # unused without negatives
    PreprocessConfig(output="out", test_fraction=0.0, valid_fraction=0.0, user_fraction=1.0)
    with pytest.raises(ValueError, match="format must be one of canonical, tmall, aliccp"):
        InputConfig(input="x", format="csv")


def test_the_cli_reports_a_bad_setting_in_one_line(tmp_path, capsys):
    argv = ["--input", str(tmp_path), "--output", str(tmp_path / "out")]
    assert run.main([*argv, "--test_fraction", "1.5"]) == 2
    assert capsys.readouterr().err.strip() == "error: test_fraction must be in [0, 1), got 1.5"
    assert not (tmp_path / "out").exists()  # refused before anything is written
    with pytest.raises(SystemExit):  # a flag that cannot be read is argparse's error
        run.main([*argv, "--fanouts", "10,0"])
    assert "argument --fanouts: fan-outs must be positive, got '10,0'" in capsys.readouterr().err


def test_fanouts_flag_parser():
    assert parse_fanouts("10,5") == (10, 5)
    for text in ("", "a", "10,,5", "0"):
        with pytest.raises(Exception, match="fan-outs must be"):
            parse_fanouts(text)
