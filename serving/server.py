"""A server that speaks TF Serving's gRPC API, for where `tensorflow_model_server` is not installed.

  python -m serving.server --port 8500 --rest_api_port 8501 --model_name mogenet \
      --model_base_path export/mogenet

It serves any SavedModel laid out as TF Serving expects
(`<model_base_path>/<integer version>/saved_model.pb`), not only MoGENet's:

  * `tensorflow.serving.PredictionService`: Predict and GetModelMetadata;
    Classify, Regress and MultiInference answer UNIMPLEMENTED;
  * `tensorflow.serving.ModelService`: GetModelStatus;
  * with `--rest_api_port`, TF Serving's REST API (`serving.rest`);
  * TF Serving's error codes: NOT_FOUND for an unknown model or version,
    FAILED_PRECONDITION for an unknown signature, INVALID_ARGUMENT for missing
    or extra inputs, a wrong dtype or inputs the signature rejects (e.g.
    mismatched lengths), RESOURCE_EXHAUSTED above `--max_items` input elements
    or `--max_message_bytes`;
  * the newest version is served; every `--file_system_poll_wait_seconds` the
    base path is scanned, a newer version is loaded and then swapped in
    atomically (requests in flight finish on the version they started on); a
    version that fails to load is logged and the current one keeps serving;
  * binds 127.0.0.1 unless `--host` says otherwise; on SIGTERM or SIGINT it
    stops taking requests and lets those in flight finish (`--drain_s`).

Speed choices, measured on a prototype (see the task notes): a plain
`grpc.server` with 3 worker threads, string inputs read straight from
`string_val`, outputs written as `tensor_content` from numpy bytes.

  * gRPC health checking (`grpc.health.v1.Health`) and server reflection;
  * TLS on the gRPC port with `--ssl_cert_file` and `--ssl_key_file` (PEM;
    TF Serving takes the same through `--ssl_config_file`);
    Prometheus metrics at the REST port's /monitoring/prometheus/metrics.

Not built yet (tracked in the serving issue): warm-up requests, batching, TLS
on the REST port.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

import grpc
import numpy as np
import prometheus_client
import tensorflow as tf
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

log = logging.getLogger("serving.server")
DEFAULT_SIGNATURE = "serving_default"
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.State.Value("AVAILABLE")


class ServerMetrics:
    """Prometheus metrics of the requests, per model, signature, API and status code.

    `tensorflow_serving_request_count` (counter) and
    `tensorflow_serving_request_latency_seconds` (histogram), in a registry of
    their own; the REST server exposes them at /monitoring/prometheus/metrics,
    TF Serving's path.
    """

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        labels = ("model_name", "signature_name", "api", "status")
        self.requests = prometheus_client.Counter(
            "tensorflow_serving_request_count", "Requests.", labels, registry=self.registry
        )
        self.latency = prometheus_client.Histogram(
            "tensorflow_serving_request_latency_seconds",
            "Request latency.",
            ("model_name", "signature_name", "api"),
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )

    def observe(self, model, signature, api, status: grpc.StatusCode, seconds: float) -> None:
        # Names a client made up (unknown model or signature) share one label
        # value, so requests cannot grow the number of series without bound.
        if status in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            model, signature = "<unknown>", "<unknown>"
        self.requests.labels(model, signature, api, status.name).inc()
        self.latency.labels(model, signature, api).observe(seconds)

    def exposition(self) -> bytes:
        """Returns the metrics in Prometheus' text format."""
        return prometheus_client.generate_latest(self.registry)


