"""The files `tensorflow_model_server` reads beside the exported versions.

`serving.export` writes them under `<export_base>/` (see the README for the
server's flags): `models.config` (the model's name and base path),
`batching_parameters.txt` (server-side batching) and `monitoring.config`
(Prometheus metrics).
"""

from __future__ import annotations

import os

import tensorflow as tf

MODELS_CONFIG = """\
model_config_list {{
  config {{
    name: "{name}"
    base_path: "/models/{name}"
    model_platform: "tensorflow"
    model_version_policy {{ latest {{ num_versions: 1 }} }}
  }}
}}
"""

# Requests of 1 user x 100 items; batches of up to ~10 such requests.
BATCHING_PARAMETERS = """\
max_batch_size { value: 1024 }
batch_timeout_micros { value: 1000 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: false
"""

MONITORING_CONFIG = """\
prometheus_config {
  enable: true
  path: "/monitoring/prometheus/metrics"
}
"""


def write_server_configs(export_base: str, model_name: str) -> None:
    """Writes models.config, batching_parameters.txt and monitoring.config under export_base."""
    files = {
        "models.config": MODELS_CONFIG.format(name=model_name),
        "batching_parameters.txt": BATCHING_PARAMETERS,
        "monitoring.config": MONITORING_CONFIG,
    }
    for name, text in files.items():
        with tf.io.gfile.GFile(os.path.join(export_base, name), "w") as f:
            f.write(text)
