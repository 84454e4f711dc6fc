"""The real export served by `python -m serving.server` (a subprocess), over gRPC and REST."""

import http.client
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from contracts.layout import ITEM, USER
from model import trained
from model.entities import load_entities
from model.evaluation import predict_split
from model.local_cluster import free_port
from serving.client import ScoringClient


@pytest.fixture(scope="module")
def server(exported):
    base = os.path.dirname(exported)
    rest_port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.server",
            "--port=0",
            f"--rest_api_port={rest_port}",
            "--model_name=mogenet",
            f"--model_base_path={base}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    target = None
    for line in process.stdout:
        if line.startswith("serving mogenet on "):
            target = line.split(" on ", 1)[1].strip()
        if line.startswith("REST API on "):
            break
    assert target, f"the server exited with {process.poll()}"
    with ScoringClient(target, timeout_s=30) as client:
        client.output_names()  # waits for a loaded version through the client's retries
    yield process, target, rest_port
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def test_grpc_scores_equal_the_export_and_rank(server, exported, trained_model):
    _, target, _ = server
    entities = load_entities(os.path.join(trained_model, "entities"))
    user, items = entities[USER].ids[3], entities[ITEM].ids[:12] + ["never-seen-item"]
    local = tf.saved_model.load(exported).signatures["serving_default"]
    expected = local(user_id=tf.constant([user]), item_id=tf.constant(items))
    with ScoringClient(target) as client:
        scores = client.score(user, items)
        ranked = client.rank(user, items, rank_by="click", top_k=5)
    for task, values in expected.items():
        np.testing.assert_allclose(scores[task], values.numpy(), atol=1e-6)
    assert [item for item, _ in ranked] == [items[i] for i in np.argsort(-scores["click"])[:5]]


def test_score_examples_through_the_server_equal_the_trained_model(
    server, trained_model, pipeline_output
):
    import grpc

    _, target, _ = server
    model, entities = trained.load(trained_model)
    expected = predict_split(model, pipeline_output, "test", 256, entities)
    files = sorted(tf.io.gfile.glob(os.path.join(pipeline_output, "test", "*.tfrecord")))
    records = list(tf.data.TFRecordDataset(files).as_numpy_iterator())
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mogenet"
    request.model_spec.signature_name = "score_examples"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto(records, tf.string))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=60)
    for task in model.task_names:
        got = tf.make_ndarray(response.outputs[task])
        np.testing.assert_allclose(got, expected.scores[task], atol=1e-5, rtol=0)


def test_rest_predict_and_client_cli_then_sigterm_drains(server, trained_model):
    process, target, rest_port = server
    entities = load_entities(os.path.join(trained_model, "entities"))
    user, items = entities[USER].ids[0], entities[ITEM].ids[:4]
    body = json.dumps({"instances": [{"user_id": user, "item_id": i} for i in items]})
    connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=30)
    connection.request("POST", "/v1/models/mogenet:predict", body)
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    assert response.status == 200 and len(payload["predictions"]) == 4
    assert set(payload["predictions"][0]) == {"click", "conversion"}

    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "serving.client",
            "--server",
            target,
            "--model_name",
            "mogenet",
            "--user",
            user,
            "--items",
            ",".join(items),
            "--top_k",
            "3",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    ranked_lines = [line for line in shown.splitlines() if any(i in line for i in items)]
    assert len(ranked_lines) == 3
    with ScoringClient(target) as client:
        best = client.rank(user, items, top_k=3)
    assert [line.split()[1] for line in ranked_lines] == [item for item, _ in best]

    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0
