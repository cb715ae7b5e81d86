"""SSIM dissimilarity and the autoencoder's ``loss="ssim"``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

import genad
from genad.errors import InvalidInputError
from genad.models.ssim import SSIMDissimilarity
from tests.conftest import scores_in_fresh_interpreter


def _images(n: int = 3, side: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, side, side, generator=torch.Generator().manual_seed(seed))


def _reference_ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11,
                    sigma: float = 1.5) -> torch.Tensor:
    """SSIM with a full 2-D Gaussian window, written out as in Wang et al. 2004."""
    steps = torch.arange(window, dtype=torch.float64) - window // 2
    g = torch.exp(-steps**2 / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :])[None, None]
    pad = window // 2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), kernel)

    a, b = a.double(), b.double()
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))


def test_the_dissimilarity_is_one_minus_the_textbook_ssim():
    a, b = _images(seed=0), _images(seed=1)
    got = SSIMDissimilarity(1)(a, b).double()
    np.testing.assert_allclose(got.numpy(), (1 - _reference_ssim(a, b)).numpy(), atol=1e-5)


def test_identical_images_score_zero_and_the_measure_is_symmetric():
    a, b = _images(seed=0), _images(seed=1)
    ssim = SSIMDissimilarity(1)
    assert ssim(a, a).abs().max().item() < 1e-5
    torch.testing.assert_close(ssim(a, b), ssim(b, a))
    assert ssim(a, b).min().item() >= 0.0 and ssim(a, b).max().item() <= 2.0


def test_standardised_inputs_are_compared_on_the_unit_scale():
    """The model sees ``(x - mean) / std``; the SSIM is that of the [0, 1] images."""
    a, b = _images(seed=0), _images(seed=1)
    mean, std = 0.3, 0.2
    scaled = SSIMDissimilarity(1, pixel_mean=[mean], pixel_std=[std])
    torch.testing.assert_close(scaled((a - mean) / std, (b - mean) / std),
                               SSIMDissimilarity(1)(a, b), atol=1e-5, rtol=1e-4)


def test_each_channel_is_compared_on_its_own():
    a, b = _images(seed=0), _images(seed=1)
    two = SSIMDissimilarity(2)(torch.cat([a, a], 1), torch.cat([b, a], 1))
    torch.testing.assert_close(two[:, :1], SSIMDissimilarity(1)(a, b))
    assert two[:, 1].abs().max().item() < 1e-5


def test_a_window_wider_than_the_image_is_narrowed():
    a, b = _images(side=6, seed=0), _images(side=6, seed=1)
    out = SSIMDissimilarity(1, window=11)(a, b)
    assert out.shape == a.shape and torch.isfinite(out).all()
    torch.testing.assert_close(out, SSIMDissimilarity(1, window=5)(a, b))


@pytest.mark.parametrize("window", [0, 4])
def test_the_window_must_be_a_positive_odd_width(window):
    with pytest.raises(ValueError, match="odd"):
        SSIMDissimilarity(1, window=window)


def _gray(n: int = 64, side: int = 24) -> np.ndarray:
    rng = np.random.default_rng(0)
    images = rng.integers(40, 90, size=(n, side, side), dtype=np.uint8)
    images[:, :, side // 2:] += 100  # a shared structure to learn
    return images


def test_the_conv_ae_trains_and_scores_with_ssim_and_maps_each_pixel():
    images = _gray()
    det = genad.ConvAutoEncoder(loss="ssim", conv_width=4, epochs=3, random_state=0,
                                target_fpr=0.2, verbose=0).fit(images)
    ssim = det.model_.ssim
    assert isinstance(ssim, SSIMDissimilarity)
    np.testing.assert_allclose(ssim.pixel_mean.flatten().numpy(), det.adapter_.mean_,
                               rtol=1e-6)
    np.testing.assert_allclose(ssim.pixel_std.flatten().numpy(), det.adapter_.std_,
                               rtol=1e-6)
    scratched = images[:4].copy()
    scratched[:, 10:12, 2:20] = 255
    assert (det.anomaly_score(scratched) > det.anomaly_score(images[:4])).all()
    maps = det.anomaly_map(scratched)
    assert maps.shape == (4, 24, 24)
    assert maps[:, 10:12, 2:20].mean() > maps[:, 16:, :].mean()


def test_the_l2_default_builds_no_ssim():
    det = genad.ConvAutoEncoder(conv_width=4, epochs=1, random_state=0,
                                target_fpr=0.4, verbose=0).fit(_gray(32))
    assert det.loss == "l2" and det.model_.ssim is None


def test_an_ssim_model_scores_the_same_in_a_fresh_interpreter(tmp_path):
    images = _gray()
    det = genad.ConvAutoEncoder(loss="ssim", conv_width=4, epochs=2, random_state=0,
                                target_fpr=0.2, verbose=0).fit(images)
    path = det.save(tmp_path / "m.genad")
    assert scores_in_fresh_interpreter(
        path, images[:5], tmp_path, "d.loss == 'ssim' and d.model_.ssim is not None"
    ) == det.anomaly_score(images[:5]).tolist()


def test_ssim_on_a_table_is_refused_with_the_remedy():
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(InvalidInputError, match="loss='ssim'.*tabular.*loss='l2'"):
        genad.AutoEncoder(loss="ssim", epochs=1, verbose=0).fit(X)


def test_an_unknown_loss_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="loss"):
        genad.ConvAutoEncoder(loss="l1", epochs=1, verbose=0).fit(_gray(16))
