"""Errors answer with TF Serving's codes, HTTP statuses and texts, on gRPC, REST and the metrics.

One table (`serving.status`) gives each error kind its gRPC code and HTTP
status; these tests ask for each kind over both APIs, in process and, for the
REST 404 that once came back as a 500, from `python -m serving.server`.
"""

import http.client
import json

import grpc
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2_grpc,
)

from serving import status
from serving.grpc_api import make_server
from serving.metrics import ServerMetrics
from serving.rest import METRICS_PATH, start_rest_server
from serving.versions import ModelManager
from tests.serving.test_server import _http, _log_of, _request, _save, _start_cli

MAX_ITEMS, MAX_REST_BYTES = 50, 4096
GOOD = {"user_id": ["u"], "item_id": ["a", "b"]}
MISSING = (
    "input size does not match signature: 1!=2 len({item_id}) != len({item_id,user_id}). "
    "Sent extra: {}. Missing but required: {user_id}."
)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(base path, manager, metrics, gRPC channel, REST port): both APIs share the metrics."""
    base = str(tmp_path_factory.mktemp("export") / "mogenet")
    _save(base, 1, 0.0)
    manager = ModelManager("mogenet", base)
    manager.poll()
    metrics = ServerMetrics()
    server, port, _ = make_server(
        manager, "127.0.0.1", 0, max_items=MAX_ITEMS, max_message_bytes=1 << 20, metrics=metrics
    )
    server.start()
    rest, rest_port = start_rest_server(
        manager, "127.0.0.1", 0, MAX_ITEMS, metrics, max_message_bytes=MAX_REST_BYTES
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield base, manager, metrics, channel, rest_port
    channel.close()
    rest.shutdown()
    server.stop(None)


def _predict(model="mogenet", version=None, signature="", **inputs):
    inputs = inputs or {k: (v, tf.string) for k, v in GOOD.items()}
    request = _request(**inputs)
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.model_spec.signature_name = signature
    return request


def _classify():
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "mogenet"
    return request


# kind: (gRPC method, its request, the REST request (method, path, body)).
REQUESTS = {
    "model_not_found": (
        "Predict",
        lambda: _predict(model="nope"),
        ("POST", "/v1/models/nope:predict", {"inputs": GOOD}),
    ),
    "version_not_found": (
        "Predict",
        lambda: _predict(version=9),
        ("POST", "/v1/models/mogenet/versions/9:predict", {"inputs": GOOD}),
    ),
    "signature_not_found": (
        "Predict",
        lambda: _predict(signature="x"),
        ("POST", "/v1/models/mogenet:predict", {"signature_name": "x", "inputs": GOOD}),
    ),
    "missing_input": (
        "Predict",
        lambda: _predict(item_id=(["a"], tf.string)),
        ("POST", "/v1/models/mogenet:predict", {"inputs": {"item_id": ["a"]}}),
    ),
    "wrong_dtype": (
        "Predict",
        lambda: _predict(user_id=(["u"], tf.string), item_id=([1.5], tf.float32)),
        ("POST", "/v1/models/mogenet:predict", {"inputs": {"user_id": ["u"], "item_id": [1.5]}}),
    ),
    "too_many_items": (
        "Predict",
        lambda: _predict(user_id=(["u"], tf.string), item_id=(["i"] * 60, tf.string)),
        (
            "POST",
            "/v1/models/mogenet:predict",
            {"inputs": {"user_id": ["u"], "item_id": ["i"] * 60}},
        ),
    ),
    "body_too_large": (
        "Predict",
        lambda: _predict(user_id=(["u"], tf.string), item_id=(["x" * (2 << 20)], tf.string)),
        (
            "POST",
            "/v1/models/mogenet:predict",
            {"inputs": {"user_id": ["u"], "item_id": ["x" * 5000]}},
        ),
    ),
    "unimplemented": (
        "Classify",
        _classify,
        ("POST", "/v1/models/mogenet:classify", {"examples": []}),
    ),
    "internal": (
        "Predict",
        _predict,
        ("POST", "/v1/models/mogenet:predict", {"inputs": GOOD}),
    ),
}

C = grpc.StatusCode
# kind: (gRPC code, gRPC message, REST code, REST message); None: any message.
EXPECTED = {
    "model_not_found": (
        C.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
        C.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    ),
    "version_not_found": (
        C.NOT_FOUND,
        "Servable not found for request: Specific(mogenet, 9)",
        C.NOT_FOUND,
        "Servable not found for request: Specific(mogenet, 9)",
    ),
    # As TF Serving: gRPC Predict's check, then the REST API's own (made
    # while it reads the JSON body), with their codes and words.
    "signature_not_found": (
        C.FAILED_PRECONDITION,
        'Serving signature key "x" not found.',
        C.INVALID_ARGUMENT,
        'Serving signature name: "x" not found in signature def',
    ),
    "missing_input": (C.INVALID_ARGUMENT, MISSING, C.INVALID_ARGUMENT, MISSING),
    "wrong_dtype": (C.INVALID_ARGUMENT, None, C.INVALID_ARGUMENT, None),
    "too_many_items": (
        C.RESOURCE_EXHAUSTED,
        "request holds 61 input elements, above the limit of 50",
        C.RESOURCE_EXHAUSTED,
        "request holds 61 input elements, above the limit of 50",
    ),
    "body_too_large": (C.RESOURCE_EXHAUSTED, None, C.RESOURCE_EXHAUSTED, None),
    "unimplemented": (
        C.UNIMPLEMENTED,
        "Classify is not implemented by this server: use Predict",
        C.UNIMPLEMENTED,
        "classify is not implemented by this server: use predict",
    ),
    "internal": (C.INTERNAL, "RuntimeError: boom", C.INTERNAL, "RuntimeError: boom"),
}
HTTP = {
    C.NOT_FOUND: 404,
    C.FAILED_PRECONDITION: 400,
    C.INVALID_ARGUMENT: 400,
    C.RESOURCE_EXHAUSTED: 429,
    C.UNIMPLEMENTED: 501,
    C.INTERNAL: 500,
}


def _count(metrics, api, code):
    """The requests of `api` counted with status label `code`, over all models and signatures."""
    total = 0.0
    for family in metrics.registry.collect():
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "tensorflow_serving_request_count_total"
                and labels["api"] == api
                and labels["status"] == code.name
            ):
                total += sample.value
    return total


def _model_labels(metrics):
    return {
        sample.labels["model_name"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if "model_name" in sample.labels
    }


@pytest.mark.parametrize("api", ["grpc", "rest"])
@pytest.mark.parametrize("kind", list(REQUESTS))
def test_each_error_kind_has_tf_servings_code_status_and_metrics_label(
    served, kind, api, monkeypatch
):
    _, manager, metrics, channel, rest_port = served
    if kind == "internal":

        def boom(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(manager.current, "run", boom)
    method, make_request, (http_method, path, body) = REQUESTS[kind]
    grpc_code, grpc_message, rest_code, rest_message = EXPECTED[kind]
    code = grpc_code if api == "grpc" else rest_code
    before = _count(metrics, api, code)
    if api == "grpc":
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            getattr(stub, method)(make_request(), timeout=10)
        assert error.value.code() == grpc_code
        if grpc_message is not None:
            assert error.value.details() == grpc_message
    else:
        http_status, payload = _http(rest_port, http_method, path, body)
        assert http_status == HTTP[rest_code] == status.http_status(rest_code)
        assert set(payload) == {"error"}
        if rest_message is not None:
            assert payload["error"] == rest_message
    # A gRPC message above --max_message_bytes is refused by gRPC itself,
    # before any handler (or counter) sees it.
    counted = 0.0 if (kind, api) == ("body_too_large", "grpc") else 1.0
    assert _count(metrics, api, code) - before == counted
    assert _model_labels(metrics) <= {"mogenet", "<unknown>"}  # no label from a made-up name


def test_the_table_is_tf_servings_and_covers_every_code():
    # ToHTTPStatusCode in tensorflow_serving/model_servers/http_server.cc.
    assert dict(status.HTTP_STATUS) == {
        C.OK: 200,
        C.CANCELLED: 499,
        C.UNKNOWN: 500,
        C.INVALID_ARGUMENT: 400,
        C.DEADLINE_EXCEEDED: 504,
        C.NOT_FOUND: 404,
        C.ALREADY_EXISTS: 409,
        C.PERMISSION_DENIED: 403,
        C.RESOURCE_EXHAUSTED: 429,
        C.FAILED_PRECONDITION: 400,
        C.ABORTED: 409,
        C.OUT_OF_RANGE: 400,
        C.UNIMPLEMENTED: 501,
        C.INTERNAL: 500,
        C.UNAVAILABLE: 503,
        C.DATA_LOSS: 500,
        C.UNAUTHENTICATED: 401,
    }
    assert set(status.HTTP_STATUS) == set(grpc.StatusCode)
    error = status.as_servable_error(KeyError("k"))
    assert (error.code, str(error), error.http_status) == (C.INTERNAL, "KeyError: 'k'", 500)


def test_rest_paths_and_methods_answer_as_tf_serving(served):
    rest_port = served[4]
    for method, path, http_status, message in [
        ("GET", "/v1/models/nope", 404, "Could not find any versions of model nope"),
        ("GET", "/v1/models/mogenet/versions/9", 404, "Could not find version 9 of model mogenet"),
        ("GET", "/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        ("GET", "/v1/models", 400, "Missing model name in request."),
        ("GET", "/v1/nope", 400, "Malformed request: GET /v1/nope"),
        ("GET", "/v1/models/mogenet:predict", 400, None),
        ("POST", "/v1/models/mogenet", 400, "Malformed request: POST /v1/models/mogenet"),
        ("PUT", "/v1/models/mogenet", 400, "Malformed request: PUT /v1/models/mogenet"),
        ("DELETE", "/v1/models/mogenet", 400, None),
        ("GET", "/nope", 404, None),
        ("POST", "/v2/models/mogenet:predict", 404, None),
    ]:
        answer, payload = _http(rest_port, method, path)
        assert (answer, set(payload)) == (http_status, {"error"}), (method, path, payload)
        if message is not None:
            assert payload["error"] == message
    answer, payload = _http(rest_port, "GET", "/v1/models/mogenet?x=1")  # a query is no part
    assert answer == 200 and payload["model_version_status"][0]["state"] == "AVAILABLE"


def test_grpc_model_status_and_metadata_misses_in_tf_servings_words(served):
    channel = served[3]
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    predictions = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def refused(call, request):
        with pytest.raises(grpc.RpcError) as error:
            call(request, timeout=10)
        return error.value.code(), error.value.details()

    request = get_model_status_pb2.GetModelStatusRequest()
    assert refused(models.GetModelStatus, request) == (C.INVALID_ARGUMENT, "Missing ModelSpec")
    request.model_spec.name = "nope"
    assert refused(models.GetModelStatus, request) == (
        C.NOT_FOUND,
        "Could not find any versions of model nope",
    )
    request.model_spec.name = "mogenet"
    request.model_spec.version.value = 9
    assert refused(models.GetModelStatus, request) == (
        C.NOT_FOUND,
        "Could not find version 9 of model mogenet",
    )
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    metadata.model_spec.name = "nope"
    assert refused(predictions.GetModelMetadata, metadata) == (
        C.INVALID_ARGUMENT,
        "GetModelMetadataRequest must specify at least one metadata_field",
    )
    metadata.metadata_field.append("signature_def")
    assert refused(predictions.GetModelMetadata, metadata) == (
        C.NOT_FOUND,
        "Servable not found for request: Latest(nope)",
    )
    metadata.metadata_field.append("graph")
    assert refused(predictions.GetModelMetadata, metadata) == (
        C.INVALID_ARGUMENT,
        "Metadata field graph is not supported",
    )


def test_a_refused_rest_request_leaves_no_body_behind_on_its_connection(served):
    rest_port = served[4]
    connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
    try:
        for path, expected in [
            ("/v1/models/nope:predict", 404),
            ("/v1/models/mogenet:predict", 200),
        ]:
            connection.request("POST", path, body=json.dumps({"inputs": GOOD}))
            response = connection.getresponse()
            response.read()
            assert response.status == expected
    finally:
        connection.close()


def test_the_server_run_as_a_module_answers_404_not_500(served):
    """The reported bug: under `python -m serving.server`, REST misses answered 500 INTERNAL."""
    import signal

    from model.local_cluster import free_port

    base = served[0]
    rest_port = free_port()
    process, _ = _start_cli(base, "--rest_api_port", str(rest_port))
    try:
        assert process.stdout.readline().strip() == f"REST API on 127.0.0.1:{rest_port}"
        for path, message in [
            ("/v1/models/nope:predict", "Servable not found for request: Latest(nope)"),
            (
                "/v1/models/mogenet/versions/9:predict",
                "Servable not found for request: Specific(mogenet, 9)",
            ),
        ]:
            assert _http(rest_port, "POST", path, {"inputs": GOOD}) == (404, {"error": message})
        assert _http(rest_port, "GET", "/v1/models/nope")[0] == 404
        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=10)
        connection.request("GET", METRICS_PATH)
        text = connection.getresponse().read().decode()
        connection.close()
        assert (
            'tensorflow_serving_request_count_total{api="rest",model_name="<unknown>",'
            'signature_name="<unknown>",status="NOT_FOUND"} 2.0'
        ) in text, text
        assert 'status="INTERNAL"' not in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in _log_of(process)
    finally:
        process.kill()
