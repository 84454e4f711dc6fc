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
  * server-side batching (`serving.batching`, on by default): requests of one
    signature whose inputs have equal lengths, arriving while the model is
    busy, are merged into one call;
  * a plain `grpc.server` (`--grpc_threads`, 4: enough requests in flight to
    form batches); string inputs read straight from `string_val`, outputs
    written as `tensor_content` from numpy bytes.

  * `--num_processes N`: N server processes share the ports (SO_REUSEPORT;
    see `serving.supervisor`). One process is bound by Python's GIL (gRPC's
    Python layer, the handler and the Session call's feeds take turns on it),
    so under many clients it leaves cores idle that more processes put to work.

Where each part lives (this module is the command line: flags, start, drain):

  * `serving.versions`: loading a version, its warm-up, the model manager
    that polls the base path and swaps versions;
  * `serving.batching`: server-side batching;
  * `serving.requests`: the request checks both APIs share;
  * `serving.grpc_api`: the gRPC services, health checking, TLS credentials;
  * `serving.rest`: the REST API;
  * `serving.metrics`: the Prometheus metrics;
  * `serving.status`: the error codes, their HTTP statuses and texts;
  * `serving.reflection`: gRPC server reflection;
  * `serving.supervisor`: `--num_processes`.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading

import tensorflow as tf

from serving.grpc_api import make_server, tls_credentials
from serving.metrics import ServerMetrics
from serving.rest import start_rest_server, tls_context
from serving.supervisor import stop_with_parent, supervise
from serving.versions import ModelManager

# The server's one logger, under the name it had when the server was one
# module: logging configurations (and tests) that name it keep working.
log = logging.getLogger("serving.server")


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
        stop_with_parent()
    stopped.wait()
    return 0


if __name__ == "__main__":
    # Run as `python -m serving.server`, this file is `__main__`: a second copy
    # of the module, beside the `serving.server` that any import gets. Running
    # that one's main() keeps the running server's objects out of the
    # `__main__` copy (a class defined in both copies once broke error
    # handling: see `serving.status`).
    from serving.server import main as _main

    sys.exit(_main())
