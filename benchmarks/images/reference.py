"""Reference figures quoted from the data READMEs (``$GENAD_DATA/<group>/README.md``).

Two kinds, kept apart in the report:

``README baseline``
    Simple baselines the data README measured on exactly these files (scikit-learn PCA
    reconstruction error, IsolationForest, mean intensity), each with its own input size
    and settings, given in ``input`` and ``method``. They are not the benchmark's peers
    (those run at the benchmark's resolution with the benchmark's settings), but
    :mod:`benchmarks.images.readme_check` reruns each one under the README's own protocol
    to check the loaders and the peers' code.
``published``
    Figures from the literature, with their source: those a README quotes, and the
    chest X-ray figure of SQUID (Xiang et al., CVPR 2023) on the same Kermany test split,
    the one the images issue set its target against.

Each :class:`Reference` may carry ``check``: how to rerun a README baseline (input side,
colour mode, method, parameter). ``None`` means it is not rerun (published figures, and
README rows that are not a pixel method).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MNIST_README_MEANS", "REFERENCES", "Check", "Reference", "references_for"]


@dataclass(frozen=True)
class Check:
    """How to rerun a README baseline.

    Attributes
    ----------
    size : int
        Side the README resized to (bilinear, from the stored file).
    method : {"pca", "iforest", "mean"}
        ``PCA(n_components=param, svd_solver="full")`` with the mean squared
        reconstruction error; ``IsolationForest(n_estimators=200, random_state=0)`` with
        ``-score_samples``; or the mean pixel value.
    param : float or None
        PCA's ``n_components`` (a variance fraction, or a component count when >= 1).
    mode : {"L", "RGB"}
        Pillow mode the images are read in (bottle: both were reported).
    """

    size: int
    method: str
    param: float | None = None
    mode: str = "L"


@dataclass(frozen=True)
class Reference:
    """One reference figure for a data set."""

    dataset: str
    kind: str  # "README baseline" or "published"
    method: str
    input: str
    auroc: float
    auprc: float | None = None
    source: str = "data README"
    check: Check | None = None
    subset: str | None = None  # e.g. "Free vs Crack" (per-defect-type AUROC)
    digits: int = 3  # decimals the README gives


_B = "README baseline"
_PCA = "PCA recon. error"
_IF = "IsolationForest (200 trees)"
_MEAN = "mean pixel intensity (no training)"


def _bag(dataset: str) -> list[Reference]:
    return [
        Reference(dataset, _B, f"{_PCA}, 0.90 variance (k=116)", "64x64", 0.616, 0.878,
                  check=Check(64, "pca", 0.90)),
        Reference(dataset, _B, f"{_PCA}, 0.99 variance (k=265)", "64x64", 0.599, 0.865,
                  check=Check(64, "pca", 0.99)),
        Reference(dataset, _B, _IF, "64x64", 0.860, 0.940, check=Check(64, "iforest")),
        Reference(dataset, _B, f"{_PCA}, 0.90 variance (k=71)", "32x32", 0.651, 0.889,
                  check=Check(32, "pca", 0.90)),
        Reference(dataset, _B, _IF, "32x32", 0.865, 0.940, check=Check(32, "iforest")),
        Reference(dataset, _B, _MEAN, "192x192 PNG", 0.933, check=Check(192, "mean")),
        Reference(dataset, _B, "content aspect ratio content_w/content_h (no training)",
                  "manifest", 0.774),
    ]


REFERENCES: tuple[Reference, ...] = (
    *_bag("xray-baggage"),
    Reference("xray-baggage-crop", _B, "mean intensity inside the content box (no training)",
              "content box", 0.82, check=Check(192, "mean"), digits=2),
    # gdxray
    Reference("gdxray", _B, f"{_PCA}, 0.9 variance (k=2)", "32x32", 0.642, 0.166,
              check=Check(32, "pca", 0.9)),
    Reference("gdxray", _B, _IF, "32x32", 0.480, 0.121, check=Check(32, "iforest")),
    Reference("gdxray", _B, f"{_PCA}, 0.9 variance (k=2)", "64x64", 0.646, 0.167,
              check=Check(64, "pca", 0.9)),
    Reference("gdxray", _B, _IF, "64x64", 0.482, 0.120, check=Check(64, "iforest")),
    Reference("gdxray", _B, f"{_PCA}, 0.99 variance (k=6)", "32x32", 0.745,
              check=Check(32, "pca", 0.99)),
    Reference("gdxray", _B, f"{_PCA}, 0.999 variance (k=26)", "32x32", 0.817,
              check=Check(32, "pca", 0.999)),
    Reference("gdxray", _B, _MEAN, "32x32", 0.661, check=Check(32, "mean")),
    # chest
    Reference("chest-xray-pneumonia", _B, f"{_PCA}, 0.9 variance (k=47)", "32x32", 0.516,
              0.653, check=Check(32, "pca", 0.9)),
    Reference("chest-xray-pneumonia", _B, _IF, "32x32", 0.604, 0.700,
              check=Check(32, "iforest")),
    Reference("chest-xray-pneumonia", "published", "SQUID (space-aware memory in-painting)",
              "Kermany test split, images from the originals", 0.876,
              source="Xiang et al., CVPR 2023 (ZhangLab chest X-ray); not rerun"),
    # pneumoniamnist
    Reference("pneumoniamnist", _B, f"{_PCA}, 0.9 variance (k=43)", "28x28", 0.428, 0.564,
              check=Check(28, "pca", 0.9)),
    Reference("pneumoniamnist", _B, _IF, "28x28", 0.579, 0.655, check=Check(28, "iforest")),
    # magnetic tile
    Reference("magnetic-tile", _B, f"{_PCA}, 0.9 variance (k=5)", "32x32", 0.587, 0.746,
              check=Check(32, "pca", 0.9)),
    Reference("magnetic-tile", _B, _IF, "32x32", 0.540, 0.695, check=Check(32, "iforest")),
    *(Reference("magnetic-tile", _B, method, "32x32", value, subset=f"Free vs {kind}",
                check=Check(32, short, param))
      for kind, pca, iforest in (("Blowhole", 0.514, 0.480), ("Break", 0.724, 0.640),
                                 ("Crack", 0.554, 0.466), ("Fray", 0.569, 0.609),
                                 ("Uneven", 0.578, 0.545))
      for method, short, param, value in ((f"{_PCA}, 0.9 variance", "pca", 0.9, pca),
                                          (_IF, "iforest", None, iforest))),
    # bottle
    Reference("mvtec-ad-bottle", _B, f"{_PCA}, 0.90 variance (k=29)", "64x64 RGB", 0.992,
              0.997, check=Check(64, "pca", 0.90, "RGB")),
    Reference("mvtec-ad-bottle", _B, f"{_PCA}, 0.99 variance (k=102)", "64x64 RGB", 0.995,
              0.998, check=Check(64, "pca", 0.99, "RGB")),
    Reference("mvtec-ad-bottle", _B, _IF, "64x64 RGB", 0.801, 0.919,
              check=Check(64, "iforest", None, "RGB")),
    Reference("mvtec-ad-bottle", _B, f"{_PCA}, 0.90 variance (k=28)", "64x64 gray", 0.992,
              0.997, check=Check(64, "pca", 0.90, "L")),
    Reference("mvtec-ad-bottle", _B, _IF, "64x64 gray", 0.783, 0.911,
              check=Check(64, "iforest", None, "L")),
    Reference("mvtec-ad-bottle", _B, _MEAN, "64x64 RGB", 0.696,
              check=Check(64, "mean", None, "RGB")),
    Reference("mvtec-ad-bottle", "published", "PatchCore (Wide ResNet-50)", "256 px+, "
              "official split", 1.000, source="anomalib PatchCore README, seed 42 (quoted "
              "by the data README)"),
    Reference("mvtec-ad-bottle", "published", "PatchCore (ResNet-18)", "256 px+, official "
              "split", 1.000, source="anomalib PatchCore README, seed 42 (quoted by the "
              "data README)"),
    Reference("mvtec-ad-bottle", "published", "GANomaly", "256 px+, official split", 0.251,
              source="anomalib GANomaly README, seed 42 (quoted by the data README)"),
    # mnist, leave-one-digit-out
    *(Reference(f"mnist-{d}", _B, method, "28x28", value, prc, check=Check(28, short, param))
      for d, (pca, pca_prc, iforest, if_prc) in enumerate((
          (0.716, 0.199, 0.870, 0.521), (0.178, 0.065, 0.097, 0.062),
          (0.868, 0.488, 0.736, 0.186), (0.631, 0.151, 0.644, 0.140),
          (0.599, 0.121, 0.515, 0.097), (0.736, 0.174, 0.597, 0.103),
          (0.825, 0.322, 0.683, 0.161), (0.658, 0.191, 0.501, 0.094),
          (0.726, 0.187, 0.597, 0.115), (0.501, 0.097, 0.412, 0.078)))
      for method, short, param, value, prc in (
          (f"{_PCA}, 0.9 variance", "pca", 0.9, pca, pca_prc),
          (_IF, "iforest", None, iforest, if_prc))),
)

#: The README's MNIST means over the ten digits (AUROC): PCA 0.644, IsolationForest 0.565.
MNIST_README_MEANS: dict[str, float] = {f"{_PCA}, 0.9 variance": 0.644, _IF: 0.565}


def references_for(dataset: str) -> list[Reference]:
    """The reference figures of one data set, in README order."""
    return [r for r in REFERENCES if r.dataset == dataset]
