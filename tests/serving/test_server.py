"""The TF Serving–compatible server, in process, on a small hand-made SavedModel."""

import logging
import os
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.client import ScoringClient, ScoringError
from serving.grpc_api import make_server
from serving.versions import ModelManager


class _Scorer(tf.Module):
    def __init__(self, bias):
        super().__init__()
        self.bias = tf.Variable(bias)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="item_id"),
        ]
    )
    def serve(self, user_id, item_id):
        users, items = tf.size(user_id), tf.size(item_id)
        ok = tf.logical_or(tf.equal(users, 1), tf.equal(users, items))
        with tf.control_dependencies([tf.debugging.Assert(ok, ["user_id needs 1 or N ids"])]):
            score = tf.cast(tf.strings.to_hash_bucket_fast(item_id, 100), tf.float32) / 100.0
        return {"click": score + self.bias, "conversion": score * 0.5}


def _expected(items, bias):
    buckets = tf.strings.to_hash_bucket_fast(tf.constant(items), 100).numpy() / 100.0
    return {"click": buckets + bias, "conversion": buckets * 0.5}


def _bias(manager):
    """The bias of the served version, read from its checkpoint."""
    checkpoint = os.path.join(manager.current.path, "variables", "variables")
    return float(tf.train.load_variable(checkpoint, "bias/.ATTRIBUTES/VARIABLE_VALUE"))


def _save(base, version, bias):
    module = _Scorer(bias)
    tf.saved_model.save(
        module, os.path.join(base, str(version)), signatures={"serving_default": module.serve}
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("export") / "mogenet")
    _save(base, 1, 0.0)
    manager = ModelManager("mogenet", base)
    manager.start(poll_s=3600)  # the tests poll by hand
    server, port, _ = make_server(manager, "127.0.0.1", 0, max_items=50, max_message_bytes=1 << 20)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield base, manager, f"127.0.0.1:{port}", channel
    channel.close()
    manager.stop()
    server.stop(None)


def _request(**inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mogenet"
    for name, (values, dtype) in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype))
    return request


def _code(channel, request, method="Predict"):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as error:
        getattr(stub, method)(request, timeout=10)
    return error.value.code()


def test_predict_broadcasts_one_user_and_reports_the_version(served):
    _, manager, target, _ = served
    items = ["i1", "i2", "i3"]
    with ScoringClient(target) as client:
        scores = client.score("u1", items)
        assert client.output_names() == ["click", "conversion"]
    bias = _bias(manager)
    for task, expected in _expected(items, bias).items():
        np.testing.assert_allclose(scores[task], expected, rtol=1e-6)


def test_every_bad_request_gets_its_code_and_the_server_keeps_serving(served):
    _, _, target, channel = served
    good = _request(user_id=(["u"], tf.string), item_id=(["a", "b"], tf.string))
    other = predict_pb2.PredictRequest()
    other.CopyFrom(good)
    other.model_spec.name = "nope"
    assert _code(channel, other) == grpc.StatusCode.NOT_FOUND
    pinned = predict_pb2.PredictRequest()
    pinned.CopyFrom(good)
    pinned.model_spec.version.value = 99
    assert _code(channel, pinned) == grpc.StatusCode.NOT_FOUND
    signature = predict_pb2.PredictRequest()
    signature.CopyFrom(good)
    signature.model_spec.signature_name = "score_everything"
    assert _code(channel, signature) == grpc.StatusCode.FAILED_PRECONDITION
    missing = _request(item_id=(["a"], tf.string))
    assert _code(channel, missing) == grpc.StatusCode.INVALID_ARGUMENT
    extra = _request(user_id=(["u"], tf.string), item_id=(["a"], tf.string), x=([1.0], tf.float32))
    assert _code(channel, extra) == grpc.StatusCode.INVALID_ARGUMENT
    dtype = _request(user_id=(["u"], tf.string), item_id=([1.0, 2.0], tf.float32))
    assert _code(channel, dtype) == grpc.StatusCode.INVALID_ARGUMENT
    lengths = _request(user_id=(["u", "v"], tf.string), item_id=(["a", "b", "c"], tf.string))
    assert _code(channel, lengths) == grpc.StatusCode.INVALID_ARGUMENT
    many = _request(user_id=(["u"], tf.string), item_id=([f"i{k}" for k in range(60)], tf.string))
    assert _code(channel, many) == grpc.StatusCode.RESOURCE_EXHAUSTED
    huge = _request(user_id=(["u"], tf.string), item_id=(["x" * (2 << 20)], tf.string))
    assert _code(channel, huge) == grpc.StatusCode.RESOURCE_EXHAUSTED
    claimed = predict_pb2.PredictRequest()  # a shape far beyond the values sent
    claimed.CopyFrom(good)
    claimed.inputs["item_id"].tensor_shape.dim[0].size = 10**9
    assert _code(channel, claimed) == grpc.StatusCode.RESOURCE_EXHAUSTED
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = "mogenet"
    assert _code(channel, classify, "Classify") == grpc.StatusCode.UNIMPLEMENTED
    with ScoringClient(target) as client:
        assert len(client.score("u", ["a", "b"])["click"]) == 2


