"""The config dataclasses: paper defaults, command-line overrides, checks."""

import argparse

import pytest

from model import config


def _parse(*argv):
    parser = argparse.ArgumentParser()
    config.add_flags(parser, config.ModelConfig)
    config.add_flags(parser, config.TrainConfig)
    args = parser.parse_args(list(argv))
    return (
        config.from_flags(args, config.ModelConfig),
        config.from_flags(args, config.TrainConfig),
        parser,
    )


def test_defaults_are_the_papers():
    model_config, train_config, _ = _parse()
    assert (model_config.embedding_dim, model_config.num_layers) == (64, 2)
    assert (model_config.num_experts, model_config.expert_units) == (4, (32, 32))
    assert (model_config.beta, model_config.l2_lambda, model_config.kappa) == (
        1e-6,
        1e-3,
        "product",
    )
    assert (train_config.learning_rate, train_config.batch_size) == (1e-4, 256)


def test_flags_override_every_kind_of_field():
    model_config, train_config, parser = _parse(
        "--expert_units",
        "64,16",
        "--no-uncertainty",
        "--beta",
        "0.5",
        "--channels",
        "G,I",
        "--graph_experts",
        "2",
        "--batch_size",
        "32",
    )
    assert model_config.expert_units == (64, 16) and model_config.channels == ("G", "I")
    assert model_config.uncertainty is False and model_config.beta == 0.5
    assert model_config.graph_experts == 2 and train_config.batch_size == 32
    assert "κ, the interaction of two channel states" in parser.format_help()


def test_round_trips_through_json():
    model_config = config.ModelConfig(kappa="mlp", channels=("U",))
    assert config.from_json(config.to_json(model_config), config.ModelConfig) == model_config


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(kappa="dot"), "kappa must be one of"),
        (dict(channels=("G", "X")), "channels must be one of"),
        (dict(graph_experts=5), "graph_experts must be in 0..4"),
        (dict(num_experts=2, graph_experts=3), "graph_experts must be in 0..2"),
        (dict(l2_scope="some"), "l2_scope must be one of"),
    ],
)
def test_bad_values_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config.ModelConfig(**kwargs)


def test_bad_train_values():
    with pytest.raises(ValueError, match="strategy must be one of"):
        config.TrainConfig(strategy="tpu")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        config.TrainConfig(optimizer="sgd")


def test_to_flags_round_trips_through_add_flags():
    import argparse
    import dataclasses

    from model import config as config_lib

    for wanted in (
        config_lib.ModelConfig(model="mmoe", channels=("G", "I"), mgnn=True, l2=False),
        config_lib.TrainConfig(epochs=3, learning_rate=0.01, deterministic=True, monitor="none"),
    ):
        parser = argparse.ArgumentParser()
        config_lib.add_flags(parser, type(wanted))
        args = parser.parse_args(config_lib.to_flags(dataclasses.asdict(wanted)))
        assert config_lib.from_flags(args, type(wanted)) == wanted
