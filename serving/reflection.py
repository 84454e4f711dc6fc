"""gRPC server reflection that describes every service the server exposes.

grpcio-reflection answers from a descriptor pool, the default one: a file is
there only once the Python module generated from it is imported. The
servicers come from tensorflow_serving's `*_pb2_grpc` modules, which import
the files of the messages but not `prediction_service_pb2` or
`model_service_pb2`, the files of the services themselves. So reflection
listed tensorflow.serving.PredictionService and ModelService (their names
were given by hand) but answered "Symbol not found" for them, and
`grpcurl describe` and grpcurl calls failed. Here the names are read from
those modules' descriptors: importing them puts the service files, and so
every file they import, in the pool.

The pool's own search for the file of a symbol (upb's) also misses methods,
which `grpcurl describe tensorflow.serving.PredictionService.Predict` asks
for; `_ReflectionPool` finds those through their service.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection
from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2

SERVICE_NAMES = (
    prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"].full_name,
    model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
    reflection.SERVICE_NAME,
)


class _ReflectionPool:
    """A descriptor pool, as reflection reads it, that also finds the file of a method.

    Args:
      pool: The pool to answer from.
    """

    def __init__(self, pool):
        self._pool = pool

    def __getattr__(self, name):
        return getattr(self._pool, name)

    def FindFileContainingSymbol(self, symbol: str):
        """Returns the file descriptor defining `symbol` (a method: its service's file).

        Raises:
          KeyError: If no file defines it.
        """
        try:
            return self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            try:
                return self._pool.FindMethodByName(symbol).containing_service.file
            except KeyError:
                raise KeyError(symbol) from None


def enable_reflection(server: grpc.Server) -> None:
    """Adds server reflection of `SERVICE_NAMES` and every file they import to a gRPC server."""
    pool = _ReflectionPool(descriptor_pool.Default())
    reflection.enable_server_reflection(SERVICE_NAMES, server, pool=pool)
