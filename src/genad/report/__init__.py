"""Self-contained HTML reports of a fitted detector on a data set.

:func:`build_report` reports on a table, :func:`build_image_report` on images (galleries
of images with their anomaly maps, generated samples).

>>> from genad.report import build_report, build_image_report
>>> # build_report(detector, X_test, y_test, out="report.html")
>>> # build_image_report(image_detector, "bottle/test", out="report.html")
"""

from genad.report.html import build_report, describe_threshold
from genad.report.image_report import build_image_report

__all__ = ["build_report", "build_image_report", "describe_threshold"]
