"""The exported SavedModel's signatures and files (docs/serving-contract.md).

`serving.export` writes them, `serving.server` and `serving.client` use them,
as TF Serving and its clients do:

  * `serving_default`: `user_id`, `item_id` string [N] (or one of them [1])
    -> one float [N] probability per task, named after the task;
  * `score_examples`: `examples` string [N] (serialized samples) -> the same;
  * `assets.extra/tf_serving_warmup_requests`: PredictionLogs replayed before
    a version takes traffic.
"""

from __future__ import annotations

import os

SERVING_DEFAULT = "serving_default"
SCORE_EXAMPLES = "score_examples"
USER_ID = "user_id"
ITEM_ID = "item_id"
EXAMPLES = "examples"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
