"""What every adversarial model shares: two optimisers, the alternating step, the checks.

:class:`AdversarialModel` is the base of :class:`~genad.models.ganomaly.GANomalyModel`,
:class:`~genad.models.fanogan.FAnoGANModel` and :class:`~genad.models.vaegan.VAEGANModel`.
A subclass says what its generator side is (:meth:`~AdversarialModel.generator_modules`),
what the discriminator sees as fake (:meth:`~AdversarialModel.fakes`), its generator-side
loss (:meth:`~AdversarialModel.generator_losses`) and how it decodes latent draws
(:meth:`~AdversarialModel.decode_prior`); this module does the rest: the optimisers, the
discriminator's loss (standard GAN or Wasserstein critic with gradient penalty), the
alternation, feature residuals, sampling and the health checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from genad.models.base import GenerativeModel
from genad.models.losses import (
    bce_discriminator_loss,
    bce_generator_loss,
    gradient_penalty,
    squared_error,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

__all__ = ["AdversarialModel", "OBJECTIVES", "D_WON_LOSS", "G_LOST_NLL", "COLLAPSE_RATIO",
           "HEALTH_SAMPLES", "SUGGESTED_PAUSE_BELOW"]

#: the discriminator objectives: ``"bce"`` (standard GAN, logits, real = 1) and
#: ``"wasserstein"`` (WGAN critic; add a gradient penalty with ``gp_weight``)
OBJECTIVES: tuple[str, ...] = ("bce", "wasserstein")

#: "the discriminator won outright": its BCE loss below this (it tells real from fake
#: with about 99.5 % confidence on both sides) ...
D_WON_LOSS = 0.01
#: ... while the generator's non-saturating loss ``-log D(fake)`` is above this
#: (``log 100``: the discriminator gives the fakes under 1 % probability on average)
G_LOST_NLL = math.log(100.0)
#: the ``pause_discriminator_below`` the "won outright" advice suggests (and VAE-GAN's
#: ``"auto"`` uses on images; ``docs/images.md``)
SUGGESTED_PAUSE_BELOW = 0.5
#: "mode collapse": generated samples whose mean pairwise distance is below this fraction
#: of the held-out samples' mean pairwise distance
COLLAPSE_RATIO = 0.01
#: held-out units (and generated samples) the collapse check compares
HEALTH_SAMPLES = 256


def _mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean Euclidean distance between the distinct rows of ``x`` (flattened), float64."""
    flat = x.flatten(1).double()
    n = flat.shape[0]
    return float(torch.cdist(flat, flat).sum() / (n * (n - 1)))


