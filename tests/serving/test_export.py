"""`serving.export` on a real chain: files, signatures, parity, fallback, plain-TF loading."""

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from contracts.example_keys import id_key
from contracts.layout import ITEM, USER
from contracts.signatures import WARMUP_FILE
from model import trained
from model.entities import load_entities
from model.evaluation import predict_split, split_metrics
from model.input_pipeline import DataSpec
from serving import export as export_lib
from serving.representations import compute_representations, read_representations


def _test_records(data_dir):
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, "test", "*.tfrecord")))
    return list(tf.data.TFRecordDataset(files).as_numpy_iterator())


def _root_ids(records):
    spec = {
        id_key(s): tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
        for s in (USER, ITEM)
    }
    parsed = tf.io.parse_example(tf.constant(records), spec)
    return parsed[id_key(USER)][:, 0], parsed[id_key(ITEM)][:, 0]


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


def test_export_writes_a_tf_serving_layout(exported):
    base = os.path.dirname(os.path.dirname(exported))
    for name in ("models.config", "batching_parameters.txt", "monitoring.config"):
        assert os.path.getsize(os.path.join(base, name)) > 0
    assert 'name: "mogenet"' in open(os.path.join(base, "models.config")).read()
    assert not [e for e in os.listdir(os.path.dirname(exported)) if not e.isdigit()]
    shown = subprocess.run(
        # The venv's script, whether or not the venv is on PATH.
        [os.path.join(os.path.dirname(sys.executable), "saved_model_cli")]
        + ["show", "--all", "--dir", exported],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "signature_def['serving_default']" in shown
    assert "signature_def['score_examples']" in shown
    warmup = os.path.join(exported, WARMUP_FILE)
    requests = [
        prediction_log_pb2.PredictionLog.FromString(r).predict_log.request
        for r in tf.data.TFRecordDataset(warmup).as_numpy_iterator()
    ]
    assert {r.model_spec.signature_name for r in requests} == {"serving_default", "score_examples"}
    # TF Serving replays warm-up through its batching session, which rejects
    # inputs of unequal lengths: every request must be batchable.
    for r in requests:
        assert len({len(t.string_val) for t in r.inputs.values()}) == 1, r.model_spec


def test_score_examples_equals_the_trained_model(loaded, trained_model, pipeline_output):
    model, entities = trained.load(trained_model)
    expected = predict_split(model, pipeline_output, "test", 256, entities)
    records = _test_records(pipeline_output)
    got = loaded.signatures["score_examples"](examples=tf.constant(records))
    for task in model.task_names:
        assert got[task].shape == (len(records),)
        np.testing.assert_allclose(got[task].numpy(), expected.scores[task], atol=1e-5, rtol=0)


def test_baked_representations_reproduce_the_samples(loaded, trained_model, pipeline_output):
    """Held-out pairs' trees are their nodes' own: serving_default == score_examples on them."""
    entities = load_entities(os.path.join(trained_model, "entities"))
    records = _test_records(pipeline_output)
    users, items = _root_ids(records)
    known = np.array(
        [
            u.decode() in set(entities[USER].ids) and i.decode() in set(entities[ITEM].ids)
            for u, i in zip(users.numpy(), items.numpy(), strict=True)
        ]
    )
    assert known.sum() >= 20
    by_examples = loaded.signatures["score_examples"](examples=tf.constant(records))
    by_ids = loaded.signatures["serving_default"](user_id=users, item_id=items)
    for task, values in by_ids.items():
        np.testing.assert_allclose(
            values.numpy()[known], by_examples[task].numpy()[known], atol=1e-5, rtol=0
        )


def test_serving_default_gauc_matches_metrics_json(loaded, trained_model, pipeline_output):
    signature = loaded.signatures["serving_default"]
    tasks = sorted(signature.structured_outputs)
    result = split_metrics(
        export_lib.serving_predictions(signature, pipeline_output, "test", tasks, batch_size=64)
    )
    written = json.load(open(os.path.join(trained_model, "metrics.json")))["test"]
    for task in tasks:
        assert abs(result[task]["gauc"] - written[task]["gauc"]) <= 0.01


def test_unknown_ids_broadcast_and_bad_lengths(loaded, trained_model):
    entities = load_entities(os.path.join(trained_model, "entities"))
    serve = loaded.signatures["serving_default"]
    user = entities[USER].ids[0]
    items = entities[ITEM].ids[:5]
    once = serve(user_id=tf.constant([user]), item_id=tf.constant(items))
    repeated = serve(user_id=tf.constant([user] * 5), item_id=tf.constant(items))
    for task in once:
        np.testing.assert_array_equal(once[task].numpy(), repeated[task].numpy())
    # Unknown ids score as the average known node (row 0 = mean of the known rows).
    arrays = read_representations(os.path.join(trained_model, "representations"), entities, dim=8)
    for node_set in (USER, ITEM):
        for table in arrays[node_set].values():
            np.testing.assert_allclose(table[0], table[1:].mean(0), atol=1e-6)
    strangers = serve(user_id=tf.constant(["nobody", "no-one"]), item_id=tf.constant(["x", "y"]))
    for values in strangers.values():
        values = values.numpy()
        assert values[0] == values[1]
    # Any unknown user is the same fallback user, over known items too.
    nobody = serve(user_id=tf.constant(["nobody"]), item_id=tf.constant(items))
    no_one = serve(user_id=tf.constant(["no-one"] * 5), item_id=tf.constant(items))
    for task in nobody:
        np.testing.assert_array_equal(nobody[task].numpy(), no_one[task].numpy())
        assert not np.array_equal(nobody[task].numpy(), once[task].numpy())
    empty = serve(user_id=tf.constant([user]), item_id=tf.constant([], tf.string))
    assert all(v.shape == (0,) for v in empty.values())
    with pytest.raises(tf.errors.InvalidArgumentError, match="same length"):
        serve(user_id=tf.constant(["a", "b"]), item_id=tf.constant(["x", "y", "z"]))


def test_loads_in_plain_tensorflow_without_the_project(exported, loaded, tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow as tf
        loaded = tf.saved_model.load(sys.argv[1])
        out = loaded.signatures["serving_default"](
            user_id=tf.constant(["nobody"]), item_id=tf.constant(["x", "y"]))
        roots = {name.split(".")[0] for name in sys.modules}
        print(json.dumps({
            "outputs": {k: v.numpy().tolist() for k, v in out.items()},
            "imported": sorted(
                roots & {"tensorflow_gnn", "model", "serving", "beam_pipelines", "contracts"}
            ),
        }))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script, exported],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["imported"] == []
    here = loaded.signatures["serving_default"](
        user_id=tf.constant(["nobody"]), item_id=tf.constant(["x", "y"])
    )
    for task, values in answer["outputs"].items():
        np.testing.assert_allclose(values, here[task].numpy(), atol=1e-7)


def test_join_sampler_gives_the_same_representations(trained_model, pipeline_output, tmp_path):
    model, entities = trained.load(trained_model)
    output = str(tmp_path / "join")
    compute_representations(trained_model, pipeline_output, model.layout, 7, "join", None, output)
    joined = read_representations(output, entities, dim=8)
    memory = read_representations(os.path.join(trained_model, "representations"), entities, 8)
    for node_set, tables in memory.items():
        for name, table in tables.items():
            np.testing.assert_allclose(joined[node_set][name], table, atol=1e-6)


def test_the_sampler_seed_travels_in_model_json(trained_model, pipeline_output, tmp_path, caplog):
    spec = DataSpec(pipeline_output)
    description = json.load(open(os.path.join(trained_model, "model.json")))
    assert description["sampler_seed"] == 7 == trained.sampler_seed(trained_model)
    assert export_lib.sampler_seed(trained_model, spec) == 7
    # A model directory from before model.json held the seed: the data's stats.json, said.
    old = tmp_path / "old"
    old.mkdir()
    del description["sampler_seed"]
    (old / "model.json").write_text(json.dumps(description))
    with caplog.at_level(logging.WARNING, logger="serving.export"):
        assert export_lib.sampler_seed(str(old), spec) == 7
    assert "records no sampler_seed" in caplog.text
    bare = tmp_path / "bare"  # and data without stats.json: a one-line error
    bare.mkdir()
    for name in ("graph_schema.pbtxt", "layout.json"):
        shutil.copy(os.path.join(pipeline_output, name), bare / name)
    with pytest.raises(export_lib.ExportError, match="no stats.json"):
        export_lib.sampler_seed(str(old), DataSpec(str(bare)))


def test_next_export_reuses_representations_and_versions_never_overwrite(
    exported, trained_model, pipeline_output
):
    base = os.path.dirname(os.path.dirname(exported))
    success = os.path.join(trained_model, "representations", "_SUCCESS")
    before = os.path.getmtime(success)
    second = export_lib.export(trained_model, pipeline_output, base, "mogenet")
    assert second.endswith(os.path.join("mogenet", "2"))
    assert os.path.getmtime(success) == before
    with pytest.raises(export_lib.ExportError, match="never overwritten"):
        export_lib.export(trained_model, pipeline_output, base, "mogenet", version=1)
    assert (
        export_lib.main(
            ["--model_dir", "/nonexistent", "--data", pipeline_output, "--export_base", base]
        )
        == 2
    )


def test_saved_model_cli_run_answers_as_the_server_does(exported, tmp_path):
    """The check a TF Serving user makes: `saved_model_cli run` agrees with Predict over gRPC."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from serving.grpc_api import make_server
    from serving.versions import ModelManager

    warmup = os.path.join(exported, WARMUP_FILE)
    request = max(
        (
            prediction_log_pb2.PredictionLog.FromString(r).predict_log.request
            for r in tf.data.TFRecordDataset(warmup).as_numpy_iterator()
        ),
        key=lambda r: len(r.inputs["item_id"].string_val) if "item_id" in r.inputs else 0,
    )
    user = request.inputs["user_id"].string_val[0]
    items = list(request.inputs["item_id"].string_val[:5])
    # (user, item) pairs: a known user with known items, then unknown ids (scored as average).
    users = [user] * len(items) + [b"nobody", user]
    items = items + [items[0], b"no-such-item"]

    # As a user would run it: user_id as a Python literal (--input_exprs), item_id
    # from an .npz file (--inputs); outputs to .npy files (--outdir).
    npz = str(tmp_path / "items.npz")
    np.savez(npz, item_id=np.array(items))
    outdir = tmp_path / "out"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "run"]
        + ["--dir", exported, "--tag_set", "serve", "--signature_def", "serving_default"]
        + ["--input_exprs", f"user_id={users!r}", "--inputs", f"item_id={npz}[item_id]"]
        + ["--outdir", str(outdir), "--overwrite"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    cli = {name[: -len(".npy")]: np.load(outdir / name) for name in os.listdir(outdir)}

    base = str(tmp_path / "mogenet")
    shutil.copytree(exported, os.path.join(base, "1"))
    manager = ModelManager("mogenet", base, max_batch_items=1024)
    manager.poll()
    server, port, _ = make_server(manager, "127.0.0.1", 0, 10_000, 4 << 20)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            predict = predict_pb2.PredictRequest()
            predict.model_spec.name = "mogenet"
            predict.inputs["user_id"].CopyFrom(tf.make_tensor_proto(users, tf.string))
            predict.inputs["item_id"].CopyFrom(tf.make_tensor_proto(items, tf.string))
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            answer = stub.Predict(predict, timeout=60)
    finally:
        server.stop(None)
        manager.current.retire()
    served = {name: tf.make_ndarray(tensor) for name, tensor in answer.outputs.items()}
    assert set(cli) == set(served) and len(cli) >= 2  # one output per task
    for task, values in served.items():
        assert values.shape == cli[task].shape == (len(items),)
        np.testing.assert_allclose(cli[task], values, atol=1e-5, rtol=0)
        assert len(np.unique(values)) > 1  # pairs scored apart: not a constant answer
