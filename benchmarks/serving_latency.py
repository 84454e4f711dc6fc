"""Benchmark of online scoring: requests/s and latency of `serving.server` over gRPC.

Starts `python -m serving.server` on an export (a `--model_base_path` of
`serving.export`), then drives it with Predict requests of 1 user x `--items`
candidate items (`serving_default`; the user id sent once per item, as a
client of TF Serving's batching sends it) from `--clients` concurrent clients
for `--duration` seconds, then from 1 client. The concurrent clients are
asyncio coroutines, one gRPC channel and connection each (as separate client
machines; gRPC would otherwise share one), in `--client_processes` processes
(the lightest Python client tried); the single client is a plain blocking
stub (lower latency than asyncio). Each reuses one prebuilt request. The
clients share the server's machine and cores: "client included". Known ids
are read from the export's warm-up requests. With `--ceiling`, the same phases
also run against a canned server (a fixed answer, no TensorFlow): what gRPC
and Python alone allow on the machine at hand.

Prints requests/s, scores/s, p50 and p99 per phase and appends them, with the
command and the date, to benchmarks/RESULTS.md (unless --no_record). The last
line is machine-readable:

  RESULT rps_8=<x> p50_ms_8=<a> p99_ms_8=<b> p50_ms_1=<c>

Usage:
  python benchmarks/serving_latency.py --model_base_path export/mogenet
      [--duration 30] [--clients 8] [--items 100] [--server_args "--num_processes 2"]
      [--ceiling]
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import threading
import time

import numpy as np

import legacy_keras  # noqa: F401  (before TensorFlow)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def known_ids(version_dir: str) -> tuple[bytes, list[bytes]]:
    """Returns (a user id, item ids) from the version's serving_default warm-up requests."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    best = None
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
        if "item_id" in request.inputs:
            items = list(request.inputs["item_id"].string_val)
            if best is None or len(items) > len(best[1]):
                best = (request.inputs["user_id"].string_val[0], items)
    if best is None:
        raise SystemExit(f"no serving_default warm-up request in {path}")
    return best


# Channels of one process to one target share a connection unless told not to:
# each client gets its own, as separate client machines would have.
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _client_process(target, model_name, user, items, threads, duration, start_at, queue):
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_request(predict_pb2, model_name, user, items)
    latencies = [[] for _ in range(threads)]
    errors = [0] * threads

    def run(k):
        channel = grpc.insecure_channel(target, options=_OWN_CONNECTION)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(request, timeout=30)  # connect before the clock starts
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        record = latencies[k].append
        while True:
            began = time.perf_counter()
            if time.time() >= end:
                break
            try:
                stub.Predict(request, timeout=10)
            except grpc.RpcError:
                errors[k] += 1
                continue
            record(time.perf_counter() - began)
        channel.close()

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    queue.put((sum(latencies, []), sum(errors)))


def _aio_client_process(target, model_name, user, items, clients, duration, start_at, queue):
    import asyncio

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_request(predict_pb2, model_name, user, items)

    async def main():
        latencies, errors = [], 0
        # One channel (connection) per client, as separate clients would have.
        channels = [
            grpc.aio.insecure_channel(target, options=_OWN_CONNECTION) for _ in range(clients)
        ]
        stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in channels]
        for stub in stubs:
            await stub.Predict(request, timeout=30)  # connect before the clock starts
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = start_at + duration

        async def client(stub):
            nonlocal errors
            while True:
                began = time.perf_counter()
                if time.time() >= end:
                    return
                try:
                    await stub.Predict(request, timeout=10)
                except grpc.RpcError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - began)

        await asyncio.gather(*(client(stub) for stub in stubs))
        for channel in channels:
            await channel.close()
        return latencies, errors

    queue.put(asyncio.run(main()))


