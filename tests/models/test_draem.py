"""DRAEM's objective: loss parts, a deterministic validation loss, a probability map, and
on textured images it learns to point at a pasted defect it never saw in training."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from genad.models.draem import DRAEMModel
from genad.nets.unet import UNet


def _textures(n: int, side: int = 24, seed: int = 0) -> torch.Tensor:
    """Stripes of random phase plus a little noise: a normal 'surface'."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand((n, 1, 1, 1), generator=g) * 6.3
    cols = torch.arange(side, dtype=torch.float32)[None, None, None, :]
    x = 0.5 + 0.3 * torch.sin(cols * 0.8 + phase)
    return (x + 0.05 * torch.randn((n, 1, side, side), generator=g)).expand(n, 1, side, side)


def _model(reconstruction: bool = False) -> DRAEMModel:
    torch.manual_seed(0)
    rec = UNet(1, 1, width=4) if reconstruction else None
    return DRAEMModel(UNet(2 if reconstruction else 1, 1, width=4), rec)


def test_loss_parts_with_and_without_the_reconstruction():
    x = _textures(8)
    plain = _model().loss(x)
    assert set(plain) == {"loss", "focal", "dice"}
    full = _model(reconstruction=True).loss(x)
    assert set(full) == {"loss", "focal", "dice", "reconstruction"}
    assert torch.isclose(full["loss"], full["focal"] + full["dice"] + full["reconstruction"])


def test_the_validation_loss_is_the_same_each_time():
    model, x = _model().eval(), _textures(8)
    with torch.no_grad():
        assert model.validation_loss(x) == model.validation_loss(x)


def test_the_map_is_a_probability_per_pixel_repeated_over_channels():
    model = DRAEMModel(UNet(3, 1, width=4)).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        m = model.element_scores(x)
        score, amap = model.infer(x)
    assert m.shape == x.shape and ((m >= 0) & (m <= 1)).all()
    assert torch.equal(m[:, 0], m[:, 2])
    assert torch.allclose(score, m.flatten(1).sum(1))


def test_it_learns_to_mark_a_defect_it_never_saw():
    model = _model()
    model.generator = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        model.train_step(_textures(16, seed=step), [opt])
    model.eval()
    x = _textures(4, seed=999).clone()
    x[:, :, 8:14, 8:14] = 0.0  # a dark square: not one of the simulated shapes
    truth = np.zeros((4, 24, 24))
    truth[:, 8:14, 8:14] = 1
    with torch.no_grad():
        m = model.element_scores(x)[:, 0].numpy()
    assert roc_auc_score(truth.ravel(), m.ravel()) > 0.85  # 0.93 when written
