"""TF Serving's gRPC API: PredictionService, ModelService, health checking and reflection.

`make_server` puts them on one `grpc.server` over a `ModelManager`
(`serving.versions`):

  * `tensorflow.serving.PredictionService`: Predict and GetModelMetadata;
    Classify, Regress and MultiInference answer UNIMPLEMENTED;
  * `tensorflow.serving.ModelService`: GetModelStatus;
  * `grpc.health.v1.Health`: NOT_SERVING until a version is loaded, then
    SERVING; NOT_SERVING again on drain (`enter_graceful_shutdown`);
  * server reflection (`serving.reflection`).

Predict reads its inputs from their TensorProtos here (strings straight from
`string_val`) and writes its outputs as `tensor_content`; the checks it shares
with the REST API are in `serving.requests`. Every error is answered with its
`ServableError`'s code (`serving.status`), an unexpected one with INTERNAL,
and counted in the metrics (`serving.metrics`). `tls_credentials` makes the
port speak TLS.
"""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.metrics import ServerMetrics
from serving.reflection import enable_reflection
from serving.requests import check_request, model_status, run_signature
from serving.status import ServableError, as_servable_error
from serving.versions import DEFAULT_SIGNATURE, LoadedVersion, ModelManager

# The server's one logger, under the name it had when the server was one
# module: logging configurations (and tests) that name it keep working.
log = logging.getLogger("serving.server")
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.Value("AVAILABLE")


def _input_array(name: str, proto, expected_dtype: int) -> np.ndarray:
    if proto.dtype != expected_dtype:
        raise ServableError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {name} has dtype {tf.dtypes.as_dtype(proto.dtype).name}, "
            f"expected {tf.dtypes.as_dtype(expected_dtype).name}",
        )
    if proto.dtype == tf.string.as_datatype_enum:
        # As TensorFlow reads a TensorProto (Tensor::FromProto): the shape
        # says how many elements there are; extra values are ignored, missing
        # ones repeat the last value (or are empty if there is none).
        shape = [d.size for d in proto.tensor_shape.dim]
        count, values = int(np.prod(shape)), proto.string_val
        if len(values) == count:  # the usual request: no copy of the values
            array = np.array(values, dtype=object)
        else:
            padding = [values[-1] if values else b""] * max(0, count - len(values))
            array = np.array(list(values[:count]) + padding, dtype=object)
        return array.reshape(shape) if shape else array  # a scalar id is taken as [1]
    try:
        return tf.make_ndarray(proto)
    except (ValueError, TypeError) as e:
        raise ServableError(
            grpc.StatusCode.INVALID_ARGUMENT, f"input {name} is malformed: {e}".splitlines()[0]
        ) from None


def _elements(proto) -> int:
    """How many elements a request tensor holds: its shape's, as TensorFlow reads it."""
    return int(np.prod([d.size for d in proto.tensor_shape.dim]))


def _refused(error: Exception) -> ServableError:
    """The ServableError a gRPC call is refused with (`serving.status`); logs unexpected errors."""
    if not isinstance(error, ServableError):
        log.error("request failed: %s: %s", type(error).__name__, error, exc_info=error)
    return as_servable_error(error)