def test_string_tensors_are_read_as_tensorflow_reads_them(served):
    # The shape gives the element count (Tensor::FromProto): extra values are
    # ignored and missing ones repeat the last, so a limit on the shape is a
    # limit on the work.
    _, manager, target, channel = served
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    bias = _bias(manager)
    shapeless = _request(user_id=(["u"], tf.string), item_id=(["a"], tf.string))
    del shapeless.inputs["item_id"].tensor_shape.dim[:]  # a scalar...
    shapeless.inputs["item_id"].string_val.extend([f"i{k}".encode() for k in range(60)])
    (click,) = tf.make_ndarray(stub.Predict(shapeless, timeout=10).outputs["click"])  # ...of "a"
    np.testing.assert_allclose(click, _expected(["a"], bias)["click"][0], rtol=1e-6)
    short = _request(user_id=(["u"], tf.string), item_id=(["a", "b"], tf.string))
    short.inputs["item_id"].tensor_shape.dim[0].size = 3
    clicks = tf.make_ndarray(stub.Predict(short, timeout=10).outputs["click"])
    np.testing.assert_allclose(clicks, _expected(["a", "b", "b"], bias)["click"], rtol=1e-6)


def test_model_status_is_available(served):
    _, manager, _, channel = served
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "mogenet"
    (status,) = stub.GetModelStatus(request, timeout=10).model_version_status
    assert status.version == manager.current.version
    assert get_model_status_pb2.ModelVersionStatus.State.Name(status.state) == "AVAILABLE"
    request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as error:
        stub.GetModelStatus(request, timeout=10)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def _predict_until(stop, target, record, failures):
    """Sends Predict requests until `stop` is set: record(version) per answer, codes of errors."""
    request = _request(user_id=(["u"], tf.string), item_id=(["a", "b"], tf.string))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    while not stop.is_set():
        try:
            record(stub.Predict(request, timeout=10).model_spec.version.value)
        except grpc.RpcError as e:
            failures.append(e.code())


