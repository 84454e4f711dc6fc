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
    or `--max_message_bytes`, INTERNAL for an unexpected error; with TF
    Serving's messages where a client may parse them, e.g. `Servable not
    found for request: Latest(NAME)` (`serving.status` has the codes, the
    texts and the HTTP status of each code, for both APIs and the metrics);
  * the newest version is served; every `--file_system_poll_wait_seconds` the
    base path is scanned, a newer version is loaded and then swapped in
    atomically (requests in flight finish on the version they started on,
    then the old version's Session is closed); a version that fails to load
    is logged and the current one keeps serving;
  * binds 127.0.0.1 unless `--host` says otherwise; on SIGTERM or SIGINT it
    stops taking requests and lets those in flight finish (`--drain_s`).

Also:

  * gRPC health checking (`grpc.health.v1.Health`) and server reflection
    that describes every service and the files they import (`grpcurl
    describe`, calls by reflection);
  * TLS on the gRPC port and the REST port with `--ssl_cert_file` and
    `--ssl_key_file` (PEM; TF Serving takes the same through
    `--ssl_config_file`);
  * Prometheus metrics at the REST port's /monitoring/prometheus/metrics;
  * each version's `assets.extra/tf_serving_warmup_requests` is replayed
    before it takes traffic; a failing warm-up fails the load.

Speed choices (figures in benchmarks/RESULTS.md):

  * versions run as TF Serving runs them, in a Session (TF1 SavedModel
    loader) with `Session.make_callable`: numpy in and out, no eager tensors;
    ops run in the calling thread (`--tensorflow_inter_op_parallelism=-1`),
    which saves the hand-off to TensorFlow's thread pool, a large part of the
    fixed cost of a call to a small graph;
  * server-side batching (`Batcher`, on by default): requests of one
    signature whose inputs have equal lengths, arriving while the model is
    busy, are merged into one call;
  * a plain `grpc.server` (`--grpc_threads`, 4: enough requests in flight to
    form batches); string inputs read straight from `string_val`, outputs
    written as `tensor_content` from numpy bytes.

  * `--num_processes N`: N server processes share the ports (SO_REUSEPORT;
    see `supervise`). One process is bound by Python's GIL (gRPC's Python
    layer, the handler and the Session call's feeds take turns on it), so
    under many clients it leaves cores idle that more processes put to work.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
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
from tensorflow.python.util import deprecation
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)

from serving.reflection import enable_reflection
from serving.status import (
    ServableError,
    as_servable_error,
    inputs_mismatch,
    model_status_not_found,
    servable_not_found,
    signature_key_not_found,
)

log = logging.getLogger("serving.server")
DEFAULT_SIGNATURE = "serving_default"
_MAX_WARMUP = 1000  # TF Serving's limit on warm-up records
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
        # Under --num_processes > 1 every worker writes its values to files in
        # PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), and
        # any worker's exposition adds up all of them.
        self._exposed = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            self._exposed = prometheus_client.CollectorRegistry()
            multiprocess.MultiProcessCollector(self._exposed)
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
        """Counts one request and its latency.

        Args:
          model: The model name the request gave.
          signature: The signature name it gave ("" if it was not read).
          api: "grpc" or "rest".
          status: The code it was answered with (a `ServableError`'s, see
            `serving.status`); its name is the `status` label.
          seconds: How long it took.
        """
        # Names a client made up (unknown model or signature, or names no
        # handler checked) share one label value, so requests cannot grow the
        # number of series without bound.
        if status in _UNCHECKED_NAMES:
            model, signature = "<unknown>", "<unknown>"
        self.requests.labels(model, signature, api, status.name).inc()
        self.latency.labels(model, signature, api).observe(seconds)

    def exposition(self) -> bytes:
        """Returns the metrics in Prometheus' text format."""
        return prometheus_client.generate_latest(self._exposed)


_UNCHECKED_NAMES = (
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
)


class LoadedVersion:
    """One loaded SavedModel version, run as TF Serving runs it: in a Session.

    The SavedModel is loaded into a graph of its own (TF1 loader, as TF
    Serving's SavedModelBundle), and each (signature, outputs) pair gets one
    `Session.make_callable`: numpy in, numpy out, no eager tensors. Its
    `assets.extra/tf_serving_warmup_requests` (PredictionLogs, as TF Serving
    reads them; at most 1,000) are replayed before the version is returned.

    Requests hold the version while they run (`acquire`, `release`; see
    `ModelManager.use`). Once the version is `retire`d (swapped out), it
    closes (`close`) when the last request holding it ends, or at once if
    none does.

    Args:
      version: The integer version.
      path: The version's directory.
      session_config: The Session's ConfigProto (threading).
      max_batch_items: If > 0, a `Batcher` per batchable signature, running
        up to this many rows per call.

    Raises:
      Exception: Whatever loading the SavedModel or its warm-up raises.
    """

    def __init__(
        self,
        version: int,
        path: str,
        session_config=None,
        max_batch_items: int = 0,
    ):
        self.version = version
        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        self._callables = {}
        self._lock = threading.Lock()
        self.batchers = {}
        self._holders = 0  # requests holding the version (acquire/release)
        self._retired = False
        self._state = threading.Lock()  # guards _holders, _retired and closed
        self.closed = False
        try:
            self._load(max_batch_items)
        except BaseException:
            self.session.close()  # a failed load frees its session now
            raise

    def _load(self, max_batch_items: int) -> None:
        """Loads the graph and variables, makes the batchers, runs the warm-up requests."""
        with self.graph.as_default(), deprecation.silence():
            meta_graph = tf.compat.v1.saved_model.loader.load(
                self.session, [tf.saved_model.SERVING], self.path
            )
        self.signature_defs = {
            name: signature
            for name, signature in meta_graph.signature_def.items()
            if not name.startswith("__")
        }
        self.input_dtypes = {
            name: {key: info.dtype for key, info in signature.inputs.items()}
            for name, signature in self.signature_defs.items()
        }
        if max_batch_items:
            self.batchers = {
                name: Batcher(self, name, max_batch_items)
                for name, signature in self.signature_defs.items()
                if _batchable(signature)
            }
        self.warmed_up = self.warm_up()

    def run(self, signature: str, inputs: dict, outputs=None) -> dict:
        """Runs a signature on numpy inputs; returns {output: numpy array}.

        Args:
          signature: The signature's name (must exist).
          inputs: {input name: numpy array}, exactly the signature's inputs.
          outputs: Output names to compute; None or empty = all.

        Raises:
          ValueError: If the inputs are not the signature's.
          tf.errors.OpError: If the signature rejects the inputs.
        """
        definition = self.signature_defs[signature]
        if len(inputs) != len(definition.inputs) or not all(n in inputs for n in definition.inputs):
            raise ValueError(
                f"inputs {sorted(inputs)} do not match signature {signature}'s "
                f"{sorted(definition.inputs)}"
            )
        names = tuple(sorted(set(outputs))) if outputs else tuple(sorted(definition.outputs))
        key = (signature, names)
        run = self._callables.get(key)
        if run is None:
            with self._lock:
                run = self._callables.get(key)
                if run is None:
                    run = self._callables[key] = self.session.make_callable(
                        [definition.outputs[n].name for n in names],
                        [definition.inputs[n].name for n in sorted(definition.inputs)],
                    )
        values = run(*[inputs[n] for n in sorted(definition.inputs)])
        return dict(zip(names, values, strict=True))

    def warm_up(self) -> int:
        """Replays the version's warm-up requests; returns how many ran."""
        path = os.path.join(self.path, "assets.extra", "tf_serving_warmup_requests")
        if not tf.io.gfile.exists(path):
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
            if count == _MAX_WARMUP:
                break
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            request = entry.predict_log.request
            signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            self.run(signature, inputs, list(request.output_filter))
            count += 1
        return count

    def acquire(self) -> bool:
        """Holds the version for one request; False if it is retired (take its successor)."""
        with self._state:
            if self._retired:
                return False
            self._holders += 1
            return True

    def release(self) -> None:
        """Ends one `acquire`; the last release of a retired version closes it."""
        with self._state:
            self._holders -= 1
            close = self._retired and self._holders == 0
        if close:
            self.close()

    def retire(self) -> None:
        """Takes no new request; closes once the requests holding it have ended."""
        with self._state:
            if self._retired:
                return
            self._retired = True
            close = self._holders == 0
        if close:
            self.close()

    @property
    def holders(self) -> int:
        """How many requests hold the version now."""
        return self._holders

    def close(self) -> None:
        """Stops the batchers and closes the Session (its graph and variables go); idempotent."""
        with self._state:
            if self.closed:
                return
            self.closed = True
        for batcher in self.batchers.values():
            batcher.close()
        self.session.close()
        self._callables.clear()
        log.info("version %d closed (%s)", self.version, self.path)


def _batchable(signature) -> bool:
    """Whether requests of a signature can be concatenated: every input and output is [-1]."""
    tensors = list(signature.inputs.values()) + list(signature.outputs.values())
    return all([d.size for d in t.tensor_shape.dim] == [-1] for t in tensors)


class _Job:
    __slots__ = ("inputs", "size", "outputs", "error", "event")

    def __init__(self, inputs, size):
        self.inputs = inputs
        self.size = size
        self.outputs = None
        self.error = None
        self.event = threading.Event()


class Batcher:
    """Server-side batching of one signature by flat combining.

    A request that finds the model idle runs at once, with no added latency.
    Requests that arrive while it runs queue up; when it is done, the oldest
    of them runs everything queued (up to `max_items` input elements) as one
    call, concatenated along the batch axis, and hands each request its slice.
    So batches form only under load, and no thread is added. Only requests
    whose inputs all have the same length are batched (as in TF Serving);
    a batch that fails is rerun request by request, so an error reaches only
    the request that caused it.

    Args:
      version: The LoadedVersion.
      signature: The signature's name.
      max_items: The most elements per input of one batched call.
    """

    def __init__(self, version: LoadedVersion, signature: str, max_items: int):
        self.version = version
        self.signature = signature
        self.max_items = max_items
        self._lock = threading.Lock()
        self._queue: list[_Job] = []
        self._busy = False
        self.closed = False

    def close(self) -> None:
        """Takes no more requests (its version is closing: none is queued or running)."""
        with self._lock:
            self.closed = True

    def run(self, inputs: dict, size: int) -> dict:
        """Runs one request of `size` rows; returns all its outputs (see LoadedVersion.run).

        Raises:
          RuntimeError: If the batcher is closed.
        """
        job = _Job(inputs, size)
        with self._lock:
            if self.closed:
                raise RuntimeError(f"the batcher of version {self.version.version} is closed")
            self._queue.append(job)
            wait, self._busy = self._busy, True
        if wait:
            job.event.wait()  # our result, or our turn to run the queue
        if job.outputs is None and job.error is None:
            self._run_queue()
        if job.error is not None:
            raise job.error
        return job.outputs

    def _run_queue(self) -> None:
        with self._lock:
            batch, items = [], 0
            while self._queue and (not batch or items + self._queue[0].size <= self.max_items):
                job = self._queue.pop(0)
                batch.append(job)
                items += job.size
        try:
            if len(batch) == 1 or not self._run_together(batch, items):
                for job in batch:
                    self._run_alone(job)
        except BaseException as e:  # noqa: BLE001 — no request may wait forever
            for job in batch:
                if job.outputs is None and job.error is None:
                    job.error = e
        finally:
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._busy = successor is not None
            for job in batch:
                job.event.set()
            if successor is not None:
                successor.event.set()  # it runs the queue next

    def _run_together(self, batch: list[_Job], items: int) -> bool:
        """Runs a batch as one call; False (nothing set) if it must run request by request."""
        try:
            inputs = {
                name: np.concatenate([job.inputs[name] for job in batch])
                for name in batch[0].inputs
            }
            outputs = self.version.run(self.signature, inputs)
        except Exception:  # noqa: BLE001 — rerun alone: errors reach their own request
            return False
        if any(value.shape[:1] != (items,) for value in outputs.values()):
            return False  # outputs not one row per input row: slices would mix requests
        start = 0
        for job in batch:
            end = start + job.size
            job.outputs = {name: value[start:end] for name, value in outputs.items()}
            start = end
        return True

    def _run_alone(self, job: _Job) -> None:
        try:
            job.outputs = self.version.run(self.signature, job.inputs)
        except Exception as e:  # noqa: BLE001 — handed to the request's own thread
            job.error = e


class ModelManager:
    """Keeps the newest loadable version of one model, polling its base path.

    The version policy is TF Serving's default, latest only: one version is
    served, the newest loadable one on disk. A version swapped out (a newer
    one loaded, or its directory removed while an older one remains) is
    retired: requests that already hold it (`use`) finish on it, then its
    Session is closed. If every version directory is removed, the served
    version keeps serving (TF Serving would unload it) and a warning is logged.

    A closed version's graph sits in reference cycles that only Python's
    full garbage collection frees, and the collector's own schedule can
    leave them for many swaps while memory grows (benchmarks/RESULTS.md,
    serving_soak), so the poller runs `gc.collect()` once versions have
    closed. `main` calls `gc.freeze()` before the first load, so that
    collection skips TensorFlow's own long-lived objects, most of the heap,
    and a pass holds the GIL only briefly.

    Args:
      name: The served model's name.
      base_path: The directory holding integer version subdirectories.
      session_config: The ConfigProto of each version's Session.
      max_batch_items: Server-side batching of up to this many rows per call
        (0: none); see `Batcher`.
    """

    def __init__(self, name: str, base_path: str, session_config=None, max_batch_items: int = 0):
        self.name = name
        self.base_path = base_path
        self.session_config = session_config
        self.max_batch_items = max_batch_items
        self.current: LoadedVersion | None = None
        self._failed: dict[int, float] = {}  # version -> mtime of the failed attempt
        self._warned_gone: int | None = None  # the served version found gone with nothing left
        self._retired: list[LoadedVersion] = []  # swapped out, not yet garbage-collected
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
        """Serves the newest loadable version on disk; keeps the current one on failure.

        A newer version is loaded and swapped in; if the served version's
        directory is gone, the newest remaining one (even an older one) is.
        The version swapped out is retired (see `LoadedVersion.retire`).
        """
        self._collect_closed()
        on_disk = self.versions()
        current = self.current
        gone = current is not None and current.version not in on_disk
        if gone and not on_disk:
            if self._warned_gone != current.version:
                self._warned_gone = current.version
                log.warning(
                    "model %s: version %d is gone from %s and no other version is there; "
                    "still serving it",
                    self.name,
                    current.version,
                    self.base_path,
                )
            return
        for version in reversed(on_disk):
            if current is not None and not gone and version <= current.version:
                return
            path = os.path.join(self.base_path, str(version))
            mtime = os.path.getmtime(path) if os.path.exists(path) else 0.0
            if self._failed.get(version) == mtime:
                continue  # already failed as it is now: try older ones
            try:
                loaded = LoadedVersion(version, path, self.session_config, self.max_batch_items)
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
                "model %s: serving version %d%s (%d warm-up requests run)",
                self.name,
                version,
                f" (was {previous.version}{', removed' if gone else ''})" if previous else "",
                loaded.warmed_up,
            )
            if previous is not None:
                previous.retire()  # closes once its requests in flight are done
                self._retired.append(previous)
            return

    def _collect_closed(self) -> None:
        """Frees what closed versions still hold (graphs in reference cycles): a gc pass."""
        if any(version.closed for version in self._retired):
            self._retired = [version for version in self._retired if not version.closed]
            gc.collect()

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
          ServableError: NOT_FOUND for another model, a missing version or none
            loaded, in TF Serving's words (`serving.status.servable_not_found`).
        """
        current = self.current
        if name != self.name or current is None:
            raise servable_not_found(name, version)
        if version is not None and version != current.version:
            raise servable_not_found(name, version)
        return current

    def resolve_spec(self, model_spec) -> LoadedVersion:
        """`resolve` for a gRPC ModelSpec."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.resolve(model_spec.name, version)

    @contextlib.contextmanager
    def use(self, name: str, version: int | None = None):
        """Holds the version a request asks for while the request runs on it.

        `resolve`, then `LoadedVersion.acquire`: a version swapped out while
        the request runs is closed only after the request is done with it.
        Requests that only read a version's metadata need not hold it.

        Yields:
          The LoadedVersion.

        Raises:
          ServableError: As `resolve`.
        """
        while True:
            model = self.resolve(name, version)
            if model.acquire():
                break
            if model is self.current:  # retired yet still served: cannot happen in poll
                raise ServableError(
                    grpc.StatusCode.UNAVAILABLE, f"version {model.version} is closing"
                )
            # Retired between resolve and acquire: its successor is served now.
        try:
            yield model
        finally:
            model.release()

    def use_spec(self, model_spec):
        """`use` for a gRPC ModelSpec."""
        version = model_spec.version.value if model_spec.HasField("version") else None
        return self.use(model_spec.name, version)


def input_dtypes(model: LoadedVersion, signature: str) -> dict:
    """Returns {input: dtype enum} of a signature.

    Raises:
      ServableError: FAILED_PRECONDITION if the model has no such signature
        (gRPC Predict's answer; the REST API checks first, see `serving.rest`).
    """
    if signature not in model.input_dtypes:
        raise signature_key_not_found(signature)
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
        raise inputs_mismatch(elements, expected)
    total = sum(elements.values())
    if total > max_items:
        raise ServableError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"request holds {total} input elements, above the limit of {max_items}",
        )
    return expected


def run_signature(model: LoadedVersion, signature: str, arrays: dict, output_filter) -> dict:
    """Calls a signature; returns {output name: numpy array}, only those in `output_filter` if set.

    Requests whose inputs are all 1-D of one length go through the
    signature's `Batcher` when the version has one.

    Raises:
      ServableError: INVALID_ARGUMENT if the signature rejects the inputs or
        the filter names an unknown output.
    """
    known = model.signature_defs[signature].outputs
    wanted = list(output_filter) or sorted(known)
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output_filter {unknown}")
    batcher = model.batchers.get(signature)
    try:
        if batcher is not None and _one_length(arrays):
            outputs = batcher.run(arrays, len(next(iter(arrays.values()))))
        else:
            outputs = model.run(signature, arrays, wanted)
    except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
        message = getattr(e, "message", None) or str(e)
        raise ServableError(grpc.StatusCode.INVALID_ARGUMENT, message.splitlines()[0]) from None
    return {key: outputs[key] for key in wanted}


def _one_length(arrays: dict) -> bool:
    lengths = {a.shape[0] if a.ndim == 1 else -1 for a in arrays.values()}
    return len(lengths) == 1 and -1 not in lengths


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


def model_status(manager: ModelManager, name: str, version: int | None = None) -> LoadedVersion:
    """Returns the version GetModelStatus reports on: the served one, if the request names it.

    Raises:
      ServableError: NOT_FOUND in TF Serving's GetModelStatus words
        (`serving.status.model_status_not_found`).
    """
    current = manager.current
    if name != manager.name or current is None or version not in (None, current.version):
        raise model_status_not_found(name, version)
    return current


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
    parser.add_argument(
        "--enable_batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="batch concurrent requests of a signature into one call (see Batcher)",
    )
    parser.add_argument("--max_batch_size", type=int, default=1024, help="rows per batched call")
    parser.add_argument(
        "--grpc_threads",
        type=int,
        default=4,
        help="gRPC handler threads per process (requests in flight)",
    )
    parser.add_argument(
        "--num_processes",
        type=int,
        default=1,
        help="server processes sharing the ports (SO_REUSEPORT, Linux), each with the model "
        "loaded: more than one pays where one process's Python is the limit",
    )
    parser.add_argument("--shared_ports", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=-1,
        help="Session inter-op threads (-1: run ops in the calling thread, 0: TF's choice)",
    )
    parser.add_argument(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=1,
        help="Session intra-op threads (0: TF's choice)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.num_processes < 1:
        print("serving.server: error: --num_processes must be at least 1", file=sys.stderr)
        return 2
    if args.num_processes > 1:
        return supervise(args, list(sys.argv[1:] if argv is None else argv))
    session_config = tf.compat.v1.ConfigProto(
        inter_op_parallelism_threads=args.tensorflow_inter_op_parallelism,
        intra_op_parallelism_threads=args.tensorflow_intra_op_parallelism,
    )
    manager = ModelManager(
        args.model_name,
        args.model_base_path,
        session_config,
        args.max_batch_size if args.enable_batching else 0,
    )
    # What is loaded so far (TensorFlow, gRPC: ~375k objects) is never garbage:
    # the collections that free closed versions need not walk it each time.
    gc.freeze()
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
            args.grpc_threads,
        )
    except OSError as e:
        print(f"serving.server: error: {e}", file=sys.stderr)
        return 2
    server.start()
    print(f"serving {args.model_name} on {args.host}:{port}", flush=True)
    rest = None
    if args.rest_api_port:
        from serving.rest import start_rest_server, tls_context

        context = tls_context(args.ssl_cert_file, args.ssl_key_file) if credentials else None
        rest, rest_port = start_rest_server(
            manager,
            args.host,
            args.rest_api_port,
            args.max_items,
            metrics,
            context,
            args.max_message_bytes,
            shared_port=args.shared_ports,
        )
        print(f"REST API on {args.host}:{rest_port}", flush=True)
    stopped, draining = threading.Event(), threading.Event()

    def drain(signum, frame):
        if draining.is_set():
            return  # a second signal while draining: the first one's drain goes on
        draining.set()
        log.info("signal %d: draining requests in flight (up to %.1f s)", signum, args.drain_s)
        manager.stop()
        health_servicer.enter_graceful_shutdown()
        if rest is not None:
            rest.shutdown()
        server.stop(args.drain_s).wait()
        stopped.set()

    signal.signal(signal.SIGTERM, drain)
    signal.signal(signal.SIGINT, drain)
    if args.shared_ports:  # a worker of `supervise`: never outlive it
        _stop_with_parent()
    stopped.wait()
    return 0


def supervise(args, argv: list) -> int:
    """Runs `args.num_processes` server processes on the same ports and stops them together.

    The first worker binds the ports asked for (`--port 0`: any free one);
    the others bind the same ones (gRPC sets SO_REUSEPORT; so does the REST
    server), and the kernel spreads connections over them. Each worker
    loads and polls the model on its own, so during a version swap one may
    answer with the new version while another still answers with the old.
    Metrics add up over the workers (prometheus_client's multiprocess mode).
    SIGTERM or SIGINT is passed on to every worker, which drains as a single
    server does. If a worker exits on its own, the others are stopped and
    this returns 1, for a process manager to restart the whole server. A
    worker whose supervisor is gone (killed) drains by itself.

    Args:
      args: The parsed flags.
      argv: The command line, repeated for each worker with its ports after it
        (argparse keeps the last value of a flag).

    Returns:
      The exit code.
    """
    import shutil
    import subprocess
    import tempfile

    metrics_dir = tempfile.mkdtemp(prefix="serving-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    command = [sys.executable, "-m", "serving.server", *argv, "--num_processes=1", "--shared_ports"]
    workers: list[subprocess.Popen] = []
    stopping = threading.Event()

    def start(extra: list) -> tuple[subprocess.Popen, list]:
        """Starts one worker; returns it and its announcement lines."""
        if stopping.is_set():
            raise _Stopped
        worker = subprocess.Popen(command + extra, stdout=subprocess.PIPE, text=True, env=env)
        workers.append(worker)
        wanted = 2 if args.rest_api_port else 1
        lines = []
        for line in worker.stdout:
            lines.append(line.rstrip("\n"))
            if len(lines) == wanted:
                break
        if len(lines) < wanted:
            code = worker.wait()
            if stopping.is_set():
                raise _Stopped
            raise OSError(f"server process {worker.pid} exited with {code} on start")
        # Nothing more is printed, but keep the pipe drained all the same.
        threading.Thread(target=worker.stdout.read, daemon=True).start()
        return worker, lines

    signalled: set[int] = set()

    def stop(signum=signal.SIGTERM, frame=None):
        stopping.set()
        for worker in workers:
            if worker.pid not in signalled and worker.poll() is None:
                signalled.add(worker.pid)  # once: a worker drains once
                worker.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        _, lines = start([])
        port = lines[0].rsplit(":", 1)[1]
        ports = ["--port", port]
        if args.rest_api_port:
            ports += ["--rest_api_port", lines[1].rsplit(":", 1)[1]]
        for _ in range(args.num_processes - 1):
            start(ports)
        print(f"serving {args.model_name} on {args.host}:{port}", flush=True)
        if args.rest_api_port:
            print(lines[1], flush=True)
        log.info("%d server processes: %s", len(workers), " ".join(str(w.pid) for w in workers))
        while not stopping.is_set():
            for worker in workers:
                if worker.poll() is not None and not stopping.is_set():
                    log.error("server process %d exited with %d", worker.pid, worker.returncode)
                    code = 1
                    stop()
            stopping.wait(0.5)
    except _Stopped:
        pass  # a signal came while the workers were starting
    except OSError as e:
        print(f"serving.server: error: {e}", file=sys.stderr)
        code = 2
    finally:
        stop()  # a no-op for workers that already exited
        for worker in workers:
            try:
                worker.wait(timeout=args.drain_s + 30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    failed = [w.returncode for w in workers if w.returncode not in (0, -signal.SIGTERM)]
    return code or (1 if failed else 0)


class _Stopped(Exception):
    """A stop signal reached the supervisor while it was starting workers."""


def _stop_with_parent() -> None:
    """Drains this worker (SIGTERM to itself) once its supervisor is gone, e.g. killed."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("supervisor %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    # Run as `python -m serving.server`, this file is `__main__`; serving.rest
    # imports it again as `serving.server`. Running that one's main() makes
    # the live objects (manager, metrics, handlers) all come from one module.
    from serving.server import main as _main

    sys.exit(_main())
