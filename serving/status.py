"""The server's errors: TF Serving's status codes, their HTTP statuses and their texts.

Every request the server refuses raises a `ServableError`, which carries a
gRPC status code and a message. Both APIs answer it from here: a gRPC handler
aborts with `code`, the REST API answers `http_status(code)` with the body
`{"error": message}`, and the metrics label the request `code.name`. Any
other exception is answered as `internal(error)`: INTERNAL, HTTP 500.

The class lives in this small module, imported by the server's modules and
`serving.rest` alike, so that it is one class however the server is started:
under `python -m serving.server` the server's own module is `__main__`, and
when the class was defined there it differed from the `serving.server` one
that `serving.rest` imported, so an `except` in one missed the other's errors.

The messages a client may parse are TF Serving's, word for word (sources in
the functions below).
"""

from __future__ import annotations

import types

import grpc

# TF Serving's mapping of a status code to the HTTP status of a REST answer:
# ToHTTPStatusCode in tensorflow_serving/model_servers/http_server.cc (499 is
# nginx's "client closed request", TF Serving's CLIENT_CLOSED_REQUEST).
HTTP_STATUS = types.MappingProxyType(
    {
        grpc.StatusCode.OK: 200,
        grpc.StatusCode.CANCELLED: 499,
        grpc.StatusCode.UNKNOWN: 500,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.FAILED_PRECONDITION: 400,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DATA_LOSS: 500,
        grpc.StatusCode.UNAUTHENTICATED: 401,
    }
)


class ServableError(Exception):
    """A request the server answers with a gRPC status code and a message.

    Args:
      code: The `grpc.StatusCode`.
      message: The text the client gets (gRPC details; REST "error").
    """

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code

    @property
    def http_status(self) -> int:
        """The HTTP status of the code, as TF Serving's REST API answers it."""
        return http_status(self.code)


def http_status(code: grpc.StatusCode) -> int:
    """Returns the HTTP status TF Serving answers a status code with (500 if unknown)."""
    return HTTP_STATUS.get(code, 500)


def as_servable_error(error: BaseException) -> ServableError:
    """Returns the ServableError a request's exception is answered with.

    Args:
      error: What handling the request raised.

    Returns:
      `error` itself if it is a ServableError, else `internal(error)`.
    """
    return error if isinstance(error, ServableError) else internal(error)


def internal(error: BaseException) -> ServableError:
    """INTERNAL for an unexpected exception: its type and the first line of its text."""
    return ServableError(
        grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}".splitlines()[0]
    )


def servable_not_found(name: str, version: int | None = None) -> ServableError:
    """NOT_FOUND for a model, or a version of it, that is not served.

    TF Serving's BasicManager (tensorflow_serving/core/basic_manager.cc) with
    ServableRequest::DebugString (tensorflow_serving/core/manager.h):
    `Servable not found for request: Latest(NAME)` or `... Specific(NAME, V)`.
    """
    request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
    return ServableError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")


def model_status_not_found(name: str, version: int | None = None) -> ServableError:
    """NOT_FOUND for GetModelStatus on a model, or a version of it, that is not served.

    TF Serving's GetModelStatusImpl
    (tensorflow_serving/model_servers/get_model_status_impl.cc).
    """
    if version is None:
        return ServableError(
            grpc.StatusCode.NOT_FOUND, f"Could not find any versions of model {name}"
        )
    return ServableError(
        grpc.StatusCode.NOT_FOUND, f"Could not find version {version} of model {name}"
    )


def signature_key_not_found(signature: str) -> ServableError:
    """FAILED_PRECONDITION for a gRPC Predict naming a signature the model lacks.

    TF Serving's RunPredict (tensorflow_serving/servables/tensorflow/predict_util.cc).
    """
    return ServableError(
        grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{signature}" not found.'
    )


def signature_name_not_found(signature: str) -> ServableError:
    """INVALID_ARGUMENT for a REST predict naming a signature the model lacks.

    TF Serving's REST API checks the signature while it reads the JSON body:
    HttpRestApiHandler::GetInfoMap
    (tensorflow_serving/model_servers/http_rest_api_handler.cc).
    """
    return ServableError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f'Serving signature name: "{signature}" not found in signature def',
    )


def inputs_mismatch(sent, expected) -> ServableError:
    """INVALID_ARGUMENT for a request whose input names are not the signature's.

    When the counts differ, TF Serving's VerifyRequestInputsSize
    (tensorflow_serving/servables/tensorflow/predict_util.cc), word for word.

    Args:
      sent: The input names of the request.
      expected: The input names of the signature.
    """
    sent, expected = sorted(set(sent)), sorted(set(expected))
    extra = ",".join(n for n in sent if n not in expected)
    missing = ",".join(n for n in expected if n not in sent)
    details = f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
    if len(sent) == len(expected):
        return ServableError(
            grpc.StatusCode.INVALID_ARGUMENT, f"input names do not match signature: {details}"
        )
    return ServableError(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"input size does not match signature: {len(sent)}!={len(expected)} "
        f"len({{{','.join(sent)}}}) != len({{{','.join(expected)}}}). {details}",
    )
