"""Image benchmark: genad's image detectors against pixel-space peers (issue 13).

Run ``python -m benchmarks.images --help``; see ``benchmarks/README.md``.
"""
