"""Every baseline builds, trains a step and scores; their defining structure."""

import numpy as np
import pytest
import tensorflow as tf

from model import trained
from model.baselines import BASELINE_CLASSES
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


def _without_neighbours(inputs):
    """The batch with every neighbour slot masked out (the roots kept)."""
    out = dict(inputs)
    for node_set in ("user", "item"):
        mask = inputs[f"{node_set}_mask"]
        out[f"{node_set}_mask"] = tf.concat([mask[:, :1], tf.zeros_like(mask[:, 1:])], 1)
    return out


def _with_known_user_roots(inputs):
    """The batch with its user roots (unknown ids, row 0) swapped for known users 1, 2, ..."""
    out = dict(inputs)
    index = inputs["user_index"]
    known = 1 + tf.range(tf.shape(index)[0]) % 12
    out["user_index"] = tf.concat([known[:, None], index[:, 1:]], 1)
    return out


def _build(name, planted, tasks=TASKS, **overrides):
    data_dir, entities, _ = planted
    config = ModelConfig(model=name, **{**TINY, **overrides})
    layout = DataSpec(data_dir).layout
    model = trained.build_model(config, tasks, layout, entities)
    model.compile(optimizer=make_optimizer("adam", 0.01))
    return model


@pytest.mark.parametrize("mgnn", [False, True])
@pytest.mark.parametrize("name", sorted(set(BASELINE_CLASSES) - {"ngcf"}))
def test_multi_task_baselines_train_a_step_and_read_the_graph_only_with_mgnn(name, mgnn, planted):
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
    # Every planted root is an unknown id (one shared encoding): only the neighbourhoods
    # tell the examples apart. "+ MGNN" scores vary over the batch and collapse to one
    # value once the neighbours are masked out; the plain model reads the roots alone.
    alone = model(_without_neighbours(inputs))
    known = model(_with_known_user_roots(inputs))
    for task, values in probabilities.items():
        values = values.numpy()
        assert values.shape == (32,)
        assert np.ptp(alone[task].numpy()) == 0
        if mgnn:
            assert np.ptp(values) > 1e-5
        else:
            np.testing.assert_array_equal(values, alone[task].numpy())
        assert np.abs(known[task].numpy() - values).max() > 1e-5  # the roots count


def test_ngcf_is_single_task_and_trains(planted):
    _, _, (inputs, labels) = planted
    with pytest.raises(ValueError, match="single-task"):
        _build("ngcf", planted)
    model = _build("ngcf", planted, tasks=("click",))
    logs = model.train_step((inputs, {"click": labels["click"]}))
    assert np.isfinite(float(logs["loss"]))
    probabilities = model(inputs)
    assert set(probabilities) == {"click"}
    values = probabilities["click"].numpy()
    # It scores from the propagated neighbourhoods (the planted roots are all one
    # unknown id), and padding slots propagate nothing.
    assert values.shape == (32,) and np.ptp(values) > 1e-5
    assert np.ptp(model(_without_neighbours(inputs))["click"].numpy()) == 0


def test_esmm_predicts_conversion_as_click_times_conditional(planted):
    _, _, (inputs, _) = planted
    model = _build("esmm", planted, mgnn=True)  # scores that differ over the batch
    click = model(inputs)["click"].numpy()
    # Pin the conditional's logit to a constant c (zero weights, bias c): then
    # p(conversion) = p(click) · σ(c) for every example, and p(click) does not move.
    kernel, bias = (w.numpy() for w in model.task_logits.weights)
    for c, share in ((0.0, 0.5), (np.log(3.0), 0.75), (-np.log(3.0), 0.25)):
        model.task_logits.set_weights(
            [np.concatenate([kernel[:1], np.zeros_like(kernel[1:])]), np.float32([bias[0], c])]
        )
        p = model(inputs)
        np.testing.assert_array_equal(p["click"].numpy(), click)
        np.testing.assert_allclose(p["conversion"].numpy(), share * click, rtol=1e-5)
    a, b = tf.constant([-30.0, 0.0, 3.0, 30.0]), tf.constant([30.0, 0.0, -2.0, 30.0])
    expected = (tf.sigmoid(a) * tf.sigmoid(b)).numpy()
    np.testing.assert_allclose(tf.sigmoid(product_logit(a, b)).numpy(), expected, rtol=1e-4)


def test_cgc_gates_mix_only_own_and_shared_experts(planted):
    _, _, (inputs, _) = planted
    assert expert_allocation(4, 2) == [[1, 0, 1, 1], [0, 1, 1, 1]]
    with pytest.raises(ValueError, match="needs more than"):
        expert_allocation(2, 2)
    model = _build("cgc", planted, num_experts=4)
    logits, gates = (t.numpy() for t in model.forward(inputs))
    assert np.all(gates[:, 0, 1] < 1e-6) and np.all(gates[:, 1, 0] < 1e-6)
    # Moving one expert's output moves the logits of the tasks that may use it, only.
    bias = model.experts.biases[-1]
    original = bias.numpy()
    for expert, moved in ((0, [True, False]), (1, [False, True]), (2, [True, True])):
        shifted = original.copy()
        shifted[expert] += 1.0
        bias.assign(shifted)
        changed = np.abs(model.forward(inputs)[0].numpy() - logits).max(0) > 1e-6
        bias.assign(original)
        assert changed.tolist() == moved, expert


def test_cross_stitch_starts_near_separate_towers(planted):
    _, _, (inputs, _) = planted
    model = _build("cross_stitch", planted)
    model(inputs)
    np.testing.assert_allclose(model.towers.stitches[0].numpy(), [[0.9, 0.1], [0.1, 0.9]])


def test_snr_codes_are_sampled_in_training_and_fixed_in_inference(planted):
    from model.baselines.snr_trans import GAMMA, L0_LAMBDA, ZETA

    _, _, (inputs, _) = planted
    model = _build("snr_trans", planted)
    model(inputs)
    routing = model.routing
    # Inference: z = clip(σ(log α)(ζ − γ) + γ, 0, 1), so log α = 0 gives (ζ + γ)/2 and a
    # large |log α| the hard 0 or 1.
    routing.log_alpha.assign([[0.0, 20.0, -20.0, 0.0], [-20.0, 0.0, 0.0, 20.0]])
    half = (ZETA + GAMMA) / 2
    np.testing.assert_allclose(
        routing.codes(training=False).numpy(),
        [[half, 1.0, 0.0, half], [0.0, half, half, 1.0]],
        rtol=1e-6,
    )
    # Training draws a fresh code per step; the stretch and clip put mass on exactly 0
    # and exactly 1, and the L0 penalty is the expected count of non-zero codes.
    routing.log_alpha.assign([[-2.0, -0.5, 0.5, 2.0], [1.0, 0.0, -1.0, 3.0]])
    tf.keras.utils.set_random_seed(0)
    draws = np.stack([routing.codes(training=True).numpy() for _ in range(400)])
    assert (draws == 0).any() and (draws == 1).any()
    assert draws.std(0).min() > 0
    nonzero = (draws > 0).sum((1, 2)).mean()
    assert float(model.regularization()) == pytest.approx(L0_LAMBDA * nonzero, rel=0.05)
