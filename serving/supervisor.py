"""Several server processes on the same ports (`--num_processes`), started and stopped together.

One server process is bound by Python's GIL (gRPC's Python layer, the
handler and the Session call's feeds take turns on it), so under many clients
it leaves cores idle that more processes put to work. `supervise` runs
`python -m serving.server` workers that share the ports (SO_REUSEPORT),
passes SIGTERM and SIGINT on to them and stops them all if one exits;
`stop_with_parent` makes a worker drain by itself once its supervisor is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# The server's one logger, under the name it had when the server was one
# module: logging configurations (and tests) that name it keep working.
log = logging.getLogger("serving.server")


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


def stop_with_parent() -> None:
    """Drains this worker (SIGTERM to itself) once its supervisor is gone, e.g. killed."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        log.warning("supervisor %d is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
