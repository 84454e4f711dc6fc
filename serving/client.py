"""Scores (user, item) pairs on a TF Serving–compatible server over gRPC.

  python -m serving.client --server localhost:8500 --model_name mogenet \\
      --user U --items I1,I2,... [--top_k 10] [--rank_by click]

prints the items ranked by one task's score (default: the first task the
server's signature lists), with every task's score. `ScoringClient` is the
same thing as a class, with a deadline per call and retries on the errors a
retry can cure (UNAVAILABLE, DEADLINE_EXCEEDED). It speaks only
`tensorflow.serving.PredictionService` through the `tensorflow_serving.apis`
stubs, so it works unchanged against real TF Serving and against
`serving.server`.

The request follows the export's `serving_default` contract
(docs/serving-contract.md, "Signatures"): `user_id` and `item_id` string [N],
the user id sent once per item so that server-side batching can merge
requests (the signature also takes a [1] user id, broadcast); the response
holds one float [N] output per task, named after the task.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
import numpy as np
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from contracts.signatures import ITEM_ID, SERVING_DEFAULT, USER_ID

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
_DT_STRING = 7  # tensorflow.DataType.DT_STRING
_DT_FLOAT = 1  # tensorflow.DataType.DT_FLOAT
_MAX_MESSAGE = 64 * 1024 * 1024


class ScoringError(RuntimeError):
    """A call failed for good; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code


class ScoringClient:
    """A PredictionService client for one served model.

    Args:
      target: "host:port" of the gRPC server.
      model_name: The served model's name.
      signature_name: The signature to call.
      version: A model version to pin, or None for the newest.
      timeout_s: Deadline of each attempt, in seconds.
      retries: Extra attempts after an UNAVAILABLE or DEADLINE_EXCEEDED.
      backoff_s: Wait before the first retry; doubles at each retry.
      root_certificates: PEM bytes to use TLS; None for a plaintext channel.
    """

    def __init__(
        self,
        target: str,
        model_name: str = "mogenet",
        signature_name: str = SERVING_DEFAULT,
        version: int | None = None,
        timeout_s: float = 1.0,
        retries: int = 2,
        backoff_s: float = 0.05,
        root_certificates: bytes | None = None,
    ):
        options = [
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ]
        if root_certificates is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self.model_name = model_name
        self.signature_name = signature_name
        self.version = version
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def _model_spec(self, spec) -> None:
        spec.name = self.model_name
        spec.signature_name = self.signature_name
        if self.version is not None:
            spec.version.value = self.version

    def _call(self, method, request):
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout_s)
            except grpc.RpcError as e:
                code = e.code()
                if code not in _RETRYABLE or attempt == self.retries:
                    raise ScoringError(code, e.details() or "") from None
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def predict(self, inputs: dict[str, list]) -> dict[str, np.ndarray]:
        """Calls Predict with string inputs; returns every output as a numpy array.

        Args:
          inputs: {input name: list of str/bytes}, each sent as a string [n] tensor.

        Raises:
          ScoringError: If the call fails for good.
        """
        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        for name, values in inputs.items():
            tensor = request.inputs[name]
            tensor.dtype = _DT_STRING
            tensor.tensor_shape.dim.add().size = len(values)
            tensor.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in values)
        response = self._call(self._stub.Predict, request)
        return {name: _float_array(tensor) for name, tensor in response.outputs.items()}

    def score(self, user: str, items) -> dict[str, np.ndarray]:
        """Returns {task: [len(items)] scores} of one user with each item.

        The user id is sent once per item rather than once: TF Serving's
        batching (and `serving.server`'s) only merges requests whose inputs
        have equal lengths.
        """
        items = list(items)
        if not items:
            return {}
        return self.predict({USER_ID: [user] * len(items), ITEM_ID: items})

    def rank(self, user: str, items, rank_by: str | None = None, top_k: int | None = None):
        """Returns [(item, {task: score})] best first by `rank_by`.

        `rank_by` defaults to the first output name in sorted order.

        Raises:
          ScoringError: If the call fails or `rank_by` is not an output.
        """
        items = list(items)
        scores = self.score(user, items)
        if not scores:
            return []
        tasks = sorted(scores)
        rank_by = rank_by or tasks[0]
        if rank_by not in scores:
            raise ScoringError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"--rank_by {rank_by!r} is not an output; outputs: {', '.join(tasks)}",
            )
        order = np.argsort(-scores[rank_by], kind="stable")[: top_k or None]
        return [(items[i], {t: float(scores[t][i]) for t in tasks}) for i in order]

    def output_names(self) -> list[str]:
        """Returns the output names (tasks) of the signature, from GetModelMetadata.

        Raises:
          ScoringError: If the call fails for good.
        """
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._model_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._call(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return sorted(signatures.signature_def[self.signature_name].outputs)


def _float_array(tensor) -> np.ndarray:
    if tensor.dtype != _DT_FLOAT:
        raise ScoringError(
            grpc.StatusCode.INTERNAL, f"expected float outputs, got dtype {tensor.dtype}"
        )
    if tensor.tensor_content:
        return np.frombuffer(tensor.tensor_content, dtype="<f4").copy()
    return np.asarray(tensor.float_val, dtype=np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.client",
        description="Rank items for a user with a served MoGENet model (TF Serving gRPC API).",
    )
    parser.add_argument("--server", default="localhost:8500", help="host:port of the gRPC server")
    parser.add_argument("--model_name", default="mogenet")
    parser.add_argument("--signature_name", default=SERVING_DEFAULT)
    parser.add_argument("--version", type=int, default=None, help="pin a model version")
    parser.add_argument("--user", required=True, help="the user id")
    parser.add_argument("--items", required=True, help="comma-separated candidate item ids")
    parser.add_argument("--top_k", type=int, default=10, help="items to print (0 = all)")
    parser.add_argument(
        "--rank_by",
        default=None,
        help="task to rank by (default: the first output name in sorted order)",
    )
    parser.add_argument("--timeout_s", type=float, default=5.0, help="deadline per attempt")
    parser.add_argument("--retries", type=int, default=2)
    args = parser.parse_args(argv)
    items = [i for i in args.items.split(",") if i]
    if not items:
        print("serving.client: error: --items lists no item", file=sys.stderr)
        return 2
    with ScoringClient(
        args.server,
        args.model_name,
        args.signature_name,
        args.version,
        args.timeout_s,
        args.retries,
    ) as client:
        try:
            ranked = client.rank(args.user, items, args.rank_by, args.top_k or None)
        except ScoringError as e:
            print(f"serving.client: error: {e}", file=sys.stderr)
            return 1
    tasks = sorted(ranked[0][1]) if ranked else []
    print(f"{'rank':>4}  {'item':<20}" + "".join(f"{t:>12}" for t in tasks))
    for position, (item, scores) in enumerate(ranked, 1):
        print(f"{position:>4}  {item:<20}" + "".join(f"{scores[t]:>12.4f}" for t in tasks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
