"""Losses shared by the models: reconstruction, Gaussian likelihood, KL, adversarial and
per-pixel segmentation (focal, Dice).

Every function takes tensors whose first dimension is the sample; per-sample reductions
sum over all other dimensions (``flatten(1)``), so vectors ``(n, d)``, series
``(n, channels, length)`` and images ``(n, channels, height, width)`` work alike.
The operation order is fixed: the models' seeded fits depend on it bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F  # noqa: N812 - the usual torch alias

__all__ = [
    "squared_error",
    "reconstruction_loss",
    "gaussian_nll",
    "gaussian_kl",
    "bce_discriminator_loss",
    "bce_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "gradient_penalty",
    "focal_loss",
    "dice_loss",
]

_LOG2PI = math.log(2 * math.pi)


def squared_error(
    reconstruction: torch.Tensor, target: torch.Tensor, *, inplace: bool = False
) -> torch.Tensor:
    """Squared reconstruction error per element, ``(reconstruction - target) ** 2``.

    Parameters
    ----------
    reconstruction, target : Tensor
        Same shape.
    inplace : bool, default False
        Overwrite ``reconstruction`` with the result (saves one allocation when the
        caller owns it, e.g. at scoring time). The values are the same either way.

    Returns
    -------
    Tensor
        The shape of the inputs.

    Examples
    --------
    >>> squared_error(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]]))
    tensor([[1., 4.]])
    """
    if inplace:
        return reconstruction.sub_(target).square_()
    return (reconstruction - target) ** 2


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over each sample's elements, averaged over the batch.

    Parameters
    ----------
    reconstruction, target : Tensor
        Same shape ``(n, ...)``.

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> reconstruction_loss(torch.zeros(2, 3), torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 3.0]]))
    tensor(6.)
    """
    return squared_error(reconstruction, target).flatten(1).sum(1).mean()


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each element of ``x`` under ``N(mean, exp(logvar))``.

    Parameters
    ----------
    x, mean, logvar : Tensor
        Broadcastable to one shape.

    Returns
    -------
    Tensor
        ``0.5 * (log(2 pi) + logvar + (x - mean)**2 / exp(logvar))`` per element.

    Examples
    --------
    >>> gaussian_nll(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2))
    tensor([[0.9189, 0.9189]])
    """
    return 0.5 * (_LOG2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence of ``N(mu, diag(exp(logvar)))`` from ``N(0, I)``, one per sample.

    Parameters
    ----------
    mu, logvar : Tensor
        Posterior means and log-variances, shape ``(n, ...)``.

    Returns
    -------
    Tensor
        Shape ``(n,)``: the per-element KL summed over each sample.

    Examples
    --------
    >>> gaussian_kl(torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.zeros(2, 2))
    tensor([0.0000, 0.5000])
    """
    return 0.5 * (mu**2 + torch.exp(logvar) - 1.0 - logvar).flatten(1).sum(1)


def bce_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the standard GAN: binary cross-entropy on logits, real = 1.

    ``mean(softplus(-real_logits)) + mean(softplus(fake_logits))``, computed stably.

    Parameters
    ----------
    real_logits, fake_logits : Tensor
        Discriminator outputs (logits, before any sigmoid) on real and generated samples.

    Returns
    -------
    Tensor
        A scalar; ``2 log 2`` when the discriminator cannot tell (all logits 0).

    Examples
    --------
    >>> bce_discriminator_loss(torch.zeros(4, 1), torch.zeros(4, 1))
    tensor(1.3863)
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def bce_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss (Goodfellow et al. 2014): ``mean(softplus(-fake_logits))``.

    The generator maximises ``log D(G(z))`` rather than minimising ``log(1 - D(G(z)))``,
    which keeps its gradient alive while the discriminator wins.

    Parameters
    ----------
    fake_logits : Tensor
        Discriminator logits on generated samples.

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> bce_generator_loss(torch.zeros(4, 1))
    tensor(0.6931)
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss of the Wasserstein GAN (Arjovsky et al. 2017).

    ``mean(fake_scores) - mean(real_scores)``: the critic learns to score real samples
    higher than generated ones. Add :func:`gradient_penalty` to keep it 1-Lipschitz.

    Parameters
    ----------
    real_scores, fake_scores : Tensor
        Critic outputs on real and generated samples.

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> wasserstein_critic_loss(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 1.0]))
    tensor(-2.)
    """
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator loss of the Wasserstein GAN: ``-mean(fake_scores)``.

    Parameters
    ----------
    fake_scores : Tensor
        Critic outputs on generated samples.

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    >>> wasserstein_generator_loss(torch.tensor([1.0, 3.0]))
    tensor(-2.)
    """
    return -fake_scores.mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP gradient penalty (Gulrajani et al. 2017).

    Each sample pair is interpolated, ``x = a * real + (1 - a) * fake`` with one weight
    ``a ~ U(0, 1)`` per sample drawn from ``generator``, and the penalty is
    ``mean((||grad_x critic(x)|| - 1) ** 2)`` with the norm over each sample's elements.
    The graph is kept (``create_graph=True``) so the penalty can be backpropagated into
    the critic; ``real`` and ``fake`` are detached.

    Parameters
    ----------
    critic : callable
        Maps a batch shaped like ``real`` to one score per sample.
    real, fake : Tensor
        Batches of the same shape ``(n, ...)``.
    generator : torch.Generator, optional
        Source of the interpolation weights (the global RNG when None).

    Returns
    -------
    Tensor
        A scalar.

    Examples
    --------
    A linear critic's gradient is its weight vector everywhere, here ``(3, 4)`` of norm
    5, so the penalty is ``(5 - 1) ** 2``:

    >>> critic = lambda x: x @ torch.tensor([3.0, 4.0])
    >>> gen = torch.Generator().manual_seed(0)
    >>> float(gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2), gen))
    16.0
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake batches differ in shape: {tuple(real.shape)} vs "
                         f"{tuple(fake.shape)}")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor,
               gamma: float = 2.0) -> torch.Tensor:
    """Mean focal loss (Lin et al. 2017) of per-pixel logits against a 0/1 target."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = p * target + (1 - p) * (1 - target)
    return (ce * (1 - p_true) ** gamma).mean()


def dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - Dice`` of a soft mask against a 0/1 target, over the whole batch."""
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
