"""Variational autoencoder (Kingma & Welling 2014) with a Gaussian decoder."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from genad.models.base import GenerativeModel, mean_over
from genad.models.latent import MAX_CODES, LatentDistanceScore
from genad.models.losses import gaussian_kl, gaussian_nll
from genad.nets.noise import randn_like

__all__ = ["VAEModel", "guard_logvar"]

_LOGVAR_MIN, _LOGVAR_MAX = -8.0, 8.0


def guard_logvar(logvar: torch.Tensor) -> torch.Tensor:
    """A log-variance softly clamped to ``[-8, 8]`` (``tanh``), so it can never overflow.

    Examples
    --------
    >>> guard_logvar(torch.tensor([0.0, 1e6])).tolist()
    [0.0, 8.0]
    """
    half = (_LOGVAR_MAX - _LOGVAR_MIN) / 2
    mid = (_LOGVAR_MAX + _LOGVAR_MIN) / 2
    return mid + half * torch.tanh((logvar - mid) / half)


class VAEModel(LatentDistanceScore, GenerativeModel):
    """VAE with a diagonal Gaussian posterior and a Gaussian decoder of learned variance.

    The encoder outputs ``2 * latent_dim`` values (mean and log-variance); the decoder
    outputs ``2 * d`` values (mean and log-variance per feature). Log-variances pass
    through ``tanh`` soft clamps to ``[-8, 8]`` so they can never overflow ("guarded").

    Training maximises the ELBO with a KL weight ``beta`` warmed up linearly over
    ``kl_warmup_epochs`` epochs.

    Scoring (deterministic for a fitted model):

    - ``"elbo"``: negative ELBO with the posterior mean as the latent sample: the
      per-feature Gaussian negative log-likelihood plus the KL term.
    - ``"reconstruction_probability"`` (An & Cho 2015): the negative log-likelihood of
      the input averaged over ``n_samples`` posterior samples drawn with a fixed seed.

    Each feature's negative log-likelihood is reported relative to its mean on the
    training normals (``nll_baseline``, set after training): this shifts the score by a
    constant (the ranking is unchanged) and makes the per-feature map show which features
    are *worse explained than usual*, instead of being dominated by each feature's own
    log-variance. The KL term is shared among the features in proportion to their
    (shifted, positive) likelihood terms, so element scores sum to the score.

    With ``latent_neighbors=k`` the score is instead the distance of the posterior mean
    to the ``k`` nearest posterior means of the training units
    (:class:`~genad.models.latent.LatentBank`, compared as ``latent_metric`` says, keeping
    at most ``latent_capacity`` codes); the map stays the per-feature terms above.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        latent_dim: int,
        n_features: int,
        beta: float = 1.0,
        kl_warmup_epochs: int = 10,
        score_method: str = "elbo",
        n_samples: int = 16,
        learn_variance: bool = True,
        latent_neighbors: int = 0,
        latent_metric: str = "euclidean",
        latent_capacity: int = MAX_CODES,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(latent_dim)
        self.beta = float(beta)
        self.kl_warmup_epochs = int(kl_warmup_epochs)
        self.score_method = score_method
        self.n_samples = int(n_samples)
        self.learn_variance = bool(learn_variance)
        self.register_buffer("nll_baseline", torch.zeros(int(n_features)))
        self._init_latent_bank(latent_neighbors, latent_dim, latent_metric, latent_capacity)

    _guard = staticmethod(guard_logvar)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, self._guard(logvar)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean of ``x``."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.decoder(z).chunk(2, dim=1)
        if not self.learn_variance:  # unit variance: the likelihood is a scaled squared error
            return mean, torch.zeros_like(mean)
        return mean, self._guard(logvar)

    def kl_weight(self) -> float:
        if self.kl_warmup_epochs <= 0:
            return self.beta
        return self.beta * min(1.0, (self.epoch + 1) / self.kl_warmup_epochs)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * randn_like(mu, self.generator)
        mean, out_logvar = self.decode(z)
        nll = gaussian_nll(x, mean, out_logvar).flatten(1).sum(1).mean()
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": nll + self.kl_weight() * kl, "nll": nll, "kl": kl}

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        nll, kl = self._nll_kl(x)
        nll = nll - self.nll_baseline.view(nll.shape[1:])
        # share KL among features in proportion to their (shifted, positive) NLL
        flat = nll.flatten(1)
        w = flat - flat.min(dim=1, keepdim=True).values + 1e-6
        return (flat + kl * w / w.sum(dim=1, keepdim=True)).view_as(nll)

    def finalize(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """After training: each feature's mean NLL on the training rows becomes its
        ``nll_baseline``; the latent bank keeps the posterior means (with
        ``latent_neighbors``)."""
        self._fit_latent_bank(x_train)
        self.nll_baseline.copy_(mean_over(lambda xb: self._nll_kl(xb)[0].sum(dim=0),
                                          x_train).float().reshape(-1))

    def _nll_kl(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature NLL ``(n, d)`` and KL ``(n, 1)`` (zero KL for reconstruction probability)."""
        mu, logvar = self.encode(x)
        if self.score_method == "reconstruction_probability":
            gen = torch.Generator(device=x.device).manual_seed(0)
            std = torch.exp(0.5 * logvar)
            nll = torch.zeros_like(x)
            for _ in range(self.n_samples):
                eps = torch.randn(mu.shape, generator=gen, device=x.device, dtype=mu.dtype)
                mean, out_logvar = self.decode(mu + std * eps)
                nll = nll + gaussian_nll(x, mean, out_logvar)
            return nll / self.n_samples, torch.zeros_like(mu[:, :1])
        mean, out_logvar = self.decode(mu)
        return gaussian_nll(x, mean, out_logvar), gaussian_kl(mu, logvar).unsqueeze(1)

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.encode(x)
        mean, out_logvar = self.decode(mu)
        return (gaussian_nll(x, mean, out_logvar).flatten(1).sum(1)
                + gaussian_kl(mu, logvar)).mean()

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples: prior draws ``z ~ N(0, I)`` decoded to the decoder's *means*
        (no output noise is added), in evaluation mode.

        Examples
        --------
        >>> from genad.nets.mlp import mlp
        >>> vae = VAEModel(mlp([3, 4]), mlp([2, 6]), latent_dim=2, n_features=3)
        >>> vae.sample(5, torch.Generator().manual_seed(0)).shape
        torch.Size([5, 3])
        """
        return self.decode_prior_draws(n, self.latent_dim, lambda z: self.decode(z)[0],
                                       generator)

    def mean_kl(self, x: torch.Tensor | Iterable[torch.Tensor]) -> float:
        """Mean KL of the posteriors of ``x`` (a tensor or batches) from the prior, nats."""
        return float(mean_over(lambda xb: gaussian_kl(*self.encode(xb)).sum(), x))

    def check_health(self, x_val: torch.Tensor | Iterable[torch.Tensor]) -> str | None:
        kl = self.mean_kl(x_val)
        if kl < 1e-2:
            return (
                f"the VAE posterior collapsed (mean KL {kl:.2g} nats: the latent code carries "
                "no information). Try a smaller beta, a longer kl_warmup_epochs, or a smaller "
                "latent_dim"
            )
        return None