class AdversarialModel(GenerativeModel):
    """Base of the GAN models: a generator side, a discriminator, two optimisers.

    In an adversarial phase (:attr:`adversarial_phases`), :meth:`train_step` alternates
    ``n_critic`` discriminator steps (each on fresh fakes of the same real batch, drawn
    without gradients) with one generator step. Other phases (f-AnoGAN's encoder stage)
    run the single-optimiser step of :class:`~genad.models.base.GenerativeModel` on
    :meth:`loss`.

    :meth:`configure_optimizers` gives two Adam optimisers, generator side first, with
    ``betas = (0.5, 0.999)`` as in DCGAN (Radford et al. 2016): the lower first-moment
    decay keeps the two players' updates from overshooting the moving target the other
    one is. The learning rate and weight decay are the detector's, for both.

    Every step returns its loss parts: the generator side's (``"loss"``, equal to
    ``"g_loss"``, plus the subclass's own parts such as ``"adv"``, ``"con"``, ``"lat"``)
    and the discriminator side's, averaged over the ``n_critic`` steps: ``"d_loss"``
    (with the weighted penalty), ``"gp"`` (with ``gp_weight > 0``), and ``"fool"``
    (``-log D(fake)`` on the discriminator step's fakes, BCE objective) or
    ``"wasserstein"`` (the critic's estimate ``mean D(real) - mean D(fake)``), and
    ``"d_pause"`` (the share of paused steps, with ``pause_discriminator_below``).

    Health (:meth:`check_health`, after training, advice raised by the loop as a
    :class:`~genad.errors.TrainingDivergedError`); a non-finite loss part stops the loop
    itself at the end of its epoch:

    - **the discriminator won outright** (BCE objective, and a generator trained on the
      saturating ``-log D(fake)``, :attr:`saturating_adversarial_loss`): in every epoch
      of the second half of the adversarial run (the last epoch at least; the first
      epochs are left out, the discriminator needs some steps to win), the mean
      discriminator loss was below :data:`D_WON_LOSS` while the mean ``-log D(fake)``
      was above :data:`G_LOST_NLL`: the generator got no useful adversarial signal. A
      Wasserstein critic has no such saturation (its gradient penalty keeps it
      1-Lipschitz) and is not checked.
    - **mode collapse**: the mean pairwise distance of :data:`HEALTH_SAMPLES` generated
      samples (fixed seed; :meth:`health_samples`) is below :data:`COLLAPSE_RATIO` of
      that of the first held-out units. (A freshly initialised generator's samples are
      a few percent as spread out as the data: the ratio is set well below that.)

    Parameters
    ----------
    discriminator : nn.Module
        ``(n, *sample_shape) -> (n, 1)`` logits or critic values, with ``features(x)``
        (see :func:`genad.nets.factory.discriminator`).
    latent_dim : int
        Size of the latent code (the prior's dimension).
    objective : {"bce", "wasserstein"}, default "bce"
        The discriminator's loss: standard GAN (binary cross-entropy on logits; the
        generator's adversarial loss is the non-saturating ``-log D(fake)``) or the
        Wasserstein critic (Arjovsky et al. 2017).
    n_critic : int, default 1
        Discriminator steps per generator step.
    gp_weight : float, default 0
        Weight of the WGAN-GP gradient penalty (Gulrajani et al. 2017; 10 in the paper);
        0 for none. Needs fakes shaped like the real batch.
    pause_discriminator_below : float, optional
        BCE objective only: a discriminator step whose loss on the batch (real plus fake
        terms; ``2 log 2`` ~ 1.39 when it cannot tell them apart) is already below this
        is measured but not taken, so a discriminator that is winning waits for the
        generator instead of winning outright (after the equilibrium rule of Larsen et
        al.'s VAE-GAN code). The share of each epoch's discriminator steps paused is in
        the history as ``"d_pause"``. None (the default) never pauses.
    """

    #: Adam's ``(beta1, beta2)`` for both players (DCGAN's)
    betas: ClassVar[tuple[float, float]] = (0.5, 0.999)
    #: the phases in which :meth:`train_step` plays the adversarial game
    adversarial_phases: ClassVar[tuple[str, ...]] = ("train",)
    #: the current phase (the training loop sets it)
    phase: str = "train"
    #: whether the generator's adversarial loss is the non-saturating ``-log D(fake)``,
    #: which gives no signal once the discriminator wins outright (the health check
    #: looks for that); False for a feature-matching loss (GANomaly), whose gradient
    #: does not vanish when the discriminator wins
    saturating_adversarial_loss: ClassVar[bool] = True
    #: reset the discriminator to its initial weights, and its optimiser's moments, after
    #: a step whose BCE loss fell below this (the GANomaly authors' code re-initialises
    #: D below 1e-5); None never resets. The resets of an epoch are in the history as
    #: ``"d_reset"`` (the share of its steps).
    reset_discriminator_below: ClassVar[float | None] = None

    def __init__(self, discriminator: nn.Module, latent_dim: int, *, objective: str = "bce",
                 n_critic: int = 1, gp_weight: float = 0.0,
                 pause_discriminator_below: float | None = None) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        if int(n_critic) < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        if not float(gp_weight) >= 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        if pause_discriminator_below is not None and (
                objective != "bce" or not float(pause_discriminator_below) > 0):
            raise ValueError("pause_discriminator_below needs the bce objective and a "
                             f"value > 0, got {pause_discriminator_below!r}")
        self.pause_discriminator_below = (None if pause_discriminator_below is None
                                          else float(pause_discriminator_below))
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.objective = objective
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        #: (phase, epoch) -> [sum of (d_loss, fool) over the steps, steps], for the health
        #: check; tensors on the model's device (no synchronisation per step)
        self._duel: dict[tuple[str, int], list[Any]] = {}
        #: the discriminator's weights at the first adversarial step of the fit, which a
        #: reset restores (:attr:`reset_discriminator_below`)
        self._initial_discriminator: dict[str, torch.Tensor] | None = None

    # ----------------------------------------------------------- subclass hooks
    def generator_modules(self) -> list[nn.Module]:
        """The networks the generator-side optimiser trains."""
        raise NotImplementedError

    def fakes(self, x: torch.Tensor) -> torch.Tensor:
        """What the discriminator sees as fake for the real batch ``x`` (generated or
        reconstructed samples); called without gradients."""
        raise NotImplementedError

    def generator_losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generator side's loss on ``x`` (key ``"loss"``) and its parts, with
        gradients."""
        raise NotImplementedError

    def decode_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Samples ``(n, *sample_shape)`` from standard normal latent draws ``z``."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared pieces
    @property
    def adversarial(self) -> bool:
        """Whether the current :attr:`phase` plays the adversarial game."""
        return self.phase in self.adversarial_phases

    def draw_latent(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """``n`` standard normal latent draws from the training noise (:attr:`generator`),
        on ``like``'s device and dtype."""
        return torch.randn((n, self.latent_dim), generator=self.generator, device=like.device,
                           dtype=like.dtype)

    def adversarial_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss on ``fake``: ``-log D(fake)`` (non-saturating,
        BCE objective) or ``-mean D(fake)`` (Wasserstein)."""
        out = self.discriminator(fake)
        if self.objective == "wasserstein":
            return wasserstein_generator_loss(out)
        return bce_generator_loss(out)

    def feature_error(self, x: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Squared difference of the discriminator's features ``(n, f)`` of ``x`` and its
        reconstruction (feature matching, f-AnoGAN's and VAE-GAN's feature residual)."""
        return squared_error(self.discriminator.features(reconstruction),
                             self.discriminator.features(x))

    def discriminator_losses(self, real: torch.Tensor, fake: torch.Tensor
                             ) -> dict[str, torch.Tensor]:
        """The discriminator's loss ``"d_loss"`` on a real and a fake batch, and its parts
        (``"fool"`` or ``"wasserstein"``, ``"gp"``)."""
        real_out, fake_out = self.discriminator(real), self.discriminator(fake)
        parts: dict[str, torch.Tensor] = {}
        if self.objective == "wasserstein":
            loss = wasserstein_critic_loss(real_out, fake_out)
            parts["wasserstein"] = -loss.detach()
        else:
            loss = bce_discriminator_loss(real_out, fake_out)
            parts["fool"] = bce_generator_loss(fake_out.detach())
        if self.gp_weight > 0:
            gp = gradient_penalty(self.discriminator, real, fake, self.generator)
            parts["gp"] = gp.detach()
            loss = loss + self.gp_weight * gp
        parts["d_loss"] = loss
        return parts

    def residual_map(self, x: torch.Tensor, reconstruction: torch.Tensor,
                     feature_weight: float, *, per_element_mean: bool) -> torch.Tensor:
        """An additive anomaly map: the squared residual of each element plus
        ``feature_weight`` times the discriminator-feature residual, the latter shared
        among the elements in proportion to their squared residual.

        With ``per_element_mean`` the two residuals are means (over the sample's elements
        and over the features: f-AnoGAN's ``1/n`` and ``1/n_f``), else sums. The map
        sums over each sample's elements to ``residual + feature_weight *
        feature_residual``; within a sample it is the squared residual, rescaled.
        """
        err = squared_error(reconstruction, x)
        feat = self.feature_error(x, reconstruction)
        flat = err.flatten(1)
        if per_element_mean:
            flat = flat / flat.shape[1]
            extra = feat.mean(dim=1, keepdim=True)
        else:
            extra = feat.sum(dim=1, keepdim=True)
        share = flat + 1e-12  # every element gets a share when the residual is exactly 0
        return (flat + feature_weight * extra * share / share.sum(dim=1, keepdim=True)
                ).view_as(err)

    # --------------------------------------------------------------- training
    def configure_optimizers(
        self, learning_rate: float, weight_decay: float
    ) -> list[torch.optim.Optimizer]:
        """``[generator side, discriminator]`` Adam optimisers, ``betas = (0.5, 0.999)``."""
        generator = [p for m in self.generator_modules() for p in m.parameters()]
        groups = (generator, list(self.discriminator.parameters()))
        fused = all(p.device.type in ("cpu", "cuda") for p in self.parameters())
        return [torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay,
                                 betas=self.betas, fused=fused) for params in groups]

    def setup(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """Forget the previous fit's duel record (the health check reads this fit's) and
        the discriminator weights a reset returns to (the first step keeps new ones)."""
        self._duel = {}
        self._initial_discriminator = None

    def train_step(
        self, x: torch.Tensor, optimizers: list[torch.optim.Optimizer]
    ) -> dict[str, torch.Tensor]:
        """``n_critic`` discriminator steps, then one generator step (adversarial
        phases); the plain step on :meth:`loss` otherwise."""
        if not self.adversarial:
            return super().train_step(x, optimizers)
        opt_g, opt_d = optimizers
        if self.reset_discriminator_below is not None and self._initial_discriminator is None:
            self._initial_discriminator = {k: v.detach().clone() for k, v
                                           in self.discriminator.state_dict().items()}
        d_parts: dict[str, torch.Tensor] = {}
        pause = self.pause_discriminator_below
        for _ in range(self.n_critic):
            with torch.no_grad():
                fake = self.fakes(x)
            opt_d.zero_grad(set_to_none=True)
            parts = self.discriminator_losses(x, fake)
            paused = pause is not None and bool(parts["d_loss"].detach() < pause)
            if not paused:
                parts["d_loss"].backward()
                opt_d.step()
            if pause is not None:
                parts["d_pause"] = torch.tensor(float(paused), device=x.device)
            for k, v in parts.items():
                v = v.detach() / self.n_critic
                d_parts[k] = d_parts[k] + v if k in d_parts else v
        if self.reset_discriminator_below is not None:
            reset = bool(d_parts["d_loss"] < self.reset_discriminator_below)
            if reset:
                self.discriminator.load_state_dict(self._initial_discriminator)
                opt_d.state.clear()
            d_parts["d_reset"] = torch.tensor(float(reset), device=x.device)
        opt_g.zero_grad(set_to_none=True)
        g_parts = self.generator_losses(x)
        g_parts["loss"].backward()
        opt_g.step()
        if "fool" in d_parts:
            entry = self._duel.setdefault((self.phase, self.epoch), [0, 0])
            entry[0] = entry[0] + torch.stack([d_parts["d_loss"], d_parts["fool"]]).float()
            entry[1] += 1
        out = {k: v.detach() for k, v in g_parts.items()}
        out["g_loss"] = out["loss"]
        out.update(d_parts)
        return out

    # --------------------------------------------------------------- sampling
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples ``(n, *sample_shape)``: standard normal draws through
        :meth:`decode_prior`, in evaluation mode, in the model's input space."""
        return self.decode_prior_draws(n, self.latent_dim, self.decode_prior, generator)

    def health_samples(self, real: torch.Tensor,
                       generator: torch.Generator) -> torch.Tensor | None:
        """The generated samples the collapse check compares with ``real`` (held-out
        units): as many prior samples (:meth:`sample`); None skips the check."""
        return self.sample(real.shape[0], generator)

    # ----------------------------------------------------------------- health
    def check_health(self, x_val: torch.Tensor | Iterable[torch.Tensor]) -> str | None:
        """Advice when the discriminator won outright or the generator collapsed."""
        with torch.no_grad():
            return self._duel_advice() or self._collapse_advice(x_val)

    def _duel_advice(self) -> str | None:
        if not self._duel or not self.saturating_adversarial_loss:
            return None
        epochs = sorted(self._duel)
        epochs = epochs[len(epochs) // 2:]  # the second half of the run (the last epoch)
        means = [(self._duel[e][0] / self._duel[e][1]).tolist() for e in epochs]
        if not all(d < D_WON_LOSS and fool > G_LOST_NLL for d, fool in means):
            return None
        d, fool = means[-1]
        pause = self.pause_discriminator_below
        first = (f"pause_discriminator_below={SUGGESTED_PAUSE_BELOW:g} (the discriminator "
                 "waits while it is winning)" if pause is None else
                 f"a higher pause_discriminator_below than {pause:g} (the discriminator "
                 "waits sooner)")
        return (
            f"the discriminator won outright: in every epoch of the second half of "
            f"training its loss stayed below "
            f"{D_WON_LOSS} and the generator's -log D(fake) above {G_LOST_NLL:.2f} (last "
            f"epoch: {d:.2g} and {fool:.3g}), so the generator got no useful adversarial "
            f"signal. Try {first}, a lower learning_rate, a smaller discriminator "
            "(hidden_sizes or conv_width), a larger batch_size, or a lower adversarial weight"
        )

    def _collapse_advice(self, x_val: torch.Tensor | Iterable[torch.Tensor]) -> str | None:
        batches = (x_val[i : i + HEALTH_SAMPLES] for i in range(0, len(x_val), HEALTH_SAMPLES)
                   ) if isinstance(x_val, torch.Tensor) else x_val
        taken: list[torch.Tensor] = []
        count = 0
        for xb in batches:
            taken.append(xb[: HEALTH_SAMPLES - count])
            count += taken[-1].shape[0]
            if count >= HEALTH_SAMPLES:
                break
        if count < 2:
            return None
        real = torch.cat(taken)
        spread = _mean_pairwise_distance(real)
        if not spread > 0:
            return None
        samples = self.health_samples(real, torch.Generator(device=real.device).manual_seed(0))
        if samples is None:
            return None
        generated = _mean_pairwise_distance(samples)
        if generated >= COLLAPSE_RATIO * spread:
            return None
        return (
            f"the generator collapsed: its samples are nearly identical (mean pairwise "
            f"distance {generated:.3g}, {generated / spread:.1%} of the held-out data's "
            f"{spread:.3g}). Try a lower learning_rate, a smaller batch_size, a larger "
            "latent_dim, or more epochs; a Wasserstein critic (f-AnoGAN) may need more "
            "n_critic"
        )
