"""Multi-layer perceptrons for encoders and decoders of vector data."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from genad.nets.noise import Dropout

__all__ = ["mlp", "default_mlp_sizes", "ACTIVATIONS"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "leaky_relu",
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """A stack of ``Linear`` layers, ``sizes[0] -> ... -> sizes[-1]``.

    Hidden layers get ``activation`` (and optionally batch norm and dropout); the last
    layer is linear, so the caller decides what the output means.

    Examples
    --------
    >>> mlp([30, 16, 4])
    Sequential(
      (0): Linear(in_features=30, out_features=16, bias=True)
      (1): LeakyReLU(negative_slope=0.01)
      (2): Linear(in_features=16, out_features=4, bias=True)
    )
    """
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least input and output sizes, got {list(sizes)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(b)))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


def default_mlp_sizes(n_features: int) -> tuple[list[int], int]:
    """Hidden sizes and latent size that suit ``n_features`` inputs.

    Two hidden layers of about 2x and 1x the input width (capped at 256 and 128, at
    least 32 and 16) and a latent of about a third of the input width (2 to 32).

    Examples
    --------
    >>> default_mlp_sizes(30)
    ([60, 30], 10)
    """
    d = int(n_features)
    h1 = min(256, max(32, 2 * d))
    h2 = min(128, max(16, d))
    latent = min(32, max(2, d // 3))
    return [h1, h2], latent
