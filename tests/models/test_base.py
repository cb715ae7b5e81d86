"""GenerativeModel defaults (score, infer, validation_loss) and the mean_over helper."""

from __future__ import annotations

import pytest
import torch

from genad.models.base import GenerativeModel, mean_over


class _Squares(GenerativeModel):
    """Element scores x**2; counts its passes."""

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def element_scores(self, x: torch.Tensor) -> torch.Tensor:
        self.passes += 1
        return x**2


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_score_sums_each_sample_over_all_its_elements():
    x = _randn(3, 2, 4, 5)
    score = _Squares().score(x)
    assert score.shape == (3,)
    torch.testing.assert_close(score, (x**2).reshape(3, -1).sum(dim=1))


@pytest.mark.parametrize("transpose", [False, True])
def test_score_on_vectors_is_the_row_sum_bit_for_bit(transpose):
    # the detector sums maps with .sum(dim=1): flatten(1).sum(1) must be that reduction
    x = _randn(37, 1000).T if transpose else _randn(1000, 37)
    assert torch.equal(_Squares().score(x), (x**2).sum(dim=1))


def test_infer_is_one_pass_and_matches_score_and_element_scores():
    model, x = _Squares(), _randn(6, 3, 4)
    score, amap = model.infer(x)
    assert model.passes == 1
    assert torch.equal(score, model.score(x)) and torch.equal(amap, model.element_scores(x))
    assert GenerativeModel.additive_map is True


def test_validation_loss_defaults_to_the_mean_score():
    x = _randn(8, 3)
    assert torch.equal(_Squares().validation_loss(x), _Squares().score(x).mean())


def test_mean_over_slices_a_tensor_and_matches_the_same_batches_given_as_an_iterable():
    x = _randn(5, 3)
    sizes = []

    def total(xb):
        sizes.append(xb.shape[0])
        assert not torch.is_grad_enabled()
        return xb.sum(dim=0)

    sliced = mean_over(total, x, batch_size=2)
    assert sizes == [2, 2, 1]
    assert sliced.dtype == torch.float64
    assert torch.equal(sliced, mean_over(total, iter([x[:2], x[2:4], x[4:]])))
    torch.testing.assert_close(sliced, x.double().mean(dim=0))


def test_mean_over_accumulates_in_float64():
    # 2**24 + 1 is not a float32: a float32 running total would lose the 1
    batches = [torch.tensor([[2.0**24]]), torch.tensor([[1.0]])]
    assert float(mean_over(lambda xb: xb.sum(), batches)) == (2**24 + 1) / 2


def test_mean_over_empty_data_and_bad_batch_size():
    assert float(mean_over(lambda xb: xb.sum(dim=0), torch.zeros(0, 3))) == 0.0
    with pytest.raises(ValueError, match="batch_size"):
        mean_over(lambda xb: xb.sum(), torch.zeros(4, 2), batch_size=0)
