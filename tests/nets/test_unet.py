"""The U-Net: per-pixel outputs the size of any image, and it learns a per-pixel task."""

from __future__ import annotations

import pytest
import torch

from genad.errors import InvalidInputError
from genad.nets.unet import UNet


@pytest.mark.parametrize(("shape", "out"), [((1, 64, 64), 1), ((3, 28, 28), 1),
                                             ((2, 100, 60), 3), ((1, 8, 9), 2)])
def test_output_is_the_input_size_with_its_own_channels(shape, out):
    net = UNet(shape[0], out, width=4)
    y = net(torch.randn(2, *shape))
    assert y.shape == (2, out, *shape[1:]) and torch.isfinite(y).all()


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_bad_sizes_are_refused_naming_them(bad):
    with pytest.raises(InvalidInputError, match="width"):
        UNet(1, 1, width=bad)


def test_it_learns_to_mark_bright_pixels():
    torch.manual_seed(0)
    net = UNet(1, 1, width=4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        x = torch.rand(8, 1, 16, 16)
        target = (x > 0.8).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.rand(4, 1, 16, 16)
    prob = torch.sigmoid(net(x))
    assert prob[x > 0.9].mean() > 0.7 and prob[x < 0.5].mean() < 0.1