class ServableError(Exception):
    """A request the server answers with a gRPC error code."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class LoadedVersion:
    """One loaded SavedModel version: its signatures and their input dtypes.

    Args:
      version: The integer version.
      path: The version's directory.

    Raises:
      Exception: Whatever loading the SavedModel raises.
    """

    def __init__(self, version: int, path: str):
        self.version = version
        self.path = path
        self.module = tf.saved_model.load(path)
        self.signatures = dict(self.module.signatures)
        saved_model = loader_impl.parse_saved_model(path)
        self.signature_defs = saved_model.meta_graphs[0].signature_def
        self.input_dtypes = {
            name: {key: info.dtype for key, info in signature.inputs.items()}
            for name, signature in self.signature_defs.items()
        }


class ModelManager:
    """Keeps the newest loadable version of one model, polling its base path.

    Args:
      name: The served model's name.
      base_path: The directory holding integer version subdirectories.
    """

    def __init__(self, name: str, base_path: str):
        self.name = name
        self.base_path = base_path
        self.current: LoadedVersion | None = None
        self._failed: dict[int, float] = {}  # version -> mtime of the failed attempt
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_swap = None  # called after a new version is swapped in

    def versions(self) -> list[int]:
        """Returns the integer version directories under the base path, ascending."""
        if not tf.io.gfile.isdir(self.base_path):
            return []
        found = []
        for entry in tf.io.gfile.listdir(self.base_path):
            entry = entry.rstrip("/")
            if entry.isdigit() and tf.io.gfile.isdir(os.path.join(self.base_path, entry)):
                found.append(int(entry))
        return sorted(found)

    def poll(self) -> None:
        """Loads the newest version if it is newer than the one served; keeps it on failure."""
        for version in reversed(self.versions()):
            if self.current is not None and version <= self.current.version:
                return
            path = os.path.join(self.base_path, str(version))
            mtime = os.path.getmtime(path) if os.path.exists(path) else 0.0
            if self._failed.get(version) == mtime:
                continue  # already failed as it is now: try older ones
            try:
                loaded = LoadedVersion(version, path)
            except Exception as e:  # noqa: BLE001 — any load failure keeps the old version
                self._failed[version] = mtime
                log.error(
                    "model %s version %d failed to load (%s): %s",
                    self.name,
                    version,
                    type(e).__name__,
                    e,
                )
                continue
            previous = self.current
            self.current = loaded  # one reference swap: atomic for the handlers
            if self.on_swap is not None:
                self.on_swap()
            log.info(
                "model %s: serving version %d%s",
                self.name,
                version,
                f" (was {previous.version})" if previous else "",
            )
            return

    def start(self, poll_s: float) -> None:
        """Polls once now, then every `poll_s` seconds in a daemon thread."""
        self.poll()

        def loop():
            while not self._stop.wait(poll_s):
                self.poll()

        self._thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def resolve(self, name: str, version: int | None = None) -> LoadedVersion:
        """Returns the loaded version a request asks for (None = the newest).

        Raises:
          ServableError: NOT_FOUND for another model, a missing version or none loaded.
        """
        if name != self.name:
            raise ServableError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {name}"
            )
        current = self.current
        if current is None:
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"no version of {self.name} is loaded")
        if version is not None and version != current.version:
            raise ServableError(
                grpc.StatusCode.NOT_FOUND,
                f"Servable not found for request: Specific({self.name}, {version})",
            )
        return current

    def resolve_spec(self, model_spec) -> LoadedVersion:
        """`resolve` for a gRPC ModelSpec."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.resolve(model_spec.name, version)


def input_dtypes(model: LoadedVersion, signature: str) -> dict:
    """Returns {input: dtype enum} of a signature.

    Raises:
      ServableError: FAILED_PRECONDITION if the model has no such signature.
    """
    if signature not in model.input_dtypes:
        raise ServableError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f'Serving signature name: "{signature}" not found in signature def',
        )
    return model.input_dtypes[signature]


def check_request(model: LoadedVersion, signature: str, elements: dict, max_items: int) -> dict:
    """Checks a request's signature, input names and size; returns {input: dtype enum}.

    Args:
      model: The version asked for.
      signature: The signature's name.
      elements: {input name: number of elements given}.
      max_items: The largest total number of input elements.

    Raises:
      ServableError: FAILED_PRECONDITION (signature), INVALID_ARGUMENT (input
        names) or RESOURCE_EXHAUSTED (size).
    """
    expected = input_dtypes(model, signature)
    if set(elements) != set(expected):
        missing = sorted(set(expected) - set(elements))
        extra = sorted(set(elements) - set(expected))
        raise ServableError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"inputs do not match signature {signature}: missing {missing}, extra {extra}",
        )
    total = sum(elements.values())
    if total > max_items:
        raise ServableError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request holds {total} input elements, above the limit of {max_items}",
        )
    return expected


def run_signature(model: LoadedVersion, signature: str, tensors: dict, output_filter) -> dict:
    """Calls a signature; returns {output name: tf.Tensor}, only those in `output_filter` if set.

    Raises:
      ServableError: INVALID_ARGUMENT if the signature rejects the inputs or
        the filter names an unknown output.
    """
    try:
        outputs = model.signatures[signature](**tensors)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        message = getattr(e, "message", None) or str(e)
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, message.splitlines()[0]) from None
    wanted = list(output_filter) or sorted(outputs)
    unknown = sorted(set(wanted) - set(outputs))
    if unknown:
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output_filter {unknown}")
    return {key: outputs[key] for key in wanted}


