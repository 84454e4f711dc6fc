"""MoGENet's Keras layers, one per equation of the paper (Hu et al., §2), by section.

  * `model.layers.encoder`: the shared encoder p_u = Enc(x_u), q_i = Enc(x_i) (§2.1);
  * `model.layers.graph`: the MGNN over a sample's trees (§2.2) and κ, the
    interaction of two tree states that makes Z (§2.3);
  * `model.layers.experts`: the mixture of experts (§2.3): experts, per-task
    gates and task logits, shared with the baselines of `model.baselines`.

Each docstring cites the paper's section and writes out the formula it computes.
"""
