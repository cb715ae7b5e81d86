"""Tabular benchmark: genad's generative detectors against PyOD and scikit-learn peers.

Run ``python -m benchmarks.tabular --help`` from the repository root. The suite covers
the credit-card fraud table, NSL-KDD and the ADBench "Classical" sets found under the
data folder (``$GENAD_DATA`` or ``../shared/data``), each with the protocol of its README.
"""
