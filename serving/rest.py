"""TF Serving's REST API over the same models as the gRPC server.

  POST /v1/models/NAME[/versions/V]:predict   {"instances": [...]} or {"inputs": {...}}
  GET  /v1/models/NAME[/versions/V]           version status
  GET  /v1/models/NAME[/versions/V]/metadata  signature defs
  GET  /monitoring/prometheus/metrics         Prometheus metrics (both APIs)

As in TF Serving: the row format ("instances", a list of {input: value}
objects, or of bare values when the signature has one input) answers
{"predictions": [...]}, one entry per row; the columnar format ("inputs", an
{input: list} object) answers {"outputs": {output: list}}; a string value may
be given as {"b64": "<base64>"}; "signature_name" picks the signature.

Errors answer {"error": "<message>"} with the HTTP status TF Serving gives
the status code (`serving.status`: NOT_FOUND 404, INVALID_ARGUMENT and
FAILED_PRECONDITION 400, RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, an
unexpected error INTERNAL 500, ...), and TF Serving's messages where a client
may parse them. As in TF Serving, a path under /v1/ that is none of the above
answers 400 (`Malformed request: METHOD PATH`), any other path 404, and
:classify and :regress, which this server does not implement, 501.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import prometheus_client
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from serving.metrics import ServerMetrics
from serving.requests import check_request, input_dtypes, model_status, run_signature
from serving.status import (
    ServableError,
    as_servable_error,
    http_status,
    signature_name_not_found,
)
from serving.versions import DEFAULT_SIGNATURE, ModelManager

log = logging.getLogger("serving.rest")
# TF Serving's paths (tensorflow_serving/model_servers/http_rest_api_util.cc),
# less the /labels/ of version labels.
_PREDICT = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)$")
_STATUS = re.compile(r"^/v1/models(?:/([^/:]+))?(?:/versions/(\d+))?(?:/(metadata))?$")
_API = "/v1/"  # TF Serving's REST handler takes every path under it
METRICS_PATH = "/monitoring/prometheus/metrics"


def _bad(message: str) -> ServableError:
    return ServableError(grpc.StatusCode.INVALID_ARGUMENT, message)


def _value(value, dtype: tf.DType):
    if dtype == tf.string:
        if isinstance(value, dict):
            if set(value) != {"b64"}:
                raise _bad(f"a bytes value must be {{'b64': ...}}, got {value}")
            return base64.b64decode(value["b64"])
        if not isinstance(value, str):
            raise _bad(f"a string value must be a JSON string or {{'b64': ...}}, got {value!r}")
        return value.encode()
    return value


def _array(name: str, values, dtype_enum: int) -> np.ndarray:
    dtype = tf.dtypes.as_dtype(dtype_enum)
    values = values if isinstance(values, list) else [values]
    try:
        if dtype == tf.string:
            return np.array([_value(v, dtype) for v in values], dtype=object)
        return np.asarray(values, dtype=dtype.as_numpy_dtype)
    except (ValueError, TypeError) as e:
        raise _bad(f"input {name} is not {dtype.name}: {e}") from None


def _columns(body: dict, expected: dict) -> tuple[dict, bool]:
    """Returns ({input: list of values}, row format?) of a predict body."""
    if ("instances" in body) == ("inputs" in body):
        raise _bad('the body needs exactly one of "instances" or "inputs"')
    if "inputs" in body:
        inputs = body["inputs"]
        if not isinstance(inputs, dict):
            if len(expected) != 1:
                raise _bad('"inputs" must be an object of named inputs')
            inputs = {next(iter(expected)): inputs}
        return inputs, False
    rows = body["instances"]
    if not isinstance(rows, list):
        raise _bad('"instances" must be a list')
    if rows and all(isinstance(r, dict) and "b64" not in r for r in rows):
        names = set(rows[0])
        if any(set(r) != names for r in rows):
            raise _bad("every instance must name the same inputs")
        return {n: [r[n] for r in rows] for n in names}, True
    if len(expected) != 1:
        raise _bad("instances of bare values need a signature with one input")
    return {next(iter(expected)): rows}, True


class _Handler(BaseHTTPRequestHandler):
    manager: ModelManager
    max_items: int
    max_message_bytes: int
    metrics: ServerMetrics
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet: the gRPC side logs what matters
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str):
        """Answers a request as TF Serving's HttpRestApiHandler::ProcessRequest does."""
        predict = _PREDICT.match(self._path) if method == "POST" else None
        if predict:
            name, version, verb = predict.groups()
            version = int(version) if version else None
            if verb != "predict":
                raise ServableError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{verb} is not implemented by this server: use predict",
                )
            with self.manager.use(name, version) as model:  # held until it answers
                return self._predict(model)
        about = _STATUS.match(self._path) if method == "GET" else None
        if not about:
            if self._path.startswith(_API):
                raise _bad(f"Malformed request: {method} {self._path}")
            raise ServableError(grpc.StatusCode.NOT_FOUND, f"Not found: {method} {self._path}")
        name, version, metadata = about.groups()
        if not name:
            raise _bad("Missing model name in request.")
        version = int(version) if version else None
        if metadata:
            model = self.manager.resolve(name, version)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            for key, signature in model.signature_defs.items():
                signatures.signature_def[key].CopyFrom(signature)
            return {
                "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
                "metadata": {"signature_def": json_format.MessageToDict(signatures)},
            }
        model = model_status(self.manager, name, version)
        return {
            "model_version_status": [
                {
                    "version": str(model.version),
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }

    def _predict(self, model):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True  # the body's end is unknown
            raise _bad("Content-Length must be a number of bytes")
        if length > self.max_message_bytes:
            self.close_connection = True  # the body is left unread
            raise ServableError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes is above the limit of {self.max_message_bytes}",
            )
        data = self.rfile.read(length)
        self._body_read = True
        try:
            body = json.loads(data or b"null")
        except ValueError as e:
            raise _bad(f"the body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        signature = body.get("signature_name") or DEFAULT_SIGNATURE
        if not isinstance(signature, str):
            raise _bad('"signature_name" must be a string')
        if signature not in model.input_dtypes:
            raise signature_name_not_found(signature)  # TF Serving's REST code and words
        self._signature = signature
        columns, rows = _columns(body, input_dtypes(model, signature))
        sizes = {k: len(v) if isinstance(v, list) else 1 for k, v in columns.items()}
        expected = check_request(model, signature, sizes, self.max_items)
        arrays = {k: _array(k, columns[k], expected[k]) for k in expected}
        outputs = {
            k: _json_values(v) for k, v in run_signature(model, signature, arrays, []).items()
        }
        if not rows:
            return {"outputs": outputs}
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        status = grpc.StatusCode.OK
        self._path = urllib.parse.urlsplit(self.path).path  # as TF Serving: no query
        self._signature = ""  # set by _predict once the signature is known to exist
        self._body_read = False
        try:
            body = self._route(method)
        except Exception as e:  # noqa: BLE001 — answered and counted, never a dropped connection
            error = as_servable_error(e)
            if error is not e:
                log.error("%s %s failed: %s", method, self._path, error, exc_info=e)
            status, body = error.code, {"error": str(error)}
        if not self._body_read and (
            self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers
        ):
            self.close_connection = True  # a body left unread would be read as the next request
        # Counted before the answer is sent, so a client that reads the
        # metrics after its answer always sees its own request.
        match = _PREDICT.match(self._path)
        if method == "POST" and match:
            self.metrics.observe(
                match.group(1), self._signature, "rest", status, time.perf_counter() - started
            )
        self._send(http_status(status), body)

    def do_GET(self):
        if urllib.parse.urlsplit(self.path).path == METRICS_PATH:
            data = self.metrics.exposition()
            self.send_response(200)
            self.send_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    # Methods TF Serving's HTTP server takes too (and answers as above).
    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def do_PATCH(self):
        self._serve("PATCH")

    def do_OPTIONS(self):
        self._serve("OPTIONS")


def _json_values(value: np.ndarray):
    if value.dtype == object:  # strings
        return [
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v
            for v in value.reshape(-1).tolist()
        ]
    return value.tolist()


class _SharedPortServer(ThreadingHTTPServer):
    # Several server processes share the port (serving.server --num_processes).
    allow_reuse_port = True


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """Returns a server-side TLS context from PEM certificate-chain and private-key files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def start_rest_server(
    manager: ModelManager,
    host: str,
    port: int,
    max_items: int,
    metrics: ServerMetrics | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_message_bytes: int = 4 * 1024 * 1024,
    shared_port: bool = False,
):
    """Starts the REST server in a daemon thread; returns (server, bound port).

    With `ssl_context` (see `tls_context`) the port speaks HTTPS. A body
    above `max_message_bytes` is answered RESOURCE_EXHAUSTED (429) unread.
    With `shared_port`, other processes may bind the same port (SO_REUSEPORT).
    """
    attributes = {
        "manager": manager,
        "max_items": max_items,
        "max_message_bytes": max_message_bytes,
        "metrics": metrics or ServerMetrics(),
    }
    handler = type("Handler", (_Handler,), attributes)
    server = (_SharedPortServer if shared_port else ThreadingHTTPServer)((host, port), handler)
    server.daemon_threads = True
    if ssl_context is not None:
        # The handshake happens in each request's thread, not in accept():
        # a client that connects and says nothing cannot stall the port.
        server.socket = ssl_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(target=server.serve_forever, name="rest", daemon=True).start()
    return server, server.server_address[1]
