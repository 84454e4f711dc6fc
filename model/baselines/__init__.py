"""The paper's baselines (§3), one module each, in the same framework as MoGENet.

Each is a `model.multitask.GraphMultiTaskModel`: same shared encoders, same
samples, same ranking tasks, trained by `python -m model.train --model NAME`.
They train with the plain sum of the tasks' BCEs (+ the L2 penalty), as
published; MoGENet's uncertainty weighting and cooperative loss are its own.

  mlp            one MLP tower per task                     (towers [512, 256, 128])
  esmm           ESMM: p(conversion) = p(click) · p(conversion | click)
  ngcf           NGCF on the bipartite trees, single task (one model per task)
  shared_bottom  one shared bottom, a linear output per task
  cross_stitch   one tower per task, cross-stitch units between their layers
  mmoe           MMoE: experts, one gating network per task
  snr_trans      SNR-Trans: sub-networks routed by learned hard-concrete codes
  cgc            CGC (PLE's extraction network): shared and task experts

With `--mgnn` the multi-task ones become "+ MGNN" (Table 3): their input is
[p_u || q_i || Z], Z being MGNN's four κ interactions of the channel states.
"""

from model.baselines.cgc import CGC
from model.baselines.cross_stitch import CrossStitch
from model.baselines.esmm import ESMM
from model.baselines.mlp import MLPBaseline
from model.baselines.mmoe import MMoE
from model.baselines.ngcf import NGCF
from model.baselines.shared_bottom import SharedBottom
from model.baselines.snr_trans import SNRTrans

# Model name (`--model`) -> class.
BASELINE_CLASSES = {
    "mlp": MLPBaseline,
    "esmm": ESMM,
    "ngcf": NGCF,
    "shared_bottom": SharedBottom,
    "cross_stitch": CrossStitch,
    "mmoe": MMoE,
    "snr_trans": SNRTrans,
    "cgc": CGC,
}
