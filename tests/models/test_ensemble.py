"""MemberAverage: several fitted models scored as one, each member in its own units."""

from __future__ import annotations

import pytest
import torch

from genad.models.base import GenerativeModel
from genad.models.ensemble import MemberAverage, member_seed


class _Squares(GenerativeModel):
    """Score = ``gain`` times the sum of squares; the map its elements (additive)."""

    def __init__(self, gain: float, additive: bool = True) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(float(gain)))
        self.additive_map = additive

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x * x

    def score(self, x: torch.Tensor) -> torch.Tensor:
        s = self.element_scores(x).flatten(1).sum(1)
        return s if self.additive_map else s.sqrt()

    def infer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(x), self.element_scores(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.full((n, 2), self.gain.item())


def _train() -> torch.Tensor:
    return torch.randn(64, 2, generator=torch.Generator().manual_seed(0))


def test_member_zero_keeps_the_seed_and_the_others_never_collide():
    assert [member_seed(s, 0) for s in range(5)] == list(range(5))
    seeds = {member_seed(s, m) for s in range(20) for m in range(1, 5)}
    assert len(seeds) == 80 and not seeds & set(range(20))


def test_each_member_counts_alike_whatever_the_size_of_its_scores():
    small, large = _Squares(1.0), _Squares(10.0)
    both = MemberAverage([small, large]).eval()
    both.fit_scales(_train())
    scale = both.score_scale.tolist()
    assert scale[1] == pytest.approx(10 * scale[0])
    x = torch.randn(5, 2)
    torch.testing.assert_close(both.score(x), small.score(x) / scale[0])


def test_scales_are_the_spread_of_the_training_scores():
    model = MemberAverage([_Squares(1.0), _Squares(3.0)])
    x = _train()
    model.fit_scales([x[:10], x[10:]])  # batches give the full-data statistics
    expected = [(g * (x * x).sum(1)).double().std(correction=0).item() for g in (1.0, 3.0)]
    assert model.score_scale.tolist() == pytest.approx(expected)
    assert model.map_scale.tolist() == pytest.approx(expected)  # additive: the same


def test_infer_equals_score_exactly_and_the_map_sums_to_it():
    model = MemberAverage([_Squares(1.0), _Squares(2.5)]).eval()
    model.fit_scales(_train())
    x = torch.randn(7, 2)
    score, amap = model.infer(x)
    assert torch.equal(score, model.score(x))
    assert amap.shape == x.shape and model.additive_map
    torch.testing.assert_close(amap.flatten(1).sum(1), score)
    torch.testing.assert_close(model.element_scores(x), amap)


def test_a_non_additive_member_gets_its_own_map_scale():
    model = MemberAverage([_Squares(1.0, additive=False), _Squares(1.0)])
    model.fit_scales(_train())
    assert not model.additive_map
    assert model.score_scale[0] != model.map_scale[0]


def test_a_constant_member_is_not_divided_by_zero():
    flat = MemberAverage([_Squares(0.0), _Squares(1.0)])
    flat.fit_scales(_train())
    assert flat.score_scale[0] == 1.0
    assert torch.isfinite(flat.score(torch.randn(3, 2))).all()


def test_scales_are_saved_with_the_members():
    model = MemberAverage([_Squares(1.0), _Squares(2.0)])
    model.fit_scales(_train())
    copy = MemberAverage([_Squares(0.0), _Squares(0.0)])
    copy.load_state_dict(model.state_dict())
    x = torch.randn(4, 2)
    assert torch.equal(copy.score(x), model.score(x))
    assert {"members.0.gain", "members.1.gain", "score_scale", "map_scale"} == set(
        model.state_dict())


def test_samples_are_shared_out_among_the_members():
    model = MemberAverage([_Squares(1.0), _Squares(2.0), _Squares(3.0)])
    draws = model.sample(7)
    assert draws.shape == (7, 2)
    assert draws[:, 0].tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    assert model.sample(1)[:, 0].tolist() == [1.0]


def test_it_only_scores_and_needs_a_member():
    with pytest.raises(NotImplementedError, match="n_members"):
        MemberAverage([_Squares(1.0)]).loss(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="at least one member"):
        MemberAverage([])