def test_a_new_version_swaps_in_under_load_and_a_corrupt_one_is_skipped(served, caplog):
    base, manager, target, _ = served
    failures, versions, stop = [], set(), threading.Event()
    load = lambda: _predict_until(stop, target, versions.add, failures)
    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    _save(base, 2, 1.0)
    manager.poll()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert versions == {1, 2} and manager.current.version == 2
    os.makedirs(os.path.join(base, "3"))
    with open(os.path.join(base, "3", "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    with caplog.at_level(logging.ERROR, logger="serving.server"):
        manager.poll()
    assert manager.current.version == 2
    assert "version 3 failed to load" in caplog.text
    with ScoringClient(target) as client:
        np.testing.assert_allclose(
            client.score("u", ["a"])["click"], _expected(["a"], 1.0)["click"], rtol=1e-6
        )
    with ScoringClient(target, version=1) as client, pytest.raises(ScoringError, match="NOT_FOUND"):
        client.score("u", ["a"])


def test_cli_serves_then_drains_on_sigterm(served, tmp_path):
    import signal

    from model.local_cluster import free_port

    rest_port = free_port()
    process, target = _start_cli(served[0], "--rest_api_port", str(rest_port))
    try:
        with ScoringClient(target, timeout_s=10) as client:
            assert len(client.score("u", ["a", "b", "c"])["click"]) == 3
        assert process.stdout.readline().strip() == f"REST API on 127.0.0.1:{rest_port}"
        assert _http(rest_port, "GET", "/v1/models/mogenet")[0] == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "draining" in _log_of(process)
    finally:
        process.kill()


def _start_cli(base, *flags):
    """Starts `python -m serving.server` on `base`; returns (process, gRPC target)."""
    import subprocess
    import sys
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    log = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill and block the server
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "--port", "0", "--model_name", "mogenet"]
        + ["--model_base_path", base, *flags],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    process.log = log
    line = process.stdout.readline()
    if not line.startswith("serving mogenet on 127.0.0.1:"):
        process.kill()
        raise AssertionError(line + _log_of(process))
    return process, line.split(" on ")[1].strip()


def _log_of(process) -> str:
    """What a `_start_cli` server wrote to stderr so far."""
    process.log.seek(0)
    return process.log.read()


def test_cli_processes_share_the_ports_sum_their_metrics_and_stop_together(served):
    import re
    import signal

    import psutil

    from model.local_cluster import free_port
    from serving.rest import METRICS_PATH

    rest_port = free_port()
    process, target = _start_cli(
        served[0], "--num_processes", "2", "--rest_api_port", str(rest_port)
    )
    try:
        assert process.stdout.readline().strip() == f"REST API on 127.0.0.1:{rest_port}"
        workers = psutil.Process(process.pid).children()
        assert len(workers) == 2
        request = _request(user_id=(["u"], tf.string), item_id=(["a", "b"], tf.string))
        channels = []
        for _ in range(20):  # each over a connection of its own, as separate clients
            channel = grpc.insecure_channel(target, [("grpc.use_local_subchannel_pool", 1)])
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            assert len(stub.Predict(request, timeout=10).outputs["click"].tensor_content) == 8
            channels.append(channel)
        port = int(target.rsplit(":", 1)[1])
        served_by = [
            sum(c.laddr.port == port and c.status == "ESTABLISHED" for c in w.net_connections())
            for w in workers
        ]
        # The kernel spread the 20 connections over both processes (all on one: p = 2e-6).
        assert sum(served_by) == 20 and min(served_by) > 0, served_by
        for channel in channels:
            channel.close()
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
        connection.request("GET", METRICS_PATH)
        text = connection.getresponse().read().decode()
        connection.close()
        counted = re.search(
            r'tensorflow_serving_request_count_total\{api="grpc",model_name="mogenet",'
            r'signature_name="serving_default",status="OK"\} (\S+)',
            text,
        )
        assert counted and float(counted.group(1)) == 20, text  # over both processes
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    finally:
        for child in psutil.Process(process.pid).children() if process.poll() is None else []:
            child.kill()
        process.kill()


def test_cli_polls_and_swaps_in_a_new_version_under_load(tmp_path):
    import signal

    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    process, target = _start_cli(base, "--file_system_poll_wait_seconds", "0.2")
    failures, seen, stop = [], [[] for _ in range(4)], threading.Event()
    versions = seen[0]
    clients = [
        threading.Thread(target=_predict_until, args=(stop, target, versions.append, failures))
        for versions in seen
    ]
    try:
        for client in clients:
            client.start()
        time.sleep(0.5)
        staging = os.path.join(str(tmp_path), "staging")
        _save(staging, 2, 0.5)
        os.rename(os.path.join(staging, "2"), os.path.join(base, "2"))  # as serving.export does
        deadline = time.time() + 60
        while time.time() < deadline and (not versions or versions[-1] != 2):
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
        process.kill()
    assert failures == [] and versions[0] == 1 and versions[-1] == 2
    for versions in seen:  # each client's requests, one after another: never back to 1
        assert versions and sorted(versions) == versions
    assert code == 0


def test_workers_of_a_killed_supervisor_stop_by_themselves(served):
    import psutil

    process, _ = _start_cli(served[0], "--num_processes", "2")
    workers = psutil.Process(process.pid).children()
    assert len(workers) == 2
    process.kill()
    process.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    for worker in alive:
        worker.kill()
    assert alive == [] and len(gone) == 2  # without their watch they would serve on


class _Slow(tf.Module):
    """Works for as many rounds as its first item id says: a request that stays in flight."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="user_id"),
            tf.TensorSpec([None], tf.string, name="item_id"),
        ]
    )
    def serve(self, user_id, item_id):
        rounds = tf.strings.to_number(item_id[0], tf.int32)
        x = tf.while_loop(
            lambda i, x: i < rounds,
            lambda i, x: (i + 1, tf.tanh(tf.matmul(x, x))),
            [tf.constant(0), tf.fill([64, 64], 0.01)],
        )[1]
        return {"click": tf.fill([tf.size(item_id)], tf.reduce_mean(x))}


def test_sigterm_lets_a_request_in_flight_finish(tmp_path):
    import signal

    base = str(tmp_path / "mogenet")
    module = _Slow()
    tf.saved_model.save(
        module, os.path.join(base, "1"), signatures={"serving_default": module.serve}
    )
    process, target = _start_cli(base, "--drain_s", "20")
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))

        def ask(rounds):
            request = _request(user_id=(["u"], tf.string), item_id=([str(rounds)], tf.string))
            return stub.Predict(request, timeout=60)

        rounds, took = 1000, 0.0
        while took < 0.5:  # until a request takes half a second
            rounds *= 4
            started = time.perf_counter()
            ask(rounds)
            took = time.perf_counter() - started
        rounds *= 4  # about 2 s or more
        started = time.perf_counter()
        answers, errors = [], []

        def slow():
            try:
                answers.append(ask(rounds))
            except grpc.RpcError as e:
                errors.append(e.code())

        worker = threading.Thread(target=slow)
        worker.start()
        time.sleep(0.5)  # the request is being worked on
        process.send_signal(signal.SIGTERM)
        worker.join(timeout=60)
        assert errors == [] and len(answers) == 1
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def _http(port, method, path, body=None):
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=None if body is None else json.dumps(body))
    response = connection.getresponse()
    payload = json.loads(response.read())
    connection.close()
    return response.status, payload


def test_rest_api_as_tf_serving_has_it(served):
    import base64

    from serving.rest import start_rest_server

    _, manager, _, _ = served
    rest, port = start_rest_server(manager, "127.0.0.1", 0, max_items=50, max_message_bytes=4096)
    try:
        version = manager.current.version
        bias = _bias(manager)
        columnar = {
            "inputs": {"user_id": ["u"], "item_id": ["a", {"b64": base64.b64encode(b"b").decode()}]}
        }
        status, payload = _http(port, "POST", "/v1/models/mogenet:predict", columnar)
        assert status == 200
        np.testing.assert_allclose(
            payload["outputs"]["click"], _expected(["a", "b"], bias)["click"], rtol=1e-6
        )
        rows = {"instances": [{"user_id": "u", "item_id": "a"}, {"user_id": "v", "item_id": "c"}]}
        status, payload = _http(
            port, "POST", f"/v1/models/mogenet/versions/{version}:predict", rows
        )
        assert status == 200 and len(payload["predictions"]) == 2
        assert set(payload["predictions"][1]) == {"click", "conversion"}
        status, payload = _http(port, "GET", "/v1/models/mogenet")
        assert status == 200
        assert payload["model_version_status"][0] == {
            "version": str(version),
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
        status, payload = _http(port, "GET", "/v1/models/mogenet/metadata")
        outputs = payload["metadata"]["signature_def"]["signatureDef"]["serving_default"]["outputs"]
        assert status == 200 and set(outputs) == {"click", "conversion"}
        assert _http(port, "GET", "/v1/models/other")[0] == 404
        assert _http(port, "POST", "/v1/models/mogenet/versions/99:predict", columnar)[0] == 404
        assert (
            _http(port, "POST", "/v1/models/mogenet:predict", {"signature_name": "x", **columnar})[
                0
            ]
            == 400
        )
        assert (
            _http(port, "POST", "/v1/models/mogenet:predict", {"inputs": {"item_id": ["a"]}})[0]
            == 400
        )
        many = {"inputs": {"user_id": ["u"], "item_id": [f"i{k}" for k in range(60)]}}
        status, payload = _http(port, "POST", "/v1/models/mogenet:predict", many)
        assert status == 429 and "above the limit" in payload["error"]
        lengths = {"inputs": {"user_id": ["u", "v"], "item_id": ["a", "b", "c"]}}
        assert _http(port, "POST", "/v1/models/mogenet:predict", lengths)[0] == 400
        dtype = {"inputs": {"user_id": ["u"], "item_id": [1.5]}}
        assert _http(port, "POST", "/v1/models/mogenet:predict", dtype)[0] == 400
        extra = {"inputs": {"user_id": ["u"], "item_id": ["a"], "x": [1.0]}}
        assert _http(port, "POST", "/v1/models/mogenet:predict", extra)[0] == 400
        huge = {"inputs": {"user_id": ["u"], "item_id": ["x" * 5000]}}
        status, payload = _http(port, "POST", "/v1/models/mogenet:predict", huge)
        assert status == 429 and "bytes is above the limit" in payload["error"]
        listed = {"signature_name": ["serving_default"], **columnar}
        assert _http(port, "POST", "/v1/models/mogenet:predict", listed)[0] == 400
        import socket

        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(
                b"POST /v1/models/mogenet:predict HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: -1\r\n\r\n{}"
            )
            answer = raw.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 400") and "Connection: close" in answer
        assert _http(port, "POST", "/v1/models/mogenet:predict", columnar)[0] == 200
    finally:
        rest.shutdown()


def test_health_reflection_and_prometheus_metrics(served):
    import http.client

    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from serving.metrics import ServerMetrics
    from serving.rest import METRICS_PATH, start_rest_server

    _, manager, target, channel = served
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    (answer,) = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    services = {s.name for s in answer.list_services_response.service}
    assert {"tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"} <= services

    metrics = ServerMetrics()
    rest, port = start_rest_server(manager, "127.0.0.1", 0, max_items=50, metrics=metrics)
    try:
        body = {"inputs": {"user_id": ["u"], "item_id": ["a"]}}
        assert _http(port, "POST", "/v1/models/mogenet:predict", body)[0] == 200
        assert _http(port, "POST", "/v1/models/other:predict", body)[0] == 404
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", METRICS_PATH)
        text = connection.getresponse().read().decode()
        connection.close()
    finally:
        rest.shutdown()
    assert 'tensorflow_serving_request_count_total{api="rest",model_name="mogenet"' in text
    assert 'status="OK"' in text and 'status="NOT_FOUND"' in text
    assert 'model_name="other"' not in text and 'model_name="<unknown>"' in text
    assert 'api="rest",model_name="mogenet",signature_name="serving_default"' in text
    assert "tensorflow_serving_request_latency_seconds_bucket" in text


def test_health_is_not_serving_until_a_version_loads(tmp_path):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    base = str(tmp_path / "mogenet")
    manager = ModelManager("mogenet", base)
    manager.poll()  # nothing to load yet
    server, port, _ = make_server(manager, "127.0.0.1", 0, max_items=50, max_message_bytes=1 << 20)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        health = health_pb2_grpc.HealthStub(channel)

        def status():
            request = health_pb2.HealthCheckRequest(service="tensorflow.serving.PredictionService")
            return health.Check(request, timeout=10).status

        assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
        request = _request(user_id=(["u"], tf.string), item_id=(["a"], tf.string))
        assert _code(channel, request) == grpc.StatusCode.NOT_FOUND
        _save(base, 1, 0.0)
        manager.poll()
        assert status() == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()
        server.stop(None)


def test_tls_port_serves_clients_that_trust_its_certificate(served, tmp_path):
    import subprocess

    from serving.grpc_api import tls_credentials

    cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert]
        + ["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    _, manager, _, _ = served
    server, port, _ = make_server(
        manager, "127.0.0.1", 0, 50, 1 << 20, credentials=tls_credentials(cert, key)
    )
    server.start()
    try:
        with open(cert, "rb") as f:
            trusted = f.read()
        with ScoringClient(f"localhost:{port}", root_certificates=trusted, timeout_s=10) as client:
            assert len(client.score("u", ["a", "b"])["click"]) == 2
        with ScoringClient(f"localhost:{port}", timeout_s=2, retries=0) as plain:
            with pytest.raises(ScoringError, match="UNAVAILABLE"):
                plain.score("u", ["a"])
    finally:
        server.stop(None)

    import http.client
    import ssl

    from serving.rest import start_rest_server, tls_context

    rest, rest_port = start_rest_server(
        manager, "127.0.0.1", 0, max_items=50, ssl_context=tls_context(cert, key)
    )
    try:
        import socket

        silent = socket.create_connection(("127.0.0.1", rest_port))  # connects, says nothing
        trusting = ssl.create_default_context(cafile=cert)
        connection = http.client.HTTPSConnection(
            "localhost", rest_port, context=trusting, timeout=10
        )
        connection.request("GET", "/v1/models/mogenet")
        assert connection.getresponse().status == 200
        connection.close()
        with pytest.raises(ssl.SSLError):
            connection = http.client.HTTPSConnection("localhost", rest_port, timeout=5)
            connection.request("GET", "/v1/models/mogenet")
        silent.close()
    finally:
        rest.shutdown()


def _warmup_file(version_dir, inputs):
    from tensorflow_serving.apis import prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mogenet"
    for key, values in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(values, tf.string))
    entry = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    os.makedirs(os.path.join(version_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(
        os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    ) as writer:
        for _ in range(3):
            writer.write(entry.SerializeToString())


def test_warmup_requests_run_before_a_version_serves_and_a_failing_one_blocks_it(tmp_path):
    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.25)
    _warmup_file(os.path.join(base, "1"), {"user_id": ["u"], "item_id": ["a", "b"]})
    manager = ModelManager("mogenet", base)
    manager.poll()
    assert manager.current.version == 1 and manager.current.warmed_up == 3
    _save(base, 2, 0.5)  # its warm-up asks for an input the signature does not have
    _warmup_file(os.path.join(base, "2"), {"user": ["u"], "item_id": ["a"]})
    manager.poll()
    assert manager.current.version == 1


class _RecordingVersion:
    """Stands in for a LoadedVersion: doubles `x`, fails on a negative value, records calls."""

    def __init__(self):
        self.calls = []
        self.started = threading.Event()
        self.release = threading.Event()

    def run(self, signature, inputs, outputs=None):
        x = inputs["x"]
        self.calls.append(len(x))
        if len(self.calls) == 1:  # hold the first call so that others queue up
            self.started.set()
            self.release.wait(10)
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": x * 2}


def test_batcher_batches_queued_requests_and_keeps_errors_to_their_request():
    from serving.batching import Batcher

    version = _RecordingVersion()
    batcher = Batcher(version, "serving_default", max_items=10)
    results, errors = {}, {}

    def call(k, values):
        try:
            results[k] = batcher.run({"x": np.array(values, np.float32)}, len(values))["y"]
        except ValueError as e:
            errors[k] = str(e)

    first = threading.Thread(target=call, args=(0, [1.0]))
    first.start()
    assert version.started.wait(10)
    queued = [(1, [2.0, 3.0]), (2, [-1.0]), (3, [4.0] * 4), (4, [5.0] * 6)]
    threads = [threading.Thread(target=call, args=q) for q in queued]
    for count, thread in enumerate(threads, 1):  # one at a time: a known queue order
        thread.start()
        deadline = time.time() + 10
        while len(batcher._queue) < count and time.time() < deadline:
            time.sleep(0.005)
    version.release.set()
    for thread in [first, *threads]:
        thread.join(10)
    # Alone first; then 1-3 in one batch of 7 rows (4 would pass 10), which fails
    # on request 2 and is rerun request by request; then 4 alone.
    assert version.calls == [1, 7, 2, 1, 4, 6]
    assert errors == {2: "negative input"}
    for k, values in [(0, [1.0]), *[q for q in queued if q[0] != 2]]:
        np.testing.assert_array_equal(results[k], np.array(values, np.float32) * 2)


class _MisalignedVersion:
    """Answers one row fewer than it was given when batched: outputs that are not per row."""

    def __init__(self):
        self.calls = []

    def run(self, signature, inputs, outputs=None):
        x = inputs["x"]
        self.calls.append(len(x))
        return {"y": x[:-1] if len(x) > 1 else x}


def test_batcher_runs_requests_alone_when_outputs_are_not_one_row_per_input():
    from serving.batching import Batcher, _Job

    version = _MisalignedVersion()
    batcher = Batcher(version, "serving_default", max_items=10)
    jobs = [_Job({"x": np.array([float(k)])}, 1) for k in range(3)]
    batcher._queue.extend(jobs)
    batcher._busy = True
    batcher._run_queue()
    assert version.calls == [3, 1, 1, 1] and not batcher._busy
    assert [float(job.outputs["y"][0]) for job in jobs] == [0.0, 1.0, 2.0]
    assert all(job.event.is_set() for job in jobs)


def _copy_version(base, source, version):
    """Copies version `source` to `version` aside, then renames it into place (as exporters do)."""
    import shutil

    staging = os.path.join(base, f".staging-{version}")
    shutil.copytree(os.path.join(base, str(source)), staging)
    os.rename(staging, os.path.join(base, str(version)))


def _batching_server(base):
    """A manager with batching (so versions have Batchers) and its gRPC server, started."""
    manager = ModelManager("mogenet", base, max_batch_items=64)
    manager.poll()
    server, port, _ = make_server(manager, "127.0.0.1", 0, max_items=50, max_message_bytes=1 << 20)
    server.start()
    return manager, server, f"127.0.0.1:{port}"


def _is_closed(version):
    """The version, its Session and its Batchers are all closed."""
    return (
        version.closed
        and version.session._closed
        and version.batchers
        and all(b.closed for b in version.batchers.values())
    )


def test_a_request_in_flight_on_a_swapped_out_version_finishes_then_the_version_closes(tmp_path):
    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    manager, server, target = _batching_server(base)
    old = manager.current
    entered, release = threading.Event(), threading.Event()
    run = old.run

    def held_run(*args, **kwargs):  # the request stays in flight until `release`
        entered.set()
        assert release.wait(30)
        return run(*args, **kwargs)

    old.run = held_run
    answers, errors = [], []

    def ask():
        stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
        try:
            request = _request(user_id=(["u"], tf.string), item_id=(["a", "b"], tf.string))
            answers.append(stub.Predict(request, timeout=30))
        except grpc.RpcError as e:
            errors.append(e.code())

    worker = threading.Thread(target=ask)
    try:
        worker.start()
        assert entered.wait(30) and old.holders == 1
        _save(base, 2, 1.0)
        manager.poll()
        assert manager.current.version == 2
        assert not old.closed and not old.session._closed  # its request is still running
        with ScoringClient(target) as client:  # new requests go to version 2 meanwhile
            np.testing.assert_allclose(
                client.score("u", ["a"])["click"], _expected(["a"], 1.0)["click"], rtol=1e-6
            )
        release.set()
        worker.join(30)
        assert errors == [] and len(answers) == 1
        assert answers[0].model_spec.version.value == 1
        np.testing.assert_allclose(
            tf.make_ndarray(answers[0].outputs["click"]), _expected(["a", "b"], 0.0)["click"]
        )
        assert old.holders == 0 and _is_closed(old)
        with pytest.raises(RuntimeError):  # the closed Session and Batchers take nothing
            run("serving_default", {"user_id": np.array([b"u"]), "item_id": np.array([b"a"])})
        with pytest.raises(RuntimeError, match="closed"):
            old.batchers["serving_default"].run({"user_id": np.array([b"u"])}, 1)
        assert not manager.current.closed
    finally:
        release.set()
        server.stop(None)


def test_swapped_out_and_removed_versions_close_at_once_when_idle(tmp_path, caplog):
    import shutil

    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    manager, server, target = _batching_server(base)
    try:
        first = manager.current
        _copy_version(base, 1, 2)
        manager.poll()
        second = manager.current
        assert second.version == 2 and _is_closed(first) and not second.closed
        _copy_version(base, 1, 3)
        shutil.rmtree(os.path.join(base, "1"))
        manager.poll()
        third = manager.current
        assert third.version == 3 and _is_closed(second)
        shutil.rmtree(os.path.join(base, "3"))  # removed: the newest left (2) is served again
        manager.poll()
        assert manager.current.version == 2 and _is_closed(third)
        shutil.rmtree(os.path.join(base, "2"))  # nothing left: keep serving it, as said
        with caplog.at_level(logging.WARNING, logger="serving.server"):
            manager.poll()
            manager.poll()
        assert caplog.text.count("no other version is there") == 1
        assert manager.current.version == 2 and not manager.current.closed
        with ScoringClient(target) as client:
            assert len(client.score("u", ["a", "b"])["click"]) == 2
    finally:
        server.stop(None)


def test_no_request_fails_across_many_swaps(tmp_path):
    import shutil

    from serving.rest import start_rest_server

    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    manager, server, target = _batching_server(base)
    rest, rest_port = start_rest_server(manager, "127.0.0.1", 0, max_items=50)
    stop, failures = threading.Event(), []
    seen = [[] for _ in range(3)]
    threads = [
        threading.Thread(target=_predict_until, args=(stop, target, versions.append, failures))
        for versions in seen
    ]
    rest_answers = []

    def rest_client():
        body = {"inputs": {"user_id": ["u"], "item_id": ["a", "b"]}}
        while not stop.is_set():
            status, payload = _http(rest_port, "POST", "/v1/models/mogenet:predict", body)
            if status != 200:
                failures.append((status, payload))
            rest_answers.append(status)

    threads.append(threading.Thread(target=rest_client))
    loaded = [manager.current]
    try:
        for thread in threads:
            thread.start()
        for version in range(2, 17):
            _copy_version(base, version - 1, version)
            if version > 3:  # keep two on disk: removing idle old ones must not matter
                shutil.rmtree(os.path.join(base, str(version - 2)))
            manager.poll()
            loaded.append(manager.current)
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        rest.shutdown()
        server.stop(None)
    assert failures == []
    assert [v.version for v in loaded] == list(range(1, 17))
    assert all(_is_closed(v) for v in loaded[:-1]) and not loaded[-1].closed
    assert all(v.holders == 0 for v in loaded)
    for versions in seen:  # each client's answers, one after another: never back
        assert len(versions) > 15 and sorted(versions) == versions
    assert len({v for versions in seen for v in versions}) > 3 and len(rest_answers) > 5


def test_a_request_that_resolved_a_version_just_before_its_swap_runs_on_the_new_one(tmp_path):
    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    manager = ModelManager("mogenet", base, max_batch_items=64)
    manager.poll()
    old = manager.current
    acquire = old.acquire

    def swap_then_acquire():  # the swap lands between the request's resolve and its acquire
        _save(base, 2, 1.0)
        manager.poll()
        return acquire()

    old.acquire = swap_then_acquire
    with manager.use("mogenet") as model:
        assert model.version == 2 and model.holders == 1
        outputs = model.run(
            "serving_default", {"user_id": np.array([b"u"]), "item_id": np.array([b"a"])}
        )
    np.testing.assert_allclose(outputs["click"], _expected(["a"], 1.0)["click"], rtol=1e-6)
    assert _is_closed(old) and model.holders == 0 and not model.closed
    with pytest.raises(Exception) as error:  # pinned to the retired version
        with manager.use("mogenet", 1):
            pass
    assert error.value.code == grpc.StatusCode.NOT_FOUND


def test_the_next_poll_frees_a_closed_versions_graph(tmp_path):
    import weakref

    base = str(tmp_path / "mogenet")
    _save(base, 1, 0.0)
    manager = ModelManager("mogenet", base, max_batch_items=64)
    manager.poll()
    graph = weakref.ref(manager.current.graph)  # held in reference cycles: only gc frees it
    _copy_version(base, 1, 2)
    manager.poll()
    assert manager.current.version == 2
    manager.poll()
    assert graph() is None