def _missing_model_spec(request) -> None:
    """INVALID_ARGUMENT `Missing ModelSpec`, as TF Serving's GetModelStatus and GetModelMetadata."""
    if not request.HasField("model_spec"):
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a `ModelManager` (the rest: UNIMPLEMENTED).

    Every error is answered with the code of its `ServableError` (an
    unexpected exception: INTERNAL), and Predict, Classify, Regress and
    MultiInference are counted in the metrics with it.
    """

    def __init__(self, manager: ModelManager, max_items: int, metrics: ServerMetrics):
        self.manager = manager
        self.max_items = max_items
        self.metrics = metrics

    def Predict(self, request, context):
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        try:
            return self._predict(request)
        except Exception as e:  # noqa: BLE001 — every error is answered with its code and counted
            error = _refused(e)
            status = error.code
            context.abort(error.code, str(error))
        finally:
            self.metrics.observe(
                request.model_spec.name,
                request.model_spec.signature_name or DEFAULT_SIGNATURE,
                "grpc",
                status,
                time.perf_counter() - started,
            )

    def _predict(self, request):
        with self.manager.use_spec(request.model_spec) as model:
            return self._predict_on(model, request)

    def _predict_on(self, model: LoadedVersion, request):
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        elements = {key: _elements(t) for key, t in request.inputs.items()}
        expected = check_request(model, name, elements, self.max_items)
        arrays = {key: _input_array(key, request.inputs[key], expected[key]) for key in expected}
        outputs = run_signature(model, name, arrays, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.manager.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = name
        for key, value in outputs.items():
            tensor = response.outputs[key]
            for size in value.shape:
                tensor.tensor_shape.dim.add().size = size
            if value.dtype == object:  # strings
                tensor.dtype = tf.string.as_datatype_enum
                tensor.string_val.extend(value.reshape(-1).tolist())
            else:
                tensor.dtype = tf.dtypes.as_dtype(value.dtype).as_datatype_enum
                tensor.tensor_content = value.astype(value.dtype.newbyteorder("<")).tobytes()
        return response

    def _unimplemented(self, method: str, request, context):
        """Refuses (UNIMPLEMENTED) and counts a call of a method this server does not serve."""
        spec = getattr(request, "model_spec", None)
        self.metrics.observe(
            spec.name if spec is not None else "",
            (spec.signature_name if spec is not None else "") or DEFAULT_SIGNATURE,
            "grpc",
            grpc.StatusCode.UNIMPLEMENTED,
            0.0,
        )
        message = f"{method} is not implemented by this server: use Predict"
        context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    def Classify(self, request, context):
        self._unimplemented("Classify", request, context)

    def Regress(self, request, context):
        self._unimplemented("Regress", request, context)

    def MultiInference(self, request, context):
        self._unimplemented("MultiInference", request, context)

    def GetModelMetadata(self, request, context):
        try:
            # TF Serving's order and words: GetModelMetadataImpl
            # (tensorflow_serving/servables/tensorflow/get_model_metadata_impl.cc).
            _missing_model_spec(request)
            if not request.metadata_field:
                raise ServableError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "GetModelMetadataRequest must specify at least one metadata_field",
                )
            for field in request.metadata_field:
                if field != "signature_def":
                    raise ServableError(
                        grpc.StatusCode.INVALID_ARGUMENT, f"Metadata field {field} is not supported"
                    )
            model = self.manager.resolve_spec(request.model_spec)
        except Exception as e:  # noqa: BLE001 — every error is answered with its code
            error = _refused(e)
            context.abort(error.code, str(error))
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in model.signature_defs.items():
            signatures.signature_def[name].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.manager.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(signatures)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """GetModelStatus: the served version is AVAILABLE."""

    def __init__(self, manager: ModelManager):
        self.manager = manager

    def GetModelStatus(self, request, context):
        try:
            _missing_model_spec(request)
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            model = model_status(self.manager, spec.name, version)
        except Exception as e:  # noqa: BLE001 — every error is answered with its code
            error = _refused(e)
            context.abort(error.code, str(error))
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add()
        status.version = model.version
        status.state = _AVAILABLE
        return response


def make_server(
    manager: ModelManager,
    host: str,
    port: int,
    max_items: int,
    max_message_bytes: int,
    metrics: ServerMetrics | None = None,
    credentials: grpc.ServerCredentials | None = None,
    threads: int = 4,
):
    """Returns (grpc server, bound port, health servicer), not started.

    `threads` handler threads bound the requests in flight (and so the
    batches a `Batcher` can form).

    With `credentials` (e.g. `tls_credentials(...)`) the port speaks TLS.

    The server also answers gRPC health checks (SERVING once a version is
    loaded; `enter_graceful_shutdown()` on drain) and server reflection.
    """
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, max_items, metrics or ServerMetrics()), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    # NOT_SERVING until a version is loaded (grpc's servicer starts "" as
    # SERVING); set before the swap hook, so a swap cannot be overwritten.
    _set_health(health_servicer, health_pb2.HealthCheckResponse.NOT_SERVING)
    manager.on_swap = lambda: _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    if manager.current is not None:
        _set_health(health_servicer, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection(server)  # describes every service (see serving.reflection)
    address = f"{host}:{port}"
    if credentials is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, credentials)
    if not bound:
        raise OSError(f"cannot bind {host}:{port}")
    return server, bound, health_servicer


def tls_credentials(cert_file: str, key_file: str) -> grpc.ServerCredentials:
    """Returns server TLS credentials from PEM certificate-chain and private-key files."""
    with open(key_file, "rb") as key, open(cert_file, "rb") as cert:
        return grpc.ssl_server_credentials([(key.read(), cert.read())])


def _set_health(health_servicer, status) -> None:
    for service in ("", "tensorflow.serving.PredictionService"):
        health_servicer.set(service, status)
