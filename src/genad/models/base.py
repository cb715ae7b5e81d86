"""The model interface the training loop and the detector rely on."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

__all__ = ["GenerativeModel", "Phase", "mean_over", "stack_batches"]

#: rows per batch of the data-dependent passes after training (``finalize``)
FINALIZE_BATCH = 16384


def mean_over(
    fn: Callable[[torch.Tensor], torch.Tensor],
    data: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = FINALIZE_BATCH,
) -> torch.Tensor:
    """Mean per sample of a batch statistic, accumulated in float64 without gradients.

    ``fn`` maps a batch to its *partial sum* over the batch's samples (for example
    ``err.sum(dim=0)`` for a per-feature total, or ``err.sum()`` for one number); the
    partial sums are cast to float64, added, and divided by the number of samples. How
    ``fn`` sums inside a batch (and in which dtype) is the caller's choice, so each model
    keeps its exact reduction.

    Parameters
    ----------
    fn : callable
        ``batch -> partial sum``; every batch must give the same shape.
    data : Tensor or iterable of Tensor
        A tensor (sliced into ``batch_size`` rows along its first dimension) or any
        iterable of batches, such as a lazy sample set.
    batch_size : int, default 16384
        Rows per slice when ``data`` is a tensor.

    Returns
    -------
    Tensor
        float64, the shape of ``fn``'s result; a float64 zero when ``data`` holds no
        batch.

    Examples
    --------
    >>> x = torch.arange(10.0).reshape(5, 2)
    >>> mean_over(lambda b: b.sum(dim=0), x, batch_size=2)
    tensor([4., 5.], dtype=torch.float64)
    >>> mean_over(lambda b: b.sum(), [x[:1], x[1:]])
    tensor(9., dtype=torch.float64)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if isinstance(data, torch.Tensor):
        batches: Iterable[torch.Tensor] = (
            data[i : i + batch_size] for i in range(0, data.shape[0], batch_size))
    else:
        batches = data
    total: torch.Tensor | None = None
    n = 0
    with torch.no_grad():
        for xb in batches:
            part = fn(xb)
            if total is None:
                total = torch.zeros(part.shape, dtype=torch.float64, device=part.device)
            total += part.double()
            n += xb.shape[0]
    if total is None:
        return torch.zeros((), dtype=torch.float64)
    return total / max(1, n)


def stack_batches(data: torch.Tensor | Iterable[torch.Tensor]) -> torch.Tensor:
    """All of ``data`` as one tensor: a tensor as it is, an iterable of batches
    concatenated along the first dimension (for a statistic that needs every row at
    once, such as PCA). The values are those of the stacked rows, exactly.

    Examples
    --------
    >>> stack_batches([torch.zeros(2, 3), torch.ones(1, 3)]).shape
    torch.Size([3, 3])
    """
    if isinstance(data, torch.Tensor):
        return data
    parts = list(data)
    if not parts:
        raise ValueError("no batch to stack: the data is empty")
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass(frozen=True)
class Phase:
    """One stage of training, with its own optimisers, epochs and early stopping.

    A model lists its phases in order with a ``phases()`` method (default: one phase
    named ``"train"``); the training loop (:mod:`genad.training`, which exports this class
    too) runs them. Before a phase starts the loop sets ``model.phase`` to its name,
    then asks ``model.configure_optimizers`` for that phase's optimisers, so a two-stage
    model (f-AnoGAN: the GAN, then an encoder with the GAN frozen) switches what it
    trains on ``model.phase``. The best weights of each phase are restored at its end
    (unless ``early_stopping`` is False).

    Parameters
    ----------
    name : str, default "train"
    epochs : int, optional
        The phase's maximum epochs; default: the detector's ``epochs``.
    patience : int, optional
        Early-stopping patience; default: the detector's ``patience``.
    early_stopping : bool, default True
        Stop on the held-out loss and restore the best weights. False runs every epoch
        and keeps the last weights, the held-out loss being recorded for information
        only: for a stage with no held-out criterion of progress, such as a GAN's
        adversarial game (the critic's estimate of the Wasserstein distance is measured
        with a critic that changes every epoch).
    """

    name: str = "train"
    epochs: int | None = None
    patience: int | None = None
    early_stopping: bool = True