def predict_request(predict_pb2, model_name, user, items):
    """A serving_default PredictRequest scoring `items` for `user`."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    for key, values in (("user_id", [user] * len(items)), ("item_id", items)):
        tensor = request.inputs[key]
        tensor.dtype = 7  # DT_STRING
        tensor.tensor_shape.dim.add().size = len(values)
        tensor.string_val.extend(values)
    return request


def drive(target, model_name, user, items, clients, processes, duration, aio=True) -> dict:
    """Runs `clients` closed-loop clients for `duration` s; returns the phase's figures."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = max(1, min(processes, clients))
    shares = [clients // processes + (k < clients % processes) for k in range(processes)]
    start_at = time.time() + 8.0  # time for the spawned clients to import and connect
    children = [
        context.Process(
            target=_aio_client_process if aio else _client_process,
            args=(target, model_name, user, items, share, duration, start_at, queue),
        )
        for share in shares
    ]
    for child in children:
        child.start()
    latencies, errors = [], 0
    for _ in children:
        part, failed = queue.get()
        latencies.extend(part)
        errors += failed
    for child in children:
        child.join()
    ms = np.array(latencies) * 1e3
    rps = len(ms) / duration
    return {
        "clients": clients,
        "requests": len(ms),
        "errors": errors,
        "rps": rps,
        "scores_per_s": rps * len(items),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def serve_canned(threads: int) -> None:
    """A PredictionService that answers a fixed response without TensorFlow (the ceiling)."""
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import (
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

    answer = predict_pb2.PredictResponse()
    for task in ("click", "conversion"):
        tensor = answer.outputs[task]
        tensor.dtype = 1  # DT_FLOAT
        tensor.tensor_shape.dim.add().size = 100
        tensor.tensor_content = np.zeros(100, np.float32).tobytes()

    class Canned(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            return answer

    class Status(model_service_pb2_grpc.ModelServiceServicer):
        def GetModelStatus(self, request, context):
            return get_model_status_pb2.GetModelStatusResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Canned(), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Status(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"serving canned on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


def server_command(model_base_path, model_name, server_args="", *flags) -> list[str]:
    """The command line of `python -m serving.server` on a free port (`--port=0`)."""
    return [
        sys.executable,
        "-m",
        "serving.server",
        "--port=0",
        f"--model_name={model_name}",
        f"--model_base_path={model_base_path}",
        *flags,
        *shlex.split(server_args),
    ]


def start_server(model_base_path, model_name, server_args):
    """Starts serving.server on a free port; returns (process, target)."""
    if model_base_path is None:  # the canned server
        command = [sys.executable, os.path.abspath(__file__), "--canned_server"]
        model_name = "canned"
    else:
        command = server_command(model_base_path, model_name, server_args)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 180
    for line in process.stdout:
        if line.startswith(f"serving {model_name} on "):
            target = line.split(" on ", 1)[1].strip()
            break
        if time.time() > deadline:
            break
    else:
        raise SystemExit(f"the server exited: {process.wait()}")
    return process, target


def wait_until_serving(target, model_name) -> None:
    """Returns once the server answers GetModelStatus for the model (180 s at most)."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    channel = grpc.insecure_channel(target)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model_name
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            try:
                stub.GetModelStatus(request, timeout=5)
                return
            except grpc.RpcError:
                time.sleep(0.5)
    finally:
        channel.close()
    raise SystemExit("the server loaded no version in 180 s")


def record(args, phases) -> None:
    date = datetime.date.today().isoformat()
    command = "python benchmarks/serving_latency.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    lines = [
        "",
        f"### serving_latency — {date}{f' ({args.label})' if args.label else ''}",
        "",
        f"`{command}` on {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1 user x {args.items} items per request, {args.duration:g} s per phase, "
        f"clients in {args.client_processes} processes on the same machine.",
        "",
        "| server | clients | requests | errors | requests/s | scores/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in phases:
        lines.append(
            f"| {p['server']} | {p['clients']} | {p['requests']:,} | {p['errors']} | "
            f"{p['rps']:,.0f} | "
            f"{p['scores_per_s']:,.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} |"
        )
    with open(RESULTS, "a") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--model_base_path", required=True, help="export/<model_name>")
    parser.add_argument("--model_name", default="mogenet")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--client_processes", type=int, default=1)
    parser.add_argument("--items", type=int, default=100, help="candidate items per request")
    parser.add_argument("--server_args", default="", help="extra serving.server flags")
    parser.add_argument("--label", default="", help="a note for RESULTS.md")
    parser.add_argument("--no_record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also drive a canned server (fixed answer, no TensorFlow): gRPC + Python's ceiling",
    )
    parser.add_argument("--canned_server", action="store_true", help=argparse.SUPPRESS)
    if "--canned_server" in (argv if argv is not None else sys.argv[1:]):
        serve_canned(threads=3)
        return 0
    args = parser.parse_args(argv)

    versions = sorted(int(v) for v in os.listdir(args.model_base_path) if v.isdigit())
    if not versions:
        raise SystemExit(f"no version under {args.model_base_path}")
    user, items = known_ids(os.path.join(args.model_base_path, str(versions[-1])))
    items = (items * (args.items // len(items) + 1))[: args.items]
    servers = [("serving.server", args.model_base_path)]
    if args.ceiling:
        servers.append(("canned (no TensorFlow)", None))
    phases = []
    for label, base in servers:
        server, target = start_server(base, args.model_name, args.server_args)
        name = args.model_name if base else "canned"
        try:
            wait_until_serving(target, name)
            for clients in (args.clients, 1):
                phase = drive(
                    target,
                    name,
                    user,
                    items,
                    clients,
                    args.client_processes,
                    args.duration,
                    aio=clients > 1,
                )
                phase["server"] = label
                phases.append(phase)
                print(
                    f"{label}, {clients} clients: {phase['rps']:,.0f} requests/s, "
                    f"{phase['scores_per_s']:,.0f} scores/s, p50 {phase['p50_ms']:.2f} ms, "
                    f"p99 {phase['p99_ms']:.2f} ms, {phase['errors']} errors",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(60)
    if not args.no_record:
        record(args, phases)
    many, one = phases[:2]
    print(
        f"RESULT rps_8={many['rps']:.0f} p50_ms_8={many['p50_ms']:.2f} "
        f"p99_ms_8={many['p99_ms']:.2f} p50_ms_1={one['p50_ms']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
