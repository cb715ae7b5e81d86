"""Entry point: ``python -m benchmarks.tabular [options]``."""

from benchmarks.tabular.run import main

if __name__ == "__main__":
    raise SystemExit(main())
