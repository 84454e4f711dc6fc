"""Every baseline builds, trains a step and predicts probabilities; their defining structure."""

import numpy as np
import pytest
import tensorflow as tf

from model import trained
from model.baselines import BASELINES
from model.baselines.cgc import expert_allocation
from model.baselines.esmm import product_logit
from model.config import ModelConfig
from model.entities import load_entities
from model.input_pipeline import DataSpec, make_dataset
from model.optimizers import make_optimizer
from tests.model.planted import TASKS, write_planted

TINY = dict(embedding_dim=8, expert_units=(8, 8), tower_units=(16, 8), gate_units=(4,))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    data_dir = write_planted(tmp_path_factory.mktemp("planted"), sizes={"train": 64, "test": 16})
    entities = load_entities(data_dir)
    batch = next(iter(make_dataset(data_dir, "train", 32, shuffle=False, entities=entities)))
    return data_dir, entities, batch


def _build(name, planted, tasks=TASKS, **overrides):
    data_dir, entities, _ = planted
    config = ModelConfig(model=name, **{**TINY, **overrides})
    layout = DataSpec(data_dir).layout
    model = trained.build_model(config, tasks, layout, entities)
    model.compile(optimizer=make_optimizer("adam", 0.01))
    return model


@pytest.mark.parametrize("mgnn", [False, True])
@pytest.mark.parametrize("name", sorted(set(BASELINES) - {"ngcf"}))
def test_multi_task_baselines_train_a_step_and_predict_probabilities(name, mgnn, planted):
    _, _, (inputs, labels) = planted
    model = _build(name, planted, mgnn=mgnn)
    assert bool(model.trees) == mgnn  # "+ MGNN" runs the channels, the plain one does not
    model(inputs)
    before = [v.numpy().copy() for v in model.trainable_variables]
    logs = model.train_step((inputs, labels))
    assert np.isfinite(float(logs["loss"]))
    changed = [
        not np.array_equal(b, v.numpy())
        for b, v in zip(before, model.trainable_variables, strict=True)
    ]
    assert sum(changed) >= len(changed) // 2
    probabilities = model(inputs)
    assert set(probabilities) == set(TASKS)
    for values in probabilities.values():
        values = values.numpy()
        assert values.shape == (32,) and np.all((values >= 0) & (values <= 1))


def test_ngcf_is_single_task_and_trains(planted):
    _, _, (inputs, labels) = planted
    with pytest.raises(ValueError, match="single-task"):
        _build("ngcf", planted)
    model = _build("ngcf", planted, tasks=("click",))
    logs = model.train_step((inputs, {"click": labels["click"]}))
    assert np.isfinite(float(logs["loss"]))
    values = model(inputs)["click"].numpy()
    assert values.shape == (32,) and np.all((values > 0) & (values < 1))


def test_esmm_predicts_conversion_as_click_times_conditional(planted):
    _, _, (inputs, _) = planted
    model = _build("esmm", planted)
    p = model(inputs)
    encoded, _, _ = model.encode(inputs)
    x = tf.concat([encoded["user"][:, 0], encoded["item"][:, 0]], -1)
    raw = model.task_logits(model.towers(x)).numpy()
    click = 1 / (1 + np.exp(-raw[:, 0]))
    conditional = 1 / (1 + np.exp(-raw[:, 1]))
    np.testing.assert_allclose(p["click"].numpy(), click, rtol=1e-5)
    np.testing.assert_allclose(p["conversion"].numpy(), click * conditional, rtol=1e-4)
    assert np.all(p["conversion"].numpy() <= p["click"].numpy() + 1e-7)
    a, b = tf.constant([-30.0, 0.0, 3.0, 30.0]), tf.constant([30.0, 0.0, -2.0, 30.0])
    expected = (tf.sigmoid(a) * tf.sigmoid(b)).numpy()
    np.testing.assert_allclose(tf.sigmoid(product_logit(a, b)).numpy(), expected, rtol=1e-4)


def test_cgc_gates_mix_only_own_and_shared_experts(planted):
    _, _, (inputs, _) = planted
    assert expert_allocation(4, 2) == [[1, 0, 1, 1], [0, 1, 1, 1]]
    with pytest.raises(ValueError, match="needs more than"):
        expert_allocation(2, 2)
    model = _build("cgc", planted, num_experts=4)
    _, gates = model.forward(inputs)
    gates = gates.numpy()
    np.testing.assert_allclose(gates.sum(-1), 1.0, rtol=1e-5)
    assert np.all(gates[:, 0, 1] < 1e-6) and np.all(gates[:, 1, 0] < 1e-6)


def test_cross_stitch_starts_near_separate_towers(planted):
    _, _, (inputs, _) = planted
    model = _build("cross_stitch", planted)
    model(inputs)
    np.testing.assert_allclose(model.towers.stitches[0].numpy(), [[0.9, 0.1], [0.1, 0.9]])


def test_snr_codes_are_sampled_in_training_and_fixed_in_inference(planted):
    from model.baselines.snr_trans import GAMMA, ZETA

    _, _, (inputs, _) = planted
    model = _build("snr_trans", planted)
    model(inputs)
    routing = model.routing
    fixed = routing.codes(training=False).numpy()
    log_alpha = routing.log_alpha.numpy()
    expected = np.clip(1 / (1 + np.exp(-log_alpha)) * (ZETA - GAMMA) + GAMMA, 0, 1)
    np.testing.assert_allclose(fixed, expected, rtol=1e-6)
    draws = np.stack([routing.codes(training=True).numpy() for _ in range(20)])
    assert draws.std(0).max() > 0 and np.all((draws >= 0) & (draws <= 1))
    assert float(model.regularization()) > 0