def _input_tensor(name: str, proto, expected_dtype: int):
    if proto.dtype != expected_dtype:
        raise ServableError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"input {name} has dtype {tf.dtypes.as_dtype(proto.dtype).name}, "
            f"expected {tf.dtypes.as_dtype(expected_dtype).name}",
        )
    if proto.dtype == tf.string.as_datatype_enum:
        shape = [d.size for d in proto.tensor_shape.dim]
        return tf.reshape(tf.constant(list(proto.string_val), tf.string), shape or [-1])
    return tf.constant(tf.make_ndarray(proto))


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata over a `ModelManager` (the rest: UNIMPLEMENTED)."""

    def __init__(self, manager: ModelManager, max_items: int, metrics: ServerMetrics):
        self.manager = manager
        self.max_items = max_items
        self.metrics = metrics

    def Predict(self, request, context):
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        try:
            return self._predict(request)
        except ServableError as e:
            status = e.code
            context.abort(e.code, str(e))
        finally:
            self.metrics.observe(
                request.model_spec.name,
                request.model_spec.signature_name or DEFAULT_SIGNATURE,
                "grpc",
                status,
                time.perf_counter() - started,
            )

    def _predict(self, request):
        model = self.manager.resolve_spec(request.model_spec)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        elements = {
            key: max(1, int(np.prod([d.size for d in t.tensor_shape.dim])))
            for key, t in request.inputs.items()
        }
        expected = check_request(model, name, elements, self.max_items)
        tensors = {key: _input_tensor(key, request.inputs[key], expected[key]) for key in expected}
        outputs = run_signature(model, name, tensors, list(request.output_filter))
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.manager.name
        response.model_spec.version.value = model.version
        response.model_spec.signature_name = name
        for key, output in outputs.items():
            value = output.numpy()
            tensor = response.outputs[key]
            tensor.dtype = output.dtype.as_datatype_enum
            for size in value.shape:
                tensor.tensor_shape.dim.add().size = size
            if output.dtype == tf.string:
                tensor.string_val.extend(value.reshape(-1).tolist())
            else:
                tensor.tensor_content = value.astype(value.dtype.newbyteorder("<")).tobytes()
        return response

    def GetModelMetadata(self, request, context):
        try:
            model = self.manager.resolve_spec(request.model_spec)
            if list(request.metadata_field) != ["signature_def"]:
                raise ServableError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Metadata field must be signature_def (the only one supported)",
                )
        except ServableError as e:
            context.abort(e.code, str(e))
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
            model = self.manager.resolve_spec(request.model_spec)
        except ServableError as e:
            context.abort(e.code, str(e))
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
):
    """Returns (grpc server, bound port, health servicer), not started.

    With `credentials` (e.g. `tls_credentials(...)`) the port speaks TLS.

    The server also answers gRPC health checks (SERVING once a version is
    loaded; `enter_graceful_shutdown()` on drain) and server reflection.
    """
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=3), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, max_items, metrics or ServerMetrics()), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    manager.on_swap = lambda: _set_serving(health_servicer)
    if manager.current is not None:
        _set_serving(health_servicer)
    services = (
        "tensorflow.serving.PredictionService",
        "tensorflow.serving.ModelService",
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(services, server)
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


def _set_serving(health_servicer) -> None:
    for service in ("", "tensorflow.serving.PredictionService"):
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.server",
        description="Serve a SavedModel over TF Serving's gRPC API.",
    )
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0 = any free port)")
    parser.add_argument(
        "--rest_api_port", type=int, default=0, help="REST port (0 = no REST, as TF Serving)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", required=True, help="directory of integer versions")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--max_items", type=int, default=10_000, help="input elements per request")
    parser.add_argument("--max_message_bytes", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--drain_s", type=float, default=5.0, help="grace for requests in flight")
    parser.add_argument("--ssl_cert_file", help="PEM certificate chain: serve gRPC over TLS")
    parser.add_argument("--ssl_key_file", help="PEM private key of --ssl_cert_file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    manager = ModelManager(args.model_name, args.model_base_path)
    manager.start(args.file_system_poll_wait_seconds)
    if manager.current is None:
        log.warning("no loadable version under %s yet; waiting for one", args.model_base_path)
    metrics = ServerMetrics()
    try:
        if bool(args.ssl_cert_file) != bool(args.ssl_key_file):
            raise OSError("--ssl_cert_file and --ssl_key_file go together")
        credentials = None
        if args.ssl_cert_file:
            credentials = tls_credentials(args.ssl_cert_file, args.ssl_key_file)
        server, port, health_servicer = make_server(
            manager,
            args.host,
            args.port,
            args.max_items,
            args.max_message_bytes,
            metrics,
            credentials,
        )
    except OSError as e:
        print(f"serving.server: error: {e}", file=sys.stderr)
        return 2
    server.start()
    print(f"serving {args.model_name} on {args.host}:{port}", flush=True)
    rest = None
    if args.rest_api_port:
        from serving.rest import start_rest_server

        rest, rest_port = start_rest_server(
            manager, args.host, args.rest_api_port, args.max_items, metrics
        )
        print(f"REST API on {args.host}:{rest_port}", flush=True)
    stopped = threading.Event()

    def drain(signum, frame):
        log.info("signal %d: draining requests in flight (up to %.1f s)", signum, args.drain_s)
        manager.stop()
        health_servicer.enter_graceful_shutdown()
        if rest is not None:
            rest.shutdown()
        server.stop(args.drain_s).wait()
        stopped.set()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
