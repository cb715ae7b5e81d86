"""Entry point: ``python -m benchmarks.images [options]``."""

from benchmarks.images.run import main

if __name__ == "__main__":
    raise SystemExit(main())
