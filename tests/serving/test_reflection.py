"""gRPC server reflection describes every service, as `grpcurl describe` and calls need.

The client here knows no proto of its own: a fresh DescriptorPool fed by
grpcio-reflection's ProtoReflectionDescriptorDatabase resolves the services,
their methods and every file they import from the server, and the calls are
made with message classes built from those descriptors. The server runs as
`python -m serving.server`: a process that has imported only what the server
imports, as the one grpcurl met (this test process has more in its pools).
"""

import signal

import grpc
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from serving.client import ScoringClient
from tests.serving.test_server import _save, _start_cli

SERVICES = {
    "tensorflow.serving.PredictionService": {
        "Classify",
        "Regress",
        "Predict",
        "MultiInference",
        "GetModelMetadata",
    },
    "tensorflow.serving.ModelService": {"GetModelStatus", "HandleReloadConfigRequest"},
    "grpc.health.v1.Health": {"Check", "Watch"},
}


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """The gRPC address of a `python -m serving.server` on a small model (version 1)."""
    base = str(tmp_path_factory.mktemp("export") / "mogenet")
    _save(base, 1, 0.25)
    process, address = _start_cli(base)
    yield address
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    finally:
        process.kill()


@pytest.fixture
def reflected(target):
    """(channel, reflection database, a pool that knows only what reflection told it)."""
    channel = grpc.insecure_channel(target)
    database = ProtoReflectionDescriptorDatabase(channel)
    yield channel, database, descriptor_pool.DescriptorPool(database)
    channel.close()


def _message(pool, descriptor):
    """The message class of a descriptor of `pool`, checked to be no class of this process."""
    assert descriptor.file.pool is pool
    cls = message_factory.GetMessageClass(descriptor)
    assert cls.DESCRIPTOR is descriptor
    return cls


def _call(channel, pool, method: str, fill):
    """Calls `service.Method` by reflection: a request built by `fill(request)`, the answer."""
    method = pool.FindMethodByName(method)
    request_class = _message(pool, method.input_type)
    response_class = _message(pool, method.output_type)
    request = request_class()
    fill(request)
    call = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return call(request, timeout=30)


def _enum(pool, enum: str, name: str) -> int:
    return pool.FindEnumTypeByName(enum).values_by_name[name].number


def test_reflection_lists_and_fully_describes_every_service(reflected):
    channel, database, pool = reflected
    assert set(database.get_services()) == {
        *SERVICES,
        "grpc.reflection.v1alpha.ServerReflection",
    }
    for name, methods in SERVICES.items():
        service = pool.FindServiceByName(name)  # grpcurl describe SERVICE
        assert {m.name for m in service.methods} == methods
        for method in service.methods:
            for message in (method.input_type, method.output_type):
                _message(pool, message)
    # Each symbol on its own, from a fresh database and pool (grpcurl describe SYMBOL).
    for symbol, find in [
        ("tensorflow.serving.PredictionService.Predict", "FindMethodByName"),
        ("tensorflow.serving.ModelService.GetModelStatus", "FindMethodByName"),
        ("tensorflow.serving.PredictRequest", "FindMessageTypeByName"),
        ("tensorflow.serving.ModelVersionStatus.State", "FindEnumTypeByName"),
        ("tensorflow.TensorProto", "FindMessageTypeByName"),
    ]:
        fresh = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        assert getattr(fresh, find)(symbol).full_name == symbol
    fresh = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    with pytest.raises(KeyError):  # the server answers NOT_FOUND
        fresh.FindMethodByName("tensorflow.serving.PredictionService.Nope")
    # The files served are whole: each is the server's own, and so are all
    # the files it imports (tensor.proto, types.proto, any.proto, ...).
    from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2

    local = descriptor_pool.Default()
    served, pending = set(), [pool.FindServiceByName(n).file for n in SERVICES]
    while pending:
        file = pending.pop()
        if file.name in served:
            continue
        served.add(file.name)
        pending.extend(file.dependencies)
        theirs, ours = descriptor_pb2.FileDescriptorProto(), descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(theirs)
        local.FindFileByName(file.name).CopyToProto(ours)
        assert theirs == ours, file.name
    assert {
        prediction_service_pb2.DESCRIPTOR.name,
        model_service_pb2.DESCRIPTOR.name,
        "tensorflow/core/framework/tensor.proto",
        "tensorflow/core/protobuf/meta_graph.proto",
        "google/protobuf/any.proto",
    } <= served


def test_calls_made_only_from_reflected_descriptors_answer_right(reflected, target):
    channel, _, pool = reflected
    dt_string = _enum(pool, "tensorflow.DataType", "DT_STRING")
    dt_float = _enum(pool, "tensorflow.DataType", "DT_FLOAT")
    items = [b"a", b"b", b"c"]

    def predict(request):
        request.model_spec.name = "mogenet"
        for name, values in (("user_id", [b"u"]), ("item_id", items)):
            tensor = request.inputs[name]
            tensor.dtype = dt_string
            tensor.tensor_shape.dim.add().size = len(values)
            tensor.string_val.extend(values)

    answer = _call(channel, pool, "tensorflow.serving.PredictionService.Predict", predict)
    assert answer.model_spec.version.value == 1
    with ScoringClient(target, timeout_s=30) as client:  # a client with its own protos
        expected = client.score("u", [i.decode() for i in items])
    for task in ("click", "conversion"):
        tensor = answer.outputs[task]
        assert tensor.dtype == dt_float
        assert [d.size for d in tensor.tensor_shape.dim] == [len(items)]
        scores = np.frombuffer(tensor.tensor_content, "<f4")
        np.testing.assert_allclose(scores, expected[task], rtol=1e-6)

    def metadata(request):
        request.model_spec.name = "mogenet"
        request.metadata_field.append("signature_def")

    answer = _call(channel, pool, "tensorflow.serving.PredictionService.GetModelMetadata", metadata)
    assert answer.model_spec.name == "mogenet" and answer.model_spec.version.value == 1
    packed = answer.metadata["signature_def"]
    assert packed.type_url.endswith("/tensorflow.serving.SignatureDefMap")
    signature_map = _message(pool, pool.FindMessageTypeByName("tensorflow.serving.SignatureDefMap"))
    signature = signature_map.FromString(packed.value).signature_def["serving_default"]
    assert set(signature.inputs) == {"user_id", "item_id"}
    assert set(signature.outputs) == {"click", "conversion"}

    def status(request):
        request.model_spec.name = "mogenet"

    answer = _call(channel, pool, "tensorflow.serving.ModelService.GetModelStatus", status)
    (version,) = answer.model_version_status
    available = _enum(pool, "tensorflow.serving.ModelVersionStatus.State", "AVAILABLE")
    assert version.version == 1 and version.state == available

    def health(request):
        request.service = "tensorflow.serving.PredictionService"

    answer = _call(channel, pool, "grpc.health.v1.Health.Check", health)
    assert answer.status == _enum(
        pool, "grpc.health.v1.HealthCheckResponse.ServingStatus", "SERVING"
    )
