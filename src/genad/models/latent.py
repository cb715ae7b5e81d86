"""A memory of training codes, for a latent-distance score (k nearest neighbours)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["LatentBank", "MAX_CODES", "QUERY_CHUNK", "encoded_batches"]

#: codes kept at most (evenly spaced over the training units when there are more): the
#: bank is a fixed-size buffer, so a bundle's tensors have known shapes
MAX_CODES = 4096
#: query codes compared with the bank at a time (bounds the distance matrix)
QUERY_CHUNK = 512


class LatentBank(nn.Module):
    """The codes of the training units, and the distance of a code to its nearest ones.

    After training, :meth:`fit` keeps the encoder's codes of up to :data:`MAX_CODES`
    training units, scaled per dimension by their mean and standard deviation. A code's
    *latent distance* is the mean Euclidean distance from its scaled version to its
    ``neighbors`` nearest kept codes: an input unlike every training unit in the
    encoder's space scores high even when the decoder draws it well (a digit the
    autoencoder never saw can still be reconstructed from strokes it knows).

    Distances are computed pair by pair (no matrix-product shortcut), so a unit's score
    does not depend on the batch it is scored in.

    Parameters
    ----------
    latent_dim : int
        Size of the codes.
    neighbors : int
        How many nearest codes are averaged (at most the number kept).

    Examples
    --------
    >>> bank = LatentBank(2, neighbors=1)
    >>> bank.fit([torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])])
    >>> bank.distance(torch.tensor([[0.0, 0.0], [10.0, 0.0]])).round(decimals=2)
    tensor([0.0000, 8.4900])
    """

    def __init__(self, latent_dim: int, neighbors: int) -> None:
        super().__init__()
        if int(neighbors) < 1:
            raise ValueError(f"neighbors must be at least 1, got {neighbors}")
        self.neighbors = int(neighbors)
        self.register_buffer("codes", torch.zeros(MAX_CODES, int(latent_dim)))
        self.register_buffer("n_codes", torch.zeros((), dtype=torch.long))
        self.register_buffer("mean", torch.zeros(int(latent_dim)))
        self.register_buffer("std", torch.ones(int(latent_dim)))

    @torch.no_grad()
    def fit(self, batches: Iterable[torch.Tensor]) -> None:
        """Keep the codes of ``batches`` (an iterable of ``(n, latent_dim)`` tensors):
        every one up to :data:`MAX_CODES`, else that many evenly spaced ones."""
        codes = torch.cat([b.detach().float() for b in batches])
        if codes.shape[0] == 0:
            raise ValueError("no training code to keep")
        if codes.shape[0] > MAX_CODES:
            index = torch.linspace(0, codes.shape[0] - 1, MAX_CODES, device=codes.device)
            codes = codes[index.round().long()]
        mean = codes.double().mean(dim=0)
        std = codes.double().std(dim=0, correction=0)
        std = std.clamp_min(max(float(std.max()) * 1e-6, 1e-12))
        n = codes.shape[0]
        self.mean.copy_(mean.float())
        self.std.copy_(std.float())
        self.codes.zero_()
        self.codes[:n] = (codes - self.mean) / self.std
        self.n_codes.fill_(n)

    def distance(self, z: torch.Tensor) -> torch.Tensor:
        """Mean distance of each code ``(n, latent_dim)`` to its nearest kept codes,
        ``(n,)`` float32. Before :meth:`fit`, the distances are to the zero-filled buffer
        (meaningless, but of the fitted bank's cost: what cost estimates measure)."""
        n = int(self.n_codes) or self.codes.shape[0]
        bank, k = self.codes[:n], min(self.neighbors, n)
        scaled = (z.float() - self.mean) / self.std
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
