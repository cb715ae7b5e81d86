"""PCA + 1-D convolutional autoencoder hybrid (used for card fraud in the literature)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genad.errors import TrainingDivergedError
from genad.models.base import GenerativeModel, mean_over, stack_batches
from genad.models.losses import reconstruction_loss, squared_error

__all__ = ["PCAConvAutoEncoderModel"]

_PCA_ADVICE = ("check the training data for extreme values and rescale very large columns "
               "(e.g. divide them by a power of ten or take a log)")


def _principal_axes(centred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Singular values and right singular vectors of the centred training rows, or a
    :class:`~genad.errors.TrainingDivergedError` with advice instead of a LinAlgError."""
    if not bool(torch.isfinite(centred).all()):
        raise TrainingDivergedError(
            f"PCA cannot be fitted: the encoded training rows hold NaN or inf; {_PCA_ADVICE}"
        )
    try:
        _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    except torch.linalg.LinAlgError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrainingDivergedError(
            f"PCA failed on the training rows ({first}); {_PCA_ADVICE}"
        ) from exc
    return s, vh


class PCAConvAutoEncoderModel(GenerativeModel):
    """Linear (PCA) and non-linear (1-D conv AE) reconstruction errors, combined.

    ``setup`` fits PCA on the training rows (kept as buffers, so the bundle holds it);
    training fits the convolutional autoencoder. Each part's per-feature squared error
    is divided by that part's mean total error on the training rows (so both are on the
    same scale, "1" being a typical normal row), then combined as
    ``pca_weight * e_pca + (1 - pca_weight) * e_cae``.

    Parameters
    ----------
    network : nn.Module
        The convolutional autoencoder ``(n, d) -> (n, d)``.
    n_components : int or float
        PCA components: an int, or a float in (0, 1) for the explained-variance fraction.
    pca_weight : float, default 0.5
        Weight of the PCA error in the combined score.
    """

    def __init__(self, network: nn.Module, n_features: int, n_components: int | float = 0.95,
                 pca_weight: float = 0.5) -> None:
        super().__init__()
        self.network = network
        self.n_components = n_components
        self.pca_weight = float(pca_weight)
        d = int(n_features)
        self.register_buffer("pca_mean", torch.zeros(d))
        self.register_buffer("pca_components", torch.zeros(d, d))  # rows; unused rows are 0
        self.register_buffer("part_scale", torch.ones(2))

    def setup(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """Fit PCA on every training row (the batches are joined: PCA needs them all)."""
        x_train = stack_batches(x_train)
        x = x_train.double()
        mean = x.mean(dim=0)
        s, vh = _principal_axes(x - mean)
        var = s**2
        ratio = torch.cumsum(var, 0) / var.sum().clamp_min(1e-12)
        if isinstance(self.n_components, float) and 0 < self.n_components < 1:
            target = torch.tensor(self.n_components, dtype=ratio.dtype)
            k = int(torch.searchsorted(ratio, target)) + 1
        else:
            k = int(self.n_components)
        k = max(1, min(k, vh.shape[0] - 1 if vh.shape[0] > 1 else 1))
        comps = torch.zeros_like(self.pca_components, dtype=torch.float64)
        comps[:k] = vh[:k]
        self.pca_mean.copy_(mean.float())
        self.pca_components.copy_(comps.float())
        e = self._pca_error(x_train).sum(dim=1).mean()
        self.part_scale[0] = e.clamp_min(1e-8)

    @property
    def components_used(self) -> int:
        return int((self.pca_components.abs().sum(dim=1) > 0).sum())

    def _pca_error(self, x: torch.Tensor) -> torch.Tensor:
        # float64: the float32 product may round differently with a row's position in the
        # batch; in float64 those differences vanish when the result is rounded to float32
        comps = self.pca_components.double()
        c = x.double() - self.pca_mean.double()
        recon = (c @ comps.T) @ comps
        return squared_error(c, recon).to(x.dtype)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": reconstruction_loss(self.network(x), x)}

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        e_pca = self._pca_error(x) / self.part_scale[0]
        e_cae = squared_error(self.network(x), x) / self.part_scale[1]
        return self.pca_weight * e_pca + (1 - self.pca_weight) * e_cae

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        return reconstruction_loss(self.network(x), x)

    def finalize(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """After training: set the CAE error scale from the training rows."""
        # one float32 total per batch, over all its elements
        mean = mean_over(lambda xb: squared_error(self.network(xb), xb).sum(), x_train)
        self.part_scale[1] = mean.clamp_min(1e-8).float()
