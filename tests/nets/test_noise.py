"""Training noise helpers: same streams as torch's own functions, from a given generator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genad.nets.noise import Dropout, rand_like, randn_like


def test_dropout_draws_the_stream_nn_dropout_draws_from_the_global_rng() -> None:
    x = torch.randn(64, 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        expected = nn.Dropout(0.3).train()(x)
    ours = Dropout(0.3).train()
    ours.generator = torch.Generator().manual_seed(3)
    torch.testing.assert_close(ours(x), expected, rtol=0, atol=0)


def test_dropout_leaves_the_global_rng_untouched_and_is_identity_in_eval() -> None:
    drop = Dropout(0.5).train()
    drop.generator = torch.Generator().manual_seed(0)
    before = torch.get_rng_state()
    drop(torch.ones(8, 8))
    assert torch.equal(torch.get_rng_state(), before)
    x = torch.randn(4, 4)
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize(("ours", "theirs"), [(randn_like, torch.randn_like),
                                              (rand_like, torch.rand_like)])
def test_noise_functions_match_torch_from_the_same_seed(ours, theirs) -> None:
    x = torch.empty(10, 3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        expected = theirs(x)
    got = ours(x, torch.Generator().manual_seed(7))
    assert torch.equal(got, expected)


def test_dropout_rejects_a_probability_of_one() -> None:
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)