class GenerativeModel(nn.Module):
    """An objective over networks.

    Subclasses implement :meth:`loss` (training objective on a batch) and
    :meth:`element_scores` (per-element anomaly contributions, deterministic, whose sum
    over each sample is the anomaly score). Models that need more than one optimiser
    (GANs) override :meth:`configure_optimizers` and :meth:`train_step`; the loop stays
    the same. A model whose score is not the sum of its map (a latent distance) sets
    :attr:`additive_map` to False and overrides :meth:`infer` and :meth:`score`.

    Inputs are batches ``(n, ...)``: vectors ``(n, d)``, series ``(n, channels, length)``
    or images; per-sample reductions sum over ``flatten(1)``.

    The data-dependent hooks (:meth:`setup`, :meth:`finalize`, :meth:`check_health`)
    receive the data as a tensor *or* an iterable of batches (the training loop passes
    batches, re-iterable, never one stacked tensor, so image sets need not fit in
    memory); :func:`mean_over` accumulates over either, :func:`stack_batches` joins them
    where every row is needed at once.
    """

    #: True when the anomaly map sums (over each sample's elements) to the score, as a
    #: reconstruction error does; False for scores such as a latent distance
    additive_map: ClassVar[bool] = True

    #: set by the loop before each epoch (0-based), for schedules such as KL warm-up
    epoch: int = 0
    #: per-fit source of training noise (see :mod:`genad.nets.noise`); set by the loop
    generator: torch.Generator | None = None

    def set_generator(self, generator: torch.Generator | None) -> None:
        """Draw every random number of training from ``generator`` (this model and every
        submodule with a ``generator`` attribute, such as :class:`genad.nets.noise.Dropout`).
        """
        for module in self.modules():
            if hasattr(module, "generator"):
                module.generator = generator

    def setup(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:  # noqa: B027
        """Data-dependent initialisation before training (e.g. fitting PCA), from the
        training units: a tensor or a re-iterable of batches."""

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training loss on a batch: a dict with key ``"loss"`` and optional parts."""
        raise NotImplementedError

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Per-element contributions, shaped like ``x``; with :attr:`additive_map`,
        ``score(x) == element_scores(x).flatten(1).sum(1)``."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """One anomaly score per sample ``(n,)``, higher = more anomalous."""
        return self.element_scores(x).flatten(1).sum(1)

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(score, map)`` from one pass: scores ``(n,)`` equal to :meth:`score` bit for
        bit, and the anomaly map (``x.shape``, or ``(n, *element shape)``).

        Examples
        --------
        >>> from genad.models import AutoEncoderModel
        >>> model = AutoEncoderModel(nn.Identity(), nn.Identity()).eval()
        >>> score, amap = model.infer(torch.ones(3, 4))
        >>> tuple(score.shape), tuple(amap.shape)
        ((3,), (3, 4))
        """
        m = self.element_scores(x)
        return m.flatten(1).sum(1), m

    def validation_loss(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic loss for early stopping; the mean score by default."""
        return self.score(x).mean()

    def configure_optimizers(
        self, learning_rate: float, weight_decay: float
    ) -> list[torch.optim.Optimizer]:
        fused = all(p.device.type in ("cpu", "cuda") for p in self.parameters())
        return [torch.optim.Adam(self.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                 fused=fused)]

    def train_step(
        self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """One optimisation step on batch ``x``; returns the detached loss parts."""
        (opt,) = optimizers
        opt.zero_grad(set_to_none=True)
        parts = self.loss(x)
        parts["loss"].backward()
        opt.step()
        return {k: v.detach() for k, v in parts.items()}

    def finalize(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:  # noqa: B027
        """After training (best weights restored): data-dependent post-processing, from
        the training units (a tensor or a re-iterable of batches)."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` new samples ``(n, *sample_shape)`` drawn from the model, in its input space
        (the adapter's encoded, scaled units).

        Models with a prior over their latent space (VAE, the GANs) decode prior draws;
        the base class has none and raises.

        Parameters
        ----------
        n : int
            Number of samples, at least 1.
        generator : torch.Generator, optional
            Source of the draws (on the model's device); the global RNG when None.

        Raises
        ------
        NotImplementedError
            The model cannot generate samples.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot generate samples: it has no "
                                  "distribution to draw from")

    def decode_prior_draws(self, n: int, latent_dim: int,
                           decode: Callable[[torch.Tensor], torch.Tensor],
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """``decode(z)`` for ``n`` draws ``z ~ N(0, I)`` of ``latent_dim`` values, in
        evaluation mode and without gradients (the mode is restored after): the
        :meth:`sample` of models with a standard normal prior.

        Raises
        ------
        ValueError
            ``n`` is not an integer >= 1.
        """
        try:
            count = operator.index(n)
        except TypeError:
            count = 0
        if isinstance(n, bool) or count < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        device = next(iter(self.parameters())).device
        z = torch.randn((count, int(latent_dim)), generator=generator, device=device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return decode(z)
        finally:
            self.train(was_training)

    def check_health(self, x_val: torch.Tensor | Iterable[torch.Tensor]) -> str | None:
        """Return advice when the fitted model is degenerate (e.g. collapsed), else None.

        Called in evaluation mode, without gradients, on the held-out units (a tensor or
        a re-iterable of batches)."""
        return None
