"""MoGENet: Mixture of Graph Enhanced Expert Networks for multi-task recommendation."""

from setuptools import find_packages, setup

# The pinned stack (docs/architecture.md, "Software stack"). TF-GNN and TF
# Recommenders need Keras 2 (tf-keras); legacy_keras.py sets TF_USE_LEGACY_KERAS=1
# and every package imports it before TensorFlow loads.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "tf-keras==2.21.0",
    "tensorboard==2.20.0",  # tf.summary for the TensorBoard logs of model.train
    "tensorflow-gnn==1.0.3",
    "tensorflow-recommenders==0.7.7",
    "apache-beam[tfrecord]==2.77.0",
    "tensorflow-serving-api==2.21.0",
    # 1.75.x: the newest releases that still accept protobuf < 7, which Beam pins.
    "grpcio-health-checking==1.75.1",
    "grpcio-reflection==1.75.1",
    "prometheus-client==0.26.0",
    "numpy>=1.26,<3",
    "pyarrow>=14",
    "scikit-learn>=1.4",
    "scipy>=1.11",
    "matplotlib>=3.8",  # the experiment report's figures
    "psutil>=6.0",  # Process.net_connections (tests of the multi-process server)
    "google-crc32c>=1.5",
]

EXTRAS_REQUIRE = {
    "test": ["pytest>=8", "ruff>=0.6"],
    "dataflow": ["apache-beam[gcp,tfrecord]==2.77.0"],
}

setup(
    name="mogenet",
    version="0.1.0",
    description="MoGENet multi-task recommender: Beam preprocessing, TF-GNN model, serving",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.12",
    packages=find_packages(
        include=["contracts*", "beam_pipelines*", "model*", "serving*", "synthetic*"]
    ),
    py_modules=["legacy_keras"],
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
)
