"""Self-contained HTML reports of a fitted detector on a data set.

>>> from genad.report import build_report
>>> # build_report(detector, X_test, y_test, out="report.html")
"""

from genad.report.html import build_report, describe_threshold

__all__ = ["build_report", "describe_threshold"]
