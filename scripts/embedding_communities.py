"""Do trained id embeddings encode the synthetic data's latent communities?

  python scripts/embedding_communities.py MODEL_DIR [MODEL_DIR ...]

For each `model.train` directory (trained on the default synthetic data:
4000 users, 500 items, mean 40 exposures, seed 7), prints the mean cosine
of the id embeddings of two users (items) of the same latent community and
of two of different communities. Reads no split: only the weights. Cited in
reports/validation-choices/NOTES.md.
"""

import os
import sys
import tempfile

import numpy as np

from model import trained  # its package sets the legacy Keras switch before TensorFlow
from synthetic import generator


def main(model_dirs):
    with tempfile.TemporaryDirectory() as scratch:
        latent = generator.generate(
            scratch, users=4000, items=500, mean_exposures=40, seed=7, return_latent=True
        )["latent"]
    for model_dir in model_dirs:
        model, entities = trained.load(model_dir)
        for node_set, key, prefix in (
            ("item", "item_community", "i"),
            ("user", "user_community", "u"),
        ):
            table = model.encoders[node_set].id_embedding.numpy()[1:]  # row 0: padding
            ids = np.array([int(i[len(prefix) :]) for i in entities[node_set].ids])
            community = np.asarray(latent[key])[ids]
            unit = table / np.linalg.norm(table, axis=1, keepdims=True)
            cosine = unit @ unit.T
            same = community[:, None] == community[None, :]
            off_diagonal = ~np.eye(len(ids), dtype=bool)
            print(
                f"{os.path.basename(model_dir.rstrip('/'))} {node_set}: "
                f"same community {cosine[same & off_diagonal].mean():.4f}, "
                f"other {cosine[~same].mean():.4f}"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
