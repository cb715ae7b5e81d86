"""Benchmark suites for genad; run from the repository root: ``python -m benchmarks.tabular``."""
