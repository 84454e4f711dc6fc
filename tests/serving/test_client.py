"""The scoring client against an in-process fake of TF Serving's PredictionService."""

import threading
import time
from concurrent import futures

import grpc
import numpy as np
import pytest
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.client import ScoringClient, ScoringError, main


def _item_score(item: bytes, task: str) -> float:
    return (int(item[1:]) % 10) / 10 + (0.01 if task == "conversion" else 0.0)


class FakeServing(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers like TF Serving would for a two-task export; can fail or stall on demand."""

    def __init__(self):
        self.requests = []
        self.failures = 0  # UNAVAILABLE answers to give before succeeding
        self.stall_s = 0.0
        self.lock = threading.Lock()

    def Predict(self, request, context):
        with self.lock:
            self.requests.append(request)
            if self.failures:
                self.failures -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        time.sleep(self.stall_s)
        if request.model_spec.name != "mogenet":
            context.abort(
                grpc.StatusCode.NOT_FOUND, f"Servable not found: {request.model_spec.name}"
            )
        items = list(request.inputs["item_id"].string_val)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = "mogenet"
        response.model_spec.version.value = 3
        click = np.array([_item_score(i, "click") for i in items], "<f4")
        out = response.outputs["click"]
        out.dtype = 1
        out.tensor_shape.dim.add().size = len(items)
        out.tensor_content = click.tobytes()
        conversion = response.outputs["conversion"]
        conversion.dtype = 1
        conversion.tensor_shape.dim.add().size = len(items)
        conversion.float_val.extend(_item_score(i, "conversion") for i in items)
        return response

    def GetModelMetadata(self, request, context):
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signature = signatures.signature_def["serving_default"]
        for name in ("conversion", "click"):
            signature.outputs[name].CopyFrom(meta_graph_pb2.TensorInfo(name=f"{name}:0", dtype=1))
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.metadata["signature_def"].Pack(signatures)
        return response


@pytest.fixture(scope="module")
def server():
    fake = FakeServing()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(fake, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    yield fake, f"127.0.0.1:{port}"
    grpc_server.stop(None)


@pytest.fixture()
def fake(server):
    fake, _ = server
    fake.requests.clear()
    fake.failures, fake.stall_s = 0, 0.0
    return fake


def test_scores_one_user_against_each_item(server, fake):
    with ScoringClient(server[1]) as client:
        scores = client.score("u7", ["i3", "i15", "i9"])
    np.testing.assert_allclose(scores["click"], [0.3, 0.5, 0.9], rtol=1e-6)
    np.testing.assert_allclose(scores["conversion"], [0.31, 0.51, 0.91], rtol=1e-6)
    request = fake.requests[-1]
    assert request.model_spec.signature_name == "serving_default"
    # One user id per item, so that batching servers can merge the request.
    assert list(request.inputs["user_id"].string_val) == [b"u7"] * 3
    assert request.inputs["user_id"].tensor_shape.dim[0].size == 3
    assert request.inputs["item_id"].tensor_shape.dim[0].size == 3


def test_rank_orders_by_the_chosen_task(server, fake):
    with ScoringClient(server[1]) as client:
        ranked = client.rank("u1", ["i1", "i8", "i4", "i6"], rank_by="conversion", top_k=3)
        assert [item for item, _ in ranked] == ["i8", "i6", "i4"]
        assert ranked[0][1] == pytest.approx({"click": 0.8, "conversion": 0.81})
        with pytest.raises(ScoringError, match="not an output"):
            client.rank("u1", ["i1"], rank_by="purchase")
        assert client.output_names() == ["click", "conversion"]


def test_retries_unavailable_then_succeeds(server, fake):
    fake.failures = 2
    with ScoringClient(server[1], retries=2, backoff_s=0.01) as client:
        assert client.score("u1", ["i2"])["click"][0] == pytest.approx(0.2)
    assert len(fake.requests) == 3


def test_gives_up_after_the_retries_with_the_status(server, fake):
    fake.failures = 5
    with ScoringClient(server[1], retries=1, backoff_s=0.01) as client:
        with pytest.raises(ScoringError) as error:
            client.score("u1", ["i2"])
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(fake.requests) == 2


def test_deadline_is_per_attempt_and_not_found_is_not_retried(server, fake):
    fake.stall_s = 0.3
    with ScoringClient(server[1], timeout_s=0.05, retries=1, backoff_s=0.01) as client:
        with pytest.raises(ScoringError) as error:
            client.score("u1", ["i2"])
    assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert len(fake.requests) == 2
    fake.stall_s = 0.0
    fake.requests.clear()
    with ScoringClient(server[1], model_name="other") as client:
        with pytest.raises(ScoringError) as error:
            client.score("u1", ["i2"])
    assert error.value.code == grpc.StatusCode.NOT_FOUND and len(fake.requests) == 1


def test_cli_prints_the_ranked_items(server, fake, capsys):
    code = main(["--server", server[1], "--user", "u1", "--items", "i2,i9,i5", "--top_k", "2"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["rank", "item", "click", "conversion"]
    assert [line.split()[1] for line in lines[1:]] == ["i9", "i5"]
    assert main(["--server", server[1], "--user", "u1", "--items", ","]) == 2
    assert main(["--server", server[1], "--model_name", "x", "--user", "u", "--items", "i1"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
