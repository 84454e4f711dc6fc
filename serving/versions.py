"""The served model's versions: loading one, warming it up, keeping the newest one served.

`LoadedVersion` is one SavedModel version, run as TF Serving runs it: in a
Session (TF1 SavedModel loader) with `Session.make_callable`, numpy in and
out; its `assets.extra/tf_serving_warmup_requests` are replayed before it
takes traffic, and a failing warm-up fails the load. `ModelManager` serves
the newest loadable version under the base path
(`<model_base_path>/<integer version>/saved_model.pb`): it polls every
`--file_system_poll_wait_seconds`, loads a newer version and swaps it in
atomically, keeps the current one if a version fails to load, and closes the
version swapped out once the requests running on it (`ModelManager.use`) are
done. The batching of a version's signatures is `serving.batching`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading

import grpc
import tensorflow as tf
from tensorflow.python.util import deprecation
from tensorflow_serving.apis import prediction_log_pb2

from contracts.signatures import SERVING_DEFAULT, WARMUP_FILE
from serving.batching import Batcher, batchable
from serving.status import ServableError, servable_not_found

# The server's one logger, under the name it had when the server was one
# module: logging configurations (and tests) that name it keep working.
log = logging.getLogger("serving.server")
DEFAULT_SIGNATURE = SERVING_DEFAULT  # TF Serving's default signature name
_MAX_WARMUP = 1000  # TF Serving's limit on warm-up records


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
                if batchable(signature)
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
        path = os.path.join(self.path, WARMUP_FILE)
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
    closed. `serving.server.main` calls `gc.freeze()` before the first load,
    so that collection skips TensorFlow's own long-lived objects, most of the
    heap, and a pass holds the GIL only briefly.

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
