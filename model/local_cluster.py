"""Parameter-server training on an in-process cluster, for trying it on one machine.

  python -m model.local_cluster [--workers 2] [--ps 1] -- --data OUT --model_dir DIR [train flags]

Starts `--workers` worker and `--ps` parameter-server gRPC servers on
loopback inside this process, points TF_CONFIG at them (this process is the
chief, i.e. the coordinator) and runs `python -m model.train --strategy
parameter_server` with the flags after `--`. It is the paper's set-up (a
parameter server) at the scale of one machine; on a real cluster each task
is its own process with TF_CONFIG set by the scheduler, and `model.train
--strategy parameter_server` runs on the chief.

The servers share the process's inter-op thread pool with the coordinator, so
the pool is sized by the cluster, `workers + 2` threads, not by the core count
(TensorFlow's default): a pool with fewer threads than the cluster's tasks
waiting on one another in it can deadlock.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

import tensorflow as tf

from model import train as train_lib


def free_port() -> int:
    """Returns a TCP port free on every interface right now (TF's servers bind 0.0.0.0)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def start_cluster(workers: int, ps: int, attempts: int = 3) -> tuple[dict, list]:
    """Starts worker and ps servers in this process.

    A port found free can be taken by another process before the server binds
    it; then the whole cluster is retried on new ports (`attempts` times).

    Returns:
      (cluster, servers): the TF_CONFIG cluster dict (with a chief address for
      this process) and the started `tf.distribute.Server`s.

    Raises:
      tf.errors.UnknownError: If no attempt could bind its ports.
    """
    for attempt in range(attempts):
        try:
            return _start_cluster(workers, ps)
        except tf.errors.UnknownError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start_cluster(workers: int, ps: int) -> tuple[dict, list]:
    cluster = {
        "worker": [f"127.0.0.1:{free_port()}" for _ in range(workers)],
        "ps": [f"127.0.0.1:{free_port()}" for _ in range(ps)],
    }
    spec = tf.train.ClusterSpec(cluster)
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=workers + 2)
    servers = [
        tf.distribute.Server(
            spec, job_name=job, task_index=index, protocol="grpc", config=config, start=True
        )
        for job in ("worker", "ps")
        for index in range(len(cluster[job]))
    ]
    return {**cluster, "chief": [f"127.0.0.1:{free_port()}"]}, servers


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, theirs = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    parser = argparse.ArgumentParser(
        prog="python -m model.local_cluster",
        description="Train with ParameterServerStrategy on an in-process cluster.",
        epilog="Flags after -- go to python -m model.train.",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ps", type=int, default=1)
    args = parser.parse_args(ours)
    cluster, _servers = start_cluster(args.workers, args.ps)
    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": cluster, "task": {"type": "chief", "index": 0}}
    )
    print(f"in-process cluster: {args.workers} worker(s), {args.ps} ps", flush=True)
    return train_lib.main([*theirs, "--strategy", "parameter_server"])


if __name__ == "__main__":
    sys.exit(main())
