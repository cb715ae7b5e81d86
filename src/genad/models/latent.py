"""A memory of training codes, for a latent-distance score (k nearest neighbours)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = ["LATENT_METRICS", "LatentBank", "LatentDistanceScore", "MAX_CODES", "QUERY_CHUNK",
           "encoded_batches"]

#: codes kept at most per training sample (evenly spaced over the training units when
#: there are more): a bank keeps up to ``MAX_CODES`` times the units a sample is cut into
#: (its tiles), a limit fixed when the model is built
MAX_CODES = 4096
#: query codes compared with the bank at a time (bounds the distance matrix)
QUERY_CHUNK = 512
#: how codes are compared: ``"euclidean"`` after scaling each dimension by the training
#: codes' mean and spread; ``"cosine"`` by direction only (codes scaled to unit length,
#: then Euclidean: ``sqrt(2 - 2 cos)``, which ranks neighbours as the cosine does)
LATENT_METRICS = ("euclidean", "cosine")


class LatentBank(nn.Module):
    """The codes of the training units, and the distance of a code to its nearest ones.

    After training, :meth:`fit` keeps the encoder's codes of up to ``capacity`` training
    units, each scaled as ``metric`` says. A code's *latent distance* is the
    mean Euclidean distance from its scaled version to its ``neighbors`` nearest kept
    codes: an input unlike every training unit in the encoder's space scores high even
    when the decoder draws it well (a digit the autoencoder never saw can still be
    reconstructed from strokes it knows).

    Distances are computed pair by pair (no matrix-product shortcut), so a unit's score
    does not depend on the batch it is scored in.

    Parameters
    ----------
    latent_dim : int
        Size of the codes.
    neighbors : int
        How many nearest codes are averaged (at most the number kept).
    metric : {"euclidean", "cosine"}, default "euclidean"
        ``"euclidean"``: each dimension scaled by the training codes' mean and standard
        deviation. ``"cosine"``: each code scaled to unit length, so only its direction
        counts (``sqrt(2 - 2 cos)`` between codes). On MNIST leave-one-digit-out the
        cosine ranked the held-out digit better (see ``docs/decisions.md``).
    capacity : int, default MAX_CODES
        Codes kept at most (evenly spaced over the training units when there are more).
        The ``codes`` buffer holds the kept codes only (before :meth:`fit`, a zero-filled
        placeholder of ``min(capacity, MAX_CODES)`` rows), and a saved bank loads at the
        row count it was saved with (banks saved before ``capacity`` existed hold
        :data:`MAX_CODES` rows, zero-padded, with the kept count in ``n_codes``).

    Examples
    --------
    >>> bank = LatentBank(2, neighbors=1)
    >>> bank.fit([torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])])
    >>> bank.distance(torch.tensor([[0.0, 0.0], [10.0, 0.0]])).round(decimals=2)
    tensor([0.0000, 8.4900])
    >>> cosine = LatentBank(2, neighbors=1, metric="cosine")
    >>> cosine.fit([torch.tensor([[1.0, 0.0], [0.0, 2.0]])])
    >>> cosine.distance(torch.tensor([[5.0, 0.0], [-1.0, 0.0]])).round(decimals=2)
    tensor([0.0000, 1.4100])
    """

    def __init__(self, latent_dim: int, neighbors: int, metric: str = "euclidean",
                 capacity: int = MAX_CODES) -> None:
        super().__init__()
        if int(neighbors) < 1:
            raise ValueError(f"neighbors must be at least 1, got {neighbors}")
        if int(capacity) < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if metric not in LATENT_METRICS:
            raise ValueError(f"metric must be one of {LATENT_METRICS}, got {metric!r}")
        self.neighbors = int(neighbors)
        self.metric = metric
        self.capacity = int(capacity)
        self.register_buffer("codes", torch.zeros(min(self.capacity, MAX_CODES),
                                                  int(latent_dim)))
        self.register_buffer("n_codes", torch.zeros((), dtype=torch.long))
        self.register_buffer("mean", torch.zeros(int(latent_dim)))
        self.register_buffer("std", torch.ones(int(latent_dim)))

    @torch.no_grad()
    def fit(self, batches: Iterable[torch.Tensor]) -> None:
        """Keep the codes of ``batches`` (an iterable of ``(n, latent_dim)`` tensors):
        every one up to the capacity, else that many evenly spaced ones."""
        codes = torch.cat([b.detach().float() for b in batches])
        if codes.shape[0] == 0:
            raise ValueError("no training code to keep")
        if codes.shape[0] > self.capacity:
            index = torch.linspace(0, codes.shape[0] - 1, self.capacity,
                                   device=codes.device)
            codes = codes[index.round().long()]
        if self.metric == "euclidean":
            mean = codes.double().mean(dim=0)
            std = codes.double().std(dim=0, correction=0)
            std = std.clamp_min(max(float(std.max()) * 1e-6, 1e-12))
            self.mean.copy_(mean.float())
            self.std.copy_(std.float())
        self.codes = self._scale(codes).to(self.codes.dtype).contiguous()
        self.n_codes.fill_(codes.shape[0])

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # the saved bank's row count wins (the codes it kept; MAX_CODES zero-padded rows
        # in bundles from before session 17); the bundle reader has checked the tensor
        # against the file's header
        saved = state_dict.get(prefix + "codes")
        if saved is not None and saved.dim() == 2 and saved.shape != self.codes.shape:
            self.codes = torch.zeros(saved.shape, dtype=self.codes.dtype,
                                     device=self.codes.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _scale(self, z: torch.Tensor) -> torch.Tensor:
        if self.metric == "cosine":
            return z / torch.linalg.vector_norm(z, dim=1, keepdim=True).clamp_min(1e-12)
        return (z - self.mean) / self.std

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        """Mean distance of each code ``(n, latent_dim)`` to its nearest kept codes,
        ``(n,)`` float32. Before :meth:`fit`, the distances are to the zero-filled
        placeholder (meaningless)."""
        n = int(self.n_codes) or self.codes.shape[0]
        bank, k = self.codes[:n], min(self.neighbors, n)
        scaled = self._scale(z.float())
        out = [torch.cdist(q, bank, compute_mode="donot_use_mm_for_euclid_dist")
               .topk(k, dim=1, largest=False).values.mean(dim=1)
               for q in scaled.split(QUERY_CHUNK)]
        return torch.cat(out) if out else scaled.new_zeros(0)


def encoded_batches(encode: Callable[[torch.Tensor], torch.Tensor],
                    data: torch.Tensor | Iterable[torch.Tensor],
                    batch_size: int = QUERY_CHUNK) -> Iterable[torch.Tensor]:
    """``encode`` applied to ``data`` (a tensor, sliced, or an iterable of batches),
    batch by batch, without gradients."""
    batches = (data.split(batch_size) if isinstance(data, torch.Tensor) else data)
    with torch.no_grad():
        for xb in batches:
            yield encode(xb)


class LatentDistanceScore:
    """Mixin of the models that can score by latent distance (autoencoder, VAE).

    A model calls :meth:`_init_latent_bank` in its constructor and
    :meth:`_fit_latent_bank` in ``finalize``, and defines :meth:`code` (its encoder's
    deterministic code of an input). With a bank, the score is the bank's distance of the
    code and the map stays the model's ``element_scores`` (so ``additive_map`` is
    False); without one, both are the model's own. Listed before the model's base class.
    """

    latent_bank: LatentBank | None

    def _init_latent_bank(self, latent_neighbors: int, latent_dim: int | None,
                          metric: str, capacity: int = MAX_CODES) -> None:
        self.latent_bank = None
        if latent_neighbors:
            if latent_dim is None:
                raise ValueError("latent_neighbors needs latent_dim")
            self.latent_bank = LatentBank(int(latent_dim), int(latent_neighbors), metric,
                                          capacity)
            self.additive_map = False  # the score is a latent distance, the map a residual

    def _fit_latent_bank(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        if self.latent_bank is not None:
            self.latent_bank.fit(encoded_batches(self.code, x_train))

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's deterministic code of ``x``, ``(n, latent_dim)``."""
        raise NotImplementedError

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own score, or with a latent bank the latent distance, ``(n,)``."""
        if self.latent_bank is None:
            return super().score(x)  # type: ignore[misc]
        return self.latent_bank.distance(self.code(x))

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.latent_bank is None:
            return super().infer(x)  # type: ignore[misc]
        return self.latent_bank.distance(self.code(x)), self.element_scores(x)  # type: ignore[attr-defined]
