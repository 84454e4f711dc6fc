"""The request checks both APIs share: signature, input names, size, outputs, model status.

The gRPC handlers (`serving.grpc_api`) and the REST handler (`serving.rest`)
each read a request's inputs in their own format, then check and run it
here, so that both refuse a request with the same `ServableError`
(`serving.status`): FAILED_PRECONDITION for an unknown signature,
INVALID_ARGUMENT for missing or extra inputs, an unknown output or inputs the
signature rejects, RESOURCE_EXHAUSTED above `--max_items` input elements, and
NOT_FOUND, in GetModelStatus' words, for a version that is not served.
"""

from __future__ import annotations

import grpc
import tensorflow as tf

from serving.status import (
    ServableError,
    inputs_mismatch,
    model_status_not_found,
    signature_key_not_found,
)
from serving.versions import LoadedVersion, ModelManager


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
