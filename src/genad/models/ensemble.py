"""Several fitted models of one kind, scored as one: a deep ensemble over random starts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from genad.models.base import GenerativeModel, mean_over

__all__ = ["MemberAverage", "member_seed"]


def member_seed(seed: int, member: int) -> int:
    """The training seed of ensemble member ``member`` of a fit seeded with ``seed``.

    Member 0 trains with ``seed`` itself, so a one-member ensemble is the plain fit.
    The others draw theirs from ``numpy.random.SeedSequence([seed, member])``: fits with
    neighbouring seeds (0, 1, 2) share no member.

    Examples
    --------
    >>> member_seed(7, 0)
    7
    >>> member_seed(0, 1) != member_seed(1, 0)
    True
    """
    if member == 0:
        return int(seed)
    state = np.random.SeedSequence([int(seed), int(member)]).generate_state(1)[0]
    return int(state) % (2**31 - 1)


class MemberAverage(GenerativeModel):
    """The average of several fitted models' scores and maps, each in its own units.

    Members are trained separately (the detector's ``n_members``: one network per random
    start, on the same training split); this model only scores. Each member's score is
    divided by its spread on the training units (standard deviation) before the mean,
    so no member dominates because its errors happen to be larger; its map is divided
    by the spread of its maps' sums (for a model whose map sums to its score, the same
    number, so the ensemble's map still sums to its score). Dividing by a spread,
    without centring, leaves the ranking of the mean score unchanged from that of the
    centred one.

    Parameters
    ----------
    members : sequence of GenerativeModel
        Fitted models of one class and one configuration, at least one.

    Examples
    --------
    >>> from genad.models import AutoEncoderModel
    >>> pair = MemberAverage([AutoEncoderModel(nn.Identity(), nn.Identity()) for _ in "ab"])
    >>> pair.fit_scales([torch.tensor([[1.0, 0.0], [3.0, 0.0]])])
    >>> pair.score_scale.tolist()
    [1.0, 1.0]
    >>> pair.score(torch.tensor([[2.0, 2.0]]))
    tensor([0.])
    """

    def __init__(self, members: Sequence[GenerativeModel]) -> None:
        super().__init__()
        if not members:
            raise ValueError("MemberAverage needs at least one member")
        self.members = nn.ModuleList(members)
        self.additive_map = all(m.additive_map for m in members)
        self.register_buffer("score_scale", torch.ones(len(members), dtype=torch.float64))
        self.register_buffer("map_scale", torch.ones(len(members), dtype=torch.float64))

    def fit_scales(self, x_train: torch.Tensor | Iterable[torch.Tensor]) -> None:
        """Each member's spread of scores and of map sums over the training units."""
        def moments(xb: torch.Tensor) -> torch.Tensor:
            rows = []
            for member in self.members:
                s, m = member.infer(xb)
                s, total = s.double(), m.flatten(1).sum(1).double()
                rows.append(torch.stack([s.sum(), (s * s).sum(), total.sum(),
                                         (total * total).sum()]))
            return torch.stack(rows)

        was_training = self.training
        self.eval()
        try:
            mean = mean_over(moments, x_train).cpu()
        finally:
            self.train(was_training)
        score_std = self._spread(mean[:, 0], mean[:, 1])
        map_std = score_std if self.additive_map else self._spread(mean[:, 2], mean[:, 3])
        self.score_scale.copy_(score_std)
        self.map_scale.copy_(map_std)

    @staticmethod
    def _spread(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Standard deviations from the first two moments; 1 where there is no spread."""
        var = (second - first * first).clamp_min(0.0)
        std = var.sqrt()
        floor = 1e-12 * first.abs().clamp_min(1.0)
        return torch.where(torch.isfinite(std) & (std > floor), std, torch.ones_like(std))

    def _mean(self, parts: Iterable[torch.Tensor], scale: torch.Tensor) -> torch.Tensor:
        """The mean over members of each member's part divided by its scale."""
        total: torch.Tensor | None = None
        for i, part in enumerate(parts):
            part = part / scale[i].to(part.dtype)
            total = part if total is None else total + part
        assert total is not None
        return total / len(self.members)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self._mean((m.score(x) for m in self.members), self.score_scale)

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self._mean((m.element_scores(x) for m in self.members), self.map_scale)

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [member.infer(x) for member in self.members]
        return (self._mean((s for s, _ in pairs), self.score_scale),
                self._mean((m for _, m in pairs), self.map_scale))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError("MemberAverage only scores: its members are trained one by "
                                  "one (the detector's n_members)")

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws shared out among the members in turn (member 0 first)."""
        counts = [len(part) for part in np.array_split(np.arange(int(n)), len(self.members))]
        return torch.cat([member.sample(c, generator)
                          for member, c in zip(self.members, counts, strict=True) if c])
