"""Soak test of `serving.server`: steady traffic while new versions keep arriving.

Starts `python -m serving.server` on a model base path of its own (a temporary
directory) holding a copy of the latest version of `--model_base_path` (an
export of `serving.export`), with a short `--file_system_poll_wait_seconds`.
Clients send Predict requests of 1 user x `--items` items at a steady total
rate (`--qps` over gRPC, `--rest_qps` over the REST API; threads on a fixed
schedule, each with its own connection) for `--warmup_s` seconds, then for
`--duration_s` seconds while every `--swap_every_s` seconds a new version is
exported: the source version directory is copied aside and renamed into
place as the next integer version, as `serving.export` writes one.

Old version directories are deleted as new ones arrive: only the newest
`--keep_versions` stay on disk, and never the one the server still serves
(TF Serving's default version policy serves the latest version only). So the
disk does not fill up during a long soak, and removed versions go through the
server's unload path.

A swap is counted only when the server made it: when a Predict answer or a
GetModelStatus poll (every 0.25 s) first shows a newer version. The server's
RSS (psutil; summed over its processes under `--num_processes`) is read after
the warm-up, before the first new version (start), at the end of the soak
(end), and at each progress line (max). Each request has a 10-s deadline; a
failure is a gRPC error, an HTTP status other than 200, or an answer that has
not one score per item.

Prints a progress line every `--report_every_s` seconds, then the totals, and
appends them, with the command and the date, to benchmarks/RESULTS.md (unless
--no_record). Exits 1 if any request failed or the server died. The last
line is machine-readable:

  RESULT requests=<n> failed=<n> swaps=<n> rss_start_mb=<x> rss_end_mb=<y>

Usage:
  python benchmarks/serving_soak.py --model_base_path export/mogenet
      [--duration_s 150] [--swap_every_s 4] [--qps 50] [--rest_qps 10]
      [--server_args "--num_processes 2"]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serving_latency import (  # noqa: E402
    known_ids,
    predict_request,
    server_command,
    wait_until_serving,
)
from soak_parts import (  # noqa: E402
    prune_versions,
    publish_version,
    record,
    result_line,
    versions_on_disk,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE_S = 10.0


def parse_args(argv=None) -> argparse.Namespace:
    """Returns the benchmark's flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--model_base_path", required=True, help="export/<model_name>: its latest version is copied"
    )
    parser.add_argument("--model_name", default="mogenet")
    parser.add_argument("--duration_s", type=float, default=150.0, help="seconds of the soak")
    parser.add_argument("--warmup_s", type=float, default=10.0, help="traffic before the soak")
    parser.add_argument("--swap_every_s", type=float, default=4.0, help="a new version this often")
    parser.add_argument("--poll_s", type=float, default=0.5, help="the server's poll interval")
    parser.add_argument("--qps", type=float, default=50.0, help="gRPC requests per second")
    parser.add_argument("--rest_qps", type=float, default=0.0, help="REST requests per second")
    parser.add_argument("--clients", type=int, default=4, help="gRPC client threads")
    parser.add_argument("--items", type=int, default=100, help="candidate items per request")
    parser.add_argument("--keep_versions", type=int, default=3, help="version dirs kept on disk")
    parser.add_argument("--report_every_s", type=float, default=10.0, help="progress lines")
    parser.add_argument("--server_args", default="", help="extra serving.server flags")
    parser.add_argument("--label", default="", help="a note for RESULTS.md")
    parser.add_argument("--no_record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.qps <= 0 or args.rest_qps < 0:
        parser.error("--clients must be >= 1, --qps > 0 and --rest_qps >= 0")
    if args.swap_every_s <= 0 or args.duration_s <= 0 or args.keep_versions < 1:
        parser.error("--swap_every_s and --duration_s must be > 0, --keep_versions >= 1")
    return args


class Tally:
    """Requests, failures, latencies and versions seen, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.newest = 0  # the newest version any answer or status poll showed
        self.changes = 0  # how many times `newest` went up after the first version
        self.backwards = 0  # a client answered by an older version than it had seen

    def answer(self, seconds: float, version: int | None, error: str | None = None) -> None:
        with self.lock:
            self.requests += 1
            if error is not None:
                self.failed += 1
                self.errors[error] = self.errors.get(error, 0) + 1
                return
            self.latencies.append(seconds)
        self.seen(version)

    def seen(self, version: int | None) -> None:
        if version is None:  # a REST answer does not say its version
            return
        with self.lock:
            if version > self.newest:
                self.changes += self.newest > 0
                self.newest = version


def _guarded(target, tally: Tally):
    """Runs target(); a client that crashes counts as a failure instead of going quiet."""

    def run(*args):
        try:
            target(*args)
        except Exception as e:  # noqa: BLE001 — reported, and the benchmark fails
            print(f"{target.__name__} crashed: {type(e).__name__}: {e}", flush=True)
            tally.answer(0.0, None, f"{target.__name__} crashed")

    return run


def _schedule(stop: threading.Event, interval: float, offset: float, send) -> None:
    """Calls send() every `interval` s, starting `offset` s from now, until `stop` is set.

    A fixed schedule (open loop): a slow answer delays the next request but
    the ones after it catch up, so the rate holds when the server keeps up.
    """
    next_at = time.perf_counter() + offset
    while not stop.is_set():
        delay = next_at - time.perf_counter()
        if delay > 0 and stop.wait(delay):
            return
        send()
        next_at = max(next_at + interval, time.perf_counter() - interval)


def grpc_client(target, model_name, user, items, rate, offset, stop, tally) -> None:
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_request(predict_pb2, model_name, user, items)
    # A connection of its own, as a separate client machine would have.
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    last = 0

    def send():
        nonlocal last
        began = time.perf_counter()
        try:
            answer = stub.Predict(request, timeout=DEADLINE_S)
        except grpc.RpcError as e:
            tally.answer(0.0, None, f"grpc {e.code().name}")
            return
        version = answer.model_spec.version.value
        shapes = [[d.size for d in t.tensor_shape.dim] for t in answer.outputs.values()]
        if not shapes or any(shape != [len(items)] for shape in shapes):
            tally.answer(0.0, None, "grpc wrong answer")
        elif version < last:
            tally.answer(0.0, None, "grpc older version")
        else:
            last = version
            tally.answer(time.perf_counter() - began, version)

    _schedule(stop, 1.0 / rate, offset, send)
    channel.close()


def rest_client(host, port, model_name, user, items, rate, offset, stop, tally) -> None:
    body = json.dumps(
        {
            "inputs": {
                "user_id": [user.decode()] * len(items),
                "item_id": [i.decode() for i in items],
            }
        }
    )
    path = f"/v1/models/{model_name}:predict"
    connection = http.client.HTTPConnection(host, port, timeout=DEADLINE_S)

    def send():
        nonlocal connection
        began = time.perf_counter()
        try:
            connection.request("POST", path, body=body)
            response = connection.getresponse()
            payload = json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as e:
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=DEADLINE_S)
            tally.answer(0.0, None, f"rest {type(e).__name__}")
            return
        if response.status != 200:
            tally.answer(0.0, None, f"rest HTTP {response.status}")
        elif any(len(v) != len(items) for v in payload.get("outputs", {"": []}).values()):
            tally.answer(0.0, None, "rest wrong answer")
        else:
            tally.answer(time.perf_counter() - began, None)

    _schedule(stop, 1.0 / rate, offset, send)
    connection.close()


def status_poller(target, model_name, stop, tally) -> None:
    """Records the served version (GetModelStatus) every 0.25 s."""
    import grpc
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    channel = grpc.insecure_channel(target)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model_name
    while not stop.wait(0.25):
        try:
            (status,) = stub.GetModelStatus(request, timeout=DEADLINE_S).model_version_status
        except (grpc.RpcError, ValueError):
            continue  # not a Predict request: counted nowhere
        tally.seen(status.version)
    channel.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base, model_name, poll_s, rest_port, server_args, log_file):
    """Starts serving.server on a free port; returns (process, gRPC target)."""
    command = server_command(
        base,
        model_name,
        server_args,
        f"--file_system_poll_wait_seconds={poll_s}",
        *([f"--rest_api_port={rest_port}"] if rest_port else []),
    )
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log_file, text=True, cwd=ROOT
    )
    line = process.stdout.readline()  # blocks until it serves (or exits)
    if not line.startswith(f"serving {model_name} on "):
        process.kill()
        raise SystemExit(f"the server did not start (exit {process.wait()}); log: {log_file.name}")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
    return process, line.split(" on ", 1)[1].strip()


def server_rss_mb(pid: int) -> float:
    """RSS of the server: the process and its children (workers under --num_processes)."""
    import psutil

    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter
    versions = versions_on_disk(args.model_base_path) if os.path.isdir(args.model_base_path) else []
    if not versions:
        raise SystemExit(f"no version under {args.model_base_path}")
    source = os.path.join(args.model_base_path, str(versions[-1]))
    user, items = known_ids(source)
    items = (items * (args.items // len(items) + 1))[: args.items]

    work = tempfile.mkdtemp(prefix="serving-soak-")
    base = os.path.join(work, args.model_name)
    os.makedirs(base)
    publish_version(source, base, 1)
    log_file = open(os.path.join(work, "server.log"), "w+")
    rest_port = free_port() if args.rest_qps else 0
    print(f"serving a copy of {source} from {base}; server log {log_file.name}", flush=True)
    server, target = start_server(
        base, args.model_name, args.poll_s, rest_port, args.server_args, log_file
    )
    tally, stop = Tally(), threading.Event()
    threads = []
    try:
        wait_until_serving(target, args.model_name)
        rate = args.qps / args.clients
        for k in range(args.clients):  # spread over the interval, not all at once
            offset = k / args.qps
            threads.append(
                threading.Thread(
                    target=_guarded(grpc_client, tally),
                    args=(target, args.model_name, user, items, rate, offset, stop, tally),
                )
            )
        if args.rest_qps:
            threads.append(
                threading.Thread(
                    target=_guarded(rest_client, tally),
                    args=(
                        "127.0.0.1",
                        rest_port,
                        args.model_name,
                        user,
                        items,
                        args.rest_qps,
                        0.5 / args.rest_qps,
                        stop,
                        tally,
                    ),
                )
            )
        threads.append(
            threading.Thread(target=status_poller, args=(target, args.model_name, stop, tally))
        )
        for thread in threads:
            thread.start()
        started = time.perf_counter()
        stop.wait(args.warmup_s)
        rss_start = rss_max = server_rss_mb(server.pid)
        print(
            f"warm-up: {tally.requests:,} requests, {tally.failed} failed, RSS {rss_start:.1f} MB",
            flush=True,
        )
        soak_from = time.perf_counter()
        next_swap, next_report = soak_from + args.swap_every_s, soak_from + args.report_every_s
        version, pruned = 1, 0
        while server.poll() is None:
            now = time.perf_counter()
            if now - soak_from >= args.duration_s:
                break
            if now >= next_swap:
                version += 1
                publish_version(source, base, version)
                pruned += len(prune_versions(base, tally.newest, args.keep_versions))
                next_swap += args.swap_every_s
            if now >= next_report:
                rss = server_rss_mb(server.pid)
                rss_max = max(rss_max, rss)
                print(
                    f"t={now - started:5.0f} s: {tally.requests:,} requests, "
                    f"{tally.failed} failed, {version - 1} versions exported, "
                    f"{tally.changes} swaps seen (serving {tally.newest}), RSS {rss:.1f} MB",
                    flush=True,
                )
                next_report += args.report_every_s
            time.sleep(max(0.0, min(next_swap, next_report) - time.perf_counter()))
        alive = server.poll() is None
        rss_end = server_rss_mb(server.pid) if alive else float("nan")
        rss_max = max(rss_max, rss_end)
    finally:
        stop.set()
        for thread in threads:
            thread.join(DEADLINE_S + 5)
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    log_file.seek(0)
    server_log = log_file.read()
    log_file.close()
    closed = len(re.findall(r"version \d+ closed", server_log))
    loaded_log = len(re.findall(r"serving version \d+ \(was \d+", server_log))
    ms = np.array(tally.latencies or [0.0]) * 1e3
    figures = {
        "requests": tally.requests,
        "failed": tally.failed,
        "exported": version - 1,
        "swaps": tally.changes,
        "closed": closed,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_max_mb": rss_max,
    }
    print(
        f"{tally.requests:,} requests, {tally.failed} failed"
        + (
            f" ({', '.join(f'{k}: {n}' for k, n in sorted(tally.errors.items()))})"
            if tally.errors
            else ""
        )
        + f"; {version - 1} versions exported, {tally.changes} swaps seen by clients "
        f"({loaded_log} in the server's log), {closed} old versions closed, "
        f"{pruned} old version dirs deleted; p50 {figures['p50_ms']:.2f} ms, "
        f"p99 {figures['p99_ms']:.2f} ms; server RSS {rss_start:.1f} MB after warm-up, "
        f"{rss_end:.1f} MB at the end, {rss_max:.1f} MB at most",
        flush=True,
    )
    if not alive:
        print("the server died during the soak", flush=True)
    code = 1 if tally.failed or not alive else 0
    if code:
        print(f"server log kept: {os.path.join(work, 'server.log')}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if not args.no_record:
        record(args, figures)
    print(result_line(tally.requests, tally.failed, tally.changes, rss_start, rss_end))
    return code


if __name__ == "__main__":
    sys.exit(main())
