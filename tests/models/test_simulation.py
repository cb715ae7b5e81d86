"""Simulated anomalies: only the second half of a batch is altered, only inside its mask,
reproducibly from a generator, whatever the images' units and channels."""

from __future__ import annotations

import pytest
import torch

from genad.models.simulation import simulate_anomalies


def _batch(n=16, c=1, side=32, seed=0, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, c, side, side), generator=g) * scale + shift


def test_the_first_half_is_untouched_and_the_second_half_altered_inside_its_mask():
    x = _batch()
    out, mask = simulate_anomalies(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and mask.shape == (16, 1, 32, 32)
    assert torch.equal(out[:8], x[:8]) and not mask[:8].any()
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert mask[8:].flatten(1).sum(1).min() > 0  # every second-half image has a region
    outside = (mask == 0).expand_as(x)
    assert torch.allclose(out[outside], x[outside], atol=1e-5)
    assert (out - x).abs()[mask.expand_as(x) > 0].mean() > 0.01  # the region changed


def test_the_same_generator_state_gives_the_same_batch_and_another_a_different_one():
    x = _batch()
    a = simulate_anomalies(x, torch.Generator().manual_seed(3))
    b = simulate_anomalies(x, torch.Generator().manual_seed(3))
    c = simulate_anomalies(x, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (4.0, -2.0), (255.0, 0.0)])
def test_altered_pixels_stay_in_each_images_own_range(scale, shift):
    x = _batch(scale=scale, shift=shift)
    out, _ = simulate_anomalies(x, torch.Generator().manual_seed(0))
    lo, hi = x.flatten(1).amin(1), x.flatten(1).amax(1)
    assert torch.isfinite(out).all()
    assert (out.flatten(1).amin(1) >= lo - 1e-4 * scale).all()
    assert (out.flatten(1).amax(1) <= hi + 1e-4 * scale).all()


def test_colour_images_and_a_flat_image_work():
    x = _batch(c=3, side=20)
    x[9] = 0.5  # a flat image: no range to scale in, but no NaN either
    out, mask = simulate_anomalies(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and mask.shape == (16, 1, 20, 20)
    assert torch.isfinite(out).all()


def test_blobs_and_cracks_both_occur():
    """Over many images, some regions are large (blobs) and some thin (cracks: a pixel of
    the region with few region neighbours)."""
    _, mask = simulate_anomalies(_batch(n=64, side=48), torch.Generator().manual_seed(0))
    regions = mask[32:, 0]
    areas = regions.flatten(1).sum(1)
    neighbours = torch.nn.functional.avg_pool2d(regions[:, None], 3, 1, 1)[:, 0] * 9
    thin = ((neighbours < 5) & (regions > 0)).flatten(1).sum(1) / areas.clamp_min(1)
    assert (thin > 0.5).any() and (thin < 0.2).any()
